"""The one piano-roll plotter: (call, answer) pairs of grid melodies as a PNG.

``deepjam eval`` draws its sample answers with it, ``deepjam answer --plot`` its one answer.
matplotlib is imported inside (the ``plot`` extra), as torch is inside the ONNX export: importing
``exports`` needs numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from exports.grid import note_list
from exports.midi import pitch_name
from exports.spec import DEFAULT_SPEC


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out_path: str | Path, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG at ``out_path`` (its folder made), close it; the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=dpi)
    pyplot().close(fig)
    return out_path


def plot_piano_rolls(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    out_path: Path,
    titles: Sequence[str] | None = None,
    steps_per_bar: int = DEFAULT_SPEC.steps_per_bar,
) -> Path:
    """Piano rolls of (call, answer) pairs of absolute grid events, the answer after the call.

    The call is drawn in grey, the answer in colour; bar lines every ``steps_per_bar`` steps;
    pitches by name on whole semitones (C4 is middle C). Writes a PNG and returns its path.
    """
    plt = pyplot()
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    n = max(1, len(pairs))
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.2 * n), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        if i >= len(pairs):
            ax.axis("off")
            ax.text(0.5, 0.5, "no samples", ha="center", va="center")
            continue
        call, answer = (np.asarray(x) for x in pairs[i])
        parts = [(note_list(call), 0, "0.55"), (note_list(answer), len(call), "tab:blue")]
        pitches = [p for notes, _, _ in parts for _, _, p in notes]
        for notes, offset, colour in parts:
            for start, duration, pitch in notes:
                ax.broken_barh([(offset + start, duration)], (pitch - 0.4, 0.8), color=colour)
        total = len(call) + len(answer)
        for bar in range(0, total + 1, steps_per_bar):
            ax.axvline(bar, color="0.85", linewidth=0.6, zorder=0)
        ax.axvline(len(call), color="tab:red", linewidth=1.0, linestyle="--")
        ax.set_xlim(0, total)
        if pitches:
            ax.set_ylim(min(pitches) - 2, max(pitches) + 2)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda pitch, _: pitch_name(int(pitch))))
        ax.set_ylabel("pitch", fontsize=8)
        ax.tick_params(labelsize=7)
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=9)
    axes[-1, 0].set_xlabel("16th-note steps (call in grey, answer in blue)", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, out_path)
