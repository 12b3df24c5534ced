"""Evaluating a policy: RL Tuner's Table 1, style fidelity, and answers in the caller's key.

Everything a policy plays here goes through the live path: states from the environment's encoder
(``training.env.environment``, which uses ``exports.encoding.encode_states``) and actions from
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
* key-relative pitch classes of note onsets (12 bins). The reference tunes are taken relative
  to their own whole-tune Krumhansl-Schmuckler key (the corpus label); the generated answers are
  in the policy's key-relative frame, i.e. relative to the key the environment estimated from
  the call, as live.

Table 1 scores only the answers to calls the environment estimated major (it is defined on
C-major compositions; minor answers are in a minor key-relative frame).

Answer quality: held-out calls, transposed to each of the 12 tonics, answered by the policy; the
fraction of the answer's note onsets whose absolute pitch class lies in the call's key (major
scale, or minor with raised 6th and 7th, ``exports.tonality.scale_mask``). The call's key is the
one its listener hears (``call_key``: Krumhansl-Schmuckler over the call's duration-weighted
pitch-class histogram), not the tune's global label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exports.grid import sounding_pitches, transpose
from exports.midi import NOTE_NAMES
from exports.model_file import Policy
from exports.spec import HOLD_EVENT, PITCH_CLASSES, REST_EVENT, Spec
from exports.tonality import estimate_key, key_shift, scale_mask, to_relative

INTERVAL_LIMIT = 12
"""Intervals beyond an octave share the two overflow bins."""
N_INTERVAL_BINS = 2 * INTERVAL_LIMIT + 3


class TorchPolicy:
    """A torch network as a policy: ``q_values`` runs it without gradients on float32 states.

    ``log_softmax=True`` turns logits into log-probabilities (the style model as a policy:
    softmax of log p is p itself).
    """

    def __init__(self, network: Any, spec: Spec, log_softmax: bool = False) -> None:
        self.network = network.eval()
        self.spec = spec
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


IOI_LIMIT_STEPS = 16
"""Inter-onset intervals longer than a bar share the last bin."""


def ioi_histogram(melodies: list[np.ndarray]) -> np.ndarray:
    """(17,) counts of inter-onset intervals (steps) between successive notes, bin i = i steps
    (0 unused), bin 16 = a bar or more."""
    counts = np.zeros(IOI_LIMIT_STEPS + 1, dtype=np.float64)
    for melody in melodies:
        steps = np.flatnonzero(np.asarray(melody) >= 0)
        if len(steps) < 2:
            continue
        counts += np.bincount(np.minimum(np.diff(steps), IOI_LIMIT_STEPS), minlength=len(counts))
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
    ioi_js_bits: float = float("nan")
    """Inter-onset intervals (rhythm), ``ioi_histogram``."""


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
        ioi_js_bits=js_divergence_bits(ioi_histogram(generated), ioi_histogram(reference)),
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
    """column name -> Table 1 row (``training.eval.rl_tuner_metrics.TABLE1_ROWS`` keys)."""
    fidelity: dict[str, StyleFidelity]
    answer_quality: dict[str, AnswerQuality]
    n_compositions: int
    samples: list[dict[str, Any]] = field(default_factory=list)
    """A few (call, answer) pairs, absolute grid events, for the piano rolls."""
    spec: Spec | None = None
    notes: list[str] = field(default_factory=list)
    """Lines printed under the title (e.g. a column left out and why)."""
    table1_counts: dict[str, int] = field(default_factory=dict)
    """column name -> compositions its Table 1 column scores (answers to major calls)."""
    listening: dict[str, Any] = field(default_factory=dict)
    """policy name -> ``training.eval.listening.Listening`` over the held-out calls."""
    probe: dict[str, Any] = field(default_factory=dict)
    """policy name -> ``training.eval.listening.Probe``."""
    motif_share: dict[str, float] = field(default_factory=dict)
    """policy name (and the continuations) -> mean share of the answer's (interval, IOI)
    3-grams found in the call."""
    call_tunes: int = 0
    """How many different tunes the calls came from (see ``few_tunes_warning``)."""
    calls_from_training_tunes: bool = False
    """True when the corpus held no tunes out, so the calls are training tunes."""
    duet: dict[str, Any] = field(default_factory=dict)
    """part name -> ``training.eval.duet.DuetFigures`` over held-out duet episodes."""
    temperature: float = 1.0


# ------------------------------------------------------------------ calls from held-out tunes

MIN_CALL_NOTES = 3
"""A call needs at least this many notes (as the training environment asks)."""


@dataclass
class Calls:
    """Calls cut from held-out tunes on bar lines, absolute pitches, with each tune's key."""

    events: list[np.ndarray]
    tonic: np.ndarray  # (n,) int: the tune's key (corpus label), pitch class
    minor: np.ndarray  # (n,) bool
    continuation: list[np.ndarray]
    """The tune's own next bars after each call (the human "answer"), absolute; may be short."""
    tunes: int = 0
    """How many different tunes the calls were cut from."""
    from_training_tunes: bool = False
    """True when the corpus holds no tunes out, so the calls come from its training tunes."""


def held_out_calls(
    corpus: Any, spec: Spec, call_bars: int, answer_bars: int, n: int, rng: np.random.Generator
) -> Calls:
    """``n`` calls of ``call_bars`` bars drawn (with replacement) from the held-out tunes.

    Raises ValueError when no held-out tune has a call with ``MIN_CALL_NOTES`` notes.
    """
    tunes = held_out(corpus)
    spb = spec.steps_per_bar
    call_steps, answer_steps = call_bars * spb, answer_bars * spb
    candidates: list[tuple[int, int]] = []
    for i in range(tunes.n_tunes):
        tune = tunes.tune(i)
        for start in range(0, len(tune) - call_steps + 1, spb):
            if int(np.sum(tune[start : start + call_steps] >= 0)) >= MIN_CALL_NOTES:
                candidates.append((i, start))
    if not candidates:
        raise ValueError(
            f"expected held-out tunes with a {call_bars}-bar call of at least {MIN_CALL_NOTES} "
            f"notes, found none in corpus {tunes.name!r}; use a larger corpus"
        )
    picks = rng.integers(len(candidates), size=n)
    source_tunes = len({candidates[int(k)][0] for k in picks})
    events, continuation, tonic, minor = [], [], [], []
    for k in picks:
        i, start = candidates[int(k)]
        tune = np.asarray(tunes.tune(i), dtype=np.int64)
        events.append(tune[start : start + call_steps].copy())
        continuation.append(tune[start + call_steps : start + call_steps + answer_steps].copy())
        tonic.append(int(tunes.tonic[i]))
        minor.append(bool(tunes.minor[i]))
    return Calls(
        events,
        np.array(tonic, np.int64),
        np.array(minor, bool),
        continuation,
        tunes=source_tunes,
        from_training_tunes=tunes is corpus,
    )


MIN_CALL_TUNES = 30
"""Fewer source tunes than this and ``few_tunes_warning`` warns. Each figure averages over calls,
and calls from one tune share its key, range and rhythms: what varies is the tune, so a
figure's spread from tune to tune shrinks only as 1/sqrt(k) with k tunes. Under 30 tunes it is
still above a sixth (1/sqrt(30) = 18%) of the spread between single tunes, and the figures
describe those tunes more than the style."""


def few_tunes_warning(calls_total: int, tunes: int, from_training_tunes: bool) -> str | None:
    """One line when the calls come from fewer than ``MIN_CALL_TUNES`` tunes (else None)."""
    if tunes >= MIN_CALL_TUNES:
        return None
    which = (
        "training tunes (the corpus holds none out)" if from_training_tunes else "held-out tunes"
    )
    return (
        f"all {calls_total:,} calls come from {tunes} {which}, fewer than the "
        f"{MIN_CALL_TUNES} that figures over tunes need: they describe those tunes more than the "
        "style; evaluate on a corpus with more held-out tunes (e.g. --corpus default)"
    )


# ------------------------------------------------------------------ the evaluation


PROBE_LINES = 100
"""Lines of the listening probe (the first notes of held-out calls)."""
Q_COLUMN = "deepjam Q-network"
STYLE_COLUMN = "deepjam style model"
CORPUS_COLUMN = "held-out corpus"
PAPER_NOTE_RNN_COLUMN = "RL Tuner Note RNN (paper)"
PAPER_Q_COLUMN = "RL Tuner Q (paper)"


def _answers(
    spec: Spec,
    calls: list[np.ndarray],
    policy: Policy,
    temperature: float,
    rng: np.random.Generator,
    answer_bars: int,
    answer_gap_steps: int = 0,
) -> Any:
    from training.env.environment import answer_calls

    return answer_calls(
        spec,
        calls,
        policy.q_values,
        temperature,
        rng,
        answer_bars=answer_bars,
        answer_gap_steps=answer_gap_steps,
    )


def call_key(call: np.ndarray) -> tuple[int, bool]:
    """(tonic pitch class, minor) a listener hears in one call (absolute grid events).

    Krumhansl-Schmuckler (``exports.tonality.estimate_key``) over the call's duration-weighted
    pitch-class histogram: each step a note sounds adds 1 to its pitch class (plain, not
    decayed). A silent call gives C major.
    """
    sounding = sounding_pitches(np.asarray(call, dtype=np.int64))
    pcs = sounding[sounding >= 0] % PITCH_CLASSES
    histogram = np.bincount(pcs, minlength=PITCH_CLASSES).astype(np.float64)
    tonic, minor = estimate_key(histogram)
    return int(tonic), bool(minor)


def answer_quality(
    spec: Spec,
    policy: Policy,
    calls: Calls,
    temperature: float,
    rng: np.random.Generator,
    answer_bars: int,
    keys: Sequence[int] = tuple(range(PITCH_CLASSES)),
    answer_gap_steps: int = 0,
) -> AnswerQuality:
    """Answer the calls moved to each tonic in ``keys`` (default all 12); fraction of answer
    notes in the call's own key (``call_key``: what a listener of the call hears), not the
    tune's global key, which differs whenever a 2-bar call sits on the dominant etc."""
    per_key: dict[int, float] = {}
    notes_per_key: dict[int, int] = {}
    heard = [call_key(call) for call in calls.events]
    call_minor = np.array([m for _, m in heard], dtype=bool)
    for target in keys:
        # Move each call so its own key's tonic lands on ``target`` (by at most a tritone).
        moved = []
        for call, (tonic, _) in zip(calls.events, heard, strict=True):
            moved.append(transpose(call, int(key_shift(target - tonic))))
        answers = _answers(spec, moved, policy, temperature, rng, answer_bars, answer_gap_steps)
        tonics = np.full(len(moved), target, dtype=np.int64)
        in_key, total = in_key_fraction(answers.events, tonics, call_minor)
        per_key[target] = in_key / total if total else float("nan")
        notes_per_key[target] = total
    return AnswerQuality(per_key, notes_per_key)


def _call_as_heard(call: np.ndarray, gap_steps: int) -> np.ndarray:
    """The call as the answer follows it: cut after its last sounding step, then ``gap_steps``
    silent steps (unchanged when the gap is 0: the answer starts on the next bar line)."""
    call = np.asarray(call, dtype=np.int64)
    if gap_steps <= 0:
        return call
    sounding = np.flatnonzero(sounding_pitches(call) >= 0)
    last = int(sounding[-1]) if len(sounding) else len(call) - 1
    silence = np.full(gap_steps, HOLD_EVENT, np.int64)
    silence[0] = REST_EVENT
    return np.concatenate([call[: last + 1], silence])


def evaluate_policies(
    spec: Spec,
    policies: dict[str, Policy],
    corpus: Any,
    n_compositions: int = 1000,
    seed: int = 0,
    temperature: float = 1.0,
    call_bars: int = 2,
    answer_bars: int = 2,
    key_calls: int = 200,
    n_samples: int = 4,
    keys: Sequence[int] = tuple(range(PITCH_CLASSES)),
    answer_gap_steps: int = 0,
) -> EvalResult:
    """Table 1, style fidelity and answer quality for each named policy.

    Compositions are the policies' ``answer_bars``-bar answers (2 bars = RL Tuner's 32 steps) to
    ``n_compositions`` held-out calls, sampled from softmax(Q / temperature). Answer quality uses
    ``key_calls`` of those calls moved to each tonic in ``keys`` (default all 12). Answers start
    ``answer_gap_steps`` silent steps after the call's last note (as live and as the policy was
    trained; 0 = on the bar line after the call). ``samples`` keeps ``n_samples``
    (call, answer) pairs of the first policy for the piano rolls.
    """
    from training.eval.duet import duet_figures
    from training.eval.listening import listening, motif_share, probe, probe_lines
    from training.eval.rl_tuner_metrics import PAPER_NOTE_RNN, PAPER_Q, table1

    rng = np.random.default_rng(seed)
    calls = held_out_calls(corpus, spec, call_bars, answer_bars, n_compositions, rng)
    reference = relative_tunes(held_out(corpus))
    tables: dict[str, dict[str, float]] = {}
    fidelity: dict[str, StyleFidelity] = {}
    quality: dict[str, AnswerQuality] = {}
    samples: list[dict[str, Any]] = []
    table1_counts: dict[str, int] = {}
    listened: dict[str, Any] = {}
    probed: dict[str, Any] = {}
    motifs: dict[str, float] = {}
    lines = probe_lines(calls.events, PROBE_LINES)
    for name, policy in policies.items():
        answers = _answers(
            spec, calls.events, policy, temperature, rng, answer_bars, answer_gap_steps
        )
        listened[name] = listening(spec, calls.events, list(answers.events), calls.continuation)
        motifs[name] = float(
            np.nanmean(
                [motif_share(c, a) for c, a in zip(calls.events, answers.events, strict=True)]
            )
        )

        def answer(probe_calls: list[np.ndarray], policy: Policy = policy) -> np.ndarray:
            return np.asarray(
                _answers(
                    spec, probe_calls, policy, temperature, rng, answer_bars, answer_gap_steps
                ).events
            )

        if lines:
            probed[name] = probe(spec, answer, lines)
        relative = np.asarray(answers.relative_events)  # (N, answer_steps), tonic C
        # RL Tuner's Table 1 is defined on C-major compositions: score the answers to calls
        # the environment heard as major (minor answers' b3/b6/b7 are in *their* key).
        major = ~np.asarray(answers.minor, dtype=bool)
        tables[name] = table1(relative[major]) if major.any() else table1(relative[:0])
        table1_counts[name] = int(major.sum())
        fidelity[name] = style_fidelity(list(relative), reference)
        subset = Calls(
            calls.events[:key_calls],
            calls.tonic[:key_calls],
            calls.minor[:key_calls],
            calls.continuation[:key_calls],
            calls.tunes,
            calls.from_training_tunes,
        )
        quality[name] = answer_quality(
            spec, policy, subset, temperature, rng, answer_bars, keys, answer_gap_steps
        )
        if not samples:
            for i in range(min(n_samples, len(calls.events))):
                samples.append(
                    {
                        "policy": name,
                        "call": _call_as_heard(calls.events[i], answer_gap_steps),
                        "answer": np.asarray(answers.events[i]),
                        "tonic": int(calls.tonic[i]),
                        "minor": bool(calls.minor[i]),
                        "answer_tonic": int(answers.tonic[i]),
                        "answer_minor": bool(answers.minor[i]),
                    }
                )
    # The tunes' own continuations, in their key-relative frame: the human reference.
    answer_steps = answer_bars * spec.steps_per_bar
    # Major tunes only, as for the policies' answers (Table 1 is defined in C major).
    human = [
        np.where(c >= 0, to_relative(c, int(t)), c)
        for c, t, m in zip(calls.continuation, calls.tonic, calls.minor, strict=True)
        if len(c) == answer_steps and not m
    ]
    if human:
        tables[CORPUS_COLUMN] = table1(np.stack(human))
        table1_counts[CORPUS_COLUMN] = len(human)
    motifs[CORPUS_COLUMN] = float(
        np.nanmean(
            [motif_share(c, h) for c, h in zip(calls.events, calls.continuation, strict=True)]
        )
    )
    tables[PAPER_NOTE_RNN_COLUMN] = dict(PAPER_NOTE_RNN)
    tables[PAPER_Q_COLUMN] = dict(PAPER_Q)
    duet = duet_figures(
        spec, corpus, {n: p.q_values for n, p in policies.items()}, temperature, seed
    )
    return EvalResult(
        table1=tables,
        fidelity=fidelity,
        answer_quality=quality,
        n_compositions=n_compositions,
        samples=samples,
        spec=spec,
        table1_counts=table1_counts,
        listening=listened,
        probe=probed,
        motif_share=motifs,
        call_tunes=calls.tunes,
        calls_from_training_tunes=calls.from_training_tunes,
        duet=duet,
        temperature=temperature,
    )


# ------------------------------------------------------------------ report

KEY_NAMES = NOTE_NAMES  # exports.midi: the one note-name table


def _fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if np.isfinite(value) else "n/a"


def format_markdown(result: EvalResult, title: str = "deepjam evaluation") -> str:
    """The report as markdown: Table 1 side by side, style fidelity, answer quality per key."""
    from training.eval.rl_tuner_metrics import PAPER_CITATION, TABLE1_ROWS, format_table1_value

    columns = list(result.table1)
    lines = [f"# {title}", ""]
    if result.notes:
        lines += [f"- {note}" for note in result.notes] + [""]
    lines += [
        f"## RL Tuner Table 1 (answers to {result.n_compositions} held-out calls, 32 steps each)",
        "",
        "Our columns: answers to held-out calls sampled from softmax(Q); rules and denominators "
        "as in Magenta's rl_tuner_eval_metrics.py, hold/rest swap fixed "
        "(see training/eval/rl_tuner_metrics.py). Table 1 is defined on compositions in C major, so "
        "it scores only the answers to calls the environment estimated MAJOR (answers are in "
        "the key-relative frame, tonic C; a minor call gets a minor answer whose b3/b6/b7 would "
        "count as out of key); the held-out corpus column likewise scores the continuations of "
        "major-labelled tunes. Style fidelity and answer quality below use all calls. "
        "Paper columns: " + PAPER_CITATION + ".",
        "",
    ]
    if result.table1_counts:
        lines += [
            "Compositions scored: "
            + ", ".join(f"{name} {n}" for name, n in result.table1_counts.items())
            + ".",
            "",
        ]
    lines += [
        "| Metric | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for key, label, kind in TABLE1_ROWS:
        cells = [
            format_table1_value(kind, result.table1[c].get(key, float("nan"))) for c in columns
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Style fidelity vs held-out corpus melodies",
        "",
        "Jensen-Shannon divergence in bits (0 = same distribution, 1 = disjoint).",
        "",
        "| Policy | Intervals JS (bits) | Inter-onset intervals JS (bits) | "
        "Key-relative pitch classes JS (bits) | Generated notes | Reference notes |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, f in result.fidelity.items():
        lines.append(
            f"| {name} | {_fmt(f.interval_js_bits)} | {_fmt(f.ioi_js_bits)} | "
            f"{_fmt(f.pitch_class_js_bits)} | {f.generated_notes} | {f.reference_notes} |"
        )
    lines += _listening_markdown(result)
    if result.duet:
        from training.eval.duet import duet_markdown

        lines += duet_markdown(result.duet, result.temperature)
    lines += [
        "",
        "## Answer quality: answer notes in the call's key",
        "",
        "Held-out calls moved so that the call's own key lands on each tonic, answered by the "
        "policy; fraction of answer note onsets in the call's key (minor: natural plus raised "
        "6th and 7th). The call's key is what a listener of the call hears: Krumhansl-"
        "Schmuckler (exports.tonality.estimate_key) over the call's duration-weighted "
        "pitch-class histogram (plain, not decayed), not the tune's global key.",
        "",
        "| Policy | " + " | ".join(KEY_NAMES) + " | min | mean |",
        "|---|" + "---:|" * (len(KEY_NAMES) + 2),
    ]
    for name, q in result.answer_quality.items():
        cells = [_fmt(q.per_key.get(k, float("nan")), 2) for k in range(PITCH_CLASSES)]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {_fmt(q.minimum, 2)} | {_fmt(q.mean, 2)} |"
        )
    return "\n".join(lines) + "\n"


def _listening_markdown(result: EvalResult) -> list[str]:
    """The listening sections: Spearman(call, answer), the probe, motif sharing."""
    from training.eval.listening import (
        FEATURE_LABELS,
        FEATURES,
        PROBE_IOI_RATIO,
        PROBE_NOTES,
        PROBE_OCTAVE_SEMITONES,
    )

    if not result.listening:
        return []
    names = list(result.listening)
    first = result.listening[names[0]]
    lines = [
        "",
        "## Listening: does the answer follow the call?",
        "",
        f"Spearman rank correlation over {first.n_calls} held-out calls between a feature of the "
        "call and the same feature of the answer (absolute pitches), beside the same for the "
        "tunes' own continuations (training/eval/listening.py).",
        "",
        "| Feature | real continuations | " + " | ".join(names) + " |",
        "|---|---:|" + "---:|" * len(names),
    ]
    for f in FEATURES:
        cells = [_fmt(result.listening[n].policy[f], 2) for n in names]
        lines.append(
            f"| {FEATURE_LABELS[f]} | {_fmt(first.continuation[f], 2)} | "
            + " | ".join(cells)
            + " |"
        )
    if result.probe:
        lines += [
            "",
            f"Probe: the first {PROBE_NOTES} notes of held-out calls played as 16ths, 8ths and "
            "quarters, and in 8ths an octave low and high; share of lines where the answer moved "
            "the same way as the call, and by the goal's margin.",
            "",
            "| Policy | lines | quarters slower than 16ths | "
            f">= {PROBE_IOI_RATIO:g}x the IOI | octave up higher | >= {PROBE_OCTAVE_SEMITONES:g} "
            "semitones higher | median answer IOI 16ths / 8ths / quarters (steps) | "
            "median answer pitch low / high |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
        for name, p in result.probe.items():
            iois = " / ".join(f"{p.mean_ioi[k]:.2f}" for k in ("16ths", "8ths", "quarters"))
            pitches = f"{p.mean_pitch['octave down']:.1f} / {p.mean_pitch['octave up']:.1f}"
            lines.append(
                f"| {name} | {p.n_lines} | {p.slower_share:.2f} | {p.ratio_share:.2f} | "
                f"{p.higher_share:.2f} | {p.octave_share:.2f} | {iois} | {pitches} |"
            )
    if result.motif_share:
        lines += [
            "",
            "Motifs shared with the call: mean share of the answer's (interval, IOI) 3-grams "
            "found in the call: "
            + ", ".join(f"{n} {_fmt(v, 3)}" for n, v in result.motif_share.items())
            + ".",
        ]
    return lines
