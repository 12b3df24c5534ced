"""Batches of plausible states, for checking a model file rather than for training.

An exported model is checked against torch (parity), an int8 model against the float one
(agreement), and a decision is timed, on states like those it will meet: windows cut out of real
tunes when a corpus is at hand, random melodies in the agent's range otherwise. Both go through
the one encoder, ``exports.encoding.encode_states``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from exports.encoding import StepContext, encode_states, monophonic_window, summarize_call
from exports.grid import onsets, sounding_pitches
from exports.spec import HOLD_EVENT, REST_EVENT, Spec

# Chances per step of a random melody: a new note, a release; otherwise the step holds.
ONSET_CHANCE = 0.3
REST_CHANCE = 0.1


def _context(
    spec: Spec,
    bar_position: np.ndarray,
    minor: np.ndarray,
    rng: np.random.Generator,
    call: np.ndarray | None = None,
) -> StepContext:
    n = len(bar_position)
    if call is None:  # the summary of a random call
        events = random_melodies(spec, n, spec.call_window_steps, rng)
        call = summarize_call(spec, monophonic_window(sounding_pitches(events), onsets(events)))
    return StepContext(
        bar_position=bar_position % spec.steps_per_bar,
        minor=minor.astype(bool),
        answering=rng.random(n) < 0.5,
        progress=rng.random(n),
        call=call,
    )


def random_melodies(spec: Spec, n: int, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """(n, n_steps) int16 key-relative grid events: random notes in the agent's range."""
    u = rng.random((n, n_steps))
    pitches = rng.integers(spec.pitch_low, spec.pitch_high + 1, size=(n, n_steps))
    events = np.where(
        u < ONSET_CHANCE, pitches, np.where(u < ONSET_CHANCE + REST_CHANCE, REST_EVENT, HOLD_EVENT)
    )
    return events.astype(np.int16)


def synthetic_states(spec: Spec, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, spec.state_dim) float32 states from random melodies for both parts."""
    w = spec.window_steps
    parts = []
    for _ in range(2):  # agent, player
        events = random_melodies(spec, n, w, rng)  # (n, W)
        parts.append(monophonic_window(sounding_pitches(events), onsets(events)))
    context = _context(spec, rng.integers(0, spec.steps_per_bar, n), rng.random(n) < 0.3, rng)
    return encode_states(spec, parts[0], parts[1], context)


def window_states(
    spec: Spec,
    tunes: Sequence[np.ndarray],
    minor: Sequence[bool],
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(n, spec.state_dim) float32 states cut from real tunes.

    ``tunes`` are key-relative grid events (one 1-D array per tune, see ``exports.grid``), and
    ``minor`` says which are in minor keys. Each state's player part is a window ending at a
    random step of a random tune (silence before the tune's start), and its agent part a window
    of another random tune; the bar position is the tune's own, and the call summary that of the
    player's tune over the ``call_window_steps`` before the window's end.
    """
    if not tunes:
        raise ValueError("expected at least one tune to cut windows from, got none")
    w, cw = spec.window_steps, spec.call_window_steps
    lead = np.full(max(w, cw), HOLD_EVENT, dtype=np.int64)
    pad = len(lead) - w  # windows of W steps start at least this far in
    sounding = [sounding_pitches(np.concatenate([lead, t.astype(np.int64)])) for t in tunes]
    started = [onsets(np.concatenate([lead, t.astype(np.int64)])) for t in tunes]
    windows: list[tuple[np.ndarray, np.ndarray]] = []
    heard: list[tuple[np.ndarray, np.ndarray]] = []
    bar_position = np.zeros(n, dtype=np.int64)
    is_minor = np.zeros(n, dtype=bool)
    for i in range(2 * n):
        tune = int(rng.integers(len(tunes)))
        end = int(rng.integers(pad + w, len(sounding[tune]) + 1))  # window [end - W, end)
        windows.append((sounding[tune][end - w : end], started[tune][end - w : end]))
        if i >= n:  # the second half are the player's parts
            heard.append((sounding[tune][end - cw : end], started[tune][end - cw : end]))
            bar_position[i - n] = end - len(lead)  # steps since the tune began
            is_minor[i - n] = bool(minor[tune])
    agent = monophonic_window(
        np.stack([s for s, _ in windows[:n]]), np.stack([o for _, o in windows[:n]])
    )
    player = monophonic_window(
        np.stack([s for s, _ in windows[n:]]), np.stack([o for _, o in windows[n:]])
    )
    call = summarize_call(
        spec,
        monophonic_window(np.stack([s for s, _ in heard]), np.stack([o for _, o in heard])),
    )
    return encode_states(spec, agent, player, _context(spec, bar_position, is_minor, rng, call))
