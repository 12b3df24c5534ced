"""Does the duet leave room? Measured from outside: `deepjam jam --mode duet --api jack --virtual`
(the shipped default model, no clock, 100 bpm) on its own JACK server, played by a separate JACK
client that stamps what it sends and hears to the frame.

Two players, each looped for --duration-s seconds, then silence:

1. melody: a 4-bar D-minor melody (D4..D5, quarter and eighth notes, a half-note and a
   beat's rest).
2. chorale: the lower three voices of a 4-bar C-major chorale as quarter-note chords.

Printed for each: the share of the player's sounding time deepjam sounds; the median register
distance (semitones from the agent's pitch to the nearest sounding player pitch, over the time
both sound); dissonant onsets (agent onsets that form a 2nd, tritone or 7th, interval classes
1, 2, 6, 10, 11, with any player note sounding then, or starting within 30 ms, over the agent
onsets where the player sounds; consonant onsets are the rest); agent and player notes per
bar; agent onsets within 10 ms of a player onset; the longest agent note (bars); and the time
from the player's last note-off to the end of the agent's last note (beats).

    python3 benchmarks/duet_room.py [--duration-s 300] [--period 128] [--players melody,chorale]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.jack_probe import NOTE_OFF, NOTE_ON, jack_recorder, run_jam  # noqa: E402
from tests.support.jack_server import start_jack_server, stop_jack_server  # noqa: E402

DEEPJAM_IN = "deepjam-in:deepjam in"
DEEPJAM_OUT = "deepjam-out:deepjam out"
BPM = 100.0
LOOP_STEPS = 64  # 4 bars of 16ths
DISSONANT = {1, 2, 6, 10, 11}  # 2nds, the tritone, 7ths (interval classes)
MELODY = [(0, 4, 62), (4, 2, 65), (6, 2, 64), (8, 4, 62), (12, 4, 69)]
MELODY += [(16, 2, 67), (18, 2, 65), (20, 2, 64), (22, 2, 62), (24, 8, 61)]
MELODY += [(32, 4, 62), (40, 2, 65), (42, 2, 67), (44, 4, 69)]  # a beat's rest at 36..39
MELODY += [(48, 4, 70), (52, 4, 69), (56, 6, 74)]
CHORDS = [
    (48, 55, 64), (53, 57, 60), (43, 55, 62), (48, 55, 64),  # I IV V I
    (45, 52, 60), (50, 57, 65), (43, 55, 62), (43, 53, 59),  # vi ii V V7
    (48, 55, 64), (52, 55, 60), (53, 57, 60), (43, 55, 59),  # I I6 IV V
    (45, 57, 60), (41, 57, 60), (43, 55, 62), (48, 55, 64),  # vi IV V I
]  # fmt: skip
CHORALE = [(4 * i, 4, p) for i, chord in enumerate(CHORDS) for p in chord]
PLAYERS = {"melody": MELODY, "chorale": CHORALE}


def play(recorder, notes, t0: float) -> None:  # type: ignore[no-untyped-def]
    step_s = 60.0 / BPM / 4
    events = []
    for start, length, pitch in notes:
        events.append((start * step_s, 0, (NOTE_ON, pitch, 90)))
        events.append(((start + length) * step_s - 0.01, 1, (NOTE_OFF, pitch, 0)))
    for at_s, _, message in sorted(events):
        time.sleep(max(0.0, t0 + at_s - time.perf_counter()))
        recorder.send(message)


def notes_of(events, end_frame: int) -> list[tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    """(on frame, off frame, pitch) of each note in ``events``; one still open ends at
    ``end_frame``."""
    open_at: dict[int, int] = {}
    notes = []
    for e in events:
        if len(e.data) != 3 or e.data[0] & 0xF0 not in (NOTE_ON, NOTE_OFF):
            continue
        pitch = e.data[1]
        if e.data[0] & 0xF0 == NOTE_ON and e.data[2]:
            if pitch in open_at:
                notes.append((open_at[pitch], e.frame, pitch))
            open_at[pitch] = e.frame
        elif pitch in open_at:
            notes.append((open_at.pop(pitch), e.frame, pitch))
    notes += [(on, end_frame, pitch) for pitch, on in open_at.items()]
    return sorted(notes)


def sounding_grid(notes, origin: int, n: int, hop: int) -> list[set[int]]:  # type: ignore[no-untyped-def]
    """The pitches sounding at ``origin + k * hop`` for k < n."""
    grid: list[set[int]] = [set() for _ in range(n)]
    for on, off, pitch in notes:
        for k in range(max(0, -(-(on - origin) // hop)), min(n, -(-(off - origin) // hop))):
            grid[k].add(pitch)
    return grid


def measure(sent, heard, rate: int) -> str:  # type: ignore[no-untyped-def]
    beat = rate * 60 / BPM
    end = max(e.frame for e in heard + sent) + rate
    player = notes_of(sent, end)
    agent = notes_of(heard, end)
    player_stop = max(off for _, off, _ in player)
    origin, hop = player[0][0], rate // 100  # 10 ms
    n = (player_stop - origin) // hop
    p_grid, a_grid = sounding_grid(player, origin, n, hop), sounding_grid(agent, origin, n, hop)
    p_on = np.array([k for k in range(n) if p_grid[k]])
    both = [k for k in p_on if a_grid[k]]
    share = len(both) / max(1, len(p_on))
    distance = [min(abs(a - p) for a in a_grid[k] for p in p_grid[k]) for k in both]
    onsets = [(on, pitch) for on, _, pitch in agent if on < player_stop]
    judged = dissonant = 0
    for on, pitch in onsets:
        with_player = [p for p_on_, p_off, p in player if p_on_ <= on + 0.03 * rate and p_off > on]
        if with_player:
            judged += 1
            dissonant += any((pitch - p) % 12 in DISSONANT for p in with_player)
    player_onsets = np.array(sorted({on for on, _, _ in player}), dtype=float)
    near = sum(np.min(np.abs(player_onsets - on)) <= 0.01 * rate for on, _ in onsets)
    bars = (player_stop - origin) / (4 * beat)
    longest = max((off - on for on, off, _ in agent), default=0) / (4 * beat)
    agent_end = max((off for _, off, _ in agent), default=player_stop)
    pitches = [p for _, _, p in agent]
    return (
        f"sounds {share:.1%} of the player's sounding time; median register distance "
        f"{np.median(distance) if distance else float('nan'):.1f} semitones; dissonant onsets "
        f"{dissonant / max(1, judged):.1%} (consonant {1 - dissonant / max(1, judged):.1%}) of "
        f"{judged} over the player; {len(onsets) / bars:.1f} notes a bar (player "
        f"{len(player_onsets) / bars:.1f} onsets); {near / max(1, len(onsets)):.1%} within 10 ms "
        f"of a player onset; range {min(pitches, default=0)}..{max(pitches, default=0)}; longest note "
        f"{longest:.2f} bars; silent {(agent_end - player_stop) / beat:+.2f} beats after the "
        f"player stopped"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration-s", type=float, default=300.0, help="each player's loop")
    parser.add_argument("--period", type=int, default=128)
    parser.add_argument("--players", default="melody,chorale")
    parser.add_argument("--model", type=Path, default=ROOT / "live_agent/models/default.onnx")
    parser.add_argument("jam_args", nargs="*", help="more `deepjam jam` flags (after --)")
    args = parser.parse_args()
    name = f"deepjam-duet-room-{os.getpid()}"
    server = start_jack_server(name, Path(tempfile.mkdtemp()) / "jackd.log", args.period)
    os.environ["JACK_DEFAULT_SERVER"] = name  # this process's probe, and deepjam
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    jam = ["--model", str(args.model), "--virtual", "--api", "jack", "--bpm", f"{BPM:g}"]
    jam += ["--mode", "duet", *args.jam_args]
    loop_s = LOOP_STEPS * 60 / BPM / 4
    print(f"JACK dummy, {args.period} frames at 48 kHz; model {args.model.name}; {BPM:g} bpm")
    try:
        for player in args.players.split(","):
            with jack_recorder("duet-room-probe") as recorder, run_jam(jam, env=env):
                recorder.wait_for_port(DEEPJAM_OUT)
                recorder.connect_from(DEEPJAM_OUT)
                recorder.connect_to(DEEPJAM_IN)
                time.sleep(0.2)
                t0 = time.perf_counter() + 0.3
                for k in range(max(1, int(args.duration_s // loop_s))):
                    play(recorder, PLAYERS[player], t0 + k * loop_s)
                time.sleep(4.0)
                sent, heard = list(recorder.sent), list(recorder.events)
                rate = recorder.sample_rate
            print(f"{player} {args.duration_s:g} s: {measure(sent, heard, rate)}", flush=True)
    finally:
        stop_jack_server(server.process)


if __name__ == "__main__":
    main()
