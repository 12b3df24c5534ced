"""The style model learns a predictable corpus, and its log-probabilities are a distribution."""

from __future__ import annotations

import math

import numpy as np
import torch

from exports.spec import DEFAULT_SPEC, HOLD, HOLD_EVENT, REST_EVENT
from training.config import StyleModelConfig
from training.data.corpus_data import Corpus
from training.style_model import StyleModel, teacher_forced, train_style_model

torch.set_num_threads(1)


def scale_corpus(n_tunes: int = 12, bars: int = 4) -> Corpus:
    """Tunes that run up a C major scale in quarter notes, over and over: fully predictable."""
    scale = [60, 62, 64, 65, 67, 69, 71, 72]
    tunes = []
    for _ in range(n_tunes):
        events = np.full(bars * 16, HOLD_EVENT, dtype=np.int16)
        events[::4] = [scale[i % len(scale)] for i in range(bars * 4)]
        events[-1] = REST_EVENT
        tunes.append(events)
    lengths = np.array([len(t) for t in tunes])
    validation = np.zeros(n_tunes, dtype=bool)
    validation[::4] = True
    return Corpus(
        name="scales",
        events=np.concatenate(tunes),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        titles=[f"scale {i}" for i in range(n_tunes)],
        tonic=np.zeros(n_tunes, dtype=np.int64),
        minor=np.zeros(n_tunes, dtype=bool),
        validation=validation,
    )


def test_teacher_forcing_targets_are_the_tune_actions() -> None:
    data = teacher_forced(DEFAULT_SPEC, scale_corpus(n_tunes=1, bars=1))
    assert data.n_samples == 16
    assert data.actions[0] == DEFAULT_SPEC.action_for_pitch(60)
    assert data.actions[1] == HOLD
    assert data.actions[4] == DEFAULT_SPEC.action_for_pitch(62)


def test_style_model_learns_a_predictable_corpus() -> None:
    corpus = scale_corpus()
    config = StyleModelConfig(epochs=30, batch_size=64, learning_rate=2e-3, max_minutes=0.5)
    model = train_style_model(DEFAULT_SPEC, corpus, config, hidden=[64], seed=0)
    uniform = -math.log(DEFAULT_SPEC.n_actions)
    assert model.metrics["style_uniform_log_lik"] == uniform
    assert model.metrics["style_val_is_train"] == 0.0
    assert model.metrics["style_val_log_lik"] > -0.5, model.metrics
    assert model.metrics["style_val_accuracy"] > 0.9, model.metrics


def test_log_probs_are_normalised_and_survive_a_round_trip() -> None:
    corpus = scale_corpus(n_tunes=4, bars=1)
    config = StyleModelConfig(epochs=1, batch_size=16)
    model = train_style_model(DEFAULT_SPEC, corpus, config, hidden=[32], seed=0)
    states = np.random.default_rng(0).random((5, DEFAULT_SPEC.state_dim)).astype(np.float32)
    log_probs = model.log_probs(states)
    assert log_probs.shape == (5, DEFAULT_SPEC.n_actions) and log_probs.dtype == np.float32
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-5)
    again = StyleModel.from_dict(model.to_dict())
    np.testing.assert_allclose(again(states), log_probs, rtol=1e-5, atol=1e-6)


def character_corpus(n_tunes: int = 16, bars: int = 8, seed: int = 0) -> Corpus:
    """Tunes of four characters (quarter notes or 16ths, low or high register), random scale
    notes in C major: a tune's continuation has its call's rhythm and register."""
    rng = np.random.default_rng(seed)
    scale = np.array([0, 2, 4, 5, 7, 9, 11])
    tunes = []
    for i in range(n_tunes):
        ioi, base = (4 if i % 2 else 1), (72 if (i // 2) % 2 else 55)
        events = np.full(bars * 16, HOLD_EVENT, dtype=np.int16)
        n = len(events[::ioi])
        events[::ioi] = base + scale[rng.integers(0, 7, n)] + 12 * rng.integers(0, 2, n)
        events[0] = base - base % 12 + 12  # a C, so that the key reads C
        events[-1] = REST_EVENT
        tunes.append(events)
    lengths = np.array([len(t) for t in tunes])
    validation = np.zeros(n_tunes, dtype=bool)
    validation[-4:] = True
    return Corpus(
        name="characters",
        events=np.concatenate(tunes),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        titles=[f"tune {i}" for i in range(n_tunes)],
        tonic=np.zeros(n_tunes, dtype=np.int64),
        minor=np.zeros(n_tunes, dtype=bool),
        validation=validation,
    )


def test_call_conditioned_model_ranks_the_true_continuation_above_another_tunes() -> None:
    from training.env.environment import EnvConfig

    corpus = character_corpus()
    env = EnvConfig(
        call_bars_choices=[1, 2], answer_length="call", transpose_semitones=2, min_call_notes=2
    )
    config = StyleModelConfig(
        epochs=30, batch_size=128, learning_rate=2e-3, max_minutes=0.25, pair_fraction=0.75
    )
    model = train_style_model(DEFAULT_SPEC, corpus, config, hidden=[64], seed=0, env_config=env)
    m = model.metrics
    # Per step, the true continuation is far likelier after its own call than after another's;
    # per episode it ranks higher more often than not (a quarter of the donors are of the
    # same character, where the call tells nothing).
    assert m["style_pair_val_log_lik"] > m["style_pair_val_log_lik_other_call"] + 0.3, m
    assert m["style_pair_val_ranks_true"] > 0.5, m
