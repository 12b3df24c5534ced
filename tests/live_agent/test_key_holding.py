"""The key an answer is played in: judged over the whole call (an A-minor call ending on a held E
is answered in A minor by the shipped model, through ``deepjam answer``), or fixed by ``--key``
and by the web panel's key selector."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import mido
import pytest
from rich.console import Console

from exports.grid import events_from_notes
from exports.midi_files import write_melodies
from exports.spec import DEFAULT_SPEC
from exports.tonality import scale_mask
from live_agent.cli import main
from live_agent.cli.answer_command import answer_call
from live_agent.options import JamOptions
from live_agent.view.snapshot import take_snapshot
from live_agent.view.terminal import render
from live_agent.view.web import WebPanel
from tests.fakes import ScriptedPolicy
from tests.support.panel import post_control

A, C_SHARP, D_SHARP = 9, 1, 3
# A B C D E D C B A, then the 5th held a bar: the call a decaying histogram heard in E major.
A_MINOR_CALL_ENDING_ON_E = [57, 59, 60, 62, 64, 62, 60, 59]
A_MINOR_NOTES = [(2 * i, 2, p) for i, p in enumerate(A_MINOR_CALL_ENDING_ON_E)]
A_MINOR_NOTES += [(16, 4, 57), (20, 16, 64)]


def _answer_pitches(path: Path) -> list[int]:
    """The pitches of the answer track's note-ons."""
    return [
        m.note for m in mido.MidiFile(str(path)).tracks[2] if m.type == "note_on" and m.velocity
    ]


@pytest.fixture
def a_minor_call(tmp_path: Path) -> Path:
    path = tmp_path / "a-minor.mid"
    write_melodies(path, [("call", events_from_notes(A_MINOR_NOTES, 40))], bpm=100)
    return path


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_an_a_minor_call_ending_on_a_held_e_is_answered_in_a_minor(
    seed: int, a_minor_call: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped default model at the live defaults (temperature 0.5), through `deepjam
    answer`: the frame is A minor, and the answer's notes are A minor's: natural minor, the
    raised 7th (G#) and 6th (F#) allowed, never E major's C# or D#."""
    out = tmp_path / "answer.mid"
    assert main(["answer", str(a_minor_call), "-o", str(out), "--seed", str(seed)]) == 0
    assert "; key A minor;" in capsys.readouterr().out
    pitches = _answer_pitches(out)
    assert len(pitches) >= 3
    classes = [(p - A) % 12 for p in pitches]
    assert all(scale_mask(True)[c] for c in classes), pitches
    assert all(p % 12 not in (C_SHARP, D_SHARP) for p in pitches), pitches


def _tonic_answer(key: str) -> tuple[list[int], JamOptions]:
    """The A-minor call answered by a model that always plays its key's tonic (key-relative
    C4): the answer's pitches show the frame's tonic."""
    policy = ScriptedPolicy([DEFAULT_SPEC.action_for_pitch(60)])
    options = JamOptions(key=key, temperature=0.0, seed=0, answer_bars=1, clock="internal")
    answered = answer_call(policy, options, A_MINOR_NOTES)
    return [p for _, _, p in answered.answer], options


def test_key_fixes_the_frame_and_auto_judges_the_call() -> None:
    auto, _ = _tonic_answer("auto")
    assert auto and set(auto) == {57}, "A (the frame's tonic, within a tritone of C4)"
    fixed, options = _tonic_answer("Eb")
    assert options.fixed_key == (3, False)
    assert fixed and set(fixed) == {63}, "E-flat, whatever the call says"
    policy = ScriptedPolicy([DEFAULT_SPEC.action_for_pitch(60)])
    answered = answer_call(policy, JamOptions(key="F# minor", clock="internal"), A_MINOR_NOTES)
    assert answered.session.decider.played_key == (6, True)
    minor_feature = policy.states[-1].reshape(-1)[
        2 * DEFAULT_SPEC.window_steps * DEFAULT_SPEC.features_per_part_step
        + DEFAULT_SPEC.steps_per_bar
    ]
    assert minor_feature == 1.0, "the state says minor, as the fixed key is"


def test_answer_key_flag_is_read_and_a_bad_one_is_one_line(
    a_minor_call: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "answer.mid"
    argv = ["answer", str(a_minor_call), "-o", str(out), "--seed", "0"]
    assert main(argv + ["--key", "Bbm"]) == 0
    assert "; key Bb minor (fixed by --key);" in capsys.readouterr().out
    assert _answer_pitches(out), "the frame is fixed; the notes are the model's to choose"
    out.unlink()
    assert main(argv + ["--key", "H major"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'A minor', 'Am', 'Eb'" in err and "H major" in err
    assert not out.exists()


def test_the_panels_key_selector_fixes_the_key_and_the_views_show_it() -> None:
    policy = ScriptedPolicy([DEFAULT_SPEC.action_for_pitch(60)])
    options = JamOptions(temperature=0.0, seed=0, answer_bars=1, clock="internal")
    answered = answer_call(policy, options, A_MINOR_NOTES)
    session = answered.session
    panel = WebPanel(session, lambda: take_snapshot(session, [], "default"), port=0)
    url = panel.start()

    def post(value: object) -> tuple[int, dict[str, object]]:
        return post_control(url, "key", value)

    try:
        snapshot = json.loads(urllib.request.urlopen(url + "snapshot", timeout=5).read())
        assert snapshot["key"] == "auto" and len(snapshot["keys"]) == 25
        assert "D major" in snapshot["keys"] and "Ab minor" in snapshot["keys"]
        status, page = 200, urllib.request.urlopen(url, timeout=5).read()
        assert status == 200 and b'id="key-select"' in page
        assert post("D major") == (200, {"name": "key", "value": "D major"})
        assert session.decider.fixed_key == (2, False)
        panel._cached = None
        snapshot = json.loads(urllib.request.urlopen(url + "snapshot", timeout=5).read())
        assert snapshot["key"] == "D major"
        rows = {r["label"]: "".join(s["text"] for s in r["segments"]) for r in snapshot["rows"]}
        assert rows["key"].startswith("D major (fixed); heard A minor"), rows
        status, reply = post("Q minor")
        assert status == 400 and "'A minor', 'Am', 'Eb'" in str(reply["error"])
        assert post(7)[0] == 400
        assert session.decider.fixed_key == (2, False), "a refused key changes nothing"
    finally:
        panel.stop()
    console = Console(record=True, width=100, color_system=None)
    console.print(render(take_snapshot(session, [], "default")))
    assert "D major (fixed); heard A minor" in console.export_text()


def test_a_key_fixed_mid_turn_moves_the_frame_at_the_next_turn_only() -> None:
    policy = ScriptedPolicy([DEFAULT_SPEC.action_for_pitch(60)])
    decider = answer_call(policy, JamOptions(clock="internal"), A_MINOR_NOTES).session.decider
    assert (decider.frame_tonic, decider.frame_minor) == (0, False), "nothing heard: C major"
    decider.fix_key((3, True))
    decider.update_key(move_frame=False)  # inside a turn
    assert (decider.frame_tonic, decider.frame_minor) == (0, False)
    decider.update_key(move_frame=True)  # where a turn may start
    assert (decider.frame_tonic, decider.frame_minor, decider.frame_tonic_semitones) == (3, True, 3)
    decider.fix_key(None)
    decider.update_key(move_frame=True)
    assert (decider.frame_tonic, decider.frame_minor) == (0, False), "auto again"
