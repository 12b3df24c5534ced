"""The live view: a snapshot of a real session (shipped model, fake clock) drawn with rich."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from rich.console import Console

from exports.model_file import load_model
from live_agent.cli.jam_command import use_terminal_view
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from live_agent.view.snapshot import PortState, key_and_sureness, take_snapshot
from live_agent.view.terminal import render
from tests.fakes import MS, RecordingNoteSink, inbox_of

SHIPPED = Path(__file__).resolve().parents[2] / "live_agent" / "models" / "default.onnx"
STEP_NS = 125 * MS  # a 16th at 120 bpm
D_MAJOR_CALL = (62, 66, 69, 74, 69, 66, 64, 62)


def played_session() -> Session:
    events = []
    for i, pitch in enumerate(D_MAJOR_CALL):
        events.append((2 * i * STEP_NS, (0x90, pitch, 90)))
        events.append(((2 * i + 2) * STEP_NS - MS, (0x80, pitch, 0)))
    clock = FakeClock()
    options = JamOptions(bpm=120.0, temperature=0.0, seed=0, velocity=90, clock="internal")
    session = Session(
        load_model(SHIPPED),
        options,
        RecordingNoteSink(clock),
        clock,
        inbox_of(events, close=False),  # type: ignore[arg-type]
        controls=ControlMap(),
    )
    session.run(threading.Event(), until_step=48, start_ns=0)
    return session


def test_the_view_shows_ports_tempo_key_controls_and_both_parts() -> None:
    session = played_session()
    ports = [
        PortState("keyboard in", "deepjam-in:deepjam in", True),
        PortState("deepjam out", "deepjam-out:deepjam out", False),
    ]
    snapshot = take_snapshot(session, ports, "default")
    assert snapshot.key == "D major" and snapshot.key_sureness.startswith("sure")
    assert snapshot.tempo_bpm == 120.0 and snapshot.tempo_source.startswith("--bpm")
    assert (snapshot.player_roll >= 0).any(), "the player's part is in the window"
    assert snapshot.notes_played == int(session.stats.notes_sent)
    console = Console(record=True, width=100, color_system=None)
    console.print(render(snapshot))
    screen = console.export_text()
    for expected in (
        "deepjam-in:deepjam in  connected",
        "deepjam-out:deepjam out  not connected",
        "120.0 bpm from --bpm",
        "D major, sure",
        "temperature 0.00, density 1.00, register +0 semitones",
        "default / answer",
    ):
        assert expected in screen, screen
    assert "D5 |" in screen or "D5 " in screen, screen  # a pitch row of the roll
    if (snapshot.agent_roll >= 0).any():  # the answer is in the window too
        assert snapshot.answers >= 1


def test_key_sureness_follows_the_evidence() -> None:
    scale = np.zeros(12)
    scale[[2, 4, 6, 7, 9, 11, 1]] = 1.0  # D major's notes
    scale[2] = 3.0
    assert key_and_sureness(scale, 2, False)[1].startswith("sure")
    assert key_and_sureness(np.ones(12), 0, False)[1].startswith("guessing")
    assert key_and_sureness(np.zeros(12), 0, False) == ("-", "nothing heard yet")


def test_no_tty_keeps_the_plain_log() -> None:
    # pytest captures stderr: not a terminal, so auto means the log.
    assert use_terminal_view("auto") is False
    assert use_terminal_view("plain") is False and use_terminal_view("terminal") is True
