"""The reward: r = w_style * log p_style(a|s) + w_theory * r_theory + w_play * r_play.

Everything is vectorized over N episodes and lives in the key-relative frame (the tonic is pitch
class 0, see ``exports.tonality``). Every rule is its own function ``rule(x: RewardInputs) ->
(N,) float`` that scores the step ``x.t`` of each episode, so each can be tested on a hand-made
melody (``score_melody`` runs one rule over every step of one melody).

Theory rules follow Magenta's RL Tuner (Jaques et al. 2017, ``rl_tuner.py``) in spirit, with our
own code and without its known bugs: HOLD and REST are read as what they are (RL Tuner swapped
its tokens), repetition counts repeated *onsets* only (a long hold is not a repetition), and
diatonic thirds and fifths are recognised in any key (RL Tuner never counted its in-key thirds).
Magnitudes are RL Tuner's interval values (x5 scaler) and smaller structural bonuses, so that
one episode's theory return stays within a few tens, comparable to the style term.

Phrases, not echoes: a two-note oscillation and a long same-pitch run count as repetition;
leaps wider than a fifth and repeated notes are paid for near the corpus's rates (3.7% and 14% of
the intervals of real continuations), not driven to zero; the answer closes on a stable degree on
a strong beat.

Play rules score the agent against the player's part: in answer episodes (call-and-response) the
answer should move at the call's pace in note values of its own (copying the call's note values
step for step costs), develop the call's motifs (transposed, inverted, re-rhythmed earn more than
an exact copy), use the call's pitch classes, and keep silent while the player sounds; in duet episodes, consonant vertical intervals, no parallel
fifths or octaves, and room for the player (few onsets while the player is busy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from exports.encoding import CALL_REGISTER_CENTRE
from exports.errors import ConfigError
from exports.spec import DEFAULT_SPEC, HOLD_EVENT, PITCH_CLASSES, REST_EVENT
from exports.tonality import scale_mask

StyleLogProbs = Callable[[np.ndarray], np.ndarray]
"""(N, state_dim) float32 states -> (N, n_actions) log-probabilities of each next action."""


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the three reward terms (a style's config; recorded in model metadata)."""

    w_style: float = 1.0
    """Weight of log p_style(a | s) from the supervised style model (RL Tuner's Note-RNN term)."""
    w_theory: float = 1.0
    """Weight of the music-theory rules."""
    w_play: float = 1.0
    """Weight of the interplay rules (answer the call / accompany the line)."""

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RewardWeights:
        """Accepts ``w_style`` or ``style`` spellings; raises ConfigError on unknown keys."""
        known = {"w_style", "w_theory", "w_play"}
        out: dict[str, float] = {}
        for key, value in values.items():
            name = key if key in known else f"w_{key}"
            if name not in known:
                raise ConfigError(f"unknown reward weight {key!r}; expected one of {sorted(known)}")
            try:
                out[name] = float(value)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"reward weight {key!r} must be a number, got {value!r}") from err
        return cls(**out)


class RewardInputs(NamedTuple):
    """What the rules see at step ``t`` of each of N episodes (key-relative pitches).

    The agent's arrays hold its turn so far; entries after ``t`` are HOLD_EVENT / -1 and are
    never read. The player's arrays cover the same turn steps (known in full: the corpus line).
    """

    agent_events: np.ndarray  # (N, T) int: grid events of the agent's turn, step t included
    agent_sounding: np.ndarray  # (N, T) int: pitch the agent sounds per step, -1 silence
    player_sounding: np.ndarray  # (N, T) int: pitch the player sounds per step, -1 silence
    player_onset: np.ndarray  # (N, T) bool: the player started a note at that step
    call_events: np.ndarray  # (N, C) int: the call (answer episodes), C a multiple of a bar
    t: np.ndarray  # (N,) int: the step being scored, 0 = first step of the turn
    turn_steps: np.ndarray  # (N,) int: length of the agent's turn
    minor: np.ndarray  # (N,) bool: key is minor
    answering: np.ndarray  # (N,) bool: answer episode (True) or duet (False)
    steps_per_bar: int = 16
    """The turn starts on a bar line, so the bar ends where (t + 1) % steps_per_bar == 0."""
    previous_onsets: np.ndarray | None = None
    """(N, K) optional cache: steps of the last K onsets before t, latest first, -1 if none
    (``with_history`` fills it once so that rules need not search the turn again)."""
    call_summary: np.ndarray | None = None
    """(N, call_features) the call summary in the state (``exports.encoding.summarize_call``);
    None: the rules that follow the call's rhythm and register score 0."""


# --- magnitudes --------------------------------------------------------------------------------
OUT_OF_KEY_PENALTY = -1.0
TONIC_START_REWARD = 2.0
TONIC_END_REWARD = 2.0
MAX_REPEATED_ONSETS = 4  # a fifth consecutive onset of the same pitch is "excessive"
REPETITION_PENALTY = -1.0
LEAP_MIN_SEMITONES = 8  # "a leap over a fifth": a minor sixth or more
STEP_MAX_SEMITONES = 2
LEAP_RESOLVED_REWARD = 1.0
LEAP_UNRESOLVED_PENALTY = -1.0
MOTIF_MIN_DISTINCT_PITCHES = 3
MOTIF_REWARD = 1.0
MOTIF_EXTRA_PITCH_BONUS = 0.1
REPEATED_MOTIF_REWARD = 2.0
HIGH_LOW_UNIQUE_REWARD = 1.0
HIGH_LOW_MIN_NOTES = 3
UNIQUE_EXTREMES_SHAPING = 0.5
# RL Tuner's detectors as its Table 1 counts them (training/eval/rl_tuner_metrics.py).
HELD_TOO_LONG_STEPS = 4  # a hold after more than 4 holds since the last note
HELD_TOO_LONG_WITH_REST = 6  # ... more than 6 when a rest lies among them
HELD_TOO_LONG_PENALTY = -1.0
MOTIF_WINDOW_STEPS = 8  # their detect_last_motif(bar_length=8)
HALF_BAR_MOTIF_REWARD = 0.05
LEAP_RETURN_SEMITONES = 7
LEAP_RETURN_MIN_GAP_STEPS = 6
LEAP_RETURN_REWARD = 1.0
LEAP_DOUBLED_PENALTY = -3.0

# RL Tuner's preferred_intervals (its values x its scaler 5), indexed by |interval| 0..12;
# larger than an octave is -5. Diatonic thirds and fifths get the "in key" value.
INTERVAL_REWARD = np.array(
    [0.0, 0.4, 0.4, 0.45, 0.45, 0.35, -0.5, 0.1, 0.25, 0.25, -1.5, -1.5, 0.0]
)
BEYOND_OCTAVE_PENALTY = -5.0
PREFERRED_INTERVALS_SCALE = 0.25
"""RL Tuner's interval values reward every onset: scaled down so they do not buy density."""
DIATONIC_THIRD_REWARD = 0.75
DIATONIC_FIFTH_REWARD = 0.5

# Following the call: rhythm and register near the call's, a varied motif, not an echo.
RHYTHM_NEAR_REWARD = 0.5
"""Per answer onset whose answer-so-far mean log2 IOI lies within RHYTHM_BAND_OCTAVES of the
call's: the answer moves at the call's pace, in note values of its own."""
RHYTHM_BAND_OCTAVES = 0.5
"""Free band around the call's mean log2 IOI (0.5: within a factor of about 1.4)."""
RHYTHM_FALLOFF_OCTAVES = 1.0
"""Beyond the band the reward falls linearly, reaching 0 one octave (a factor 2) further."""
RHYTHM_MISMATCH_PENALTY = -0.5
"""The floor of that fall: an answer four times slower or faster than the call."""
RHYTHM_COPY_PENALTY = -0.75
"""Per answer onset whose IOI equals the call's IOI at the same place (the call's IOIs read
cyclically) while more than RHYTHM_COPY_SHARE of the answer's IOIs so far did: the call's note
values copied step for step. Larger than RHYTHM_NEAR_REWARD, so a copy nets less per note than
a related rhythm."""
RHYTHM_COPY_SHARE = 0.75
RHYTHM_COPY_MIN_IOIS = 4
"""Copying is judged once the answer has this many IOIs (five notes)."""
REGISTER_FREE_SEMITONES = 7
REGISTER_PENALTY_PER_OCTAVE = -1.0
"""Per answer onset, per octave its pitch lies beyond a fifth from the call's mean pitch
(moved into the agent's range)."""
COPY_PENALTY = -1.5
"""At a bar end: the agent's bar is an exact copy (same pitches, same onsets) of a call bar."""
CUT_SHORT_PENALTY = -1.0
"""A note started in the last CUT_SHORT_STEPS of the turn: it would be cut at once."""
CUT_SHORT_STEPS = 2
SLOW_CALL_LOG_IOI = 0.5
"""Call summary's mean log2 IOI / 4 at which a call counts as slow (quarter notes): the
held-too-long and half-bar-motif detectors, which pay for eighth-note motion, are off then."""

ECHO_CONTOUR_REWARD = 0.5
"""Half what it was: the contour rule also pays for the call's onset steps, i.e. an echo."""
CALL_PITCH_CLASS_REWARD = 0.1
OVERLAP_PENALTY = -1.0
MISSING_NOTE_PENALTY = -1.0
CONSONANT_REWARD = 0.3
DISSONANT_PENALTY = -0.5
PARALLEL_PERFECT_PENALTY = -1.0
BUSY_PLAYER_PENALTY_PER_ONSET = -0.25
BUSY_WINDOW_STEPS = 4  # one beat

# Phrases, not echoes: motifs developed, no trills, leaps and repeats at the corpus's rate, a
# stable close.
MOTIF_NOTES = 4
"""A motif is a four-note figure: three scale-degree intervals and three IOIs."""
MOTIF_DEVELOPED_REWARD = 1.0
"""A call figure transposed, inverted or re-rhythmed in the answer."""
MOTIF_COPY_REWARD = 0.25
"""The call figure copied exactly (same pitches, same rhythm): less than developed."""
OSCILLATION_NOTES = 5
"""A two-note oscillation (F G F G F) of this many onsets or more is repetition."""
OSCILLATION_PENALTY = -1.5
"""Per onset that extends one. The shipped default had one of >= 6 notes in 5% of answers,
real continuations in 0%."""
SAME_PITCH_RUN_FREE = 3
"""Onsets of one pitch in a row that cost nothing (two repeated notes)."""
SAME_PITCH_RUN_PENALTY = -0.5
"""The 4th onset of one pitch in a row, and each one after it (on top of ``repetition``'s -1
from the 5th on): a run longer than four notes costs -1.5 a note."""
WIDE_LEAP_SEMITONES = 7
"""A leap is wider than a fifth (the issue's and ``training.eval``'s count)."""
CORPUS_LEAP_RATE = 0.037
CORPUS_REPEAT_RATE = 0.14
"""Shares of leaps wider than a fifth and of repeated notes among the intervals of real
continuations (held-out folk tunes and chorales): 3.7% and 14%."""
INTERVAL_RATE_WEIGHT = 0.25
"""Scale of the potential -(|leaps - 0.037 n| + |repeats - 0.14 n|) over the answer's n
intervals; each onset earns the change in it, so the turn's sum is the final value: near the
corpus's rates, not zero leaps and not zero repeats."""
STABLE_CLOSE_REWARD = 1.5
"""The answer's last note, in its last bar, on the tonic, third or fifth, struck on beat 1 or
3; on beat 2 or 4 half of it."""
STRONG_BEAT_STEPS = 8
"""Steps between strong beats (beats 1 and 3 of a 4/4 bar of 16ths)."""

# Vertical interval classes (agent - player) mod 12: unison/octave, thirds, fifth, sixths.
CONSONANT_CLASSES = np.zeros(PITCH_CLASSES, dtype=bool)
CONSONANT_CLASSES[[0, 3, 4, 7, 8, 9]] = True
DISSONANT_CLASSES = np.zeros(PITCH_CLASSES, dtype=bool)
DISSONANT_CLASSES[[1, 2, 6, 10, 11]] = True  # the perfect fourth (5) counts as neither
PERFECT_CLASSES = (0, 7)

AGENT_PITCH_LOW, AGENT_PITCH_HIGH = DEFAULT_SPEC.pitch_low, DEFAULT_SPEC.pitch_high
"""The register rule's clip: where the agent can play (the default spec's range)."""

SCALES = np.stack([scale_mask(False), scale_mask(True)])  # (2, 12): major, minor


# --- helpers -----------------------------------------------------------------------------------
def _at(values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """values[n, t[n]] for each row; t must be in range."""
    return values[np.arange(len(t)), t]


def _previous_onsets(events: np.ndarray, before: np.ndarray, k: int) -> np.ndarray:
    """(N, k) step indices of the last k onsets strictly before ``before`` (latest first), -1."""
    n, steps = events.shape
    cols = np.arange(steps)
    onset = events >= 0
    limit = np.asarray(before)
    out = np.full((n, k), -1, dtype=np.int64)
    for i in range(k):
        idx = np.where(onset & (cols < limit[:, None]), cols, -1).max(axis=1)
        out[:, i] = idx
        limit = np.where(idx >= 0, idx, -1)
    return out


def _prev(x: RewardInputs, k: int) -> np.ndarray:
    """(N, k) steps of the last k agent onsets before step t (latest first), -1 if none."""
    cached = x.previous_onsets
    if cached is not None and cached.shape[1] >= k:
        return cached[:, :k]
    return _previous_onsets(x.agent_events, x.t, k)


HISTORY_ONSETS = 4


def with_history(x: RewardInputs) -> RewardInputs:
    """The same inputs with the ``previous_onsets`` cache filled (what the rules need)."""
    return x._replace(previous_onsets=_previous_onsets(x.agent_events, x.t, HISTORY_ONSETS))


def _pitch_at(events: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """events[n, idx[n, j]] where idx >= 0, else -1; idx (N, k)."""
    picked = np.take_along_axis(events, np.maximum(idx, 0), axis=1)
    return np.where(idx >= 0, picked, -1)


def _onset_now(x: RewardInputs) -> tuple[np.ndarray, np.ndarray]:
    """(pitch at step t, onset at step t) for each row."""
    pitch = _at(x.agent_events, x.t)
    return pitch, pitch >= 0


def _in_key(pitch: np.ndarray, minor: np.ndarray) -> np.ndarray:
    return SCALES[np.asarray(minor, dtype=np.int64), np.mod(pitch, PITCH_CLASSES)]


def _bar_end(x: RewardInputs) -> np.ndarray:
    return (x.t + 1) % x.steps_per_bar == 0


def _last_bar(events: np.ndarray, t: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """(N, steps_per_bar) events of the bar ending at step t; steps before 0 read as HOLD."""
    cols = t[:, None] - steps_per_bar + 1 + np.arange(steps_per_bar)
    bar = np.take_along_axis(events, np.maximum(cols, 0), axis=1)
    return np.where(cols >= 0, bar, HOLD_EVENT)


def _distinct_pitches(events: np.ndarray) -> np.ndarray:
    """(N,) number of distinct onset pitches per row of (N, L) events."""
    p = np.sort(np.where(events >= 0, events, -1), axis=1)
    new = (p >= 0) & np.concatenate([np.ones((len(p), 1), bool), p[:, 1:] != p[:, :-1]], axis=1)
    return new.sum(axis=1)


def _contour_codes(events: np.ndarray) -> np.ndarray:
    """(N, L) per step: 0 no onset, else 2 + sign(pitch - previous onset pitch) (first note 2)."""
    steps = events.shape[1]
    onset = events >= 0
    idx = np.maximum.accumulate(np.where(onset, np.arange(steps), -1), axis=1)
    last_pitch = np.where(idx >= 0, np.take_along_axis(events, np.maximum(idx, 0), axis=1), -1)
    previous = np.concatenate([np.full((len(events), 1), -1), last_pitch[:, :-1]], axis=1)
    direction = np.where(previous >= 0, np.sign(events - previous), 0)
    return np.where(onset, 2 + direction, 0)


def _best_bar_match(agent_bar: np.ndarray, call_bars: np.ndarray) -> np.ndarray:
    """Max over call bars of |agree| / |either|: agent_bar (N, S) codes, call_bars (N, B, S).

    Codes are 0 for "no onset" and positive otherwise; two steps agree when both are the same
    positive code. A row whose agent bar has no onset scores 0.
    """
    a = agent_bar[:, None, :]
    agree = ((a == call_bars) & (a > 0)).sum(axis=2)
    either = ((a > 0) | (call_bars > 0)).sum(axis=2)
    score = np.where(either > 0, agree / np.maximum(either, 1), 0.0)
    return np.where((agent_bar > 0).any(axis=1), score.max(axis=1), 0.0)


def _onsets(events: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Onsets at steps <= last[n], in order: (N, L) pitches and (N, L) steps, padded with -1
    past each row's count, and (N,) counts."""
    n, steps = events.shape
    cols = np.arange(steps)
    onset = (events >= 0) & (cols[None, :] <= np.asarray(last)[:, None])
    order = np.sort(np.where(onset, cols, steps), axis=1)  # onset steps first, then `steps`
    inside = order < steps
    pitches = np.where(inside, np.take_along_axis(events, np.minimum(order, steps - 1), 1), -1)
    return pitches, np.where(inside, order, -1), onset.sum(axis=1)


def _iois(events: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, L-1) inter-onset intervals in steps of the onsets at steps <= last[n] (0 past each
    row's count) and (N,) how many there are."""
    _, steps, count = _onsets(events, last)
    ioi = np.diff(steps, axis=1)
    n_iois = np.maximum(count - 1, 0)
    return np.where(np.arange(ioi.shape[1])[None, :] < n_iois[:, None], ioi, 0), n_iois


def _mean_log2(ioi: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(N,) mean log2 of the first count[n] IOIs of each row (0 where there are none)."""
    logs = np.log2(np.maximum(ioi, 1))
    valid = np.arange(ioi.shape[1])[None, :] < count[:, None]
    return np.where(valid, logs, 0.0).sum(axis=1) / np.maximum(count, 1)


def _degree_table() -> np.ndarray:
    """(2, 12) pitch class -> twice its scale degree (major, minor); a note outside the scale
    gets the odd number between its neighbours', so a diatonic step is 2 and a chromatic one 1."""
    table = np.zeros((2, PITCH_CLASSES), np.int64)
    for m in (0, 1):
        degree = -1
        for pc in range(PITCH_CLASSES):
            if SCALES[m, pc]:
                degree += 1
                table[m, pc] = 2 * degree
            else:
                table[m, pc] = 2 * degree + 1
    return table


DEGREES = _degree_table()
DEGREES_PER_OCTAVE = 14  # 7 scale degrees, doubled


def _degrees(pitches: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Key-relative pitches -> doubled scale degrees counted from the tonic of octave 0."""
    p = np.maximum(pitches, 0)
    m = np.broadcast_to(np.asarray(minor, dtype=np.int64), p.shape)
    return DEGREES_PER_OCTAVE * (p // PITCH_CLASSES) + DEGREES[m, p % PITCH_CLASSES]


def _has_shape(d: np.ndarray) -> np.ndarray:
    """(N,) a figure of (N, 3) degree intervals has a shape of its own: not one pitch, not a
    plain scale run one way, not a trill (up, down, up)."""
    moves = (d != 0).any(axis=1)
    run = ((np.abs(d) <= 2) & (d != 0)).all(axis=1) & (np.abs(np.sign(d).sum(axis=1)) == 3)
    trill = (d[:, 0] != 0) & (d[:, 1] == -d[:, 0]) & (d[:, 2] == d[:, 0])
    return moves & ~run & ~trill


# --- theory rules ------------------------------------------------------------------------------
def in_key(x: RewardInputs) -> np.ndarray:
    """RL Tuner: a note outside the key (major / minor scale_mask) is penalised."""
    pitch, onset = _onset_now(x)
    return np.where(onset & ~_in_key(pitch, x.minor), OUT_OF_KEY_PENALTY, 0.0)


def tonic_start(x: RewardInputs) -> np.ndarray:
    """RL Tuner: the first note of the turn on the tonic is rewarded."""
    pitch, onset = _onset_now(x)
    first = _prev(x, 1)[:, 0] < 0
    tonic = np.mod(pitch, PITCH_CLASSES) == 0
    return np.where(onset & first & tonic, TONIC_START_REWARD, 0.0)


def tonic_end(x: RewardInputs) -> np.ndarray:
    """RL Tuner: at the last step, reward a phrase whose last note is the tonic, in the last bar."""
    last_step = x.t == x.turn_steps - 1
    now = _at(x.agent_events, x.t) >= 0
    last = np.where(now, x.t, _prev(x, 1)[:, 0])
    pitch = _pitch_at(x.agent_events, last[:, None])[:, 0]
    in_last_bar = last >= x.turn_steps - x.steps_per_bar
    ok = last_step & (last >= 0) & in_last_bar & (np.mod(pitch, PITCH_CLASSES) == 0)
    return np.where(ok, TONIC_END_REWARD, 0.0)


def repetition(x: RewardInputs) -> np.ndarray:
    """No excessive repetition: a note whose previous MAX_REPEATED_ONSETS onsets all had its pitch.

    Counts onsets only (holds and rests in between do not count as repeats: RL Tuner's version
    fired on long holds).
    """
    pitch, onset = _onset_now(x)
    previous = _pitch_at(x.agent_events, _prev(x, MAX_REPEATED_ONSETS))
    excessive = onset & (previous == pitch[:, None]).all(axis=1)
    return np.where(excessive, REPETITION_PENALTY, 0.0)


def leap_resolution(x: RewardInputs) -> np.ndarray:
    """After a leap over a fifth, the next note should move back by step (opposite direction)."""
    pitch, onset = _onset_now(x)
    prev = _pitch_at(x.agent_events, _prev(x, 2))  # (N, 2)
    leap = prev[:, 0] - prev[:, 1]
    had_leap = onset & (prev[:, 1] >= 0) & (np.abs(leap) >= LEAP_MIN_SEMITONES)
    move = pitch - prev[:, 0]
    resolved = (np.sign(move) == -np.sign(leap)) & (np.abs(move) <= STEP_MAX_SEMITONES)
    return np.where(
        had_leap, np.where(resolved, LEAP_RESOLVED_REWARD, LEAP_UNRESOLVED_PENALTY), 0.0
    )


def preferred_intervals(x: RewardInputs) -> np.ndarray:
    """RL Tuner's melodic interval preferences; diatonic thirds and fifths score extra."""
    pitch, onset = _onset_now(x)
    prev = _pitch_at(x.agent_events, _prev(x, 1))[:, 0]
    has_interval = onset & (prev >= 0)
    interval = np.abs(pitch - prev)
    base = np.where(interval > 12, BEYOND_OCTAVE_PENALTY, INTERVAL_REWARD[np.minimum(interval, 12)])
    diatonic = _in_key(pitch, x.minor) & _in_key(prev, x.minor)
    base = np.where(diatonic & ((interval == 3) | (interval == 4)), DIATONIC_THIRD_REWARD, base)
    base = np.where(diatonic & (interval == 7), DIATONIC_FIFTH_REWARD, base)
    return np.where(has_interval, PREFERRED_INTERVALS_SCALE * base, 0.0)


def motif(x: RewardInputs) -> np.ndarray:
    """RL Tuner: a bar with at least three distinct pitches is a motif; scored at bar ends."""
    end = _bar_end(x)
    out = np.zeros(len(x.t))
    rows = np.flatnonzero(end)
    if len(rows):
        bar = _last_bar(x.agent_events[rows], x.t[rows], x.steps_per_bar)
        distinct = _distinct_pitches(bar)
        bonus = MOTIF_EXTRA_PITCH_BONUS * np.minimum(distinct - MOTIF_MIN_DISTINCT_PITCHES, 5)
        out[rows] = np.where(distinct >= MOTIF_MIN_DISTINCT_PITCHES, MOTIF_REWARD + bonus, 0.0)
    return out


def repeated_motif(x: RewardInputs) -> np.ndarray:
    """A motif (bar ending at t) that repeats, possibly transposed, a bar-long stretch of the turn
    that ended before it started: same onset steps, same intervals. Scored at bar ends."""
    spb = x.steps_per_bar
    out = np.zeros(len(x.t))
    rows = np.flatnonzero(_bar_end(x) & (x.t + 1 >= 2 * spb))
    if not len(rows):
        return out
    events = x.agent_events[rows]
    t = x.t[rows]
    bar = _last_bar(events, t, spb)  # (R, S)
    is_motif = _distinct_pitches(bar) >= MOTIF_MIN_DISTINCT_PITCHES
    windows = np.lib.stride_tricks.sliding_window_view(events, spb, axis=1)  # (R, T-S+1, S)
    starts = np.arange(windows.shape[1])
    earlier = starts[None, :] + spb <= (t - spb + 1)[:, None]  # ends before the bar starts
    bar_onset = bar[:, None, :] >= 0
    same_rhythm = ((windows >= 0) == bar_onset).all(axis=2)
    shift = np.where(bar_onset, windows - bar[:, None, :], 0)
    lo = np.where(bar_onset, shift, 999).min(axis=2)
    hi = np.where(bar_onset, shift, -999).max(axis=2)
    match = earlier & same_rhythm & (lo == hi)
    out[rows] = np.where(is_motif & match.any(axis=1), REPEATED_MOTIF_REWARD, 0.0)
    return out


def high_low_unique(x: RewardInputs) -> np.ndarray:
    """RL Tuner: at the last step, reward a unique highest note and a unique lowest note."""
    out = np.zeros(len(x.t))
    rows = np.flatnonzero(x.t == x.turn_steps - 1)
    if not len(rows):
        return out
    events = x.agent_events[rows]
    onset = (events >= 0) & (np.arange(events.shape[1])[None, :] <= x.t[rows, None])
    enough = onset.sum(axis=1) >= HIGH_LOW_MIN_NOTES
    high = np.where(onset, events, -1).max(axis=1)
    low = np.where(onset, events, 999).min(axis=1)
    n_high = (onset & (events == high[:, None])).sum(axis=1)
    n_low = (onset & (events == low[:, None])).sum(axis=1)
    score = HIGH_LOW_UNIQUE_REWARD * ((n_high == 1).astype(float) + (n_low == 1))
    out[rows] = np.where(enough, score, 0.0)
    return out


def _unique_extremes(events: np.ndarray, upto: np.ndarray) -> np.ndarray:
    """(N,) how many of the highest and the lowest onset pitch at steps <= upto occur once."""
    onset = (events >= 0) & (np.arange(events.shape[1])[None, :] <= upto[:, None])
    high = np.where(onset, events, -1).max(axis=1)
    low = np.where(onset, events, 999).min(axis=1)
    n_high = (onset & (events == high[:, None])).sum(axis=1)
    n_low = (onset & (events == low[:, None])).sum(axis=1)
    return (n_high == 1).astype(float) + (n_low == 1)


def unique_extremes_now(x: RewardInputs) -> np.ndarray:
    """Shaping for ``high_low_unique``: at each onset, the change in how many of the turn's
    highest and lowest pitches so far are unique (summed over the turn it telescopes to the
    final count), so the step that ties or breaks an extreme is told at once."""
    _, onset = _onset_now(x)
    out = np.zeros(len(x.t))
    rows = np.flatnonzero(onset)
    if len(rows):
        events, t = x.agent_events[rows], x.t[rows]
        change = _unique_extremes(events, t) - _unique_extremes(events, t - 1)
        out[rows] = UNIQUE_EXTREMES_SHAPING * change
    return out


# --- RL Tuner's own detectors, as Table 1 counts them (training/eval/rl_tuner_metrics.py) ---------
def held_too_long(x: RewardInputs) -> np.ndarray:
    """Answer: RL Tuner's ``detect_repeating_notes`` on the hold and rest tokens, as Table 1's
    "notes excessively repeated" counts them: a hold after more than 4 holds since the last note
    (more than 6 when a rest lies among them), or a rest after more than one rest. Steps before
    the turn do not count (a composition is the answer alone)."""
    event = _at(x.agent_events, x.t)
    last = _prev(x, 1)[:, 0]  # -1: no onset yet in the turn
    cols = np.arange(x.agent_events.shape[1])[None, :]
    run = (cols > last[:, None]) & (cols < x.t[:, None])  # the steps since the last onset
    holds = (run & (x.agent_events == HOLD_EVENT)).sum(axis=1)
    rests = (run & (x.agent_events == REST_EVENT)).sum(axis=1)
    hold_limit = np.where(rests > 0, HELD_TOO_LONG_WITH_REST, HELD_TOO_LONG_STEPS)
    flagged = np.where(event == HOLD_EVENT, holds > hold_limit, (event == REST_EVENT) & (rests > 1))
    return np.where(x.answering & flagged & ~_slow_call(x), HELD_TOO_LONG_PENALTY, 0.0)


def _slow_call(x: RewardInputs) -> np.ndarray:
    """(N,) the call moves in quarter notes or slower (long notes are its idiom)."""
    if x.call_summary is None:
        return np.zeros(len(x.t), dtype=bool)
    return x.answering & (x.call_summary[:, 8] >= SLOW_CALL_LOG_IOI)


def half_bar_motif(x: RewardInputs) -> np.ndarray:
    """RL Tuner's ``reward_motif`` as Table 1's "notes in motif" counts it: every step whose last
    8 steps (this one included, steps of the turn only) hold at least 3 distinct pitches."""
    cols = x.t[:, None] - MOTIF_WINDOW_STEPS + 1 + np.arange(MOTIF_WINDOW_STEPS)
    window = np.take_along_axis(x.agent_events, np.maximum(cols, 0), axis=1)
    window = np.where(cols >= 0, window, HOLD_EVENT)
    full = x.t + 1 >= MOTIF_WINDOW_STEPS
    ok = full & (_distinct_pitches(window) >= MOTIF_MIN_DISTINCT_PITCHES) & ~_slow_call(x)
    return np.where(ok, HALF_BAR_MOTIF_REWARD, 0.0)


def _leap_outcome(events: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(N,) RL Tuner's ``detect_leap_up_back`` outcome at step t[n] of each row: +1 a leap
    resolved, -1 a leap doubled, 0 otherwise (``training.eval.rl_tuner_metrics.LeapTracker``,
    replayed over the turn for all rows at once)."""
    n = len(t)
    direction = np.zeros(n, np.int64)
    leapt_from = np.full(n, -1, np.int64)
    since = np.zeros(n, np.int64)
    prev_note = np.full(n, -1, np.int64)
    out = np.zeros(n, np.int64)
    for c in range(int(t.max()) + 1 if n else 0):
        e = events[:, c]
        live = c <= t
        note = live & (e >= 0)
        if c > 0:
            since = np.where(live & ~note, since + 1, since)
            leap = note & (prev_note >= 0) & (np.abs(e - prev_note) >= LEAP_RETURN_SEMITONES)
            step_dir = np.sign(e - prev_note)
            against = leap & (direction != 0) & (direction != step_dir)
            doubled = leap & (direction != 0) & (direction == step_dir)
            first = leap & (direction == 0)
            back = (
                note
                & ~leap
                & (leapt_from >= 0)
                & (((direction == 1) & (e <= leapt_from)) | ((direction == -1) & (e >= leapt_from)))
            )
            outcome = np.where(against & (since > LEAP_RETURN_MIN_GAP_STEPS), 1, 0)
            outcome = np.where(doubled, -1, np.where(back, 1, outcome))
            leapt_from = np.where(first, prev_note, np.where(against | back, -1, leapt_from))
            direction = np.where(first, step_dir, np.where(against | back, 0, direction))
            since = np.where(leap, 0, np.where(note, since + 1, since))
            out = np.where(c == t, outcome, out)
        prev_note = np.where(note, e, prev_note)
    return out


def leap_return(x: RewardInputs) -> np.ndarray:
    """RL Tuner's ``detect_leap_up_back`` as Table 1's "leaps resolved" counts it: a leap of a
    fifth or more is resolved by returning to (or past) the note it leapt from, and doubled by a
    second leap the same way before that. Resolved earns, doubled costs."""
    _, onset = _onset_now(x)
    out = np.zeros(len(x.t))
    rows = np.flatnonzero(onset)
    if len(rows):
        outcome = _leap_outcome(x.agent_events[rows], x.t[rows])
        out[rows] = np.where(
            outcome > 0, LEAP_RETURN_REWARD, np.where(outcome < 0, LEAP_DOUBLED_PENALTY, 0.0)
        )
    return out


def oscillation(x: RewardInputs) -> np.ndarray:
    """A two-note oscillation counts as repetition: an onset that makes the last
    OSCILLATION_NOTES onsets alternate between two pitches (F G F G F) costs
    OSCILLATION_PENALTY, and so does each onset that continues it."""
    pitch, onset = _onset_now(x)
    k = OSCILLATION_NOTES - 1
    prev = _pitch_at(x.agent_events, _prev(x, k))  # (N, k) latest first
    seq = np.concatenate([pitch[:, None], prev], axis=1)  # (N, k + 1) latest first
    a, b = seq[:, 0::2], seq[:, 1::2]
    alternating = (
        (a == a[:, :1]).all(axis=1) & (b == b[:, :1]).all(axis=1) & (seq[:, 0] != seq[:, 1])
    )
    return np.where(onset & (seq >= 0).all(axis=1) & alternating, OSCILLATION_PENALTY, 0.0)


def same_pitch_run(x: RewardInputs) -> np.ndarray:
    """Long same-pitch runs: the 4th onset of one pitch in a row, and each one after it, costs
    SAME_PITCH_RUN_PENALTY (``repetition`` adds its own from the 5th); up to three is free
    (the corpus repeats 14% of its notes, rarely three times in a row)."""
    pitch, onset = _onset_now(x)
    prev = _pitch_at(x.agent_events, _prev(x, SAME_PITCH_RUN_FREE))  # (N, 3) latest first
    long_run = (prev == pitch[:, None]).all(axis=1)
    return np.where(onset & long_run, SAME_PITCH_RUN_PENALTY, 0.0)


def _rate_potential(leaps: np.ndarray, repeats: np.ndarray, n: np.ndarray) -> np.ndarray:
    return -INTERVAL_RATE_WEIGHT * (
        np.abs(leaps - CORPUS_LEAP_RATE * n) + np.abs(repeats - CORPUS_REPEAT_RATE * n)
    )


def interval_rates(x: RewardInputs) -> np.ndarray:
    """Leaps wider than a fifth and repeated notes at the corpus's rates (3.7% and 14% of the
    intervals of real continuations; the shipped default played 0% and 6%). Each onset earns
    the change in ``_rate_potential`` over the turn's intervals: a leap or a repeat earns while
    the answer has fewer than the corpus's share, costs once it has more."""
    pitch, onset = _onset_now(x)
    out = np.zeros(len(x.t))
    rows = np.flatnonzero(onset & (_prev(x, 1)[:, 0] >= 0))
    if not len(rows):
        return out
    pitches, _, count = _onsets(x.agent_events[rows], x.t[rows] - 1)
    steps_ = np.diff(pitches, axis=1)
    valid = np.arange(steps_.shape[1])[None, :] < np.maximum(count - 1, 0)[:, None]
    leaps = (valid & (np.abs(steps_) > WIDE_LEAP_SEMITONES)).sum(axis=1)
    repeats = (valid & (steps_ == 0)).sum(axis=1)
    n = np.maximum(count - 1, 0)
    last = np.take_along_axis(pitches, np.maximum(count - 1, 0)[:, None], axis=1)[:, 0]
    interval = np.abs(pitch[rows] - last)
    after = _rate_potential(
        leaps + (interval > WIDE_LEAP_SEMITONES), repeats + (interval == 0), n + 1
    )
    out[rows] = after - _rate_potential(leaps, repeats, n)
    return out


def stable_close(x: RewardInputs) -> np.ndarray:
    """At the last step: the turn's last note, struck in its last bar, on a stable degree
    (tonic, third, fifth of the key frame) earns STABLE_CLOSE_REWARD on a strong beat (beats 1
    and 3), half on beats 2 and 4, nothing off the beat. The turn starts on a bar line."""
    last_step = x.t == x.turn_steps - 1
    now = _at(x.agent_events, x.t) >= 0
    last = np.where(now, x.t, _prev(x, 1)[:, 0])
    pitch = _pitch_at(x.agent_events, last[:, None])[:, 0]
    pc = np.mod(pitch, PITCH_CLASSES)
    third = np.where(x.minor, 3, 4)
    stable = (pc == 0) | (pc == 7) | (pc == third)
    position = np.mod(last, x.steps_per_bar)
    strength = np.where(
        position % STRONG_BEAT_STEPS == 0,
        1.0,
        np.where(position % (x.steps_per_bar // 4) == 0, 0.5, 0.0),
    )
    ok = last_step & (last >= 0) & (last >= x.turn_steps - x.steps_per_bar) & stable
    return np.where(ok, STABLE_CLOSE_REWARD * strength, 0.0)


THEORY_RULES: dict[str, Callable[[RewardInputs], np.ndarray]] = {
    "in_key": in_key,
    "tonic_start": tonic_start,
    "tonic_end": tonic_end,
    "repetition": repetition,
    "leap_resolution": leap_resolution,
    "preferred_intervals": preferred_intervals,
    "motif": motif,
    "repeated_motif": repeated_motif,
    "high_low_unique": high_low_unique,
    "held_too_long": held_too_long,
    "half_bar_motif": half_bar_motif,
    "leap_return": leap_return,
    "unique_extremes_now": unique_extremes_now,
    "oscillation": oscillation,
    "same_pitch_run": same_pitch_run,
    "interval_rates": interval_rates,
    "stable_close": stable_close,
}


# --- play rules: answer episodes ---------------------------------------------------------------
def _call_bars(x: RewardInputs, rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return codes.reshape(len(rows), -1, x.steps_per_bar)


def echo_contour(x: RewardInputs) -> np.ndarray:
    """Answer: at each bar end, rhythm and melodic direction (up / same / down at each onset)
    of the agent's bar against the call's most similar bar (0..1)."""
    out = np.zeros(len(x.t))
    rows = np.flatnonzero(x.answering & _bar_end(x))
    if len(rows):
        codes = _contour_codes(x.agent_events[rows])
        bar = _last_bar(codes, x.t[rows], x.steps_per_bar)
        bar = np.where(bar == HOLD_EVENT, 0, bar)  # steps before the turn: no onset
        call = _contour_codes(x.call_events[rows])
        out[rows] = ECHO_CONTOUR_REWARD * _best_bar_match(bar, _call_bars(x, rows, call))
    return out


def call_pitch_classes(x: RewardInputs) -> np.ndarray:
    """Answer: a note whose pitch class the call used (stay in the call's key and colour)."""
    pitch, onset = _onset_now(x)
    call = x.call_events
    used = (call >= 0) & (np.mod(call, PITCH_CLASSES) == np.mod(pitch, PITCH_CLASSES)[:, None])
    return np.where(x.answering & onset & used.any(axis=1), CALL_PITCH_CLASS_REWARD, 0.0)


def silent_while_player_plays(x: RewardInputs) -> np.ndarray:
    """Answer: the agent sounding while the player sounds is penalised (live, it yields)."""
    both = (_at(x.agent_sounding, x.t) >= 0) & (_at(x.player_sounding, x.t) >= 0)
    return np.where(x.answering & both, OVERLAP_PENALTY, 0.0)


def plays_at_all(x: RewardInputs) -> np.ndarray:
    """Both modes: at the last step, each missing note below one note per bar of the turn costs
    MISSING_NOTE_PENALTY (silence must not be the safe way to avoid every other penalty)."""
    last_step = x.t == x.turn_steps - 1
    notes = (x.agent_events >= 0).sum(axis=1)  # steps after t are HOLD
    missing = np.maximum(x.turn_steps // x.steps_per_bar - notes, 0)
    return np.where(last_step, MISSING_NOTE_PENALTY * missing, 0.0)


# --- play rules: duet episodes -----------------------------------------------------------------
def consonance(x: RewardInputs) -> np.ndarray:
    """Duet: when either part starts a note, the vertical interval to the other part's sounding
    note should be consonant (3rds, 6ths, 5th, unison/octave); 2nds, 7ths, tritone penalised."""
    agent = _at(x.agent_sounding, x.t)
    player = _at(x.player_sounding, x.t)
    attack = (_at(x.agent_events, x.t) >= 0) | _at(x.player_onset, x.t)
    both = (agent >= 0) & (player >= 0) & attack & ~x.answering
    ic = np.mod(agent - player, PITCH_CLASSES)
    score = np.where(CONSONANT_CLASSES[ic], CONSONANT_REWARD, 0.0)
    score = np.where(DISSONANT_CLASSES[ic], DISSONANT_PENALTY, score)
    return np.where(both, score, 0.0)


def parallel_perfects(x: RewardInputs) -> np.ndarray:
    """Duet: both parts move in the same direction from one fifth (or unison / octave) into the
    same perfect interval: parallel fifths or octaves."""
    prev_t = np.maximum(x.t - 1, 0)
    a0, a1 = _at(x.agent_sounding, prev_t), _at(x.agent_sounding, x.t)
    p0, p1 = _at(x.player_sounding, prev_t), _at(x.player_sounding, x.t)
    sounding = (x.t >= 1) & (a0 >= 0) & (a1 >= 0) & (p0 >= 0) & (p1 >= 0)
    same_way = (np.sign(a1 - a0) == np.sign(p1 - p0)) & (a1 != a0)
    ic0 = np.mod(a0 - p0, PITCH_CLASSES)
    ic1 = np.mod(a1 - p1, PITCH_CLASSES)
    perfect = np.isin(ic1, PERFECT_CLASSES) & (ic0 == ic1)
    return np.where(~x.answering & sounding & same_way & perfect, PARALLEL_PERFECT_PENALTY, 0.0)


def room_for_player(x: RewardInputs) -> np.ndarray:
    """Duet: leave room. A note the agent starts while the player is busy (more than one player
    onset in the last beat, this step included) costs BUSY_PLAYER_PENALTY_PER_ONSET per player
    onset beyond the first; over held or sparse player notes it is free."""
    _, onset = _onset_now(x)
    cols = x.t[:, None] - BUSY_WINDOW_STEPS + 1 + np.arange(BUSY_WINDOW_STEPS)
    busy = (np.take_along_axis(x.player_onset, np.maximum(cols, 0), axis=1) & (cols >= 0)).sum(1)
    extra = np.maximum(busy - 1, 0)
    return np.where(~x.answering & onset, BUSY_PLAYER_PENALTY_PER_ONSET * extra, 0.0)


def rhythm_near_call(x: RewardInputs) -> np.ndarray:
    """Answer: a rhythm related to the call's, not its note values copied. Each answer onset
    (after the first) earns RHYTHM_NEAR_REWARD while the mean log2 inter-onset interval of the
    answer so far lies within RHYTHM_BAND_OCTAVES of the call's mean, less linearly beyond it
    (down to RHYTHM_MISMATCH_PENALTY): the pace is the call's, any mix of note values earns.
    (It paid for the call's exact IOI bins, which taught the answer to copy the call's note
    value for the whole answer.)"""
    out = np.zeros(len(x.t))
    _, onset = _onset_now(x)
    rows = np.flatnonzero(x.answering & onset & (_prev(x, 1)[:, 0] >= 0))
    if not len(rows):
        return out
    call_ioi, call_n = _iois(x.call_events[rows], np.full(len(rows), x.call_events.shape[1]))
    ans_ioi, ans_n = _iois(x.agent_events[rows], x.t[rows])
    ok = call_n > 0
    call_mean = _mean_log2(call_ioi, call_n)
    ans_mean = _mean_log2(ans_ioi, ans_n)
    d = np.abs(ans_mean - call_mean)
    value = RHYTHM_NEAR_REWARD * (
        1.0 - np.maximum(d - RHYTHM_BAND_OCTAVES, 0.0) / RHYTHM_FALLOFF_OCTAVES
    )
    out[rows] = np.where(ok, np.maximum(value, RHYTHM_MISMATCH_PENALTY), 0.0)
    return out


def rhythm_copy(x: RewardInputs) -> np.ndarray:
    """Answer: the call's note values copied step for step. An answer onset whose IOI equals
    the call's IOI at the same index (read cyclically, so a call in straight 8ths is copied by
    straight 8ths) costs RHYTHM_COPY_PENALTY when more than RHYTHM_COPY_SHARE of the answer's
    IOIs so far (RHYTHM_COPY_MIN_IOIS or more) match that way. Measured on the shipped default
    before this rule: answers to a line in 16ths, 8ths and quarters had mean IOIs of exactly
    1, 2 and 4 steps; real continuations follow the call's pace with Spearman .62, not .85."""
    out = np.zeros(len(x.t))
    _, onset = _onset_now(x)
    rows = np.flatnonzero(x.answering & onset & (_prev(x, 1)[:, 0] >= 0))
    if not len(rows):
        return out
    call_ioi, call_n = _iois(x.call_events[rows], np.full(len(rows), x.call_events.shape[1]))
    ans_ioi, ans_n = _iois(x.agent_events[rows], x.t[rows])
    j = np.arange(ans_ioi.shape[1])[None, :]
    aligned = np.take_along_axis(call_ioi, j % np.maximum(call_n, 1)[:, None], axis=1)
    valid = j < ans_n[:, None]
    match = valid & (ans_ioi == aligned) & (call_n[:, None] > 0)
    share = match.sum(axis=1) / np.maximum(ans_n, 1)
    now = np.take_along_axis(match, np.maximum(ans_n - 1, 0)[:, None], axis=1)[:, 0]
    copied = now & (ans_n >= RHYTHM_COPY_MIN_IOIS) & (share > RHYTHM_COPY_SHARE)
    out[rows] = np.where(copied, RHYTHM_COPY_PENALTY, 0.0)
    return out


def motif_development(x: RewardInputs) -> np.ndarray:
    """Answer: the last four answer notes develop a four-note figure of the call. Figures are
    compared by their scale-degree intervals (so a diatonic sequence counts as a transposition)
    and their three IOIs. Transposed (same intervals, another starting pitch), inverted
    (intervals negated) or re-rhythmed (same intervals, other IOIs) earns MOTIF_DEVELOPED_REWARD;
    the exact copy (same pitches, same rhythm) only MOTIF_COPY_REWARD. Figures without a
    shape of their own (one pitch, a plain scale run, a trill) earn nothing."""
    out = np.zeros(len(x.t))
    pitch, onset = _onset_now(x)
    prev = _prev(x, MOTIF_NOTES - 1)  # (N, 3) latest first
    rows = np.flatnonzero(x.answering & onset & (prev[:, -1] >= 0))
    if not len(rows):
        return out
    steps = np.concatenate([prev[rows, ::-1], x.t[rows, None]], axis=1)  # (R, 4) oldest first
    pitches = _pitch_at(x.agent_events[rows], steps)
    d = np.diff(_degrees(pitches, x.minor[rows, None]), axis=1)  # (R, 3)
    shaped = _has_shape(d)
    rows, steps, pitches, d = rows[shaped], steps[shaped], pitches[shaped], d[shaped]
    if not len(rows):
        return out
    minor = x.minor[rows]
    ioi = np.diff(steps, axis=1)
    call_p, call_s, call_n = _onsets(
        x.call_events[rows], np.full(len(rows), x.call_events.shape[1])
    )
    width = int(call_n.max())
    if width < MOTIF_NOTES:
        return out
    call_p, call_s = call_p[:, :width], call_s[:, :width]
    win_p = np.lib.stride_tricks.sliding_window_view(call_p, MOTIF_NOTES, axis=1)  # (R, K, 4)
    win_s = np.lib.stride_tricks.sliding_window_view(call_s, MOTIF_NOTES, axis=1)
    valid = np.arange(win_p.shape[1])[None, :] + MOTIF_NOTES <= call_n[:, None]
    c = np.diff(_degrees(win_p, minor[:, None, None]), axis=2)  # (R, K, 3)
    c_ioi = np.diff(win_s, axis=2)
    same_int = (c == d[:, None, :]).all(axis=2)
    inverted = (c == -d[:, None, :]).all(axis=2) & (d != 0).any(axis=1)[:, None]
    same_rhythm = (c_ioi == ioi[:, None, :]).all(axis=2)
    same_start = win_p[:, :, 0] == pitches[:, None, 0]
    exact = valid & same_int & same_rhythm & same_start
    developed = valid & ((same_int & ~(same_rhythm & same_start)) | inverted)
    value = np.where(
        developed.any(axis=1),
        MOTIF_DEVELOPED_REWARD,
        np.where(exact.any(axis=1), MOTIF_COPY_REWARD, 0.0),
    )
    out[rows] = value
    return out


def register_near_call(x: RewardInputs) -> np.ndarray:
    """Answer: an onset more than a fifth from the call's mean pitch (moved by octaves into the
    agent's range) costs REGISTER_PENALTY_PER_OCTAVE per octave beyond."""
    out = np.zeros(len(x.t))
    if x.call_summary is None:
        return out
    pitch, onset = _onset_now(x)
    rows = np.flatnonzero(x.answering & onset & (x.call_summary[:, 0] > 0))
    if len(rows):
        centre = x.call_summary[rows, 9] * 12.0 + CALL_REGISTER_CENTRE
        centre = np.clip(centre, AGENT_PITCH_LOW, AGENT_PITCH_HIGH)
        beyond = np.maximum(np.abs(pitch[rows] - centre) - REGISTER_FREE_SEMITONES, 0.0)
        out[rows] = REGISTER_PENALTY_PER_OCTAVE * beyond / 12.0
    return out


def no_copy(x: RewardInputs) -> np.ndarray:
    """Answer: at a bar end, a bar that copies a bar of the call exactly (same onset steps and
    pitches, two notes or more) costs COPY_PENALTY: vary the motif, do not echo it."""
    out = np.zeros(len(x.t))
    rows = np.flatnonzero(x.answering & _bar_end(x))
    if len(rows):
        spb = x.steps_per_bar
        bar = _last_bar(x.agent_events[rows], x.t[rows], spb)  # (R, S)
        calls = x.call_events[rows].reshape(len(rows), -1, spb)  # (R, B, S)
        onset = bar >= 0
        same = ((calls >= 0) == onset[:, None, :]) & np.where(
            onset[:, None, :], calls == bar[:, None, :], True
        )
        copied = same.all(axis=2).any(axis=1) & (onset.sum(axis=1) >= 2)
        out[rows] = np.where(copied, COPY_PENALTY, 0.0)
    return out


def not_cut_short(x: RewardInputs) -> np.ndarray:
    """Both modes: a note started in the last CUT_SHORT_STEPS steps of the turn would be cut at
    once by the turn's end (the answer's last note is not cut short)."""
    _, onset = _onset_now(x)
    late = x.t >= x.turn_steps - CUT_SHORT_STEPS
    return np.where(onset & late, CUT_SHORT_PENALTY, 0.0)


PLAY_RULES: dict[str, Callable[[RewardInputs], np.ndarray]] = {
    "rhythm_near_call": rhythm_near_call,
    "rhythm_copy": rhythm_copy,
    "motif_development": motif_development,
    "register_near_call": register_near_call,
    "no_copy": no_copy,
    "not_cut_short": not_cut_short,
    "echo_contour": echo_contour,
    "call_pitch_classes": call_pitch_classes,
    "silent_while_player_plays": silent_while_player_plays,
    "plays_at_all": plays_at_all,
    "consonance": consonance,
    "parallel_perfects": parallel_perfects,
    "room_for_player": room_for_player,
}


# --- the total ---------------------------------------------------------------------------------
def compute_reward(
    x: RewardInputs, weights: RewardWeights, style_log_prob: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(N,) total reward and the per-term arrays.

    ``style_log_prob`` is log p_style(a | s) of each chosen action (N,), or None (term 0).
    Terms: ``style``, ``theory``, ``play`` (unweighted sums) and ``theory/<rule>``,
    ``play/<rule>`` for each rule, all (N,) float64.
    """
    terms: dict[str, np.ndarray] = {}
    if x.previous_onsets is None:
        x = with_history(x)
    theory = np.zeros(len(x.t))
    for name, rule in THEORY_RULES.items():
        value = rule(x)
        terms[f"theory/{name}"] = value
        theory = theory + value
    play = np.zeros(len(x.t))
    for name, rule in PLAY_RULES.items():
        value = rule(x)
        terms[f"play/{name}"] = value
        play = play + value
    style = np.zeros(len(x.t)) if style_log_prob is None else np.asarray(style_log_prob, float)
    terms["style"] = style
    terms["theory"] = theory
    terms["play"] = play
    total = weights.w_style * style + weights.w_theory * theory + weights.w_play * play
    return total, terms


def melody_inputs(
    agent_events: np.ndarray,
    t: int,
    *,
    minor: bool = False,
    answering: bool = True,
    player_events: np.ndarray | None = None,
    call_events: np.ndarray | None = None,
    steps_per_bar: int = 16,
) -> RewardInputs:
    """RewardInputs for one hand-made melody at step t (a batch of one).

    ``agent_events`` is the agent's whole turn (key-relative grid events); steps after t are
    blanked so rules see only the past. ``player_events`` defaults to silence, ``call_events``
    to one silent bar.
    """
    from exports.grid import sounding_pitches

    events = np.asarray(agent_events, dtype=np.int64).copy()
    steps = len(events)
    events[t + 1 :] = HOLD_EVENT
    player = (
        np.full(steps, HOLD_EVENT, np.int64) if player_events is None else np.asarray(player_events)
    )
    call = np.full(steps_per_bar, HOLD_EVENT, np.int64) if call_events is None else call_events
    return RewardInputs(
        agent_events=events[None],
        agent_sounding=sounding_pitches(events)[None],
        player_sounding=sounding_pitches(player)[None],
        player_onset=(player >= 0)[None],
        call_events=np.asarray(call, dtype=np.int64)[None],
        t=np.array([t]),
        turn_steps=np.array([steps]),
        minor=np.array([minor]),
        answering=np.array([answering]),
        steps_per_bar=steps_per_bar,
    )


def score_melody(
    rule: Callable[[RewardInputs], np.ndarray], agent_events: np.ndarray, **kwargs: Any
) -> np.ndarray:
    """(T,) the rule's value at each step of one melody (see ``melody_inputs`` for kwargs)."""
    return np.array(
        [float(rule(melody_inputs(agent_events, t, **kwargs))[0]) for t in range(len(agent_events))]
    )
