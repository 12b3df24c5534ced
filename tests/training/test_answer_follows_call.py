"""Listening: the figures ``deepjam eval`` reports, and the shipped model follows the call."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exports.model_file import load_model
from training.env.environment import answer_calls
from training.eval.listening import _line, motif_share, phrase_features, probe, spearman

SHIPPED = Path(__file__).resolve().parents[2] / "live_agent" / "models" / "default.onnx"
LINES = [  # C major lines of 8 notes (the probe's shape): steps, arpeggios, turns
    [60, 62, 64, 65, 67, 65, 64, 62],
    [67, 64, 60, 64, 67, 72, 67, 64],
    [72, 71, 69, 67, 65, 64, 62, 60],
    [64, 65, 67, 64, 62, 60, 62, 64],
    [60, 64, 62, 65, 64, 67, 65, 69],
    [67, 69, 71, 72, 71, 69, 67, 65],
]


def test_phrase_features_and_spearman() -> None:
    f = phrase_features(_line([60, 62, 64, 65], 2), 16)
    assert f["mean_ioi"] == 2.0 and f["mean_pitch"] == 62.75 and f["sixteenth_share"] == 0.0
    assert f["density"] == 4 / 0.5  # four notes in half a bar
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert np.isnan(spearman([1, 2], [1, 2]))


def test_motif_share_counts_the_calls_three_note_shapes() -> None:
    call = _line([60, 62, 64, 65], 2)
    assert motif_share(call, _line([67, 69, 71, 72], 2)) == 1.0  # the same shape, transposed
    assert motif_share(call, _line([60, 67, 60, 67], 4)) == 0.0


def test_probe_of_a_policy_that_echoes_the_call_moves_with_it() -> None:
    def echo(calls: list[np.ndarray]) -> np.ndarray:
        width = max(len(c) for c in calls)
        out = np.full((len(calls), width), -1)
        for i, c in enumerate(calls):
            out[i, : len(c)] = c
        return out

    from exports.spec import DEFAULT_SPEC

    p = probe(DEFAULT_SPEC, echo, LINES)
    assert p.slower_share == p.ratio_share == 1.0 and p.higher_share == p.octave_share == 1.0


def test_shipped_model_answers_a_quarter_note_call_slower_than_the_same_line_in_16ths() -> None:
    model = load_model(SHIPPED)
    spec = model.spec

    def mean_iois(ioi_steps: int) -> np.ndarray:
        calls = [_line(p, ioi_steps) for p in LINES for _ in range(4)]  # 4 samples per line
        answers = answer_calls(
            spec, calls, model.q_values, 0.5, np.random.default_rng(0), answer_bars=2
        )
        return np.array([phrase_features(a, 16)["mean_ioi"] for a in answers.events])

    fast, slow = np.nanmedian(mean_iois(1)), np.nanmedian(mean_iois(4))
    # Margin: the answer to quarters moves at least 1.5x as slowly as the answer to 16ths.
    assert slow >= 1.5 * fast, (fast, slow)
