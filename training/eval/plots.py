"""PNG figures for ``deepjam eval``: training curves and piano rolls (matplotlib, Agg backend).

Training curves come from the run's TensorBoard event files (read with tensorboard's
``EventAccumulator``), or, when there are none, from the history a checkpoint keeps in its
``metrics``. Piano rolls show a call (the player's phrase) followed by the agent's answer, in
absolute MIDI pitches on the 16th grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from exports.piano_roll import plot_piano_rolls as plot_piano_rolls  # the one plotter
from exports.piano_roll import pyplot, save_figure

MAX_CURVE_PANELS = 8
PREFERRED_TAGS = (
    "episode/return",
    "reward/mean",
    "reward/style",
    "reward/theory",
    "reward/play",
    "train/loss",
    "train/q_mean",
    "train/epsilon",
)
"""The trainer's headline series, plotted first in this order; then the others, the least
nested first (``reward/theory`` before ``reward/theory/in_key``)."""

Curves = dict[str, tuple[np.ndarray, np.ndarray]]
"""tag -> (steps, values)."""


def _pyplot() -> Any:
    return pyplot()


def event_files(run_dir: Path) -> list[Path]:
    """TensorBoard event files anywhere under ``run_dir``, sorted."""
    return sorted(Path(run_dir).rglob("events.out.tfevents.*"))


def read_tensorboard_scalars(run_dir: Path) -> Curves:
    """Every scalar series in the event files under ``run_dir``: tag -> (steps, values).

    Series of the same tag from several files (a resumed run) are merged and sorted by step.
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    merged: dict[str, list[tuple[int, float]]] = {}
    for path in event_files(run_dir):
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags().get("scalars", []):
            merged.setdefault(tag, []).extend(
                (int(e.step), float(e.value)) for e in accumulator.Scalars(tag)
            )
    curves: Curves = {}
    for tag, points in merged.items():
        points.sort()
        curves[tag] = (
            np.array([p[0] for p in points], dtype=np.int64),
            np.array([p[1] for p in points], dtype=np.float64),
        )
    return curves


def curves_from_metrics(metrics: dict[str, Any]) -> Curves:
    """Series a checkpoint's ``metrics`` may hold: ``{"history": {tag: [[step, value], ...]}}``
    or top-level ``{tag: [[step, value], ...]}`` lists. Scalars are skipped."""
    source = metrics.get("history", metrics) if isinstance(metrics, dict) else {}
    curves: Curves = {}
    for tag, series in (source or {}).items():
        if not isinstance(series, list | tuple) or not series:
            continue
        try:
            points = np.asarray(series, dtype=np.float64)
        except (TypeError, ValueError):
            continue
        if points.ndim == 2 and points.shape[1] == 2:
            curves[str(tag)] = (points[:, 0].astype(np.int64), points[:, 1])
        elif points.ndim == 1:
            curves[str(tag)] = (np.arange(len(points), dtype=np.int64), points)
    return curves


def _ordered_tags(curves: Curves) -> list[str]:
    def rank(tag: str) -> tuple[int, int, str]:
        if tag in PREFERRED_TAGS:
            return (0, PREFERRED_TAGS.index(tag), tag)
        return (1, tag.count("/"), tag)

    return sorted(curves, key=rank)[:MAX_CURVE_PANELS]


def plot_training_curves(curves: Curves, out_path: Path, title: str = "") -> Path:
    """One panel per series (at most 8, the headline series first); writes a PNG, returns its path.

    With no series the figure says so, so that the file always exists.
    """
    plt = _pyplot()
    tags = _ordered_tags(curves)
    cols = 2 if len(tags) > 1 else 1
    rows = max(1, -(-len(tags) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    if not tags:
        ax = axes[0, 0]
        ax.set_visible(True)
        ax.axis("off")
        ax.text(0.5, 0.5, "no training curves found", ha="center", va="center")
    for ax, tag in zip(axes.ravel(), tags, strict=False):
        steps, values = curves[tag]
        ax.set_visible(True)
        ax.plot(steps, values, linewidth=1.0)
        if len(values) > 20:  # a moving average over ~5% of the points makes the trend legible
            k = max(2, len(values) // 20)
            smooth = np.convolve(values, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1 :], smooth, linewidth=1.8)
        ax.set_title(tag, fontsize=9)
        ax.set_xlabel("env steps", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_path)


def plot_listening(listening: Any, path: Path, title: str = "") -> None:
    """Scatter of call against answer (and against the real continuation) for each listening
    feature (``training.eval.listening.Listening``), with the Spearman correlations; PNG."""
    from training.eval.listening import FEATURE_LABELS, FEATURES

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(FEATURES), figsize=(4.2 * len(FEATURES), 4.0))
    for ax, f in zip(axes, FEATURES, strict=True):
        x = listening.calls[f]
        ax.scatter(
            x,
            listening.continuations[f],
            s=6,
            alpha=0.35,
            color="0.55",
            label=f"real continuation (rho {listening.continuation[f]:+.2f})",
        )
        ax.scatter(
            x,
            listening.answers[f],
            s=6,
            alpha=0.5,
            color="C0",
            label=f"answer (rho {listening.policy[f]:+.2f})",
        )
        ax.set_xlabel(f"call: {FEATURE_LABELS[f]}")
        ax.set_ylabel("answer")
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
