"""A render keeps its music and half a second of release, not FluidSynth's seconds of silence."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from live_agent.cli import answer_command

RATE_HZ = 8000


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(2)
        writer.setsampwidth(2)
        writer.setframerate(RATE_HZ)
        writer.writeframes(samples.astype("<i2").tobytes())


def test_the_silent_tail_is_cut_to_the_release(tmp_path: Path) -> None:
    t = np.arange(RATE_HZ) / RATE_HZ  # 1 s of a quiet tone, then 9 s of silence
    tone = (800 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    stereo = np.zeros((10 * RATE_HZ, 2), dtype=np.int16)
    stereo[:RATE_HZ] = tone[:, None]
    path = tmp_path / "render.wav"
    write_wav(path, stereo)
    gain_db = answer_command.normalise_wav(path, answer_command.RENDER_PEAK_DBFS)
    with wave.open(str(path), "rb") as reader:
        frames = reader.getnframes()
        samples = np.frombuffer(reader.readframes(frames), dtype="<i2").reshape(-1, 2)
    assert frames / RATE_HZ == pytest.approx(1.0 + answer_command.RENDER_TAIL_S, abs=0.01)
    assert gain_db > 20  # normalised, as before
    peak_dbfs = 20 * np.log10(np.abs(samples.astype(np.float64)).max() / 32767)
    assert peak_dbfs == pytest.approx(answer_command.RENDER_PEAK_DBFS, abs=0.1)


def test_a_silent_render_is_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "silent.wav"
    write_wav(path, np.zeros((RATE_HZ, 2), dtype=np.int16))
    assert answer_command.normalise_wav(path, answer_command.RENDER_PEAK_DBFS) == 0.0
    with wave.open(str(path), "rb") as reader:
        assert reader.getnframes() == RATE_HZ
