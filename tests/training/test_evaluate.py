"""Evaluation: divergences, histograms, answers in key, figures, and `deepjam eval` end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exports.spec import HOLD_EVENT as H
from exports.spec import REST_EVENT as R
from training.eval.evaluate import (
    N_INTERVAL_BINS,
    in_key_fraction,
    interval_histogram,
    js_divergence_bits,
    pitch_class_histogram,
    style_fidelity,
)
from training.eval.plots import (
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


def test_call_key_is_what_the_call_sounds_like():
    from training.eval.evaluate import call_key

    # A G-major arpeggio with a long G: a listener hears G major, whatever the tune's key.
    assert call_key(np.array([67, H, H, H, 71, H, 74, H, 67, H, H, H, 62, H, 67, R])) == (7, False)
    # A minor: A C E with a long A.
    assert call_key(np.array([57, H, H, H, 60, H, 64, H, 57, H, H, H, 59, 60, 57, R])) == (9, True)
    assert call_key(np.array([R, H, H])) == (0, False)  # silence: C major


@pytest.mark.slow  # importing tensorboard's writer and reader takes a few seconds
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


# ------------------------------------------------------------------ deepjam eval end to end


def _tiny_corpus(path):
    """Twelve 4-bar tunes (scales and arpeggios in several keys), a third held out."""
    from training.data.corpus_data import Corpus

    rng = np.random.default_rng(3)
    tunes, tonics = [], []
    for _ in range(12):
        tonic = int(rng.integers(12))
        scale = [0, 2, 4, 5, 7, 9, 11, 12]
        pitches = [60 + tonic + scale[int(k)] for k in rng.integers(0, 8, size=32)]
        events = np.full(64, H, dtype=np.int16)
        events[::2] = pitches
        tunes.append(events)
        tonics.append(tonic)
    corpus = Corpus(
        name="tiny",
        events=np.concatenate(tunes),
        offsets=np.arange(0, 64 * 13, 64, dtype=np.int64),
        titles=[f"tune {i}" for i in range(12)],
        tonic=np.array(tonics, dtype=np.int64),
        minor=np.zeros(12, dtype=bool),
        validation=np.arange(12) % 3 == 0,
        source="test",
    )
    corpus.save(path)
    return path


def _tiny_checkpoint(path, with_history=True):
    import torch

    from exports.spec import DEFAULT_SPEC
    from training.checkpoint import save_checkpoint
    from training.networks import build_q_network, network_args_for

    torch.manual_seed(0)
    args = network_args_for(DEFAULT_SPEC, hidden=[16])
    style = build_q_network(args)
    save_checkpoint(
        path,
        q_network=build_q_network(args),
        network_args=args,
        spec=DEFAULT_SPEC,
        style_name="tiny",
        reward_weights={"w_style": 1.0, "w_theory": 1.0, "w_play": 1.0},
        corpus={"name": "tiny"},
        global_step=512,
        metrics={"history": {"reward": [[0, 0.1], [256, 0.3], [512, 0.2]]}} if with_history else {},
        style_model={"network_args": args, "state_dict": style.state_dict(), "metrics": {}},
    )
    return path


@pytest.mark.slow  # a tiny checkpoint and an evaluation run: seconds
def test_deepjam_eval_end_to_end_on_a_tiny_checkpoint(tmp_path, capsys):
    from live_agent.cli import main
    from training.eval.rl_tuner_metrics import TABLE1_ROWS

    corpus = _tiny_corpus(tmp_path / "tiny.npz")
    checkpoint = _tiny_checkpoint(tmp_path / "run" / "checkpoint.pt")
    out = tmp_path / "eval"
    argv = ["eval", str(checkpoint), "--corpus", str(corpus), "--out", str(out)]
    code = main(argv + ["--compositions", "24", "--key-calls", "6", "--seed", "1"])
    assert code == 0
    report = (out / "eval.md").read_text()
    for _, label, _ in TABLE1_ROWS:
        assert f"| {label} |" in report
    header = next(line for line in report.splitlines() if line.startswith("| Metric |"))
    assert "deepjam Q-network" in header and "deepjam style model" in header
    assert "RL Tuner Note RNN (paper)" in header and "RL Tuner Q (paper)" in header
    assert "| Notes excessively repeated |" in report and "63.3%" in report  # paper column
    fidelity = next(line for line in report.splitlines() if line.startswith("| deepjam Q-net"))
    assert "n/a" not in fidelity.split("|")[2]  # a real JS divergence was computed
    quality_rows = [r for r in report.splitlines() if r.startswith("| deepjam Q-network |")]
    assert len(quality_rows) == 4  # fidelity, listening probe, duet and per-key rows
    assert len(quality_rows[3].split("|")) == 2 + 12 + 2 + 1
    duet = quality_rows[2].split("|")  # shared onsets, dissonant share, ... (training/eval/duet.py)
    assert len(duet) == 2 + 7 + 1 and int(duet[2]) > 0 and duet[3].strip().endswith("%")
    assert "## Listening: does the answer follow the call?" in report
    assert "| mean inter-onset interval (rhythm) |" in report
    for png in ("training_curves.png", "piano_rolls.png", "listening.png"):
        assert (out / png).read_bytes()[:8] == PNG_MAGIC
    printed = capsys.readouterr().out
    assert "Notes in repeated motif" in printed


def test_a_policy_that_always_plays_middle_c(tmp_path):
    """A policy whose Q allows only middle C scores as computed by hand."""
    from exports.spec import DEFAULT_SPEC
    from training.data.corpus_data import Corpus
    from training.eval.evaluate import evaluate_policies

    corpus = Corpus.load(_tiny_corpus(tmp_path / "tiny.npz"))

    class MiddleC:
        def q_values(self, states):
            q = np.full((len(states), DEFAULT_SPEC.n_actions), -1e9, dtype=np.float32)
            q[:, DEFAULT_SPEC.action_for_pitch(60)] = 0.0
            return q

    # Answers on the bar line after the call (as trained): the figures below are counted for
    # 32-step answers that start there.
    result = evaluate_policies(
        DEFAULT_SPEC,
        {"middle C": MiddleC()},
        corpus,
        n_compositions=5,
        key_calls=2,
        answer_bars=2,
        answer_gap_steps=0,
    )
    row = result.table1["middle C"]
    # 32 onsets of 60: steps 5..31 repeat more than 4 times (27 of 32); every answer starts on
    # the tonic; a constant token sequence has no autocorrelation (nan, left out).
    assert row["notes_excessively_repeated"] == pytest.approx(27 / 32)
    assert row["starting_with_tonic"] == 1.0
    assert math.isnan(row["autocorrelation_lag1"])
    assert row["notes_in_motif"] == 0.0
    # Key-relative middle C is the tonic of every call's key, in all 12 keys.
    quality = result.answer_quality["middle C"]
    assert quality.minimum == 1.0 and len(quality.per_key) == 12
    # Table 1 scores the answers to calls heard as major only (the tiny corpus is all major).
    assert 0 < result.table1_counts["middle C"] <= 5


def test_evaluation_is_seeded(tmp_path):
    import torch

    from exports.spec import DEFAULT_SPEC
    from training.data.corpus_data import Corpus
    from training.eval.evaluate import TorchPolicy, evaluate_policies
    from training.networks import build_q_network, network_args_for

    torch.set_num_threads(1)  # with more, torch collapses whenever another process is busy
    corpus = Corpus.load(_tiny_corpus(tmp_path / "tiny.npz"))
    torch.manual_seed(0)
    policy = TorchPolicy(build_q_network(network_args_for(DEFAULT_SPEC, hidden=[16])), DEFAULT_SPEC)

    def run(seed):
        result = evaluate_policies(
            DEFAULT_SPEC, {"q": policy}, corpus, n_compositions=8, key_calls=2, seed=seed, keys=[0]
        )
        return result.table1["q"], result.fidelity["q"].interval_js_bits

    first, again, other = run(5), run(5), run(6)
    assert first == again
    assert first != other  # sampled (live's temperature): another seed, other answers


def test_eval_refuses_a_missing_model(tmp_path, capsys):
    from live_agent.cli import main

    code = main(["eval", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow  # an exported model and an evaluation run: seconds
def test_deepjam_eval_on_an_onnx_model(tmp_path):
    """The live model file is a policy too (onnxruntime, the live reader); no style column."""
    import torch

    from exports.metadata import ModelMetadata
    from exports.onnx_writer import export_onnx
    from exports.spec import DEFAULT_SPEC
    from exports.state_samples import synthetic_states
    from live_agent.cli import main
    from training.networks import build_q_network, network_args_for

    torch.set_num_threads(1)
    torch.manual_seed(0)
    network = build_q_network(network_args_for(DEFAULT_SPEC, hidden=[16])).eval()
    metadata = ModelMetadata(
        spec=DEFAULT_SPEC, reward_weights={"w_style": 1.0}, style_name="tiny", corpus={}
    )
    states = synthetic_states(DEFAULT_SPEC, 64, np.random.default_rng(0))
    export_onnx(network, metadata, tmp_path / "tiny.onnx", states)
    corpus = _tiny_corpus(tmp_path / "tiny.npz")
    out = tmp_path / "eval"
    argv = ["eval", str(tmp_path / "tiny.onnx"), "--corpus", str(corpus), "--out", str(out)]
    assert main(argv + ["--compositions", "12", "--key-calls", "3"]) == 0
    report = (out / "eval.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| Metric |"))
    assert "deepjam Q-network" in header and "style model" not in header
    assert "ONNX file carries the Q-network only" in report
    assert (out / "training_curves.png").read_bytes()[:8] == PNG_MAGIC
