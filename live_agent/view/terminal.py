"""The terminal live view: one screen, updated in place with rich, from ``JamSnapshot``s.

On a terminal ``deepjam jam`` shows it; with no TTY (a pipe, a service) it keeps the plain log.
Log lines printed while it runs appear above it (rich's ``Live`` redirects them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from live_agent.view.snapshot import NOTE_NAMES, JamSnapshot

ROLL_ROWS_MAX = 14
PLAYER_STYLE = "bold cyan"
AGENT_STYLE = "bold magenta"
BOTH_STYLE = "bold white"


def pitch_name(pitch: int) -> str:
    """60 -> 'C4'."""
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def piano_roll(snapshot: JamSnapshot, steps_per_bar: int = 16) -> Any:
    """A rich Text piano roll of both parts over the window: one row a pitch (highest on top),
    one column a 16th; the player in cyan, deepjam in magenta; a note's start is a block,
    its held steps a bar; bar lines as '|'."""
    from rich.text import Text

    player, agent = snapshot.player_roll, snapshot.agent_roll
    sounding = np.concatenate([player[player >= 0], agent[agent >= 0]])
    text = Text()
    if sounding.size == 0:
        text.append("(nothing played yet)", style="dim")
        return text
    high = int(sounding.max())
    low = max(int(sounding.min()), high - ROLL_ROWS_MAX + 1)
    for pitch in range(high, low - 1, -1):
        text.append(f"{pitch_name(pitch):>4} ", style="dim")
        for step in range(len(player)):
            if step % steps_per_bar == 0:
                text.append("|", style="dim")
            p, a = player[step] == pitch, agent[step] == pitch
            if p and a:
                text.append("█", style=BOTH_STYLE)
            elif p:
                text.append("█" if snapshot.player_onsets[step] else "▬", style=PLAYER_STYLE)
            elif a:
                text.append("█" if snapshot.agent_onsets[step] else "▬", style=AGENT_STYLE)
            else:
                text.append("·", style="dim")
        text.append("\n")
    text.append("      ")
    text.append("you", style=PLAYER_STYLE)
    text.append("  ")
    text.append("deepjam", style=AGENT_STYLE)
    return text


def render(snapshot: JamSnapshot) -> Any:
    """The whole screen as one rich renderable."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table

    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    for port in snapshot.ports:
        state = {True: "[green]connected[/]", False: "[red]not connected[/]", None: ""}[
            port.connected
        ]
        info.add_row(port.role, f"{port.name}  {state}".rstrip())
    confidence = (
        f", {snapshot.tempo_confidence:.0%} sure" if snapshot.tempo_confidence is not None else ""
    )
    info.add_row("tempo", f"{snapshot.tempo_bpm:.1f} bpm from {snapshot.tempo_source}{confidence}")
    info.add_row("key heard", f"{snapshot.key}, {snapshot.key_sureness}")
    mode = snapshot.mode + (" (answering now)" if snapshot.answering else "")
    info.add_row("style / mode", f"{snapshot.style} / {mode}")
    info.add_row("controls", ", ".join(f"{k} {v}" for k, v in snapshot.controls.items()))
    info.add_row("played", f"{snapshot.notes_played} notes in {snapshot.answers} answers")
    timing = (
        "\n".join(f"[yellow]{p}[/]" for p in snapshot.problems)
        if snapshot.problems
        else "[green]all on time[/]"
    )
    info.add_row("timing", timing)
    return Panel(
        Group(info, "", piano_roll(snapshot)),
        title="deepjam jam",
        subtitle="Ctrl-C to stop",
    )


class TerminalView:
    """rich's Live display on stderr, refreshed from ``snapshot_fn`` by ``update()``."""

    def __init__(self, snapshot_fn: Any) -> None:
        from rich.console import Console
        from rich.live import Live

        self.snapshot_fn = snapshot_fn
        self.console = Console(stderr=True)
        self.live = Live(
            render(snapshot_fn()), console=self.console, auto_refresh=False, transient=False
        )

    def __enter__(self) -> TerminalView:
        self.live.__enter__()
        return self

    def update(self) -> None:
        self.live.update(render(self.snapshot_fn()), refresh=True)

    def log(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)
