"""Evaluating a policy: RL Tuner's Table 1, style fidelity, and answers in the caller's key.

Everything a policy plays here goes through the live path: states from the environment's encoder
(``training.environment``, which uses ``exports.encoding.encode_states``) and actions from
``exports.selection.choose_actions`` (softmax(Q) sampling at temperature 1, as RL Tuner samples
its compositions). No second encoder, no second action selection.

A *policy* is anything with ``q_values(states (B, D) float32) -> (B, A)``: a loaded ONNX model
(``exports.model_file.PolicyModel``), a torch network wrapped in ``TorchPolicy``, or the style
model wrapped in ``TorchPolicy(..., log_softmax=True)`` so that softmax(Q) is its own next-note
distribution (the "Note RNN" column of RL Tuner's Table 1).

Style fidelity compares generated answers with held-out corpus melodies as Jensen-Shannon
divergences (bits, 0 = same distribution, 1 = disjoint) of two histograms:

* melodic intervals between successive notes (holds and rests skipped), semitones clipped to
  -12..+12 with one overflow bin at each end (27 bins);
* key-relative pitch classes of note onsets (12 bins; the corpus tune's own Krumhansl-Schmuckler
  key, the policy's key-relative frame).

Answer quality: held-out calls, transposed to each of the 12 tonics, answered by the policy; the
fraction of the answer's note onsets whose absolute pitch class lies in the call's key (major
scale, or minor with raised 6th and 7th, ``exports.tonality.scale_mask``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from exports.grid import transpose
from exports.spec import PITCH_CLASSES, Spec
from exports.tonality import key_shift, scale_mask, to_relative

INTERVAL_LIMIT = 12
"""Intervals beyond an octave share the two overflow bins."""
N_INTERVAL_BINS = 2 * INTERVAL_LIMIT + 3


class Policy(Protocol):
    def q_values(self, states: np.ndarray) -> np.ndarray: ...


class TorchPolicy:
    """A torch network as a policy: ``q_values`` runs it without gradients on float32 states.

    ``log_softmax=True`` turns logits into log-probabilities (the style model as a policy:
    softmax of log p is p itself).
    """

    def __init__(self, network: Any, log_softmax: bool = False) -> None:
        self.network = network.eval()
        self.log_softmax = log_softmax

    def q_values(self, states: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.network(torch.as_tensor(np.asarray(states, dtype=np.float32)))
            if self.log_softmax:
                out = torch.log_softmax(out, dim=1)
        return out.numpy()  # (B, n_actions)


# ------------------------------------------------------------------ histograms and divergence


def note_pitches(events: np.ndarray) -> np.ndarray:
    """The onset pitches of a 1-D grid melody, in order (holds and rests dropped)."""
    e = np.asarray(events)
    return e[e >= 0].astype(np.int64)


def interval_histogram(melodies: list[np.ndarray]) -> np.ndarray:
    """(27,) counts of intervals between successive notes of each melody, bin 0 = below -12.

    Bin ``i`` holds interval ``i - 13`` for -12..+12; bins 0 and 26 hold the rest.
    """
    counts = np.zeros(N_INTERVAL_BINS, dtype=np.float64)
    for melody in melodies:
        pitches = note_pitches(melody)
        if len(pitches) < 2:
            continue
        steps = np.clip(np.diff(pitches), -INTERVAL_LIMIT - 1, INTERVAL_LIMIT + 1)
        counts += np.bincount(steps + INTERVAL_LIMIT + 1, minlength=N_INTERVAL_BINS)
    return counts


def pitch_class_histogram(
    melodies: list[np.ndarray], tonics: list[int] | None = None
) -> np.ndarray:
    """(12,) counts of key-relative pitch classes of note onsets (tonic = 0).

    ``tonics`` gives each melody's tonic pitch class when the melodies are absolute; None when
    they are key-relative already (tonic C).
    """
    counts = np.zeros(PITCH_CLASSES, dtype=np.float64)
    for i, melody in enumerate(melodies):
        pitches = note_pitches(melody)
        if tonics is not None:
            pitches = (pitches - tonics[i]) % PITCH_CLASSES
        counts += np.bincount(pitches % PITCH_CLASSES, minlength=PITCH_CLASSES)
    return counts


def js_divergence_bits(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """Jensen-Shannon divergence of two histograms (normalized here), in bits: 0..1.

    nan when either histogram is empty.
    """
    p = np.asarray(p_counts, dtype=np.float64)
    q = np.asarray(q_counts, dtype=np.float64)
    if p.shape != q.shape:
        raise ValueError(f"expected histograms of the same shape, got {p.shape} and {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


# ------------------------------------------------------------------ corpus melodies


def relative_tunes(corpus: Any) -> list[np.ndarray]:
    """Each tune of a Corpus in the key-relative frame (tonic C), as grid events."""
    return [
        np.where(
            corpus.tune(i) >= 0, to_relative(corpus.tune(i), int(corpus.tonic[i])), corpus.tune(i)
        )
        for i in range(corpus.n_tunes)
    ]


def held_out(corpus: Any) -> Any:
    """The corpus' validation tunes, or all its tunes when it holds none out (tiny corpora)."""
    if int(np.sum(corpus.validation)) > 0:
        return corpus.subset(validation=True)
    return corpus


@dataclass
class StyleFidelity:
    """Jensen-Shannon divergences (bits) of generated melodies against held-out tunes."""

    interval_js_bits: float
    pitch_class_js_bits: float
    generated_notes: int
    reference_notes: int


def style_fidelity(generated: list[np.ndarray], reference: list[np.ndarray]) -> StyleFidelity:
    """``generated`` and ``reference`` are key-relative grid melodies (tonic C)."""
    return StyleFidelity(
        interval_js_bits=js_divergence_bits(
            interval_histogram(generated), interval_histogram(reference)
        ),
        pitch_class_js_bits=js_divergence_bits(
            pitch_class_histogram(generated), pitch_class_histogram(reference)
        ),
        generated_notes=int(sum(len(note_pitches(m)) for m in generated)),
        reference_notes=int(sum(len(note_pitches(m)) for m in reference)),
    )


# ------------------------------------------------------------------ answers in the call's key


def in_key_fraction(answers: np.ndarray, tonic: np.ndarray, minor: np.ndarray) -> tuple[int, int]:
    """(note onsets in key, note onsets) over absolute grid ``answers`` (N, T).

    ``tonic`` (N,) and ``minor`` (N,) are each call's key.
    """
    answers = np.asarray(answers)
    in_key = 0
    total = 0
    for row, t, m in zip(answers, np.asarray(tonic), np.asarray(minor), strict=True):
        pcs = (note_pitches(row) - int(t)) % PITCH_CLASSES
        in_key += int(scale_mask(bool(m))[pcs].sum())
        total += len(pcs)
    return in_key, total


def transposed_calls(
    calls: list[np.ndarray], tonics: np.ndarray, semitones: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Calls moved by ``semitones`` (octave-folded towards the original register) and their tonics.

    Shifts above a tritone go down instead (``key_shift``), so a call stays near its register.
    """
    shift = int(key_shift(semitones))
    moved = [transpose(np.asarray(c, dtype=np.int64), shift) for c in calls]
    return moved, (np.asarray(tonics) + shift) % PITCH_CLASSES


@dataclass
class AnswerQuality:
    """Fraction of answer notes in the call's key, per tonic of the transposed calls."""

    per_key: dict[int, float]
    """tonic pitch class (0 = C) -> fraction (nan if the answers held no note)."""
    notes_per_key: dict[int, int]

    @property
    def minimum(self) -> float:
        values = [v for v in self.per_key.values() if np.isfinite(v)]
        return float(min(values)) if values else float("nan")

    @property
    def mean(self) -> float:
        values = [v for v in self.per_key.values() if np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")


@dataclass
class EvalResult:
    """Everything ``deepjam eval`` reports."""

    table1: dict[str, dict[str, float]]
    """column name -> Table 1 row (``training.rl_tuner_metrics.TABLE1_ROWS`` keys)."""
    fidelity: dict[str, StyleFidelity]
    answer_quality: dict[str, AnswerQuality]
    n_compositions: int
    samples: list[dict[str, Any]] = field(default_factory=list)
    """A few (call, answer) pairs, absolute grid events, for the piano rolls."""
    spec: Spec | None = None
