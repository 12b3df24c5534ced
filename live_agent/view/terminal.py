"""The terminal live view: one screen, updated in place with rich, from ``JamSnapshot``s.

On a terminal ``deepjam jam`` shows it; with no TTY (a pipe, a service) it keeps the plain log.
Log lines printed while it runs appear above it (rich's ``Live`` redirects them). The words and
the roll's cells come from ``snapshot.info_rows`` / ``roll_rows``, as the browser panel's do.
"""

from __future__ import annotations

from typing import Any

from live_agent.view.snapshot import (
    AGENT_HELD,
    AGENT_ONSET,
    BOTH,
    PLAYER_HELD,
    PLAYER_ONSET,
    JamSnapshot,
    info_rows,
    pitch_name,
    roll_rows,
)

PLAYER_STYLE = "bold cyan"
AGENT_STYLE = "bold magenta"
BOTH_STYLE = "bold white"
TONE_STYLE = {"": "", "good": "green", "bad": "red", "warn": "yellow"}
CELL_GLYPH = {
    PLAYER_ONSET: ("█", PLAYER_STYLE),
    PLAYER_HELD: ("▬", PLAYER_STYLE),
    AGENT_ONSET: ("█", AGENT_STYLE),
    AGENT_HELD: ("▬", AGENT_STYLE),
    BOTH: ("█", BOTH_STYLE),
    "": ("·", "dim"),
}

__all__ = ["TerminalView", "piano_roll", "pitch_name", "render"]


def piano_roll(snapshot: JamSnapshot) -> Any:
    """A rich Text piano roll of both parts over the window: one row a pitch (highest on top),
    one column a 16th; the player in cyan, deepjam in magenta; a note's start is a block,
    its held steps a bar; a '|' where a bar of the grid begins."""
    from rich.text import Text

    text = Text()
    rows = roll_rows(snapshot)
    if not rows:
        text.append("(nothing played yet)", style="dim")
        return text
    bars = set(snapshot.bar_starts)
    for _pitch, name, cells in rows:
        text.append(f"{name:>4} ", style="dim")
        for column, cell in enumerate(cells):
            if column in bars:
                text.append("|", style="dim")
            glyph, style = CELL_GLYPH[cell]
            text.append(glyph, style=style)
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
    from rich.text import Text

    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    for label, segments in info_rows(snapshot):
        value = Text()
        for text, tone in segments:
            value.append(text, style=TONE_STYLE[tone])
        info.add_row(label, value)
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
