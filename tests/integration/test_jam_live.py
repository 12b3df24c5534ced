"""`deepjam jam` as a subprocess on a real JACK server, played by a separate JACK client.

The model is the scale fixture (tests/conftest.py): greedy, it starts the key-relative C-major
degree of its bar position on every 16th, so its notes must land in the player's key.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from exports.errors import ModelError
from exports.midi import ALL_NOTES_OFF, CONTROL_CHANGE, NOTE_OFF, NOTE_ON
from tests.support.jack_probe import (
    JackRecorder,
    Received,
    grid_deviation_ms,
    jack_recorder,
    late_share,
    run_jam,
)

DEEPJAM_IN = "deepjam-in:deepjam in"
DEEPJAM_OUT = "deepjam-out:deepjam out"
PORTS = {
    "rtmidi": (DEEPJAM_IN, DEEPJAM_OUT),
    "jack-client": ("deepjam:deepjam in", "deepjam:deepjam out"),  # one client, two ports
}
E_FLAT_MAJOR = {3, 5, 7, 8, 10, 0, 2}
ALL_OFF_WITHIN_NS = 50_000_000


def _jam_args(model: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--temperature", "0", "--virtual", "--api", "jack", *extra]


def _patch(
    recorder: JackRecorder, deepjam_in: str = DEEPJAM_IN, deepjam_out: str = DEEPJAM_OUT
) -> None:
    recorder.wait_for_port(deepjam_out)
    recorder.connect_from(deepjam_out)
    recorder.connect_to(deepjam_in)
    time.sleep(0.05)


def _play(recorder: JackRecorder, notes: list[tuple[int, float]]) -> None:
    """Play (pitch, seconds) legato-ish, to absolute deadlines (no drift)."""
    deadline = time.perf_counter()
    for pitch, length_s in notes:
        recorder.send((NOTE_ON, pitch, 96))
        deadline += length_s * 0.9
        time.sleep(max(0.0, deadline - time.perf_counter()))
        recorder.send((NOTE_OFF, pitch, 0))
        deadline += length_s * 0.1
        time.sleep(max(0.0, deadline - time.perf_counter()))


def _sounding_after(events: list[Received]) -> set[tuple[int, int]]:
    """(channel, pitch) still on after replaying ``events`` (CC 123 ends a channel's notes)."""
    on: set[tuple[int, int]] = set()
    for e in events:
        status, channel = e.data[0] & 0xF0, e.data[0] & 0x0F
        if status == NOTE_ON and e.data[2] > 0:
            on.add((channel, e.data[1]))
        elif status in (NOTE_OFF, NOTE_ON):
            on.discard((channel, e.data[1]))
        elif status == CONTROL_CHANGE and e.data[1] == ALL_NOTES_OFF:
            on = {n for n in on if n[0] != channel}
    return on


def test_each_side_needs_a_port_name_or_virtual() -> None:
    from exports.errors import PortError
    from live_agent.cli.jam_command import check_port_choice

    check_port_choice("keystep", "fluid", virtual=False)
    check_port_choice("keystep", None, virtual=True)
    with pytest.raises(PortError, match=r"^no --output given: name the port .* or pass --virtual"):
        check_port_choice("keystep", None, virtual=False)


def test_missing_default_model_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from live_agent.cli import jam_command, model_path

    missing = tmp_path / "models" / "default.onnx"
    monkeypatch.setattr(model_path, "default_model_path", lambda: missing)
    with pytest.raises(
        ModelError, match=r"default model .*default.onnx is not installed; pass --model"
    ):
        jam_command.resolve_model_path(None)
    assert jam_command.resolve_model_path(tmp_path / "x.onnx") == tmp_path / "x.onnx"


@pytest.mark.jack
def test_unknown_input_port_fails_in_one_line(jack_server, scale_model_path: Path) -> None:  # type: ignore[no-untyped-def]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "live_agent.cli",
            "jam",
            *_jam_args(scale_model_path)[:4],
            "--virtual",
            "--input",
            "nosuch-keyboard",
            "--api",
            "jack",
        ],
        capture_output=True,
        text=True,
        env=jack_server.env,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("deepjam jam: error")]
    assert len(errors) == 1 and "'nosuch-keyboard'" in errors[0], done.stderr
    # What is there, or (when only deepjam's own ports are) what to do.
    assert "available: [" in errors[0] or "no MIDI inputs found" in errors[0], errors[0]
    assert "deepjam-" not in errors[0].split("'nosuch-keyboard'")[1], "own ports are not offered"


SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "live_agent" / "models" / "default.onnx"


@pytest.mark.jack
@pytest.mark.slow
@pytest.mark.parametrize("model_name", ["scale", "shipped default"])
def test_answers_a_phrase_in_its_key_on_the_grid(
    jack_server, scale_model_path: Path, model_name: str
) -> None:  # type: ignore[no-untyped-def]
    """The scale model proves the plumbing (key frame, grid); the shipped default style, trained
    on the corpus, must answer in the phrase's key too: that is the music being judged."""
    model = scale_model_path if model_name == "scale" else SHIPPED_MODEL
    bpm = 150.0
    step_s = 60.0 / bpm / 4
    args = _jam_args(
        model,
        "--mode",
        "answer",
        "--bpm",
        str(bpm),
        "--answer-bars",
        "1" if model_name == "scale" else "2",
    )
    # E-flat major, tonic triad stressed: Eb G Bb Eb' D F Ab G F Eb (eighth notes, long tonic).
    phrase = [
        (63, 0.2),
        (67, 0.2),
        (70, 0.2),
        (75, 0.2),
        (74, 0.2),
        (77, 0.2),
        (68, 0.2),
        (67, 0.2),
        (65, 0.2),
        (63, 0.6),
    ]
    for _ in range(3):  # a run in which deepjam itself reported late 16ths (a starved
        # machine) says nothing about the grid it follows: play again, judge the last run
        with jack_recorder("phrase-player") as recorder, run_jam(args, env=jack_server.env) as jam:
            _patch(recorder)
            _play(recorder, phrase)
            phrase_end_frame = recorder.client.frame_time
            # The answer starts on the next strong beat (up to half a bar after the end) and
            # lasts 1 or 2 bars (1.6 s each at 150 bpm): judge it once it is over.
            time.sleep(4.5)
            answer = [e for e in recorder.note_ons() if e.frame > phrase_end_frame]
        if late_share(jam.lines) == 0.0:
            break
    assert len(answer) >= (4 if model_name == "scale" else 3), jam.stderr_text()
    pitch_classes = {e.data[1] % 12 for e in answer}
    assert pitch_classes <= E_FLAT_MAJOR, (
        f"answer {[e.data[1] for e in answer]} is not in E-flat major"
    )
    onsets_s = np.array([e.frame for e in answer], dtype=np.float64) / recorder.sample_rate
    steps = np.diff(onsets_s) / step_s
    assert np.all(np.abs(steps - np.round(steps)) < 0.15), f"inter-onset steps {steps}"
    assert np.percentile(grid_deviation_ms(onsets_s, step_s), 50) < 6.0


@pytest.mark.jack
@pytest.mark.slow
def test_follows_a_midi_clock(jack_server, scale_model_path: Path) -> None:  # type: ignore[no-untyped-def]
    clock_bpm = 100.0  # not the --bpm below: the notes must follow the clock
    tick_s = 60.0 / clock_bpm / 24
    args = _jam_args(
        scale_model_path,
        "--mode",
        "duet",
        "--clock",
        "midi",
        "--bpm",
        "140",
        "--duet-wait-notes",
        "0",
    )
    with jack_recorder("clock-source") as recorder, run_jam(args, env=jack_server.env) as jam:
        _patch(recorder)
        recorder.send((0xFA,))  # Start
        deadline = time.perf_counter()
        for _ in range(24 * 4):  # one bar
            recorder.send((0xF8,))
            deadline += tick_s
            time.sleep(max(0.0, deadline - time.perf_counter()))
        recorder.send((0xFC,))  # Stop
        stop_frame = recorder.client.frame_time
        time.sleep(0.4)
        events = list(recorder.events)
    onsets = [
        e for e in events if len(e.data) == 3 and e.data[0] & 0xF0 == NOTE_ON and e.data[2] > 0
    ]
    assert len(onsets) >= 8, jam.stderr_text()
    intervals_s = np.diff([e.frame for e in onsets]) / recorder.sample_rate
    assert abs(float(np.median(intervals_s)) - 6 * tick_s) < 0.012, intervals_s
    late = [e for e in onsets if e.frame > stop_frame + 0.1 * recorder.sample_rate]
    assert late == [], "notes started after the clock stopped"
    assert _sounding_after(events) == set(), "a note was left on after Stop"


@pytest.mark.jack
@pytest.mark.parametrize(
    ("signum", "backend"),
    [(signal.SIGTERM, "rtmidi"), (signal.SIGINT, "rtmidi"), (signal.SIGTERM, "jack-client")],
)
def test_signal_mid_note_leaves_nothing_sounding(
    jack_server, scale_model_path: Path, signum: int, backend: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # The agent plays on channel 3; the player's held chord comes back on channel 1 (--thru).
    args = _jam_args(
        scale_model_path,
        "--mode",
        "duet",
        "--bpm",
        "120",
        "--channel",
        "3",
        "--thru",
        "--duet-wait-notes",
        "0",
    )
    record = tmp_path / "session.mid"
    args += ["--backend", backend, "--record", str(record)]
    ports = PORTS[backend]
    with jack_recorder("signal-listener") as recorder, run_jam(args, env=jack_server.env) as jam:
        _patch(recorder, *ports)
        recorder.send((NOTE_ON, 48, 80))
        recorder.send((NOTE_ON, 55, 80))  # held through the signal, never released by the player
        deadline = time.monotonic() + 5
        while len(recorder.note_ons()) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(recorder.note_ons()) >= 4, jam.stderr_text()
        # Mid-note: the model re-strikes every 16th, so a note always sounds; aim between steps.
        time.sleep(0.04)
        signalled_ns = time.perf_counter_ns()
        jam.process.send_signal(signum)
        jam.process.wait(timeout=10)
        time.sleep(0.1)
        events = list(recorder.events)
    assert jam.process.returncode == 0, jam.stderr_text()
    assert any("stopped after" in line for line in jam.lines), jam.stderr_text()
    before = [e for e in events if e.time_ns <= signalled_ns]
    sounding = _sounding_after(before)
    assert {(0, 48), (0, 55)} <= sounding, f"the thru chord should sound: {sounding}"
    assert any(channel == 2 for channel, _ in sounding), f"an agent note should sound: {sounding}"
    by_deadline = [e for e in events if e.time_ns <= signalled_ns + ALL_OFF_WITHIN_NS]
    assert _sounding_after(by_deadline) == set(), "notes still on 50 ms after the signal"
    assert _sounding_after(events) == set()
    # --record: written on the same shutdown path, both parts, every note closed
    import mido

    tracks = mido.MidiFile(str(record)).tracks
    notes = [[m for m in t if m.type == "note_on" and m.velocity > 0] for t in tracks]
    assert sum(1 for part in notes if part) == 2, f"expected a player and an agent part: {tracks}"
    assert any(f"recorded both parts to {record}" in line for line in jam.lines), jam.stderr_text()


@pytest.mark.jack
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["rtmidi", "jack-client"])
def test_synth_that_quits_and_returns_gets_all_notes_off_first(
    jack_server, scale_model_path: Path, backend: str
) -> None:  # type: ignore[no-untyped-def]
    args = _jam_args(
        scale_model_path,
        "--mode",
        "duet",
        "--bpm",
        "120",
        "--output",
        "lost-synth",
        "--duet-wait-notes",
        "0",
    )
    args += ["--backend", backend]
    first = JackRecorder("lost-synth").start()
    try:
        with run_jam(args, env=jack_server.env) as jam:
            deadline = time.monotonic() + 5
            while len(first.note_ons()) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(first.note_ons()) >= 3, jam.stderr_text()
            first.stop()  # the synth quits mid-note; the jam plays on into nothing
            time.sleep(1.0)
            with jack_recorder("lost-synth") as second:
                deadline = time.monotonic() + 3
                while len(second.note_ons()) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                events = list(second.events)
            assert any("vanished" in line for line in jam.lines), jam.stderr_text()
            assert any("is back" in line for line in jam.lines), jam.stderr_text()
            assert jam.process.poll() is None, "the jam must go on"
    finally:
        first.stop()
    first_on = next(
        i for i, e in enumerate(events) if e.data[0] & 0xF0 == NOTE_ON and e.data[2] > 0
    )
    before = [tuple(e.data) for e in events[:first_on]]
    assert (CONTROL_CHANGE, ALL_NOTES_OFF, 0) in before and (CONTROL_CHANGE, 120, 0) in before, (
        events
    )


@pytest.mark.jack
def test_rewriting_the_model_file_swaps_the_style_without_a_stuck_note(
    jack_server, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from exports.spec import REST
    from tests.support.scale_model import write_scale_model

    model = write_scale_model(tmp_path / "style.onnx")
    args = _jam_args(model, "--mode", "duet", "--bpm", "240", "--duet-wait-notes", "0")
    with jack_recorder("swap-listener") as recorder, run_jam(args, env=jack_server.env) as jam:
        _patch(recorder)
        time.sleep(0.8)
        before = len(recorder.events)
        silent = write_scale_model(tmp_path / "silent.onnx", only_action=REST)
        silent.replace(model)  # what `deepjam export -o style.onnx` does: a new file in place
        deadline = time.monotonic() + 5.0
        while not any("swapped" in line for line in jam.lines) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("swapped" in line for line in jam.lines), jam.stderr_text()
        swapped_frame = recorder.client.frame_time
        time.sleep(0.6)
        events = list(recorder.events)
    assert before > 0, "the scale model played nothing before the swap"
    late_onsets = [
        e
        for e in events
        if len(e.data) == 3
        and e.data[0] & 0xF0 == NOTE_ON
        and e.data[2] > 0
        and e.frame > swapped_frame + 0.2 * recorder.sample_rate
    ]
    assert late_onsets == [], "the silent model still started notes after the swap"
    assert _sounding_after(events) == set(), "a note was left on across the swap"
