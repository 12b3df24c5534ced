"""The agent's velocity: the player's recent level, with a small metrical accent.

``VelocityFollower`` smooths the player's note-on velocities (an exponential average over about
the last ``SMOOTHING_NOTES`` notes) and adds a few velocity units by position in the bar:
the downbeat a little louder, beat 3 less so, other beats level, off-beats a little softer
(the usual 4/4 accent hierarchy). ``fixed`` (``--velocity N``) overrides it all. ``deepjam jam``
and ``deepjam answer`` both get their velocities from here (through the Session).
"""

from __future__ import annotations

from exports.midi import MAX_VELOCITY
from exports.spec import GRID_STEPS_PER_BEAT

MIN_VELOCITY = 1
DEFAULT_LEVEL = 80.0
"""The level before the player has played a note."""
SMOOTHING_NOTES = 6.0
ACCENT_DOWNBEAT = 6
ACCENT_HALF_BAR = 3
ACCENT_BEAT = 0
ACCENT_OFFBEAT = -3
STEPS_PER_BEAT = GRID_STEPS_PER_BEAT


def metrical_accent(bar_position: int, steps_per_bar: int) -> int:
    """Velocity units added at ``bar_position`` (16ths into the bar) in a bar of that length."""
    if bar_position == 0:
        return ACCENT_DOWNBEAT
    if steps_per_bar % 2 == 0 and bar_position == steps_per_bar // 2:
        return ACCENT_HALF_BAR
    if bar_position % STEPS_PER_BEAT == 0:
        return ACCENT_BEAT
    return ACCENT_OFFBEAT


class VelocityFollower:
    """Player's note-on velocities in, the agent's velocity for a step out."""

    def __init__(self, fixed: int | None = None, steps_per_bar: int = 16) -> None:
        self.fixed = fixed
        self.steps_per_bar = steps_per_bar
        self.level = DEFAULT_LEVEL
        self.heard = 0

    def observe(self, velocity: int) -> None:
        """One note-on of the player (velocity 1..127)."""
        if self.heard == 0:
            self.level = float(velocity)
        else:
            self.level += (velocity - self.level) / SMOOTHING_NOTES
        self.heard += 1

    def velocity(self, step: int) -> int:
        """The agent's velocity for a note starting on grid ``step``, 1..127."""
        if self.fixed is not None:
            return self.fixed
        accent = metrical_accent(step % self.steps_per_bar, self.steps_per_bar)
        return int(min(MAX_VELOCITY, max(MIN_VELOCITY, round(self.level) + accent)))
