"""What the live view shows, read from a running session: one plain dataclass, and the words and
piano-roll cells drawn from it (``info_rows``, ``roll_rows``), so that the terminal view, the
browser panel and a test all show the same thing. Reads from another thread may be a step
old; nothing here writes to the session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exports.midi import key_name, pitch_name
from exports.tonality import KEY_TEMPLATES, PITCH_CLASSES
from live_agent.scheduler import LATE_NS

ROLL_ROWS_MAX = 14
SURE_R = 0.75
FAIRLY_SURE_R = 0.5


ROLL_STEPS = 32
"""The piano roll shows the last two bars of both parts, whatever window the model hears (a
sequence model's 8 bars would not fit a terminal's width)."""


@dataclass
class PortState:
    role: str
    """'keyboard in' or 'deepjam out'."""
    name: str
    """Exact name to connect to (or the peer's, when deepjam connected it)."""
    connected: bool | None
    """True/False when known, None when the MIDI system cannot say (rtmidi virtual ports)."""


@dataclass
class JamSnapshot:
    ports: list[PortState]
    style: str
    mode: str
    answering: bool
    tempo_bpm: float
    tempo_source: str
    """'your playing', 'MIDI clock', '--bpm' ..."""
    tempo_confidence: float | None
    key: str
    """e.g. 'D major'; '-' before anything is heard."""
    key_sureness: str
    """'sure', 'fairly sure', 'guessing', 'nothing heard yet'."""
    key_fixed: str
    """The key the player fixed (``--key``, the panel), e.g. 'A minor'; '' when it is judged
    from each call (auto)."""
    controls: dict[str, str]
    player_roll: np.ndarray
    """(W,) top pitch of the player's part per step, oldest first; -1 silent."""
    player_onsets: np.ndarray
    agent_roll: np.ndarray
    agent_onsets: np.ndarray
    newest_step: int
    """Grid step of the roll's last column (its bar position is ``newest_step % steps_per_bar``)."""
    steps_per_bar: int
    temperature: float
    density: float
    register_shift: int
    """Semitones (a whole number of octaves)."""
    late_steps: int
    steps: int
    dropped: int
    notes_played: int
    answers: int
    problems: list[str] = field(default_factory=list)
    """Late steps and drops in musicians' words; empty when all is well."""

    @property
    def bar_starts(self) -> list[int]:
        """Columns of the roll on which a bar of the grid begins (where the bar lines go)."""
        oldest = self.newest_step - len(self.player_roll) + 1
        return [
            column
            for column in range(len(self.player_roll))
            if (oldest + column) % self.steps_per_bar == 0
        ]


Segment = tuple[str, str]
"""(text, tone): tone is '' (plain), 'good', 'bad' or 'warn'; each renderer picks its colours."""

PLAYER_ONSET, PLAYER_HELD = "you", "you-held"
AGENT_ONSET, AGENT_HELD = "deepjam", "deepjam-held"
BOTH = "both"
"""Piano-roll cells: a part's note starting (onset) or held in that 16th; '' is silence."""


def info_rows(snapshot: JamSnapshot) -> list[tuple[str, list[Segment]]]:
    """The view's text, as (label, segments) rows: ports, tempo, key, style and mode,
    controls, what was played, timing."""
    rows: list[tuple[str, list[Segment]]] = []
    for port in snapshot.ports:
        state = {True: ("connected", "good"), False: ("not connected", "bad"), None: ("", "")}
        text, tone = state[port.connected]
        rows.append((port.role, [(port.name, ""), *([("  " + text, tone)] if text else [])]))
    confidence = (
        f", {snapshot.tempo_confidence:.0%} sure" if snapshot.tempo_confidence is not None else ""
    )
    tempo = f"{snapshot.tempo_bpm:.1f} bpm from {snapshot.tempo_source}{confidence}"
    rows.append(("tempo", [(tempo, "")]))
    if snapshot.key_fixed:
        heard = f"{snapshot.key}, {snapshot.key_sureness}" if snapshot.key != "-" else "nothing yet"
        rows.append(("key", [(f"{snapshot.key_fixed} (fixed)", "good"), (f"; heard {heard}", "")]))
    else:
        rows.append(("key heard", [(f"{snapshot.key}, {snapshot.key_sureness}", "")]))
    mode = snapshot.mode + (" (answering now)" if snapshot.answering else "")
    rows.append(("style / mode", [(f"{snapshot.style} / {mode}", "")]))
    controls = ", ".join(f"{k} {v}" for k, v in snapshot.controls.items())
    rows.append(("controls", [(controls, "")]))
    notes, answers = snapshot.notes_played, snapshot.answers
    played = f"{notes} note{'s' * (notes != 1)} in {answers} answer{'s' * (answers != 1)}"
    rows.append(("played", [(played, "")]))
    timing: list[Segment] = (
        [(("\n" if i else "") + p, "warn") for i, p in enumerate(snapshot.problems)]
        if snapshot.problems
        else [("all on time", "good")]
    )
    rows.append(("timing", timing))
    return rows


def roll_rows(snapshot: JamSnapshot) -> list[tuple[int, str, list[str]]]:
    """The piano roll of both parts over the window: (pitch, its name, one cell a 16th, oldest
    first), highest pitch first, at most ``ROLL_ROWS_MAX`` rows; empty before anything sounded.
    Cells: ``PLAYER_ONSET``/``PLAYER_HELD``, ``AGENT_ONSET``/``AGENT_HELD``, ``BOTH`` or ''."""
    player, agent = snapshot.player_roll, snapshot.agent_roll
    sounding = np.concatenate([player[player >= 0], agent[agent >= 0]])
    if sounding.size == 0:
        return []
    high = int(sounding.max())
    low = max(int(sounding.min()), high - ROLL_ROWS_MAX + 1)
    rows = []
    for pitch in range(high, low - 1, -1):
        cells = []
        for step in range(len(player)):
            p, a = player[step] == pitch, agent[step] == pitch
            if p and a:
                cells.append(BOTH)
            elif p:
                cells.append(PLAYER_ONSET if snapshot.player_onsets[step] else PLAYER_HELD)
            elif a:
                cells.append(AGENT_ONSET if snapshot.agent_onsets[step] else AGENT_HELD)
            else:
                cells.append("")
        rows.append((pitch, pitch_name(pitch), cells))
    return rows


def key_and_sureness(histogram: np.ndarray, tonic: int, minor: bool) -> tuple[str, str]:
    """('D major', 'sure') from the call's pitch-class weights (``Decider.key_histogram``): how
    well the heard notes correlate with the Krumhansl-Schmuckler profile of the chosen key (Pearson r)."""
    h = np.asarray(histogram, dtype=np.float64)
    if h.sum() <= 0:
        return "-", "nothing heard yet"
    centered = h - h.mean()
    norm = float(np.linalg.norm(centered))
    r = (
        float(centered @ KEY_TEMPLATES[tonic + (PITCH_CLASSES if minor else 0)]) / norm
        if norm
        else 0.0
    )
    sureness = "sure" if r >= SURE_R else "fairly sure" if r >= FAIRLY_SURE_R else "guessing"
    return key_name(tonic, minor), f"{sureness} (r {r:.2f})"


def problems_text(late_steps: int, steps: int, dropped: int) -> list[str]:
    """Late steps and dropped input as a musician would say it."""
    lines = []
    if late_steps:
        lines.append(
            f"{late_steps} of {steps} 16ths came late: notes left more than {LATE_NS / 1e6:g} ms "
            "after the "
            "beat, which can be heard; the computer was busy (close other programs)"
        )
    if dropped:
        lines.append(f"{dropped} MIDI messages could not be read and were ignored")
    return lines


def take_snapshot(session: Any, ports: list[PortState], style: str) -> JamSnapshot:
    """A snapshot of ``session`` (a live_agent.engine.Session) for the view."""
    options = session.options
    tempo = getattr(session, "tempo", None)
    if tempo is not None and getattr(tempo, "locked", False):
        bpm, source, confidence = tempo.bpm, "your playing", float(tempo.confidence)
    elif getattr(getattr(session, "grid", None), "source", None) == "link":
        bpm, source, confidence = session.grid.tempo_bpm, session.grid.source_text(), None
    elif getattr(session, "_midi_clock_heard", False):
        grid = getattr(session, "grid", None)
        bpm = float(getattr(grid, "tempo_bpm", options.bpm))
        source, confidence = "MIDI clock", None
    else:
        bpm, source = options.bpm, "--bpm (waiting to hear your beat)"
        confidence = float(tempo.confidence) if tempo is not None else None
    decider = session.decider
    # The grid step being played now; the windows' last column is the step before it. (A step
    # closed between this read and the windows' shifts the bars by a 16th for one refresh.)
    playing_step = int(getattr(session, "_closing_step", 0))
    key, sureness = key_and_sureness(decider.key_histogram, decider.tonic, decider.minor)
    fixed = decider.fixed_key
    player, agent = decider.player.window(), decider.agent.window()
    stats = session.stats
    mode = session.mode
    dropped = int(sum(stats.dropped.values()))
    return JamSnapshot(
        ports=ports,
        style=style,
        mode=str(getattr(mode, "name", options.mode)),
        answering=bool(getattr(mode, "answering", False)),
        tempo_bpm=float(bpm),
        tempo_source=source,
        tempo_confidence=confidence,
        key=key,
        key_sureness=sureness,
        key_fixed="" if fixed is None else key_name(*fixed),
        controls={
            "temperature": f"{session.temperature:.2f}",
            "density": f"{session.density:.2f}",
            "register": f"{session.register_shift:+d} semitones",
        },
        player_roll=np.array(player.top[0, -ROLL_STEPS:]),
        player_onsets=np.array(player.onset[0, -ROLL_STEPS:]),
        agent_roll=np.array(agent.top[0, -ROLL_STEPS:]),
        agent_onsets=np.array(agent.onset[0, -ROLL_STEPS:]),
        newest_step=playing_step - 1,
        steps_per_bar=int(decider.spec.steps_per_bar),
        temperature=float(session.temperature),
        density=float(session.density),
        register_shift=int(session.register_shift),
        late_steps=int(stats.late_steps),
        steps=int(stats.steps),
        dropped=dropped,
        notes_played=int(stats.notes_sent),
        answers=int(stats.answers),
        problems=problems_text(int(stats.late_steps), int(stats.steps), dropped),
    )
