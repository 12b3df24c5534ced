"""``deepjam answer``: a real call file in, a two-track answer file out, through the live Session."""

from __future__ import annotations

from pathlib import Path

import mido
import pytest

from exports.grid import events_from_notes
from exports.midi_files import write_melodies
from live_agent.cli import answer_command, main

CALL = [(0, 2, 63), (2, 2, 65), (4, 2, 67), (6, 2, 68), (8, 4, 70), (12, 4, 63)]  # E-flat, 1 bar
TICKS_PER_STEP = 120  # the recorder writes 480 ticks a quarter


@pytest.fixture
def call_file(tmp_path: Path) -> Path:
    path = tmp_path / "call.mid"
    write_melodies(path, [("call", events_from_notes(CALL, 16))], bpm=100)
    return path


def notes_of(track: mido.MidiTrack) -> list[tuple[int, int]]:
    """(tick, pitch) of each note-on."""
    tick, out = 0, []
    for message in track:
        tick += message.time
        if message.type == "note_on" and message.velocity > 0:
            out.append((tick, message.note))
    return out


def test_answer_writes_call_and_answer_tracks_and_answers_after_the_silence(
    call_file: Path, onnx_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "answer.mid"
    argv = ["answer", str(call_file), "-o", str(out), "--model", str(onnx_model)]
    argv += ["--temperature", "1.0", "--seed", "3", "--silence-steps", "4", "--answer-bars", "1"]
    assert main(argv) == 0
    midi = mido.MidiFile(str(out))
    assert [t.name for t in midi.tracks[1:]] == ["call", "answer"]
    call_notes = notes_of(midi.tracks[1])
    assert [(t // TICKS_PER_STEP, p) for t, p in call_notes] == [(s, p) for s, _, p in CALL]
    answer = notes_of(midi.tracks[2])
    assert answer, "a random model at temperature 1 plays something in 16 steps"
    # The call's last note sounds through step 15; silence 16..19; the answer is steps 20..35.
    assert min(t for t, _ in answer) >= 20 * TICKS_PER_STEP
    assert max(t for t, _ in answer) < 36 * TICKS_PER_STEP
    assert all(t % TICKS_PER_STEP == 0 for t, _ in answer)
    assert mido.tempo2bpm(midi.tracks[0][0].tempo) == pytest.approx(100)  # the call's tempo
    assert "key Eb major" in capsys.readouterr().out


def test_answer_is_reproducible_with_a_seed(
    call_file: Path, onnx_model: Path, tmp_path: Path
) -> None:
    outs = []
    for name in ("a.mid", "b.mid"):
        argv = ["answer", str(call_file), "-o", str(tmp_path / name), "--model", str(onnx_model)]
        assert main(argv + ["--temperature", "1.0", "--seed", "9"]) == 0
        outs.append(notes_of(mido.MidiFile(str(tmp_path / name)).tracks[2]))
    assert outs[0] == outs[1]


def test_record_option_writes_the_same_two_tracks(
    call_file: Path, onnx_model: Path, tmp_path: Path
) -> None:
    out, record = tmp_path / "answer.mid", tmp_path / "session.mid"
    argv = ["answer", str(call_file), "-o", str(out), "--model", str(onnx_model)]
    assert main(argv + ["--temperature", "1.0", "--seed", "3", "--record", str(record)]) == 0
    written, recorded = mido.MidiFile(str(out)), mido.MidiFile(str(record))
    assert [t.name for t in recorded.tracks[1:]] == ["call", "answer"]
    assert notes_of(recorded.tracks[2]) == notes_of(written.tracks[2])


def test_missing_default_model_is_one_clear_line(
    call_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(answer_command, "default_model_path", lambda: tmp_path / "none.onnx")
    assert main(["answer", str(call_file), "-o", str(tmp_path / "x.mid")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no --model given" in err and "--model FILE.onnx" in err


def test_plot_and_render(call_file: Path, onnx_model: Path, tmp_path: Path) -> None:
    out, png, wav = tmp_path / "a.mid", tmp_path / "a.png", tmp_path / "a.wav"
    argv = ["answer", str(call_file), "-o", str(out), "--model", str(onnx_model), "--seed", "1"]
    assert main(argv + ["--temperature", "1.0", "--plot", str(png), "--render", str(wav)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert wav.read_bytes()[:4] == b"RIFF" and wav.stat().st_size > 10_000


def test_render_without_fluidsynth_says_how_to_fix(
    call_file: Path,
    onnx_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(answer_command.shutil, "which", lambda name: None)
    argv = ["answer", str(call_file), "-o", str(tmp_path / "a.mid"), "--model", str(onnx_model)]
    assert main(argv + ["--render", str(tmp_path / "a.wav")]) == 2
    assert "apt-get install fluidsynth" in capsys.readouterr().err
