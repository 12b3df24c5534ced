"""Connecting is not guesswork: deepjam's own ports are never offered, an empty system says what
to do, libjack's noise stays out of the way, and jam prints the exact names to connect."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from exports.errors import PortError
from live_agent.io.ports import (
    PortList,
    api_ids,
    connect_lines,
    format_port_list,
    is_own_port,
    list_ports,
    match_port,
    open_port,
    resolve_api,
)

OWN = ["deepjam-out:deepjam out", "deepjam-watchdog:probe", "deepjam-in:deepjam in 130:0"]


def test_own_ports_are_recognised() -> None:
    assert all(is_own_port(name) for name in OWN)
    assert not is_own_port("Arturia KeyStep 37:Arturia KeyStep 37 MIDI 1 20:0")
    assert not is_own_port("system:midi_capture_1")


def test_own_ports_are_never_candidates() -> None:
    available = [*OWN, "a2j:KeyStep [20] (capture): KeyStep MIDI 1"]
    assert match_port(available, "keystep", "input") == 3
    with pytest.raises(PortError) as caught:
        match_port(available, "deepjam", "input")
    assert "deepjam-out" not in str(caught.value)


def test_no_ports_at_all_says_what_to_do() -> None:
    with pytest.raises(PortError) as caught:
        match_port(OWN, "KeyStep", "input")
    text = str(caught.value)
    assert text.startswith("no MIDI inputs found (asked for 'KeyStep'); plug in a MIDI keyboard")
    assert "available: []" not in text and "--virtual" in text
    listing = format_port_list(PortList(api=api_ids()["jack"], inputs=[], outputs=[]))
    assert "no MIDI inputs found" in listing and "no MIDI outputs found" in listing
    assert "(none)" not in listing


def test_connect_lines_are_jack_connect_commands_with_full_names() -> None:
    jack = api_ids()["jack"]
    ports = PortList(api=jack, inputs=["system:midi_capture_1"], outputs=["fs:midi_00"])
    assert connect_lines(jack, "deepjam-in:deepjam in", "deepjam-out:deepjam out", ports) == [
        'jack_connect "system:midi_capture_1" "deepjam-in:deepjam in"',
        'jack_connect "deepjam-out:deepjam out" "fs:midi_00"',
    ]
    assert connect_lines(jack, None, "deepjam-out:deepjam out", None) == [
        'jack_connect "deepjam-out:deepjam out" "YOUR-SYNTH-PORT"'
    ]


def test_without_a_jack_server_the_user_reads_deepjam_s_one_line_only() -> None:
    env = dict(os.environ, JACK_DEFAULT_SERVER="deepjam-no-such-server", PYTHONUNBUFFERED="1")
    result = subprocess.run(
        [sys.executable, "-m", "live_agent.cli", "ports", "--api", "jack"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # no "Cannot connect to server socket" from libjack
    assert lines[0].startswith("deepjam ports: error: cannot open the jack MIDI system")


@pytest.mark.jack
def test_listing_leaves_out_deepjam_s_own_ports(jack_server: object) -> None:
    api = resolve_api("jack")
    mine = open_port("output", api, None, virtual=True)  # "deepjam:deepjam out"
    keyboard = open_port("output", api, None, virtual=True, client_name="keyboard-sim")
    try:
        inputs = list_ports(api).inputs
        assert any(name.startswith("keyboard-sim:") for name in inputs), inputs
        assert not any(is_own_port(name) for name in inputs), inputs
    finally:
        mine.close()
        keyboard.close()


def test_synth_without_fluidsynth_says_how_to_install_it(tmp_path: object) -> None:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))  # no fluidsynth on PATH
    result = subprocess.run(
        [sys.executable, "-m", "live_agent.cli", "jam", "--synth", "--virtual"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--synth needs FluidSynth" in lines[0]
    assert "apt-get install fluidsynth fluid-soundfont-gm" in lines[0]
