"""RL Tuner's Table 1: music-theory statistics of generated compositions.

Jaques, Gu, Turner, Eck, "Tuning Recurrent Neural Networks with Reinforcement Learning"
(ICLR 2017 workshop; arXiv:1611.02796), Table 1, computed as Magenta's code computes it:
``magenta/models/rl_tuner/rl_tuner_eval_metrics.py`` (``compose_and_evaluate_piece``,
``get_stat_dict_string``), with the detectors of ``rl_tuner.py`` (``detect_repeating_notes``,
``detect_last_motif``, ``detect_repeated_motif``, ``detect_leap_up_back``,
``detect_sequential_interval``, ``detect_high_unique``, ``detect_low_unique``) and
``rl_tuner_ops.autocorrelate``.

Their definitions, kept here
----------------------------
* A composition is 32 tokens, one per 16th-note step. Every token counts as a "note" in the
  denominators: ``total_notes = compositions x 32``, holds and rests included.
* Tokens are the Note RNN's one-hot indices: 0 = no event (hold), 1 = note off (rest),
  2 + (pitch - 48) = a note on. We map our grid events onto exactly these values
  (``rl_tuner_tokens``); autocorrelation is computed on them.
* Notes excessively repeated: per step, the token just chosen repeats the tokens before it
  (consecutive equal tokens, with rests and holds allowed in between) more than 4 times, or more
  than 6 times if a hold or rest lies among them; a rest counts after more than 1 earlier rest.
  Note that holding one note for more than 5 further steps is "excessive repetition" of the hold
  token by this definition (their code does not special-case it).
* Mean autocorrelation at lags 1, 2, 3: ``sum(x[lag:] * x[:-lag]) / n / var`` of the mean-removed
  token sequence of each composition, averaged over compositions with ``nanmean`` (a constant
  composition gives 0/0 = nan and is left out).
* Notes not in key: tokens that are neither hold, rest, nor a pitch of C major (their
  ``C_MAJOR_KEY`` lists the two special tokens as in key), over all steps.
* Compositions starting with the tonic: the first token is their ``C_MAJOR_TONIC`` = token 14 =
  MIDI 60 exactly (middle C, not any C).
* Leaps resolved: ``resolved / (resolved + doubled)``, where a leap is a melodic interval of 7
  semitones or more between the chosen note and the last note before it (holds and rests
  skipped); a leap is resolved by a leap back in the other direction more than 6 steps later, or
  by stepping back to (or past) the note it leapt from; a second leap in the same direction is
  "doubled". A leap back within 6 steps clears the leap without counting it either way.
* Unique max note: the highest token of the composition occurs once (their ``max`` runs over all
  tokens, so a composition with no note has "max" = the rest or hold token).
* Unique min note: the lowest pitch token occurs once (holds and rests excluded); False when
  there is no note.
* Notes in motif: steps whose last 8 tokens (the step included; ``bar_length=8`` in their code)
  hold at least 3 distinct pitches; over all steps.
* Notes in repeated motif: steps where those last 8 tokens are a motif and occur, token for token
  (holds and rests included), entirely before the motif starts; over all steps.

Where we deviate, and why
-------------------------
1. The encoding bug, fixed. ``rl_tuner.py`` names its special actions ``NOTE_OFF = 0`` and
   ``NO_EVENT = 1``, but the Note RNN's data encoding (Magenta's melody one-hot: index =
   event + 2 with ``MELODY_NOTE_OFF = -1``, ``MELODY_NO_EVENT = -2``; ``rl_tuner_ops.decoder``
   maps back with ``e - 2``) has index 0 = no event (hold) and 1 = note off (rest). The only
   Table 1 rule where the two differ is ``detect_repeating_notes``' special case "a note-off after
   more than one note-off is excessive": run on real output it fires on the third consecutive
   *hold*, which counts every note longer than two 16ths as excessive repetition. Here the special
   case applies to rests, as its name intends. Everywhere else (motifs, leaps, unique min, in key)
   hold and rest are treated alike, so the swap does not matter there. ``encoding_bug=True``
   reproduces the original behaviour.
2. The input is our grid: HOLD_EVENT, REST_EVENT or a key-relative MIDI pitch (tonic C, so "in
   key" is C major exactly as in RL Tuner; a minor-key style is also scored against C major, as
   RL Tuner would). Our agent's range (spec default 48..84) includes 84, one above RL Tuner's
   vocabulary (48..83): it maps to token 38; "in key" is decided by pitch class, which equals
   their ``C_MAJOR_KEY`` list on 48..83. Pitches below 48 (not possible for our agent) would map
   to tokens below 2; they are still treated as notes, never as hold or rest.
3. Compositions: RL Tuner primes its LSTM with a random note and samples from softmax(Q) for 32
   steps. Ours are sampled from softmax(Q) (``exports.selection.choose_actions``, temperature 1)
   by ``training.eval.evaluate``; the priming is the environment's (an empty or a call context).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exports.spec import HOLD_EVENT, PITCH_CLASSES, REST_EVENT

# rl_tuner_ops / rl_tuner.py constants, in their units.
COMPOSITION_STEPS = 32  # num_notes_in_melody
MIN_NOTE = 48  # rl_tuner_ops.MIN_NOTE: token 2 is MIDI 48
NUM_SPECIAL_EVENTS = 2
TOKEN_HOLD = 0  # the data encoding's MELODY_NO_EVENT (rl_tuner.py misnames it NOTE_OFF)
TOKEN_REST = 1  # the data encoding's MELODY_NOTE_OFF (rl_tuner.py misnames it NO_EVENT)
TONIC_PITCH = 60  # rl_tuner_ops.C_MAJOR_TONIC = 14 = MIDI 60
C_MAJOR_PITCH_CLASSES = frozenset({0, 2, 4, 5, 7, 9, 11})
MOTIF_BAR_STEPS = 8  # detect_last_motif(bar_length=8)
MOTIF_MIN_DISTINCT_NOTES = 3
LEAP_SEMITONES = 7  # rl_tuner_ops.FIFTH: "interval >= FIFTH" is a leap
STEPS_BETWEEN_LEAPS = 6  # detect_leap_up_back(steps_between_leaps=6)
AUTOCORRELATION_LAGS = (1, 2, 3)

# Table 1 rows: key, label, kind ("fraction" shown as a percentage, "value" as is).
TABLE1_ROWS: tuple[tuple[str, str, str], ...] = (
    ("notes_excessively_repeated", "Notes excessively repeated", "fraction"),
    ("autocorrelation_lag1", "Mean autocorrelation - lag 1", "value"),
    ("autocorrelation_lag2", "Mean autocorrelation - lag 2", "value"),
    ("autocorrelation_lag3", "Mean autocorrelation - lag 3", "value"),
    ("notes_not_in_key", "Notes not in key", "fraction"),
    ("starting_with_tonic", "Compositions starting with tonic", "fraction"),
    ("leaps_resolved", "Leaps resolved", "fraction"),
    ("unique_max_note", "Compositions with unique max note", "fraction"),
    ("unique_min_note", "Compositions with unique min note", "fraction"),
    ("notes_in_motif", "Notes in motif", "fraction"),
    ("notes_in_repeated_motif", "Notes in repeated motif", "fraction"),
)

# Jaques et al. 2017 (arXiv:1611.02796), Table 1, 100,000 compositions per model, as fractions.
PAPER_NOTE_RNN: dict[str, float] = {
    "notes_excessively_repeated": 0.633,
    "autocorrelation_lag1": -0.16,
    "autocorrelation_lag2": 0.14,
    "autocorrelation_lag3": -0.13,
    "notes_not_in_key": 0.001,
    "starting_with_tonic": 0.009,
    "leaps_resolved": 0.772,
    "unique_max_note": 0.647,
    "unique_min_note": 0.494,
    "notes_in_motif": 0.059,
    "notes_in_repeated_motif": 0.00007,
}
PAPER_Q: dict[str, float] = {
    "notes_excessively_repeated": 0.0,
    "autocorrelation_lag1": -0.11,
    "autocorrelation_lag2": 0.03,
    "autocorrelation_lag3": 0.03,
    "notes_not_in_key": 0.01,
    "starting_with_tonic": 0.288,
    "leaps_resolved": 0.911,
    "unique_max_note": 0.564,
    "unique_min_note": 0.519,
    "notes_in_motif": 0.757,
    "notes_in_repeated_motif": 0.0011,
}
PAPER_CITATION = "Jaques et al. 2017, arXiv:1611.02796, Table 1"


@dataclass
class CompositionStats:
    """Raw counts over many compositions (their ``stat_dict``); ``table1()`` gives the rates."""

    num_compositions: int = 0
    total_notes: int = 0
    """Steps scored: compositions x steps, holds and rests included (their denominator)."""
    num_repeated_notes: int = 0
    notes_not_in_key: int = 0
    num_starting_tonic: int = 0
    num_resolved_leaps: int = 0
    num_leap_twice: int = 0
    num_high_unique: int = 0
    num_low_unique: int = 0
    notes_in_motif: int = 0
    notes_in_repeated_motif: int = 0
    autocorrelation: dict[int, list[float]] = field(
        default_factory=lambda: {lag: [] for lag in AUTOCORRELATION_LAGS}
    )

    def table1(self) -> dict[str, float]:
        """The Table 1 rows (keys of ``TABLE1_ROWS``) as fractions 0..1 or correlations.

        Rates are nan where the denominator is 0 (no compositions, or no leap at all).
        """
        comps = float(self.num_compositions) or np.nan
        notes = float(self.total_notes) or np.nan
        leaps = float(self.num_resolved_leaps + self.num_leap_twice) or np.nan
        row: dict[str, float] = {
            "notes_excessively_repeated": self.num_repeated_notes / notes,
            "notes_not_in_key": self.notes_not_in_key / notes,
            "starting_with_tonic": self.num_starting_tonic / comps,
            "leaps_resolved": self.num_resolved_leaps / leaps,
            "unique_max_note": self.num_high_unique / comps,
            "unique_min_note": self.num_low_unique / comps,
            "notes_in_motif": self.notes_in_motif / notes,
            "notes_in_repeated_motif": self.notes_in_repeated_motif / notes,
        }
        for lag in AUTOCORRELATION_LAGS:
            values = np.asarray(self.autocorrelation[lag], dtype=np.float64)
            finite = values[~np.isnan(values)]
            row[f"autocorrelation_lag{lag}"] = float(finite.mean()) if finite.size else np.nan
        return {key: float(row[key]) for key, _, _ in TABLE1_ROWS}


def rl_tuner_tokens(events: np.ndarray) -> np.ndarray:
    """Grid events (..., T) -> RL Tuner's token indices: hold 0, rest 1, pitch p -> p - 46."""
    e = np.asarray(events, dtype=np.int64)
    return np.where(
        e == HOLD_EVENT,
        TOKEN_HOLD,
        np.where(e == REST_EVENT, TOKEN_REST, e - MIN_NOTE + NUM_SPECIAL_EVENTS),
    )


def autocorrelate(signal: np.ndarray, lag: int) -> float:
    """rl_tuner_ops.autocorrelate: sum(x[lag:] x[:-lag]) / n / var(signal); nan if constant."""
    s = np.asarray(signal, dtype=np.float64)
    n = len(s)
    x = s - s.mean()
    c0 = s.var()
    if c0 == 0.0:
        return float("nan")  # numpy gives 0/0 = nan here (with a warning); their nanmean drops it
    return float((x[lag:] * x[: n - lag]).sum() / n / c0)


def _is_note(event: int) -> bool:
    return event >= 0


def is_excessively_repeated(previous: list[int], event: int, encoding_bug: bool = False) -> bool:
    """rl_tuner.detect_repeating_notes: does ``event`` repeat ``previous`` excessively?

    ``previous`` and ``event`` are grid events. With ``encoding_bug`` the note-off special case
    fires on holds, as Magenta's code does on the Note RNN's real output (see module docstring).
    """
    note_off = HOLD_EVENT if encoding_bug else REST_EVENT
    no_event = REST_EVENT if encoding_bug else HOLD_EVENT
    num_repeated = 0
    contains_held_notes = False
    contains_breaks = False
    for token in reversed(previous):
        if token == event:
            num_repeated += 1
        elif token == note_off:
            contains_breaks = True
        elif token == no_event:
            contains_held_notes = True
        else:
            break
    if event == note_off and num_repeated > 1:
        return True
    if not contains_held_notes and not contains_breaks:
        return num_repeated > 4
    return num_repeated > 6


def last_motif(composition: list[int]) -> list[int] | None:
    """rl_tuner.detect_last_motif: the last 8 events if they hold >= 3 distinct pitches."""
    if len(composition) < MOTIF_BAR_STEPS:
        return None
    last_bar = composition[-MOTIF_BAR_STEPS:]
    distinct = {e for e in last_bar if _is_note(e)}
    return last_bar if len(distinct) >= MOTIF_MIN_DISTINCT_NOTES else None


def is_repeated_motif(previous: list[int], event: int) -> bool:
    """rl_tuner.detect_repeated_motif: the motif ending at ``event`` occurred before it started."""
    composition = previous + [event]
    motif = last_motif(composition)
    if motif is None:
        return False
    before = previous[: len(previous) - (MOTIF_BAR_STEPS - 1)]  # their composition[:-(8-1)]
    m = len(motif)
    return any(before[i : i + m] == motif for i in range(len(before) - m + 1))


class LeapTracker:
    """rl_tuner.detect_leap_up_back with its per-composition state (reset per composition)."""

    RESOLVED = 1
    DOUBLED = -1

    def __init__(self) -> None:
        self.direction = 0  # composition_direction: +1 ascending, -1 descending, 0 none
        self.leapt_from: int | None = None
        self.steps_since_last_leap = 0

    def step(self, previous: list[int], event: int) -> int:
        """Outcome of playing ``event`` after ``previous``: RESOLVED, DOUBLED or 0."""
        if not previous:
            return 0
        if not _is_note(event):
            self.steps_since_last_leap += 1
            return 0
        prev_note = next((e for e in reversed(previous) if _is_note(e)), None)
        # detect_sequential_interval returns 0 when no note precedes; an IN_KEY_FIFTH (-5) is a
        # 7-semitone step from C or G and counts as a leap like any interval >= 7.
        interval = 0 if prev_note is None else abs(event - prev_note)
        outcome = 0
        if prev_note is not None and interval >= LEAP_SEMITONES:
            leap_direction = 1 if event > prev_note else -1
            if self.direction != 0:
                if self.direction != leap_direction:
                    if self.steps_since_last_leap > STEPS_BETWEEN_LEAPS:
                        outcome = self.RESOLVED
                    self.direction = 0
                    self.leapt_from = None
                else:
                    outcome = self.DOUBLED
            else:
                self.direction = leap_direction
                self.leapt_from = prev_note
            self.steps_since_last_leap = 0
        else:
            self.steps_since_last_leap += 1
            if self.leapt_from is not None and (
                (self.direction == 1 and event <= self.leapt_from)
                or (self.direction == -1 and event >= self.leapt_from)
            ):
                outcome = self.RESOLVED
                self.direction = 0
                self.leapt_from = None
        return outcome


def _in_key(event: int) -> bool:
    # C_MAJOR_KEY lists the hold and rest tokens as in key.
    return not _is_note(event) or event % PITCH_CLASSES in C_MAJOR_PITCH_CLASSES


def _order_key(event: int) -> tuple[int, int]:
    """Token order of their max: hold (token 0) < rest (token 1) < every pitch."""
    if event == HOLD_EVENT:
        return (0, TOKEN_HOLD)
    if event == REST_EVENT:
        return (0, TOKEN_REST)
    return (1, event)


def add_composition(
    stats: CompositionStats, events: np.ndarray, encoding_bug: bool = False
) -> CompositionStats:
    """Score one composition (1-D grid events, key-relative) into ``stats`` and return it.

    Mirrors ``compose_and_evaluate_piece``: every step is scored against the steps before it,
    then the whole composition's autocorrelation and unique extrema.
    """
    composition = [int(e) for e in np.asarray(events).ravel()]
    leaps = LeapTracker()
    previous: list[int] = []
    for beat, event in enumerate(composition):
        if not _in_key(event):
            stats.notes_not_in_key += 1
        if beat == 0 and event == TONIC_PITCH:
            stats.num_starting_tonic += 1
        if is_excessively_repeated(previous, event, encoding_bug):
            stats.num_repeated_notes += 1
        if last_motif(previous + [event]) is not None:
            stats.notes_in_motif += 1
        if is_repeated_motif(previous, event):
            stats.notes_in_repeated_motif += 1
        outcome = leaps.step(previous, event)
        if outcome == LeapTracker.RESOLVED:
            stats.num_resolved_leaps += 1
        elif outcome == LeapTracker.DOUBLED:
            stats.num_leap_twice += 1
        previous.append(event)

    tokens = rl_tuner_tokens(np.asarray(composition))
    for lag in AUTOCORRELATION_LAGS:
        stats.autocorrelation[lag].append(autocorrelate(tokens, lag))
    if composition:
        highest = max(composition, key=_order_key)
        if composition.count(highest) == 1:
            stats.num_high_unique += 1
        notes = [e for e in composition if _is_note(e)]
        if notes and composition.count(min(notes)) == 1:
            stats.num_low_unique += 1
    stats.num_compositions += 1
    stats.total_notes += len(composition)
    return stats


def composition_stats(compositions: np.ndarray, encoding_bug: bool = False) -> CompositionStats:
    """Counts over (N, T) grid-event compositions (key-relative, tonic C)."""
    comps = np.asarray(compositions)
    if comps.ndim != 2:
        raise ValueError(f"expected compositions of shape (N, T), got {comps.shape}")
    stats = CompositionStats()
    for row in comps:
        add_composition(stats, row, encoding_bug)
    return stats


def table1(compositions: np.ndarray, encoding_bug: bool = False) -> dict[str, float]:
    """Table 1 rows for (N, T) compositions: ``composition_stats(...).table1()``."""
    return composition_stats(compositions, encoding_bug).table1()


def format_table1_value(kind: str, value: float) -> str:
    """'63.3%' for fractions (more digits when small), '-0.16' for correlations, 'n/a' for nan."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if kind == "value":
        return f"{value:+.2f}"
    percent = 100.0 * value
    if percent == 0.0 or abs(percent) >= 1.0:
        return f"{percent:.1f}%"
    return f"{percent:.2g}%" if abs(percent) >= 0.01 else f"{percent:.1g}%"
