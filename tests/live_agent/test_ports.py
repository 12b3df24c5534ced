"""Port lookup: exact / substring matching, one-line errors, listing and opening on real JACK."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from exports.errors import ConfigError, DeepjamError, PortError
from live_agent.io.ports import (
    VIRTUAL_INPUT_NAME,
    VIRTUAL_OUTPUT_NAME,
    api_ids,
    list_ports,
    match_port,
    open_port,
    resolve_api,
)

AVAILABLE = ["Arturia KeyStep 37", "Midi Through", "KeyStep Pro"]


def test_exact_name_wins_over_substring() -> None:
    assert match_port(AVAILABLE, "KeyStep Pro", "input") == 2


def test_case_insensitive_substring() -> None:
    assert match_port(AVAILABLE, "midi thr", "output") == 1


def test_no_match_lists_what_is_there_in_one_line() -> None:
    with pytest.raises(PortError) as err:
        match_port(AVAILABLE[:2], "Launchkey", "input")
    message = str(err.value)
    assert message == (
        "no MIDI input matches 'Launchkey'; available: ['Arturia KeyStep 37', 'Midi Through']"
    )
    assert isinstance(err.value, OSError) and isinstance(err.value, DeepjamError)


def test_ambiguous_substring_names_the_candidates() -> None:
    with pytest.raises(PortError, match=r"ambiguous.*'Arturia KeyStep 37', 'KeyStep Pro'"):
        match_port(AVAILABLE, "keystep", "input")


def test_unknown_api_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="expected --api to be one of"):
        resolve_api("winmm")


def test_jack_api_resolves() -> None:
    assert resolve_api("jack") == api_ids()["jack"]


@pytest.mark.jack
def test_list_and_open_by_substring(jack_server: object) -> None:
    api = resolve_api("jack")
    source = open_port("output", api, None, virtual=True, client_name="keyboard-sim")
    sink = open_port("input", api, None, virtual=True, client_name="synth-sim")
    try:
        ports = list_ports(api)
        assert f"keyboard-sim:{VIRTUAL_OUTPUT_NAME}" in ports.inputs
        assert f"synth-sim:{VIRTUAL_INPUT_NAME}" in ports.outputs
        opened = open_port("input", api, "KEYBOARD-SIM", client_name="deepjam-t")
        try:
            assert opened.name == f"keyboard-sim:{VIRTUAL_OUTPUT_NAME}"
            assert not opened.virtual
        finally:
            opened.close()
        with pytest.raises(PortError, match=r"no MIDI output matches 'nosuchsynth'; available: \["):
            open_port("output", api, "nosuchsynth", client_name="deepjam-t")
    finally:
        source.close()
        sink.close()


@pytest.mark.jack
def test_auto_finds_jack_when_a_server_runs(jack_server: object) -> None:
    assert resolve_api("auto") == api_ids()["jack"]


@pytest.mark.jack
def test_ports_command_lists_and_fails_in_one_line(jack_server) -> None:  # type: ignore[no-untyped-def]
    api = resolve_api("jack")
    source = open_port("output", api, None, virtual=True, client_name="listed-kbd")
    try:
        time.sleep(0.05)
        done = subprocess.run(
            [sys.executable, "-m", "live_agent.cli", "ports", "--api", "jack"],
            capture_output=True,
            text=True,
            env=jack_server.env,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        assert f"listed-kbd:{VIRTUAL_OUTPUT_NAME}" in done.stdout
        assert "Inputs (use with --input):" in done.stdout
    finally:
        source.close()
    env = {**jack_server.env, "JACK_DEFAULT_SERVER": "deepjam-no-such-server"}
    done = subprocess.run(
        [sys.executable, "-m", "live_agent.cli", "ports", "--api", "jack"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("deepjam ports")]
    assert len(errors) == 1 and "start a JACK server" in errors[0]
