"""A scheduler thread that crashes makes ``deepjam jam`` exit non-zero, with every note ended.

The fault: the policy raises in the middle of the jam (onnxruntime failing on a state, say).
It is the one mocked part: the model is the real tiny ONNX scale model, wrapped so that its
``q_values`` raises once the agent has played; ports, JACK, the scheduler thread, the shutdown
path and the exit code are the real ones (``deepjam jam`` run in this process, as the
console script runs it).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import exports.model_file
from live_agent.cli import main
from tests.support.jack_probe import ALL_NOTES_OFF, CONTROL_CHANGE, NOTE_OFF, NOTE_ON, jack_recorder

pytestmark = pytest.mark.jack


class PolicyThatFails:
    """The real loaded model until ``fail`` is set; then its next ``q_values`` raises."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.fail = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def q_values(self, states: np.ndarray) -> np.ndarray:
        if self.fail.is_set():
            raise RuntimeError("the network failed on this state")
        return self.model.q_values(states)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the crash
def test_a_crashed_scheduler_exits_1_with_every_note_ended(
    jack_server: object,
    scale_model_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_load = exports.model_file.load_model
    policies: list[PolicyThatFails] = []

    def load_model(path: Path) -> PolicyThatFails:
        policies.append(PolicyThatFails(real_load(path)))
        return policies[-1]

    monkeypatch.setattr(exports.model_file, "load_model", load_model)
    with jack_recorder("crash-synth") as synth:

        def listen_then_break() -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # deepjam's output appears: patch it
                outs = [
                    p.name
                    for p in synth.client.get_ports(is_midi=True, is_output=True)
                    if p.name.startswith("deepjam") and p.name.endswith(":deepjam out")
                ]
                if outs:
                    synth.connect_from(outs[0])
                    break
                time.sleep(0.02)
            while time.monotonic() < deadline and len(synth.note_ons()) < 3:
                time.sleep(0.01)
            policies[0].fail.set()  # the network fails on the next decision

        breaker = threading.Thread(target=listen_then_break, daemon=True)
        breaker.start()
        code = main(
            [
                "jam",
                *("--model", str(scale_model_path), "--virtual", "--api", "jack"),
                *("--mode", "duet", "--duet-wait-notes", "0", "--temperature", "0"),
                *("--view", "plain", "--no-watchdog"),
            ]
        )
        breaker.join(5)
        time.sleep(0.1)  # the last messages reach the recorder
        events = [e.data for e in synth.events]
    err = capsys.readouterr().err
    assert code == 1, err
    assert "the scheduler failed: RuntimeError: the network failed on this state" in err
    note_ons = [e for e in events if e[0] & 0xF0 == NOTE_ON and e[2] > 0]
    assert len(note_ons) >= 3, events
    sounding: set[tuple[int, int]] = set()
    for e in events:
        if e[0] & 0xF0 == NOTE_ON and e[2] > 0:
            sounding.add((e[0] & 0x0F, e[1]))
        elif e[0] & 0xF0 == NOTE_OFF or (e[0] & 0xF0 == NOTE_ON and e[2] == 0):
            sounding.discard((e[0] & 0x0F, e[1]))
    assert not sounding, f"notes left sounding: {sounding}"
    assert bytes([CONTROL_CHANGE, ALL_NOTES_OFF, 0]) in events  # and the channel is silenced
