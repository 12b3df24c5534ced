"""Duet figures: how the agent sounds against the player's line, beside the corpus's own voicing.

Duet episodes are cut from the held-out tunes as training cuts them (``MelodyEnv``: the line
alone for the lead bars, then the agent plays along for the duet turn), with no transposition.
At every step where both parts start a note together (a *shared onset*, as
``benchmarks/listening.py`` counts them live) the vertical interval class is read; m2, M7 and
the tritone (interval classes 1, 11, 6) count as dissonant. In a two-voice corpus (the chorales)
the tune's own second voice is scored on the same episodes: Bach's alto or tenor against his
soprano is the rate to come near.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from exports.grid import sounding_pitches
from exports.selection import choose_actions
from exports.spec import PITCH_CLASSES, Spec
from training.env.environment import EnvConfig, MelodyEnv

DISSONANT_INTERVAL_CLASSES = (1, 6, 11)
"""m2 / M7 and the tritone, as ``benchmarks/listening.py`` counts them."""
DUET_EPISODES = 300


class DuetFigures(NamedTuple):
    shared_onsets: int
    """Steps where both parts start a note."""
    dissonant_share: float
    """Share of those whose interval class is m2/M7/tritone (nan without shared onsets)."""
    onsets_per_bar: float
    """The part's note onsets per bar of the duet turn."""
    held_onsets: int = 0
    """Steps where the part starts a note over a note the line holds (known before the step)."""
    held_dissonant_share: float = float("nan")
    """Share of those that are m2/M7/tritone."""
    below_share: float = float("nan")
    """Share of the steps where both sound that the part is at or below the line."""
    mean_pitch: float = float("nan")
    """The part's mean sounding pitch (MIDI)."""


def dissonance(part: np.ndarray, line: np.ndarray) -> tuple[int, float]:
    """(shared onsets, dissonant share) of grid events ``part`` against ``line`` (same shape,
    (N, T), absolute or both in one key frame)."""
    a, p = sounding_pitches(part), sounding_pitches(line)
    shared = (part >= 0) & (line >= 0) & (a >= 0) & (p >= 0)
    ic = np.mod(a[shared] - p[shared], PITCH_CLASSES)
    n = int(shared.sum())
    share = float(np.isin(ic, DISSONANT_INTERVAL_CLASSES).mean()) if n else float("nan")
    return n, share


def _figures(part: np.ndarray, line: np.ndarray, steps_per_bar: int) -> DuetFigures:
    n, share = dissonance(part, line)
    bars = part.shape[1] / steps_per_bar
    a, p = sounding_pitches(part), sounding_pitches(line)
    over_held = (part >= 0) & (line < 0) & (p >= 0)
    ic = np.mod(a[over_held] - p[over_held], PITCH_CLASSES)
    both = (a >= 0) & (p >= 0)
    return DuetFigures(
        n,
        share,
        float((part >= 0).sum(axis=1).mean() / bars),
        int(over_held.sum()),
        float(np.isin(ic, DISSONANT_INTERVAL_CLASSES).mean()) if len(ic) else float("nan"),
        float((a[both] <= p[both]).mean()) if both.any() else float("nan"),
        float(a[a >= 0].mean()) if (a >= 0).any() else float("nan"),
    )


def duet_figures(
    spec: Spec,
    corpus: Any,
    policies: dict[str, Callable[[np.ndarray], np.ndarray]],
    temperature: float,
    seed: int = 0,
    n: int = DUET_EPISODES,
    env_config: EnvConfig | None = None,
) -> dict[str, DuetFigures]:
    """Name -> figures for each policy (``policies``: states -> Q-values) on the same ``n``
    duet episodes of ``corpus`` (its held-out tunes, or all when none is held out); plus
    ``"corpus second voice"`` when the corpus has one, and ``"corpus line"`` (the player's own
    onsets per bar)."""
    held = corpus.subset(validation=True) if corpus.validation.any() else corpus
    base = env_config or EnvConfig()
    config = dataclasses.replace(
        base,
        n_envs=n,
        answer_fraction=0.0,
        auto_reset=False,
        transpose_semitones=0,
        octave_shift_fraction=0.0,
        seed=seed,
    )
    env = MelodyEnv(spec, held, config)
    episodes = env.episodes.sample(n, np.random.default_rng(seed))
    turn = int(episodes.turn_steps.max())
    lead = env.lead_steps
    line = episodes.segments[:, lead : lead + turn]
    out: dict[str, DuetFigures] = {}
    for name, policy_q in policies.items():
        rng = np.random.default_rng(seed + 1)
        env._start(np.arange(n), episodes, np.zeros(n, np.int64))
        env._states = env._encode()
        states = env.states()
        for _ in range(turn):
            states = env.step(choose_actions(policy_q(states), temperature, rng)).states
        out[name] = _figures(env.absolute_turn_events()[:, :turn], line, spec.steps_per_bar)
    if getattr(corpus, "second", None) is not None and episodes.continuation is not None:
        out["corpus second voice"] = _figures(
            episodes.continuation[:, :turn], line, spec.steps_per_bar
        )
    bars = turn / spec.steps_per_bar
    sounding = sounding_pitches(line)
    out["corpus line"] = DuetFigures(
        0,
        float("nan"),
        float((line >= 0).sum(axis=1).mean() / bars),
        mean_pitch=float(sounding[sounding >= 0].mean()),
    )
    return out


def _pct(share: float) -> str:
    return "n/a" if not np.isfinite(share) else f"{share:.1%}"


def duet_markdown(figures: dict[str, DuetFigures], temperature: float) -> list[str]:
    """The duet section of ``eval.md``."""
    lines = [
        "",
        "## Duet: against the player's line",
        "",
        f"Held-out duet episodes (the line alone, then the agent along with it), T={temperature:g} "
        "(training/eval/duet.py). Dissonant = m2/M7/tritone, at *shared onsets* (both parts start "
        "a note on one step: the agent decides a step before it hears the line's note there) and "
        "*over a held note* (the agent starts a note while the line holds one it has heard). "
        "The corpus's second voice, where it has one, is scored on the same episodes.",
        "",
        "| Part | Shared onsets | Dissonant there | Over a held note | Dissonant there | "
        "At or below the line | Mean pitch | Onsets per bar |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in figures.items():
        if name == "corpus line":
            lines.append(f"| {name} | | | | | | {f.mean_pitch:.1f} | {f.onsets_per_bar:.2f} |")
            continue
        lines.append(
            f"| {name} | {f.shared_onsets} | {_pct(f.dissonant_share)} | {f.held_onsets} | "
            f"{_pct(f.held_dissonant_share)} | {_pct(f.below_share)} | {f.mean_pitch:.1f} | "
            f"{f.onsets_per_bar:.2f} |"
        )
    return lines
