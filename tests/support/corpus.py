"""A tiny corpus and a tiny style config: what the training, Ape-X, sweep and style-label
tests train on (seconds, on one core)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exports.spec import HOLD_EVENT, REST_EVENT
from training.data.corpus_data import Corpus

TINY_CONFIG = """
seed = 1
[style]
name = "tiny"
description = "a test style"
[env]
n_envs = 32
[network]
hidden = [32]
[learner]
batch_size = 32
buffer_size = 4096
learning_starts = 256
target_update_interval = 20
[budget]
env_steps = 3000
minutes = 0
checkpoint_interval_s = {interval}
log_interval_steps = 512
[style_model]
epochs = 2
batch_size = 128
"""


def tiny_corpus(path: Path, n_tunes: int = 10) -> Path:
    """Arpeggios and scales in C and G, 8 bars each, written as a corpus .npz."""
    rng = np.random.default_rng(0)
    patterns = [[60, 64, 67, 72], [60, 62, 64, 65, 67], [67, 71, 74, 79], [67, 69, 71, 72]]
    tunes = []
    for i in range(n_tunes):
        pattern = patterns[i % len(patterns)]
        events = np.full(8 * 16, HOLD_EVENT, dtype=np.int16)
        onsets = np.arange(0, len(events), int(rng.choice([2, 4])))
        events[onsets] = [pattern[j % len(pattern)] for j in range(len(onsets))]
        events[-1] = REST_EVENT
        tunes.append(events)
    lengths = np.array([len(t) for t in tunes])
    corpus = Corpus(
        name="tiny",
        events=np.concatenate(tunes),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        titles=[f"tune {i}" for i in range(n_tunes)],
        tonic=np.array([0 if p[0] == 60 else 7 for p in (patterns[i % 4] for i in range(n_tunes))]),
        minor=np.zeros(n_tunes, dtype=bool),
        validation=np.arange(n_tunes) % 5 == 0,
    )
    corpus.save(path)
    return path


def write_config(path: Path, interval_s: float = 60.0) -> Path:
    path.write_text(TINY_CONFIG.format(interval=interval_s))
    return path
