"""Styles by program change: program change N on the control channel switches a running Session
to the model in slot N of the controls file.

Real ONNX models in every slot (the shipped ones from the packaged controls file, plus a random
one with a name of its own), a real ``ModelSlots`` loader thread, and the ``ChargingClock``: fake
time that moves by the scheduler thread's own CPU time, so any cost a switch puts on that thread
shows up as a late step. Fake time stands still while a model loads on its own thread (the
handler waits for the load, which costs the scheduler thread no CPU), as if the load were quick.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from exports.errors import ConfigError
from exports.midi import PROGRAM_CHANGE
from exports.model_file import PolicyModel, load_model
from live_agent.controls import ModelSlots, load_controls, packaged_models_dir
from live_agent.engine import Session
from live_agent.options import JamOptions
from tests.fakes import MS, ChargingClock, RecordingNoteSink, inbox_of, make_onnx_model

STEP_NS = 125 * MS  # a 16th at 120 bpm
STEPS_PER_STYLE = 24
RANDOM_SLOT = 9
MISSING_SLOT = 8
EMPTY_SLOT = 5


class CountingPolicy:
    """A loaded model that counts its decisions (the session calls only ``spec``/``q_values``)."""

    def __init__(self, model: PolicyModel) -> None:
        self.model = model
        self.metadata = model.metadata
        self.calls = 0

    @property
    def spec(self):  # type: ignore[no-untyped-def]
        return self.model.spec

    def q_values(self, states: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.model.q_values(states)


def program_change(step: int, program: int, channel: int = 0) -> tuple[int, tuple[int, int]]:
    return (step * STEP_NS + STEP_NS // 2, (PROGRAM_CHANGE | channel, program))


def test_program_change_switches_a_running_session_between_slots_with_no_late_step(
    tmp_path: Path,
) -> None:
    controls = load_controls()  # the packaged file: its slots are the shipped styles
    shipped = dict(controls.model_slots)
    assert 0 in shipped and all(p.is_file() for p in shipped.values()), shipped
    random_path = make_onnx_model(tmp_path / "random.onnx", hidden=(64,), seed=5)
    controls.model_slots[RANDOM_SLOT] = random_path
    controls.model_slots[MISSING_SLOT] = tmp_path / "not-there.onnx"
    order = [RANDOM_SLOT, *sorted(shipped), EMPTY_SLOT, MISSING_SLOT, RANDOM_SLOT]
    events = [program_change((i + 1) * STEPS_PER_STYLE, p) for i, p in enumerate(order)]
    # Another channel's program change is not for us (the control channel is the player's).
    events.insert(1, program_change(STEPS_PER_STYLE + 3, 0, channel=5))
    steps = (len(order) + 1) * STEPS_PER_STYLE + 4

    first = CountingPolicy(load_model(shipped[0]))
    clock = ChargingClock()
    session = Session(
        first,  # type: ignore[arg-type]
        JamOptions(mode="duet", temperature=0.5, seed=1, duet_wait_notes=0, bpm=120.0),
        RecordingNoteSink(clock),
        clock,
        inbox_of(events, close=False),
        controls=controls,
    )
    session.warm_up()
    loaded: list[CountingPolicy] = []
    errors: list[str] = []
    infos: list[str] = []

    def load(path: Path) -> CountingPolicy:
        policy = CountingPolicy(load_model(path))
        loaded.append(policy)
        return policy

    slots = ModelSlots(controls.model_slots, load, session.swap_policy, errors.append, infos.append)

    def handler(program: int) -> None:
        slots.program_change(program)
        assert slots.join(10.0), "a slot's model did not load in time"

    session.program_handler = handler
    stats = session.run(threading.Event(), until_step=steps)
    slots.close()

    assert stats.steps == steps
    assert stats.late_steps == 0, stats.summary()
    assert stats.ignored["program_change"] == 1  # the one on channel 6
    switched = [RANDOM_SLOT, *sorted(shipped), RANDOM_SLOT]
    assert stats.model_swaps == len(switched) == slots.switches
    names = [p.metadata.style_name for p in loaded]
    assert names == [load_model(controls.model_slots[s]).metadata.style_name for s in switched]
    assert all(p.calls > 0 for p in loaded), [p.calls for p in loaded]  # each one played
    assert session.decider.policy is loaded[-1]
    assert [line.split(":")[0] for line in infos] == [f"program change {s}" for s in switched]
    # The empty slot and the missing file: one line each, and the style before them played on.
    assert len(errors) == 2, errors
    assert errors[0].startswith(f"program change {EMPTY_SLOT}: no style in slot {EMPTY_SLOT}")
    assert errors[0].endswith("keeping the current style")
    assert (
        errors[1].startswith(f"program change {MISSING_SLOT}: ") and "not-there.onnx" in errors[1]
    )
    assert errors[1].endswith("keeping the current style") and "\n" not in "".join(errors)
    before_errors = loaded[len(shipped)]  # the last shipped style
    assert before_errors.calls >= 3 * STEPS_PER_STYLE - 2  # its turn, then the two failed ones


def test_packaged_slots_are_the_shipped_models_and_resolve_from_a_copied_file(
    tmp_path: Path,
) -> None:
    packaged = load_controls()
    assert packaged.model_slots[0].parent == packaged_models_dir()
    copy = tmp_path / "my_controls.toml"
    text = (packaged_models_dir().parent / "controls.toml").read_text()
    copy.write_text(text + f'{RANDOM_SLOT} = "mine.onnx"\n')
    (tmp_path / "mine.onnx").write_bytes(b"")
    copied = load_controls(copy)
    # Shipped names are found among the shipped models; a file beside the copy wins.
    assert copied.model_slots[0] == packaged.model_slots[0]
    assert copied.model_slots[RANDOM_SLOT] == tmp_path / "mine.onnx"
    copy.write_text('[models]\n200 = "x.onnx"\n')
    with pytest.raises(ConfigError, match=r"\[models\] entries must be 0..127"):
        load_controls(copy)


@pytest.mark.parametrize("slot", sorted(load_controls().model_slots))
def test_inspect_of_each_shipped_style_shows_its_own_name(
    slot: int, capsys: pytest.CaptureFixture[str]
) -> None:
    from live_agent.cli import main

    path = load_controls().model_slots[slot]
    assert main(["inspect", str(path), "--calls", "0"]) == 0
    style = next(line for line in capsys.readouterr().out.splitlines() if "style " in line)
    # The file's own name: default.onnx says "default", chorale.onnx "chorale", ...
    assert style.split()[1] == f"{path.stem}:", style
    assert (path.parent / f"{path.stem}.md").is_file()  # and it has a model card
