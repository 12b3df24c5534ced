"""``deepjam jam --virtual`` prints its ports' exact JACK names and jack_connect lines that work."""

from __future__ import annotations

import shlex
import subprocess
import time

import pytest

from live_agent.io.ports import open_port, resolve_api
from tests.support.jack_probe import run_jam

pytestmark = pytest.mark.jack


def test_printed_jack_connect_lines_connect(jack_server: object, scale_model_path: object) -> None:
    api = resolve_api("jack")
    keyboard = open_port("output", api, None, virtual=True, client_name="kbd-sim")
    try:
        with run_jam(["--virtual", "--api", "jack", "--model", str(scale_model_path)]) as jam:
            deadline = time.monotonic() + 10
            while not any("Ctrl-C" in line for line in jam.lines) and time.monotonic() < deadline:
                time.sleep(0.05)
            text = jam.stderr_text()
            assert "listening on 'deepjam-in:deepjam in': connect your keyboard" in text, text
            assert "playing on 'deepjam-out:deepjam out'" in text, text
            commands = [
                line.split("deepjam jam:", 1)[1].strip()
                for line in jam.lines
                if "jack_connect" in line
            ]
            assert commands[0] == 'jack_connect "kbd-sim:deepjam out" "deepjam-in:deepjam in"'
            result = subprocess.run(shlex.split(commands[0]), capture_output=True, timeout=10)
            assert result.returncode == 0, result.stderr
            connections = subprocess.run(
                ["jack_lsp", "-c", "kbd-sim:deepjam out"], capture_output=True, text=True
            ).stdout
            assert "deepjam-in:deepjam in" in connections
    finally:
        keyboard.close()
