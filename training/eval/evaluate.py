"""Evaluating a policy: RL Tuner's Table 1, style fidelity, and answers in the caller's key.

Everything a policy plays here goes through the live path: states from the environment's encoder
(``training.env.environment``, which uses ``exports.encoding.encode_states``) and actions from
``exports.selection.choose_actions``. No second encoder, no second action selection. And it is
played as ``deepjam jam`` plays it (``answer_as_live``): the answer starts where live starts it
(``exports.turns.answer_start_step``: on a downbeat, once the call is over), lasts as many bars
as live's (``exports.turns.answer_bars``), opens with a note (``exports.selection.opening_mask``)
and is sampled at live's default temperature (``exports.selection.DEFAULT_TEMPERATURE``, 0.5;
RL Tuner sampled its compositions at 1). With one call and the same seeded generator, the notes
are those ``deepjam answer`` plays (tests/training/test_musicianship.py).

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
from exports.selection import DEFAULT_TEMPERATURE
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


def in_key_fraction(
    answers: Sequence[np.ndarray], tonic: np.ndarray, minor: np.ndarray
) -> tuple[int, int]:
    """(note onsets in key, note onsets) over absolute grid ``answers`` (N rows, any lengths).

    ``tonic`` (N,) and ``minor`` (N,) are each call's key.
    """
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
    temperature: float = DEFAULT_TEMPERATURE
    musicianship: dict[str, Any] = field(default_factory=dict)
    """policy name (and ``CONTINUATION_ROW``) -> ``training.eval.musicianship.PhraseFigures``."""
    classifier_auc: dict[str, float] = field(default_factory=dict)
    """policy name -> cross-validated AUC of a classifier telling its answers from the real
    continuations (0.5: it cannot)."""

    def figures(self, column: str = "deepjam Q-network") -> dict[str, float]:
        """Every figure of ``column``'s answers, named as ``FIGURES`` lists them (nan where
        undefined): what ``deepjam sweep`` ranks trials by and the model cards show."""
        nan = float("nan")
        out: dict[str, float] = {}
        table = self.table1.get(column, {})
        for row in TABLE1_FIGURE_ROWS:
            out[f"table1.{row}"] = float(table.get(row, nan))
        fid = self.fidelity.get(column)
        for name in ("interval_js_bits", "ioi_js_bits", "pitch_class_js_bits"):
            out[f"fidelity.{name}"] = float(getattr(fid, name)) if fid else nan
        quality = self.answer_quality.get(column)
        out["answer_quality.mean"] = float(quality.mean) if quality else nan
        out["answer_quality.min"] = float(quality.minimum) if quality else nan
        heard = self.listening.get(column)
        spearman = [float(heard.policy[f]) if heard else nan for f in LISTENING_FEATURES]
        for f, value in zip(LISTENING_FEATURES, spearman, strict=True):
            out[f"listening.{f}"] = value
        finite = [v for v in spearman if np.isfinite(v)]
        out["listening.mean"] = float(np.mean(finite)) if finite else nan
        probed = self.probe.get(column)
        for name in ("slower_share", "ratio_share", "higher_share", "octave_share"):
            out[f"probe.{name}"] = float(getattr(probed, name)) if probed else nan
        out["motif_share"] = float(self.motif_share.get(column, nan))
        heard_as = self.musicianship.get(column)
        for name in MUSICIANSHIP_FIGURES:
            out[f"musicianship.{name}"] = float(getattr(heard_as, name)) if heard_as else nan
        out["musicianship.degenerate"] = float(bool(heard_as.degenerate())) if heard_as else nan
        out["classifier_auc"] = float(self.classifier_auc.get(column, nan))
        return out

    def degenerate(self, column: str = "deepjam Q-network") -> list[str]:
        """Plain-words reasons ``column``'s answers are degenerate (empty when they are not)."""
        heard_as = self.musicianship.get(column)
        return heard_as.degenerate() if heard_as else []


TABLE1_FIGURE_ROWS = (
    "notes_excessively_repeated",
    "autocorrelation_lag1",
    "autocorrelation_lag2",
    "autocorrelation_lag3",
    "notes_not_in_key",
    "starting_with_tonic",
    "leaps_resolved",
    "unique_max_note",
    "unique_min_note",
    "notes_in_motif",
    "notes_in_repeated_motif",
)
LISTENING_FEATURES = ("mean_ioi", "mean_pitch", "density", "sixteenth_share")
MUSICIANSHIP_FIGURES = (
    "leap_share",
    "repeat_share",
    "oscillation_share",
    "run_share",
    "median_same_pitch_run",
    "max_same_pitch_run",
    "median_top_pitch_share",
)
FIGURES: dict[str, str] = {
    **{
        f"table1.{row}": "RL Tuner Table 1 row of the Q-network's answers"
        for row in TABLE1_FIGURE_ROWS
    },
    "fidelity.interval_js_bits": "melodic intervals vs held-out tunes, JS bits (0 = same)",
    "fidelity.ioi_js_bits": "inter-onset intervals vs held-out tunes, JS bits",
    "fidelity.pitch_class_js_bits": "key-relative pitch classes vs held-out tunes, JS bits",
    "answer_quality.mean": "answer notes in the call's key, mean over the 12 keys",
    "answer_quality.min": "answer notes in the call's key, the worst key",
    **{
        f"listening.{f}": "Spearman(call, answer) of this phrase feature (listening.py)"
        for f in LISTENING_FEATURES
    },
    "listening.mean": "the mean of the four listening Spearman figures",
    "probe.slower_share": "probe lines: quarters answered slower than 16ths",
    "probe.ratio_share": "probe lines: quarters answered with >= 2x the 16ths' IOI",
    "probe.higher_share": "probe lines: octave up answered higher than octave down",
    "probe.octave_share": "probe lines: ... by >= 9 semitones",
    "motif_share": "answer (interval, IOI) 3-grams found in the call",
    "musicianship.leap_share": "intervals wider than a fifth, share (musicianship.py)",
    "musicianship.repeat_share": "repeated notes, share of intervals",
    "musicianship.oscillation_share": "answers with a two-note oscillation of >= 6 notes",
    "musicianship.run_share": "answers with a stepwise run of >= 7 notes",
    "musicianship.median_same_pitch_run": "longest same-pitch run, median over answers",
    "musicianship.max_same_pitch_run": "longest same-pitch run, the longest answer's",
    "musicianship.median_top_pitch_share": "the most frequent pitch's share, median answer",
    "musicianship.degenerate": "1 when the answers are degenerate (musicianship.py), else 0",
    "classifier_auc": "logistic regression telling answers from real continuations, CV AUC",
}
"""Every figure ``EvalResult.figures`` gives for one column, name -> what it is."""


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
CONTINUATION_ROW = "real continuations"
"""The held-out tunes' own next bars after each call (as long as the answer), the reference
row of the fidelity and musicianship tables."""


LIVE = -1
"""``answer_gap_steps`` / ``answer_bars`` value meaning "as live": each call's own start
(``live_start_step``) and length (``exports.turns.answer_bars``)."""


def _last_sounding_step(call: np.ndarray) -> int:
    sounding = np.flatnonzero(sounding_pitches(np.asarray(call, dtype=np.int64)) >= 0)
    return int(sounding[-1]) if len(sounding) else len(call) - 1


def live_start_step(call: np.ndarray, steps_per_bar: int) -> int:
    """The grid step (from the call's first step, a bar line) on which the live answer mode
    starts its answer to ``call`` heard alone: ``exports.turns.answer_start_step``, the rule
    ``deepjam jam`` and ``deepjam answer`` follow."""
    from exports.turns import answer_start_step

    return int(answer_start_step(np.asarray(call, dtype=np.int64), steps_per_bar))


def live_answer_bars(call: np.ndarray, steps_per_bar: int) -> int:
    """Bars of the live answer to ``call``: ``exports.turns.answer_bars`` of the call's span
    (first onset to the end of its last note), as the live phrase tracker counts it."""
    from exports.turns import answer_bars

    call = np.asarray(call, dtype=np.int64)
    onsets = np.flatnonzero(call >= 0)
    first = int(onsets[0]) if len(onsets) else 0
    return answer_bars(_last_sounding_step(call) + 1 - first, steps_per_bar)


@dataclass
class LiveAnswers:
    """Answers to calls, one row per call, each as long as its own answer."""

    events: list[np.ndarray]
    """Absolute grid events of each answer, from its first step."""
    relative_events: list[np.ndarray]
    """The same in the key-relative frame the answer was played in (tonic C)."""
    tonic: np.ndarray  # (n,) int: pitch class of the key heard in each call
    minor: np.ndarray  # (n,) bool
    start_steps: np.ndarray
    """(n,) int: the answer's first step, counted from the call's first step."""


def answer_as_live(
    spec: Spec,
    calls: Sequence[np.ndarray],
    policy_q: Any,
    temperature: float,
    rng: np.random.Generator,
    answer_bars: int = LIVE,
    answer_gap_steps: int = LIVE,
) -> LiveAnswers:
    """Answer each call (absolute grid events from a bar line) as ``deepjam jam`` does: from
    the step ``live_start_step`` gives, for ``live_answer_bars`` bars, the first step among the
    notes (``exports.selection.opening_mask``), sampled at ``temperature``
    (``exports.selection.DEFAULT_TEMPERATURE`` is live's default) through
    ``training.env.environment.answer_calls``: the one encoder, the one action selection.

    ``answer_bars`` / ``answer_gap_steps`` >= 0 fix the length / the silent steps after the
    call's last sound instead (0 steps: the next bar line). Calls that start at the same offset
    for the same length are answered together, one batch each; with one call, the sampler draws
    exactly as the live session seeded with the same generator does.
    """
    from training.env.environment import answer_calls

    spb = spec.steps_per_bar
    n = len(calls)
    plans: list[tuple[int, int]] = []  # (gap after the last sound, or -1 = bar line; bars)
    starts = np.zeros(n, np.int64)
    for call in calls:
        last = _last_sounding_step(call)
        bars = answer_bars if answer_bars >= 0 else live_answer_bars(call, spb)
        if answer_gap_steps == 0:
            gap = -1
            start = max(1, -(-len(call) // spb)) * spb
        else:
            start = (
                last + 1 + answer_gap_steps if answer_gap_steps > 0 else live_start_step(call, spb)
            )
            gap = start - last - 1
            if start % spb == 0:
                # On a bar line (live's answers always are): the call and the silence after it
                # as whole bars before it, as the environment lays out a bar-line answer.
                gap = -1
            elif gap <= 0:
                raise ValueError(
                    f"expected the answer to start after the call's last sound (step {last}), "
                    f"got step {start}"
                )
        plans.append((gap, bars))
        starts[len(plans) - 1] = start
    events: list[np.ndarray] = [np.zeros(0, np.int64)] * n
    relative: list[np.ndarray] = [np.zeros(0, np.int64)] * n
    tonic = np.zeros(n, np.int64)
    minor = np.zeros(n, bool)
    for plan in sorted(set(plans)):
        rows = [i for i, p in enumerate(plans) if p == plan]
        gap, bars = plan
        if gap < 0:  # the call cut (or padded) to the bar line where the answer starts
            group = []
            for i in rows:
                call = np.asarray(calls[i], dtype=np.int64)[: starts[i]]
                pad = np.full(int(starts[i]) - len(call), HOLD_EVENT, np.int64)
                if len(pad):
                    pad[0] = REST_EVENT
                group.append(np.concatenate([call, pad]))
        else:
            group = [np.asarray(calls[i], dtype=np.int64) for i in rows]
        answers = answer_calls(
            spec,
            group,
            policy_q,
            temperature,
            rng,
            answer_bars=bars,
            answer_gap_steps=max(gap, 0),
            opening_note=True,
        )
        for k, i in enumerate(rows):
            events[i] = np.asarray(answers.events[k])
            relative[i] = np.asarray(answers.relative_events[k])
            tonic[i] = int(answers.tonic[k])
            minor[i] = bool(answers.minor[k])
    return LiveAnswers(events, relative, tonic, minor, starts)


def _answers(
    spec: Spec,
    calls: list[np.ndarray],
    policy: Policy,
    temperature: float,
    rng: np.random.Generator,
    answer_bars: int,
    answer_gap_steps: int = LIVE,
) -> LiveAnswers:
    return answer_as_live(
        spec, calls, policy.q_values, temperature, rng, answer_bars, answer_gap_steps
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
    answer_gap_steps: int = LIVE,
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


def _call_as_heard(call: np.ndarray, start_step: int) -> np.ndarray:
    """The call as the answer follows it: cut after its last sounding step, then silence up to
    ``start_step`` (the answer's first step, from the call's first)."""
    call = np.asarray(call, dtype=np.int64)
    last = _last_sounding_step(call)
    silence = np.full(max(0, start_step - last - 1), HOLD_EVENT, np.int64)
    if len(silence):
        silence[0] = REST_EVENT
    return np.concatenate([call[: last + 1], silence])


def evaluate_policies(
    spec: Spec,
    policies: dict[str, Policy],
    corpus: Any,
    n_compositions: int = 1000,
    seed: int = 0,
    temperature: float = DEFAULT_TEMPERATURE,
    call_bars: int = 2,
    answer_bars: int = LIVE,
    key_calls: int = 200,
    n_samples: int = 4,
    keys: Sequence[int] = tuple(range(PITCH_CLASSES)),
    answer_gap_steps: int = LIVE,
) -> EvalResult:
    """Table 1, style fidelity, musicianship and answer quality for each named policy.

    Compositions are the policies' answers to ``n_compositions`` held-out ``call_bars``-bar
    calls, played as live (``answer_as_live``): from live's start step, as many bars as live
    answers the call, the first step among the notes, sampled from softmax(Q / temperature) at
    live's default temperature unless told otherwise. ``answer_bars`` / ``answer_gap_steps``
    >= 0 fix the length and the start instead. Answer quality uses ``key_calls`` of those
    calls moved to each tonic in ``keys`` (default all 12). Each answer is compared with its
    tune's own next bars, cut to the answer's length ("real continuations"). Table 1 scores the
    first 32 steps of answers that long (RL Tuner's compositions are 32 steps). ``samples``
    keeps ``n_samples`` (call, answer) pairs of the first policy for the piano rolls.
    """
    from exports.turns import DEFAULT_ANSWER_BARS_MAX
    from training.eval.duet import duet_figures
    from training.eval.listening import listening, motif_share, probe, probe_lines
    from training.eval.musicianship import classifier_auc, phrase_figures
    from training.eval.rl_tuner_metrics import COMPOSITION_STEPS, PAPER_NOTE_RNN, PAPER_Q, table1

    rng = np.random.default_rng(seed)
    continuation_bars = answer_bars if answer_bars >= 0 else DEFAULT_ANSWER_BARS_MAX
    calls = held_out_calls(corpus, spec, call_bars, continuation_bars, n_compositions, rng)
    reference = relative_tunes(held_out(corpus))
    heard_keys = [call_key(c) for c in calls.events]
    tables: dict[str, dict[str, float]] = {}
    fidelity: dict[str, StyleFidelity] = {}
    quality: dict[str, AnswerQuality] = {}
    samples: list[dict[str, Any]] = []
    table1_counts: dict[str, int] = {}
    listened: dict[str, Any] = {}
    probed: dict[str, Any] = {}
    motifs: dict[str, float] = {}
    musicianship: dict[str, Any] = {}
    aucs: dict[str, float] = {}
    lines = probe_lines(calls.events, PROBE_LINES)
    continuations: list[np.ndarray] = []
    for name, policy in policies.items():
        answers = _answers(
            spec, calls.events, policy, temperature, rng, answer_bars, answer_gap_steps
        )
        if not continuations:
            # The tunes' own next bars, as long as the first policy's answer to each call.
            continuations = [
                c[: len(a)] for c, a in zip(calls.continuation, answers.events, strict=True)
            ]
        whole = [i for i, c in enumerate(continuations) if len(c) == len(answers.events[i])]
        listened[name] = listening(spec, calls.events, answers.events, continuations)
        motifs[name] = float(
            np.nanmean(
                [motif_share(c, a) for c, a in zip(calls.events, answers.events, strict=True)]
            )
        )
        musicianship[name] = phrase_figures(answers.events)
        aucs[name] = classifier_auc(
            answers.events,
            [t for t, _ in heard_keys],
            [continuations[i] for i in whole],
            [heard_keys[i][0] for i in whole],
            seed=seed,
        )

        def answer(probe_calls: list[np.ndarray], policy: Policy = policy) -> list[np.ndarray]:
            return _answers(
                spec, probe_calls, policy, temperature, rng, answer_bars, answer_gap_steps
            ).events

        if lines:
            probed[name] = probe(spec, answer, lines)
        # RL Tuner's Table 1 is defined on 32-step C-major compositions: score the first 32
        # steps of the answers to calls the environment heard as major (minor answers' b3/b6/b7
        # are in *their* key), in the key-relative frame (tonic C).
        scored = [
            r[:COMPOSITION_STEPS]
            for r, m in zip(answers.relative_events, answers.minor, strict=True)
            if not m and len(r) >= COMPOSITION_STEPS
        ]
        tables[name] = table1(
            np.stack(scored) if scored else np.zeros((0, COMPOSITION_STEPS), np.int64)
        )
        table1_counts[name] = len(scored)
        fidelity[name] = style_fidelity(answers.relative_events, reference)
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
                start = int(answers.start_steps[i])
                samples.append(
                    {
                        "policy": name,
                        "call": _call_as_heard(calls.events[i], start),
                        "answer": np.asarray(answers.events[i]),
                        "tonic": int(calls.tonic[i]),
                        "minor": bool(calls.minor[i]),
                        "answer_tonic": int(answers.tonic[i]),
                        "answer_minor": bool(answers.minor[i]),
                    }
                )
    # The tunes' own continuations, in their key-relative frame: the human reference.
    relative_continuations = [
        np.where(c >= 0, to_relative(c, int(t)), c)
        for c, t in zip(continuations, calls.tonic, strict=True)
    ]
    human = [
        r[:COMPOSITION_STEPS]
        for r, m in zip(relative_continuations, calls.minor, strict=True)
        if len(r) >= COMPOSITION_STEPS and not m
    ]
    relative_continuations = [r for r in relative_continuations if len(r)]
    if human:
        tables[CORPUS_COLUMN] = table1(np.stack(human))
        table1_counts[CORPUS_COLUMN] = len(human)
    if relative_continuations:
        fidelity[CONTINUATION_ROW] = style_fidelity(relative_continuations, reference)
        musicianship[CONTINUATION_ROW] = phrase_figures([c for c in continuations if len(c)])
    motifs[CORPUS_COLUMN] = float(
        np.nanmean([motif_share(c, h) for c, h in zip(calls.events, continuations, strict=True)])
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
        musicianship=musicianship,
        classifier_auc=aucs,
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
    lines += musicianship_markdown(result)
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


def _pct(value: float) -> str:
    return f"{value:.1%}" if np.isfinite(value) else "n/a"


def musicianship_markdown(result: EvalResult) -> list[str]:
    """The table a musician reads first: each policy's answers beside the real continuations
    (JS divergences, leaps and repeats, trills and scale runs, listening, the classifier), the
    degenerate patterns, and a plain verdict per policy."""
    from training.eval.musicianship import OSCILLATION_NOTES, RUN_NOTES

    if not result.musicianship:
        return []
    names = [n for n in result.musicianship if n != CONTINUATION_ROW]
    columns = [CONTINUATION_ROW, *names]
    nan = float("nan")

    def fid(column: str, attr: str) -> float:
        f = result.fidelity.get(column)
        return float(getattr(f, attr)) if f else nan

    def mus(column: str, attr: str) -> float:
        f = result.musicianship.get(column)
        return float(getattr(f, attr)) if f else nan

    def spear(column: str, feature: str) -> float:
        if column == CONTINUATION_ROW:
            first = next(iter(result.listening.values()), None)
            return float(first.continuation[feature]) if first else nan
        heard = result.listening.get(column)
        return float(heard.policy[feature]) if heard else nan

    rows: list[tuple[str, Any]] = [
        ("JS intervals (bits, vs held-out tunes)", lambda c: _fmt(fid(c, "interval_js_bits"))),
        ("JS key-relative pitch classes (bits)", lambda c: _fmt(fid(c, "pitch_class_js_bits"))),
        ("JS inter-onset intervals (bits)", lambda c: _fmt(fid(c, "ioi_js_bits"))),
        ("leaps wider than a fifth, share of intervals", lambda c: _pct(mus(c, "leap_share"))),
        ("repeated notes, share of intervals", lambda c: _pct(mus(c, "repeat_share"))),
        (
            f"answers with a two-note oscillation of >= {OSCILLATION_NOTES} notes",
            lambda c: _pct(mus(c, "oscillation_share")),
        ),
        (
            f"answers with a stepwise run of >= {RUN_NOTES} notes",
            lambda c: _pct(mus(c, "run_share")),
        ),
        ("Spearman(call, answer): mean IOI", lambda c: _fmt(spear(c, "mean_ioi"), 2)),
        ("Spearman(call, answer): register", lambda c: _fmt(spear(c, "mean_pitch"), 2)),
        ("Spearman(call, answer): density", lambda c: _fmt(spear(c, "density"), 2)),
        (
            "classifier AUC, answers vs real continuations (0.5 = indistinguishable)",
            lambda c: (
                "0.5 by definition"
                if c == CONTINUATION_ROW
                else _fmt(result.classifier_auc.get(c, nan), 2)
            ),
        ),
        (
            "longest same-pitch run, median / max",
            lambda c: (
                f"{_fmt(mus(c, 'median_same_pitch_run'), 1)} / "
                f"{int(mus(c, 'max_same_pitch_run')) if np.isfinite(mus(c, 'max_same_pitch_run')) else 'n/a'}"
            ),
        ),
        (
            "the most frequent pitch's share of an answer, median",
            lambda c: _pct(mus(c, "median_top_pitch_share")),
        ),
    ]
    phrases = result.musicianship[names[0]].phrases if names else 0
    lines = [
        "",
        "## What a musician hears",
        "",
        f"Answers to {phrases} held-out calls played as `deepjam jam` plays them (live's start "
        f"step, answer length and opening note; temperature {result.temperature:g}), beside the "
        "tunes' own next bars cut to the answer's length (training/eval/musicianship.py).",
        "",
        "| Figure | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(c) for c in columns) + " |")
    lines.append("")
    for name in names:
        reasons = result.musicianship[name].degenerate()
        if reasons:
            lines.append(f"- **{name} is degenerate**: " + "; ".join(reasons) + ".")
        else:
            lines.append(f"- {name}: no degenerate pattern (one-note runs, trills, one pitch).")
    return lines


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
