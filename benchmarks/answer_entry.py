"""Where live answers enter: on the downbeat after the call, decided before it?

Scripted calls are played to a live ``Session`` (``--clock auto``: the player's own beat, with
``--bpm 120`` as the fallback) on a FakeClock, with the shipped default model, at 90-140 bpm,
with a few ms of human timing jitter and accents on the player's downbeats. The player's bars
are the truth: a call's downbeat is after its pickup. Kinds of call:

* ``bars``: 1-, 2- and 4-bar calls from a bar line closing on a held note (half, dotted half
  or whole note); ``open``: the same closing on quarters or 8ths (answered a bar later: a
  quarter there is a step on, so the silence decides);
* ``pickup``: the same, after a pickup of an 8th, two 16ths, a quarter or two 8ths;
* ``rest``: 2-bar calls with a rest of 1 or 2 beats inside;
* ``short``: calls of 3-5 onsets.

Printed per kind: the share of answers whose first note is on a player's downbeat after the
call (``downbeat``; the answer mode enters on downbeats only, never with a pickup), on the first
downbeat after the call (``next``), answers entering while the call still had notes to play (``false starts``),
and for short calls how far the answer's notes fall from the player's 16th grid (ms).

    python3 benchmarks/answer_entry.py [--model live_agent/models/default.onnx] [--seeds 2]

Measured (shipped default, 2 seeds, 2 cores): on the next downbeat, bars 100% (192), open 0%
(all on the downbeat after: 100%), pickup 96.7% (480), rest 93.1% (72); false starts 0% in
every kind; short calls on a downbeat 90.3%, their answers p50 7.4 ms, p99 36.8 ms off the
player's 16ths (3 onsets with 4 ms jitter give the tempo to about 1%, extrapolated over bars).
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from exports.model_file import PolicyModel, load_model  # noqa: E402
from live_agent.clock import FakeClock  # noqa: E402
from live_agent.controls import ControlMap  # noqa: E402
from live_agent.engine import Session  # noqa: E402
from live_agent.options import JamOptions  # noqa: E402
from tests.fakes import RecordingNoteSink, inbox_of  # noqa: E402

TEMPI = (90.0, 100.0, 110.0, 120.0, 130.0, 140.0)
JITTER_MS = 4.0
ON_GRID_FRACTION = 0.25
"""An answer onset within this share of a 16th of a grid point is on it."""
PITCHES = (60, 62, 64, 65, 67, 69, 67, 65, 64, 62)

# Bars of 16ths: note lengths (steps) that fill a bar.
BODY = ([4, 4, 4, 4], [2, 2, 2, 2, 4, 4], [4, 2, 2, 4, 4], [3, 1, 2, 2, 4, 4], [2, 2, 4, 2, 2, 4])
HELD_CLOSE = ([4, 4, 8], [16], [4, 2, 2, 8], [2, 2, 4, 8], [8, 8], [4, 12])
ONE_BAR = ([4, 4, 8], [4, 2, 2, 8], [2, 2, 4, 8], [2, 2, 2, 2, 8], [4, 4, 4, 4], [2, 2, 4, 4, 4])
"""1-bar calls (3 notes or more), closing on a held note or not."""
SHORT_CLOSE = ([4, 4, 4, 4], [2, 2, 2, 2, 4, 4])
PICKUPS = ([2], [1, 1], [4], [2, 2])
SHORT_CALLS = ([4, 4, 8], [2, 2, 4, 8], [4, 4, 4, 4], [2, 2, 2, 2, 8], [4, 8, 4], [8, 4, 4])


@dataclass
class Call:
    kind: str
    notes: list[tuple[int, int]]
    """(start step, length) on the player's grid; step 0 is the call's downbeat."""
    bars: int
    """The call's whole bars after its pickup: its answer is due on step 16 * bars."""


def calls(rng: np.random.Generator) -> list[Call]:
    out = []

    def line(lengths: list[int], start: int = 0) -> list[tuple[int, int]]:
        notes, at = [], start
        for length in lengths:
            notes.append((at, length))
            at += length
        return notes

    for bars in (1, 2, 4):
        closes = (*HELD_CLOSE, *SHORT_CLOSE) if bars > 1 else (*ONE_BAR, *SHORT_CLOSE)
        for close in closes:
            body = [x for _ in range(bars - 1) for x in BODY[int(rng.integers(len(BODY)))]]
            kind = "bars" if close[-1] >= 8 else "open"  # a held close, or short notes
            out.append(Call(kind, line(body + list(close)), bars))
    for pickup in PICKUPS:
        for bars in (1, 2):
            for close in HELD_CLOSE if bars > 1 else ONE_BAR[:4]:
                body = [x for _ in range(bars - 1) for x in BODY[int(rng.integers(len(BODY)))]]
                lead = line(list(pickup), -sum(pickup))
                out.append(Call("pickup", lead + line(body + list(close)), bars))
    for rest_at, rest in ((8, 8), (12, 4), (4, 4), (20, 8), (24, 4), (6, 6)):
        # 2 bars of 8ths with a rest of ``rest`` steps from ``rest_at``, closing on a half note.
        notes = [(s, 2) for s in range(0, 24, 2) if not rest_at <= s < rest_at + rest]
        notes.append((24, 8))
        notes = [(s, min(length, 24 - s) if s < 24 else length) for s, length in notes]
        out.append(Call("rest", notes, 2))
    for lengths in SHORT_CALLS:
        total = sum(lengths)
        out.append(Call("short", line(lengths), max(1, -(-total // 16))))
    return out


@dataclass
class Heard:
    kind: str
    bpm: float
    entry_steps: float | None
    """The answer's first note, in player 16ths after the call's downbeat (None: no answer)."""
    last_onset: int
    due: int
    grid_errors_ms: list[float]


def play(call: Call, bpm: float, model: PolicyModel, rng: np.random.Generator) -> Heard:
    step_ns = 60e9 / bpm / 4
    downbeat_ns = 1e9 + float(rng.uniform(0, 16 * step_ns))  # the player's bar vs the session's
    events: list[tuple[int, tuple[int, ...]]] = []
    for i, (start, length) in enumerate(call.notes):
        on = downbeat_ns + start * step_ns + rng.normal(0, JITTER_MS * 1e6)
        off = downbeat_ns + (start + length * 0.9) * step_ns
        velocity = 100 if start % 16 == 0 else (88 if start % 4 == 0 else 76)
        pitch = PITCHES[i % len(PITCHES)]
        events += [(int(on), (0x90, pitch, velocity)), (int(off), (0x80, pitch, 0))]
    events.sort()
    clock = FakeClock()
    sink = RecordingNoteSink(clock)
    options = JamOptions(mode="answer", clock="auto", bpm=120.0, seed=int(rng.integers(1 << 30)))
    session = Session(
        model, options, sink, clock, inbox_of(events, close=False), controls=ControlMap()
    )
    end_ns = downbeat_ns + (16 * call.bars + 48) * step_ns
    session.run(threading.Event(), until_step=int(end_ns / (60e9 / 120 / 4)) + 8, start_ns=0)
    ons = [e[0] for e in sink.events if e[1] == "on"]
    entry = (ons[0] - downbeat_ns) / step_ns if ons else None
    errors = []
    for t in ons:
        x = (t - downbeat_ns) / step_ns
        errors.append(abs(x - round(x)) * step_ns / 1e6)
    return Heard(call.kind, bpm, entry, call.notes[-1][0], 16 * call.bars, errors)


def judge(h: Heard) -> tuple[bool, bool, bool]:
    """(on a player's downbeat after the call, on the first downbeat after the call, a false
    start). The answer mode enters on downbeats only (no pickup), so an entry a beat before
    one is on a wrong bar line, not a pickup, and is not counted."""
    if h.entry_steps is None:
        return False, False, False
    x = h.entry_steps
    false_start = x < h.last_onset + ON_GRID_FRACTION
    nearest = round(x)
    downbeat = abs(x - nearest) <= ON_GRID_FRACTION and nearest % 16 == 0 and x > h.last_onset
    return downbeat, downbeat and nearest == h.due, false_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "live_agent/models/default.onnx"))
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    model = load_model(args.model)
    heard: list[Heard] = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        for call in calls(rng):
            for bpm in TEMPI:
                heard.append(play(call, bpm, model, rng))
    print(f"answer entry, {args.model}, {args.seeds} seeds x {len(TEMPI)} tempi 90-140 bpm")
    for kind in ("bars", "open", "pickup", "rest", "short"):
        rows = [h for h in heard if h.kind == kind]
        judged = np.array([judge(h) for h in rows], dtype=bool)  # (n, 3)
        silent = sum(h.entry_steps is None for h in rows)
        line = (
            f"{kind:7s} n={len(rows):4d}  downbeat {judged[:, 0].mean():6.1%}  next "
            f"{judged[:, 1].mean():6.1%}  false starts {judged[:, 2].mean():5.1%}  "
            f"unanswered {silent}"
        )
        if kind == "short":
            errors = [e for h in rows for e in h.grid_errors_ms]
            line += f"  grid error p50 {np.percentile(errors, 50):.1f} ms p99 {np.percentile(errors, 99):.1f} ms"
        print(line)
    misses = [h for h in heard if h.kind != "short" and not judge(h)[0]]
    for h in misses[:8]:
        print(f"  missed: {h.kind} {h.bpm:.0f} bpm entry {h.entry_steps} due {h.due}")


if __name__ == "__main__":
    main()
