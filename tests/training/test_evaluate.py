"""Evaluation: divergences, histograms, answers in key, figures, and `deepjam eval` end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exports.spec import HOLD_EVENT as H
from exports.spec import REST_EVENT as R
from training.evaluate import (
    N_INTERVAL_BINS,
    in_key_fraction,
    interval_histogram,
    js_divergence_bits,
    pitch_class_histogram,
    style_fidelity,
    transposed_calls,
)
from training.plots import (
    curves_from_metrics,
    plot_piano_rolls,
    plot_training_curves,
    read_tensorboard_scalars,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_js_divergence_is_zero_for_identical_histograms():
    h = np.array([3.0, 1.0, 0.0, 6.0])
    assert js_divergence_bits(h, h) == 0.0
    assert js_divergence_bits(h, 2 * h) == pytest.approx(0.0, abs=1e-12)  # normalized first


def test_js_divergence_is_positive_and_bounded():
    assert 0.0 < js_divergence_bits(np.array([1.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0])) < 1.0
    # Disjoint supports: exactly 1 bit.
    assert js_divergence_bits(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert math.isnan(js_divergence_bits(np.zeros(3), np.ones(3)))
    with pytest.raises(ValueError, match="same shape"):
        js_divergence_bits(np.ones(3), np.ones(4))


def test_interval_histogram_skips_holds_and_rests_and_clips():
    melody = np.array([60, H, 62, R, H, 59, 79, 40])  # +2, -3, +20 (clipped), -39 (clipped)
    hist = interval_histogram([melody])
    assert hist.shape == (N_INTERVAL_BINS,)
    assert hist.sum() == 4
    assert hist[2 + 13] == 1 and hist[-3 + 13] == 1
    assert hist[0] == 1 and hist[-1] == 1


def test_pitch_class_histogram_relative_to_each_tune_tonic():
    # An E-flat major arpeggio (tonic 3) is C-E-G in the key-relative frame.
    hist = pitch_class_histogram([np.array([63, H, 67, 70, R])], tonics=[3])
    assert hist.tolist() == [1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0]


def test_style_fidelity_zero_against_itself():
    tunes = [np.array([60, 62, 64, 65, 67, H, R, 72]), np.array([67, 65, 64, 62, 60])]
    same = style_fidelity(tunes, tunes)
    assert same.interval_js_bits == 0.0 and same.pitch_class_js_bits == 0.0
    other = style_fidelity([np.array([61, 66, 61, 66])], tunes)
    assert other.interval_js_bits > 0.5 and other.pitch_class_js_bits > 0.5


def test_in_key_fraction_uses_each_calls_key():
    answers = np.array([[62, 64, 66, H], [62, 64, 66, R]])  # D E F#
    # In D major all three are in key; in C major F# is not.
    in_key, total = in_key_fraction(answers, np.array([2, 0]), np.array([False, False]))
    assert (in_key, total) == (5, 6)


def test_transposed_calls_move_by_at_most_a_tritone():
    calls = [np.array([60, H, 64, R])]
    moved, tonics = transposed_calls(calls, np.array([0]), 7)  # to G: down a fourth
    assert moved[0].tolist() == [55, H, 59, R]
    assert tonics.tolist() == [7]


def test_training_curves_from_a_real_tensorboard_run(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path / "run"))
    for step in range(30):
        writer.add_scalar("reward/mean", 0.1 * step, step * 256)
        writer.add_scalar("loss/td", 1.0 / (step + 1), step * 256)
    writer.close()
    curves = read_tensorboard_scalars(tmp_path / "run")
    assert set(curves) == {"reward/mean", "loss/td"}
    steps, values = curves["reward/mean"]
    assert steps[-1] == 29 * 256 and values[-1] == pytest.approx(2.9)
    png = plot_training_curves(curves, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_curves_from_checkpoint_metrics():
    curves = curves_from_metrics({"history": {"reward": [[0, 1.0], [10, 2.0]]}, "log_lik": -1.2})
    assert list(curves) == ["reward"]
    assert curves["reward"][0].tolist() == [0, 10]


def test_piano_rolls_write_a_png(tmp_path):
    pairs = [(np.array([60, H, 62, R] * 8), np.array([64, H, H, 67] * 8))]
    png = plot_piano_rolls(pairs, tmp_path / "rolls.png", titles=["call in C"])
    assert png.read_bytes()[:8] == PNG_MAGIC
