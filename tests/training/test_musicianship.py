"""What a musician hears: degenerate patterns, trills and runs, the classifier, and evaluation
answering exactly as `deepjam answer` does (real shipped model, real onnxruntime)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exports.spec import HOLD_EVENT as H
from exports.spec import REST_EVENT as R
from training.eval.musicianship import (
    auc,
    classifier_auc,
    longest_oscillation,
    longest_same_pitch_run,
    longest_stepwise_run,
    phrase_figures,
    style_check_line,
    top_pitch_share,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "live_agent" / "models" / "default.onnx"


def _eighths(pitches: list[int]) -> np.ndarray:
    events = np.full(2 * len(pitches), H, np.int64)
    events[::2] = pitches
    return events


def test_pattern_detectors_on_known_melodies() -> None:
    trill = _eighths([65, 67, 65, 67, 65, 67, 60])  # F G F G F G: six notes
    assert longest_oscillation(trill) == 6
    assert longest_oscillation(_eighths([65, 67, 65, 67, 65])) == 5
    assert longest_oscillation(_eighths([60, 62, 64, 65])) == 0
    assert longest_same_pitch_run(np.array([67, H, 67, R, 67, 67, 60, 67])) == 4
    assert longest_stepwise_run(_eighths([60, 62, 64, 65, 67, 69, 71, 60])) == 7
    # Steps that turn back are not one run (a wave is two).
    assert longest_stepwise_run(_eighths([60, 62, 64, 62, 60])) == 3
    assert top_pitch_share(_eighths([60, 60, 60, 62])) == 0.75


def test_a_style_that_only_repeats_one_note_is_degenerate_and_a_trill_is_counted() -> None:
    one_note = [_eighths([67] * 8) for _ in range(20)]
    figures = phrase_figures(one_note)
    assert figures.median_same_pitch_run == 8 and figures.repeat_share == 1.0
    reasons = figures.degenerate()
    assert any("repeats one note" in r for r in reasons), reasons
    trills = [_eighths([63, 65] * 4)] * 3 + [_eighths([60, 64, 67, 72, 71, 67, 64, 60])] * 17
    figures = phrase_figures(trills)
    assert figures.oscillation_share == pytest.approx(3 / 20)
    assert any("trills" in r for r in figures.degenerate())
    tune = [_eighths([60, 64, 67, 65, 64, 62, 60, 67]), _eighths([67, 69, 71, 72, 67, 64, 62, 60])]
    assert phrase_figures(tune).degenerate() == []


def test_train_and_export_print_the_rules_warning_or_the_figures_it_judged() -> None:
    one_note = phrase_figures([_eighths([67] * 8) for _ in range(20)])
    line, degenerate = style_check_line(one_note, "this style")
    assert degenerate
    assert line.startswith("warning: this style is degenerate: it repeats one note: the median")
    tune = [_eighths([60, 64, 67, 65, 64, 62, 60, 67]), _eighths([67, 69, 71, 72, 67, 64, 62, 60])]
    line, degenerate = style_check_line(phrase_figures(tune), "this style")
    assert not degenerate
    assert line == (
        "this style: no degenerate pattern in 2 answers to held-out calls played as live plays "
        "them (longest same-pitch run: median 1, longest 1; 0% of answers trill; the most "
        "frequent pitch: 25% of the median answer's notes)"
    )


def test_a_one_note_policy_is_reported_degenerate_by_the_evaluation(tmp_path: Path) -> None:
    from exports.spec import DEFAULT_SPEC
    from training.data.corpus_data import Corpus
    from training.eval.evaluate import CONTINUATION_ROW, evaluate_policies, format_markdown

    rng = np.random.default_rng(3)  # twelve 4-bar tunes in 8ths, on C major scales
    tonics = rng.integers(12, size=12)
    tunes = [_eighths(list(60 + t + rng.choice([0, 2, 4, 5, 7, 9, 11, 12], 32))) for t in tonics]
    corpus = Corpus(
        name="tiny",
        events=np.concatenate(tunes).astype(np.int16),
        offsets=np.arange(0, 64 * 13, 64, dtype=np.int64),
        titles=[f"tune {i}" for i in range(12)],
        tonic=tonics.astype(np.int64),
        minor=np.zeros(12, dtype=bool),
        validation=np.arange(12) % 3 == 0,
        source="test",
    )

    class OneNote:
        spec = DEFAULT_SPEC

        def q_values(self, states: np.ndarray) -> np.ndarray:
            q = np.full((len(states), DEFAULT_SPEC.n_actions), -1e9, dtype=np.float32)
            q[:, DEFAULT_SPEC.action_for_pitch(60)] = 0.0
            return q

    result = evaluate_policies(
        DEFAULT_SPEC, {"one note": OneNote()}, corpus, n_compositions=20, key_calls=2, keys=[0]
    )
    assert result.degenerate("one note"), result.musicianship["one note"]
    assert result.musicianship[CONTINUATION_ROW].degenerate() == []
    assert result.figures("one note")["musicianship.degenerate"] == 1.0
    # Every answer is one pitch struck on every step: the classifier tells them apart.
    assert result.figures("one note")["classifier_auc"] > 0.9
    assert "**one note is degenerate**" in format_markdown(result)


def test_the_classifier_cannot_tell_a_set_from_itself_and_tells_trills_apart() -> None:
    rng = np.random.default_rng(0)
    scale = np.array([60, 62, 64, 65, 67, 69, 71, 72])

    def tune() -> np.ndarray:
        return _eighths(list(rng.choice(scale, size=16)))

    a, b = [tune() for _ in range(200)], [tune() for _ in range(200)]
    zeros = [0] * 200
    assert abs(classifier_auc(a, zeros, b, zeros) - 0.5) < 0.1
    trills = [_eighths([int(p), int(p) + 2] * 8) for p in rng.choice(scale, size=200)]
    assert classifier_auc(trills, zeros, b, zeros) > 0.95
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75


def _answer_notes(path: Path) -> list[tuple[int, int]]:
    """(onset step, pitch) of the notes on the 'answer' track of a `deepjam answer` file."""
    import mido

    midi = mido.MidiFile(str(path))
    step_ticks = midi.ticks_per_beat // 4
    track = next(t for t in midi.tracks if t.name == "answer")
    notes, now = [], 0
    for message in track:
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            notes.append((round(now / step_ticks), message.note))
    return notes


HELD_CLOSE = [67, 69, 71, 72, 74, 72, 71, 69, 67, 66, 64, 66]
"""A G-major call in 8ths that ends on a held tonic: answered on the next bar line."""
RUNNING_ON = [67, 69, 71, 72, 74, 72, 71, 69, 67, 66, 64, 66, 67, 69, 71, 74]
"""The same in 8ths to the end, no close: answered a bar later."""


@pytest.mark.parametrize(("seed", "line", "start"), [(3, HELD_CLOSE, 32), (11, RUNNING_ON, 48)])
def test_eval_answers_a_call_exactly_as_deepjam_answer_does(
    tmp_path: Path, seed: int, line: list[int], start: int
) -> None:
    """The same call, the same seed: evaluation's answer (answer_as_live) and `deepjam answer`'s
    (the live session on a fast clock) are the same notes on the same steps. Both read the
    shipped model with onnxruntime; both use live's default temperature and start."""
    from exports.midi_files import read_melody, write_melodies
    from exports.model_file import load_model
    from exports.selection import DEFAULT_TEMPERATURE
    from live_agent.cli import main
    from training.eval.evaluate import answer_as_live

    call = _eighths(line)
    if len(call) < 32:
        call = np.concatenate([call, np.array([67, H, H, H, H, H, H, R])])
    assert len(call) == 32
    call_path = tmp_path / "call.mid"
    write_melodies(call_path, [("call", call)], bpm=120.0)
    out = tmp_path / "answer.mid"
    assert main(["answer", str(call_path), "-o", str(out), "--seed", str(seed)]) == 0
    live = _answer_notes(out)

    policy = load_model(SHIPPED)
    events = read_melody(call_path)
    answers = answer_as_live(
        policy.spec, [events], policy.q_values, DEFAULT_TEMPERATURE, np.random.default_rng(seed)
    )
    assert int(answers.start_steps[0]) == start
    answer = answers.events[0]
    offline = [(start + int(t), int(answer[t])) for t in np.flatnonzero(answer >= 0)]
    assert len(offline) >= 3
    assert offline == live
