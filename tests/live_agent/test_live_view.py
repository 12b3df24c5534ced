"""The live view: a snapshot of a real session (shipped model, fake clock) drawn with rich, and
served to a browser by the --web panel (its JSON and its controls, over real HTTP)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from exports.errors import ConfigError, PortError
from exports.model_file import load_model
from live_agent.cli.jam_command import use_terminal_view
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from live_agent.view.snapshot import PortState, key_and_sureness, take_snapshot
from live_agent.view.terminal import piano_roll, render
from live_agent.view.web import WebPanel, parse_web_address
from tests.fakes import MS, RecordingNoteSink, inbox_of
from tests.support.panel import post_control

SHIPPED = Path(__file__).resolve().parents[2] / "live_agent" / "models" / "default.onnx"
STEP_NS = 125 * MS  # a 16th at 120 bpm
D_MAJOR_CALL = (62, 66, 69, 74, 69, 66, 64, 62)


def call_session(controls: ControlMap | None = None) -> Session:
    """A session that will hear the D major call (two 16ths a note, from step 0) when run."""
    events = []
    for i, pitch in enumerate(D_MAJOR_CALL):
        events.append((2 * i * STEP_NS, (0x90, pitch, 90)))
        events.append(((2 * i + 2) * STEP_NS - MS, (0x80, pitch, 0)))
    clock = FakeClock()
    options = JamOptions(bpm=120.0, temperature=0.0, seed=0, velocity=90, clock="internal")
    return Session(
        load_model(SHIPPED),
        options,
        RecordingNoteSink(clock),
        clock,
        inbox_of(events, close=False),  # type: ignore[arg-type]
        controls=controls if controls is not None else ControlMap(),
    )


def played_session(until_step: int = 48) -> Session:
    session = call_session()
    session.run(threading.Event(), until_step=until_step, start_ns=0)
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


def test_bar_lines_fall_on_the_grids_bars_not_the_windows() -> None:
    # Steps 0..43 played: the 32-step window holds grid steps 11..42 (43, the one sounding,
    # closes at the next decision), so bars begin at columns 5 (step 16) and 21 (step 32).
    snapshot = take_snapshot(played_session(until_step=44), [], "default")
    assert snapshot.newest_step == 42 and snapshot.steps_per_bar == 16
    assert snapshot.bar_starts == [5, 21]
    # The call's last two notes (steps 12 and 14, E4 and D4) are where the grid says.
    assert list(np.flatnonzero(snapshot.player_onsets)) == [1, 3]
    assert snapshot.player_roll[1] == 64 and snapshot.player_roll[3] == 62
    console = Console(record=True, width=100, color_system=None)
    console.print(piano_roll(snapshot))
    d4 = next(line for line in console.export_text().splitlines() if line.startswith("  D4 "))
    assert d4[5:].startswith("···█▬|") and d4[5:].count("|") == 2, d4


class Panel:
    """A WebPanel on a free port serving ``session``'s snapshot, spoken to over real HTTP."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.panel = WebPanel(session, lambda: take_snapshot(session, [], "default"), port=0)
        self.url = self.panel.start()

    def get(self, path: str, host: str | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path.lstrip("/"))
        if host is not None:
            request.add_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=5) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def snapshot(self) -> dict[str, Any]:
        self.panel._cached = None  # the test reads right after a run: no cached copy
        status, body = self.get("/snapshot")
        assert status == 200
        return json.loads(body)  # type: ignore[no-any-return]

    def post(
        self, name: str, value: object, content_type: str = "application/json"
    ) -> tuple[int, dict[str, Any]]:
        return post_control(self.url, name, value, content_type)


def test_the_web_panel_serves_the_same_view_as_json() -> None:
    session = played_session(until_step=44)
    panel = Panel(session)
    try:
        assert panel.url.startswith("http://127.0.0.1:")
        assert panel.panel._server is not None
        assert panel.panel._server.server_address[0] == "127.0.0.1"
        status, page = panel.get("/")
        assert status == 200 and b'id="mode-button"' in page and b'id="slider-density"' in page
        data = panel.snapshot()
        text = {row["label"]: "".join(s["text"] for s in row["segments"]) for row in data["rows"]}
        assert text["key heard"].startswith("D major, sure"), text
        assert text["tempo"].startswith("120.0 bpm from --bpm"), text
        assert text["style / mode"].startswith("default / answer")  # answering from step 32
        assert data["mode"] == "answer" and data["modes"] == ["answer", "duet"]
        assert data["roll"]["bar_starts"] == [5, 21] and data["roll"]["columns"] == 32
        d4 = next(row for row in data["roll"]["rows"] if row["name"] == "D4")
        assert d4["cells"][3] == "you" and d4["cells"][4] == "you-held"
        temperature = data["controls"]["temperature"]
        assert (temperature["min"], temperature["max"], temperature["value"]) == (0.0, 1.5, 0.0)
        assert data["controls"]["register"]["step"] == 1.0
    finally:
        panel.panel.stop()


def test_the_panels_controls_take_the_cc_path() -> None:
    session = call_session()
    panel = Panel(session)
    try:
        assert panel.post("temperature", 0.75)[1]["cc"] == 74
        assert panel.post("density", 0.5)[0] == 200
        assert panel.post("register", 1)[0] == 200
        assert panel.post("mode", "duet")[0] == 200
        assert panel.post("panic", 127)[0] == 200
        assert session.mode.name == "answer", "nothing changes until the session reads its inbox"
        session.run(threading.Event(), until_step=48, start_ns=0)
        # What the controls file's CCs would have done, value for value.
        assert session.temperature == pytest.approx(ControlMap().temperature.scale(64))  # type: ignore[union-attr]
        assert session.density == pytest.approx(64 / 127)
        assert session.register_shift == 12
        assert session.mode.name == "duet", "the mode CC, held a beat"
        assert session.notes.panics == 2, "the panic CC, then the one at the end"
        data = panel.snapshot()
        assert data["mode"] == "duet"
        assert data["controls"]["register"]["value"] == 1.0
        assert data["controls"]["temperature"]["text"] == "0.76"
    finally:
        panel.panel.stop()


def test_the_panel_refuses_what_it_cannot_do_in_one_line() -> None:
    no_temperature = ControlMap(temperature=None)
    panel = Panel(call_session(no_temperature))
    try:
        status, reply = panel.post("temperature", 0.5)
        assert status == 400 and "temperature has no CC in the controls file" in reply["error"]
        assert panel.snapshot()["controls"]["temperature"]["enabled"] is False
        status, reply = panel.post("mode", "sideways")
        assert status == 400 and "answer, duet" in reply["error"]
        assert panel.post("volume", 1)[0] == 400
        assert panel.post("density", 0.5, content_type="text/plain")[0] == 415, "no cross-site form"
        status, _ = panel.get("/snapshot", host="evil.example:8765")
        assert status == 403, "no DNS rebinding"
        assert panel.panel.controls_sent == 0
    finally:
        panel.panel.stop()


def test_web_serves_this_machine_only() -> None:
    assert parse_web_address("8765") == ("127.0.0.1", 8765)
    assert parse_web_address("localhost:0") == ("127.0.0.1", 0)
    for address in ("0.0.0.0:8765", "192.168.1.4:8765", "example.com:80"):
        with pytest.raises(ConfigError, match="127.0.0.1 only"):
            parse_web_address(address)
    with pytest.raises(ConfigError, match="port number"):
        parse_web_address("127.0.0.1:http")
    done = subprocess.run(
        [sys.executable, "-m", "live_agent.cli", "jam", "--virtual", "--web", "0.0.0.0:8765"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and "127.0.0.1 only" in errors[0], done.stderr


def test_a_taken_port_is_one_line() -> None:
    first = Panel(call_session())
    try:
        port = int(first.url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(PortError, match="pick another port"):
            WebPanel(first.session, lambda: take_snapshot(first.session, [], "x"), port).start()
    finally:
        first.panel.stop()
