"""``deepjam answer``: a real call file in, a two-track answer file out, through the live Session."""

from __future__ import annotations

import sys
import wave
from pathlib import Path

import mido
import numpy as np
import pytest

from exports.grid import events_from_notes
from exports.midi_files import write_melodies
from live_agent.cli import answer_command, main, model_path

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
    argv += ["--temperature", "1.0", "--seed", "3", "--answer-bars", "1"]
    assert main(argv) == 0
    midi = mido.MidiFile(str(out))
    assert [t.name for t in midi.tracks[1:]] == ["call", "answer"]
    call_notes = notes_of(midi.tracks[1])
    assert [(t // TICKS_PER_STEP, p) for t, p in call_notes] == [(s, p) for s, _, p in CALL]
    answer = notes_of(midi.tracks[2])
    assert answer, "a random model at temperature 1 plays something in 16 steps"
    # The call's last note, a quarter on beat 4, sounds through step 15: a quarter there is a
    # step on, not a close, so the answer (it opens with a note) starts on the downbeat after
    # more than 2 beats of silence, 32 (on 16 when the call closes with a held note).
    assert min(t for t, _ in answer) == 32 * TICKS_PER_STEP
    assert max(t for t, _ in answer) < 52 * TICKS_PER_STEP
    assert all(t % TICKS_PER_STEP == 0 for t, _ in answer)
    assert mido.tempo2bpm(midi.tracks[0][0].tempo) == pytest.approx(100)  # the call's tempo
    out = capsys.readouterr().out
    assert "from step 32" in out
    # (The printed key is the live estimate, which still counts this random model's own notes
    # until the player-only key frame lands.)


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
    monkeypatch.setattr(model_path, "default_model_path", lambda: tmp_path / "none.onnx")
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
    with wave.open(str(wav), "rb") as reader:
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    peak_dbfs = 20 * np.log10(np.abs(samples.astype(np.float64)).max() / 32767)
    assert peak_dbfs == pytest.approx(answer_command.RENDER_PEAK_DBFS, abs=0.1)


@pytest.mark.parametrize("bpm", ["0", "-5", "401"])
def test_answer_refuses_a_tempo_out_of_range(
    bpm: str, call_file: Path, onnx_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.mid"
    argv = ["answer", str(call_file), "-o", str(out), "--model", str(onnx_model), "--bpm", bpm]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bpm must be within 20..400" in err
    assert not out.exists()


@pytest.mark.parametrize("flag", ["-o", "--plot", "--render", "--record"])
def test_an_output_in_a_missing_folder_is_one_line_and_writes_nothing(
    flag: str, call_file: Path, onnx_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a.mid"
    missing = tmp_path / "no" / "such" / "x.out"
    argv = ["answer", str(call_file), "-o", str(out), "--model", str(onnx_model)]
    argv = [missing.as_posix() if a == str(out) and flag == "-o" else a for a in argv]
    if flag != "-o":
        argv += [flag, str(missing)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"the folder {missing.parent} does not exist" in err and "mkdir -p" in err
    assert not out.exists()


def test_plot_without_matplotlib_names_the_extra_before_writing(
    call_file: Path,
    onnx_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as on `pip install .`: not importable
    out = tmp_path / "a.mid"
    argv = ["answer", str(call_file), "-o", str(out), "--model", str(onnx_model)]
    assert main(argv + ["--plot", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "deepjam answer: error: --plot needs the plot extra, which is not installed (missing: "
        'matplotlib); install it with: pip install "deepjam[plot]"'
    )
    assert not out.exists(), "checked up front: no half-done run"


def test_answer_help_shows_only_what_a_file_can_use() -> None:
    text = answer_command_help()
    for live_only in ("--thru", "--clock", "--input-channel", "--controls"):
        assert live_only not in text
    assert "--temperature" in text and "(default: 0.5)" in text


def answer_command_help() -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), pytest.raises(SystemExit):
        main(["answer", "--help"])
    return buffer.getvalue()


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


def _call_with_velocities(path: Path, velocities: list[int]) -> Path:
    """CALL as a MIDI file whose notes have ``velocities`` (one each), 100 bpm."""
    midi = mido.MidiFile(ticks_per_beat=4 * TICKS_PER_STEP)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100), time=0))
    timed = []
    for (start, length, pitch), velocity in zip(CALL, velocities, strict=True):
        timed.append(
            (start * TICKS_PER_STEP, 1, mido.Message("note_on", note=pitch, velocity=velocity))
        )
        end = (start + length) * TICKS_PER_STEP
        timed.append((end, 0, mido.Message("note_off", note=pitch, velocity=0)))
    tick = 0
    for at, _, message in sorted(timed, key=lambda t: (t[0], t[1])):
        track.append(message.copy(time=at - tick))
        tick = at
    midi.save(str(path))
    return path


def _velocities(track: mido.MidiTrack) -> list[int]:
    return [m.velocity for m in track if m.type == "note_on" and m.velocity > 0]


def test_answer_reads_the_call_files_velocities_and_its_dynamics_follow(
    onnx_model: Path, tmp_path: Path
) -> None:
    """As live: the call's notes arrive with the file's velocities (not all 90), and the
    answer's level follows them (``dynamics.VelocityFollower``)."""
    answers = {}
    for name, velocities in (
        ("soft", [30, 34, 28, 36, 32, 30]),
        ("loud", [118, 112, 120, 110, 116, 120]),
    ):
        call = _call_with_velocities(tmp_path / f"{name}.mid", velocities)
        out = tmp_path / f"{name}-answer.mid"
        argv = ["answer", str(call), "-o", str(out), "--model", str(onnx_model)]
        assert main(argv + ["--temperature", "1.0", "--seed", "3", "--answer-bars", "1"]) == 0
        midi = mido.MidiFile(str(out))
        assert _velocities(midi.tracks[1]) == velocities, "the call as the file has it"
        answers[name] = _velocities(midi.tracks[2])
        assert answers[name], "the random model plays in a bar at temperature 1"
    assert max(answers["soft"]) < 60 < min(answers["loud"]), answers
