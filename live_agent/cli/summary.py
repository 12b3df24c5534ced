"""What a jam says when it stops, in a musician's words (``--verbose`` adds the engineer's)."""

from __future__ import annotations

from typing import Any

from live_agent.scheduler import LATE_NS


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def duration_text(seconds: float) -> str:
    """``'2 min 05 s'`` or ``'42 s'``."""
    whole = max(0, round(seconds))
    minutes, secs = divmod(whole, 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def timing_text(late_steps: int, steps: int) -> str:
    """How steady the timing was: ``'every 16th on time'``, or how many were late, what that
    sounds like and why. A 16th is late only when a note of it left more than
    ``scheduler.LATE_NS`` (5 ms) after its beat, measured where it was sent."""
    if late_steps == 0:
        return "every 16th on time"
    share = late_steps / steps if steps else 1.0
    return (
        f"{_plural(late_steps, '16th')} of {steps:,} came late ({share:.1%}: "
        f"{'its note' if late_steps == 1 else 'their notes'} left more than {LATE_NS / 1e6:g} "
        "ms after the "
        "beat, which can be heard as a stumble; the computer was busy: close other programs)"
    )


def stop_summary(
    seconds: float, heard_messages: int, stats: Any | None, input_errors: int, send_errors: int
) -> str:
    """One line for the end of a jam: how long, what each side played, how the timing went,
    what was dropped. ``stats`` is the session's ``SessionStats`` (None if it never started)."""
    parts = [
        f"stopped after {duration_text(seconds)}",
        f"heard {_plural(heard_messages, 'message')}",
    ]
    if stats is not None:
        played = f"played {_plural(stats.notes_sent, 'note')}"
        if stats.answers:
            played += f" in {_plural(stats.answers, 'answer')}"
        if stats.interruptions:
            played += f" ({stats.interruptions} cut short when you came back in)"
        parts.append(played)
        parts.append(timing_text(stats.late_steps, stats.steps))
        dropped = sum(stats.dropped.values()) + input_errors
        if dropped:
            parts.append(f"ignored {_plural(dropped, 'unreadable message')}")
        if stats.held_timeouts:
            parts.append(f"let go of {_plural(stats.held_timeouts, 'key')} held with no release")
        if stats.model_swaps:
            parts.append(f"changed style {_plural(stats.model_swaps, 'time')}")
    if send_errors:
        parts.append(f"{_plural(send_errors, 'message')} could not be sent")
    return "; ".join(parts) + "; every note released"
