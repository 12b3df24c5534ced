"""A hot swap never makes a step late: the new model is made ready off the scheduler thread.

The clock is ``ChargingClock``: fake time that also moves by the scheduler thread's own CPU time,
so whatever a swap costs on that thread shows up as a late step, as it would on a real clock.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from exports.model_file import load_model
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from tests.fakes import ChargingClock, RecordingNoteSink, inbox_of, make_onnx_model

SWAP_AT_CALL = 40
STEPS = 120


class GatedPolicy:
    """A real model that, at inference ``at_call``, lets the test hand over a new model and
    waits (free on the charging clock) until it has."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.at_call = -1  # armed by the test
        self.calls = 0
        self.reached = threading.Event()
        self.swapped = threading.Event()

    @property
    def spec(self):  # type: ignore[no-untyped-def]
        return self.inner.spec  # type: ignore[attr-defined]

    def q_values(self, states: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == self.at_call:
            self.reached.set()
            assert self.swapped.wait(10.0), "the test did not hand over the new model"
        return self.inner.q_values(states)  # type: ignore[attr-defined,no-any-return]


def test_a_hot_swap_between_real_models_makes_no_step_late(
    onnx_model: Path, tmp_path: Path
) -> None:
    first = GatedPolicy(load_model(onnx_model))
    other_path = make_onnx_model(tmp_path / "other.onnx", hidden=(64, 64), seed=3)
    clock = ChargingClock()
    session = Session(
        first,  # type: ignore[arg-type]
        JamOptions(mode="duet", temperature=0.5, seed=1, duet_wait_notes=0),
        RecordingNoteSink(clock),
        clock,
        inbox_of([], close=False),
        controls=ControlMap(),
    )
    session.warm_up()  # sizes the decision margin from real decisions, as `deepjam jam` does
    first.at_call = first.calls + SWAP_AT_CALL  # the warm-up's inferences do not count

    def hand_over() -> None:
        first.reached.wait(10.0)
        session.swap_policy(load_model(other_path))  # loaded and made ready on this thread
        first.swapped.set()

    loader = threading.Thread(target=hand_over)
    loader.start()
    stats = session.run(threading.Event(), until_step=STEPS)
    loader.join(5.0)
    assert stats.model_swaps == 1
    assert stats.steps == STEPS
    # The decision that adopts the new model is as cheap as the others: nothing is late.
    assert stats.late_steps == 0, stats.summary()
