"""What the live view shows, read from a running session: one plain dataclass, so the terminal
view and a test read the same thing. Reads from another thread may be a step old; nothing
here writes to the session."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exports.tonality import KEY_TEMPLATES, PITCH_CLASSES

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
SURE_R = 0.75
FAIRLY_SURE_R = 0.5


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
    controls: dict[str, str]
    player_roll: np.ndarray
    """(W,) top pitch of the player's part per step, oldest first; -1 silent."""
    player_onsets: np.ndarray
    agent_roll: np.ndarray
    agent_onsets: np.ndarray
    late_steps: int
    steps: int
    dropped: int
    notes_played: int
    answers: int
    problems: list[str] = field(default_factory=list)
    """Late steps and drops in musicians' words; empty when all is well."""


def key_and_sureness(histogram: np.ndarray, tonic: int, minor: bool) -> tuple[str, str]:
    """('D major', 'sure') from the key tracker's pitch-class histogram: how well the heard
    notes correlate with the Krumhansl-Schmuckler profile of the chosen key (Pearson r)."""
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
    return f"{NOTE_NAMES[tonic]} {'minor' if minor else 'major'}", f"{sureness} (r {r:.2f})"


def problems_text(late_steps: int, steps: int, dropped: int) -> list[str]:
    """Late steps and dropped input as a musician would say it."""
    lines = []
    if late_steps:
        lines.append(
            f"{late_steps} of {steps} 16ths came late: the computer was busy (close other programs)"
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
    elif getattr(session, "_midi_clock_heard", False):
        grid = getattr(session, "grid", None)
        bpm = float(getattr(grid, "tempo_bpm", options.bpm))
        source, confidence = "MIDI clock", None
    else:
        bpm, source = options.bpm, "--bpm (waiting to hear your beat)"
        confidence = float(tempo.confidence) if tempo is not None else None
    decider = session.decider
    key, sureness = key_and_sureness(decider.key.histogram, decider.tonic, decider.minor)
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
        controls={
            "temperature": f"{session.temperature:.2f}",
            "density": f"{session.density:.2f}",
            "register": f"{session.register_shift:+d} semitones",
        },
        player_roll=np.array(player.top[0]),
        player_onsets=np.array(player.onset[0]),
        agent_roll=np.array(agent.top[0]),
        agent_onsets=np.array(agent.onset[0]),
        late_steps=int(stats.late_steps),
        steps=int(stats.steps),
        dropped=dropped,
        notes_played=int(stats.notes_sent),
        answers=int(stats.answers),
        problems=problems_text(int(stats.late_steps), int(stats.steps), dropped),
    )
