"""Issue 9's goals, measured from outside: `deepjam jam --api jack --virtual` (no clock, the
shipped default model) on its own JACK server, played by a separate JACK client that stamps
what it sends and hears to the frame.

1. Grid: a 2-bar call at 90, 100 and 132 bpm (--bpm 120): the answer's onsets against the call's
   16th grid continued forward (ms; p50 / p90), raw and without the constant JACK round trip.
2. Start: the first answer note against the first strong beat after the call's end (beats).
3. False start: a call with a one-beat rest inside it: agent notes heard during the call.
4. Velocity: calls at 40..120: Spearman of the answer's mean velocity against the call's.
5. Duet: a looping 2-bar C-minor player for --duet-s seconds, then silence: longest agent note
   (bars) against the 2-bar bound, share of agent notes in C minor, silence after the player.

    python3 benchmarks/listening.py [--duet-s 300] [--period 128]
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
CALL = [(0, 4, 60), (4, 2, 62), (6, 2, 63), (8, 4, 65), (12, 4, 67)]
CALL += [(16, 2, 68), (18, 2, 67), (20, 2, 65), (22, 2, 63), (24, 8, 60)]  # C minor, 2 bars
REST_CALL = [(0, 2, 60), (2, 2, 62), (4, 2, 63), (10, 2, 65), (12, 2, 67), (14, 2, 65)]
REST_CALL += [(16, 4, 63), (20, 4, 62), (24, 8, 60)]  # a beat's rest (steps 6..9) in bar 1
C_MINOR = {0, 2, 3, 5, 7, 8, 10, 11}  # natural + harmonic (B natural)


def play(recorder, notes, bpm: float, velocity: int, t0: float) -> None:  # type: ignore[no-untyped-def]
    step_s = 60.0 / bpm / 4
    events = []
    for start, length, pitch in notes:
        events.append((start * step_s, (NOTE_ON, pitch, velocity)))
        events.append(((start + length) * step_s - 0.01, (NOTE_OFF, pitch, 0)))
    for at_s, message in sorted(events):
        time.sleep(max(0.0, t0 + at_s - time.perf_counter()))
        recorder.send(message)


def robust_grid(frames: np.ndarray, steps: np.ndarray) -> tuple[float, float]:
    slope = float(np.median(np.diff(frames) / np.diff(steps)))
    intercept = float(np.median(frames - slope * steps))
    keep = np.abs(frames - (intercept + slope * steps)) <= 0.2 * slope
    slope, intercept = np.polyfit(steps[keep], frames[keep], 1)
    return float(intercept), float(slope)


def session(env, args, body):  # type: ignore[no-untyped-def]
    with jack_recorder("listening-probe") as recorder, run_jam(args, env=env) as jam:
        recorder.wait_for_port(DEEPJAM_OUT)
        recorder.connect_from(DEEPJAM_OUT)
        recorder.connect_to(DEEPJAM_IN)
        time.sleep(0.2)
        body(recorder)
        sent = [e for e in recorder.sent if e.data[0] & 0xF0 == NOTE_ON]
        heard = list(recorder.events)
    return sent, heard, jam.lines, recorder.sample_rate


def agent_ons(heard):  # type: ignore[no-untyped-def]
    return [e for e in heard if len(e.data) == 3 and e.data[0] & 0xF0 == NOTE_ON and e.data[2]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duet-s", type=float, default=300.0)
    parser.add_argument("--period", type=int, default=128)
    parser.add_argument("--model", type=Path, default=ROOT / "live_agent/models/default.onnx")
    args = parser.parse_args()
    name = f"deepjam-listening-{os.getpid()}"
    server = start_jack_server(name, Path(tempfile.mkdtemp()) / "jackd.log", args.period)
    os.environ["JACK_DEFAULT_SERVER"] = name  # this process's probe, and deepjam
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = ["--model", str(args.model), "--virtual", "--api", "jack", "--bpm", "120"]
    try:
        rate = 48000
        print(f"JACK dummy, {args.period} frames at 48 kHz; model {args.model.name}")
        if os.environ.get("LISTENING_SKIP_GRID"):
            grid_tempi: tuple[float, ...] = ()
        else:
            grid_tempi = (90.0, 100.0, 132.0)
        # 1-2. Grid and start, 3 calls per tempo.
        for bpm in grid_tempi:
            raw, spread, starts = [], [], []
            for _ in range(3):

                def body(recorder, bpm=bpm):  # type: ignore[no-untyped-def]
                    play(recorder, CALL, bpm, 90, time.perf_counter() + 0.3)
                    time.sleep(60 / bpm * 4 * 2 + 1.0)

                sent, heard, lines, rate = session(env, base + ["--mode", "answer"], body)
                call = np.array([e.frame for e in sent], dtype=float)
                ans = np.array([e.frame for e in agent_ons(heard)], dtype=float)
                if len(ans) == 0 or len(call) != len(CALL):
                    print(f"  {bpm:g} bpm: no answer heard ({len(ans)} notes)")
                    continue
                origin, step = robust_grid(call, np.array([s for s, _, _ in CALL], float))
                index = np.round((ans - origin) / step)
                off = (ans - (origin + index * step)) / rate * 1e3
                raw += list(np.abs(off))
                spread += list(np.abs(off - np.median(off)))
                starts.append((index[0] - 32) / 4)  # beats after the strong beat (32 = end)
            print(
                f"grid {bpm:g} bpm: |onset - call grid| p50 {np.percentile(raw, 50):.1f} ms, "
                f"p90 {np.percentile(raw, 90):.1f} ms; without the constant round trip p90 "
                f"{np.percentile(spread, 90):.1f} ms ({len(raw)} onsets); first note "
                f"{', '.join(f'{s:+.2f}' for s in starts)} beats from the strong beat"
            )
        # 3. False start.
        false_starts = 0
        for _ in range(3):
            call_end_s = 32 * 60 / 100 / 4

            def rest_body(recorder):  # type: ignore[no-untyped-def]
                play(recorder, REST_CALL, 100.0, 90, time.perf_counter() + 0.3)
                time.sleep(1.5)

            sent, heard, _, rate = session(env, base + ["--mode", "answer"], rest_body)
            first = sent[0].frame
            during = [
                e for e in agent_ons(heard) if e.frame < first + call_end_s * rate - 0.05 * rate
            ]
            false_starts += bool(during)
        print(f"false start on a call with a one-beat rest: {false_starts} of 3 calls")
        # 4. Velocity.
        pairs = []
        for velocity in (40, 60, 80, 100, 120):

            def vel_body(recorder, velocity=velocity):  # type: ignore[no-untyped-def]
                play(recorder, CALL, 100.0, velocity, time.perf_counter() + 0.3)
                time.sleep(3.0)

            _, heard, _, _ = session(env, base + ["--mode", "answer"], vel_body)
            v = [e.data[2] for e in agent_ons(heard)]
            pairs.append((velocity, float(np.mean(v)) if v else float("nan")))
        heard_pairs = [p for p in pairs if not np.isnan(p[1])]  # calls the model answered
        x = np.array([p[0] for p in heard_pairs], float)
        y = np.array([p[1] for p in heard_pairs], float)
        rho = float(np.corrcoef(np.argsort(np.argsort(x)), np.argsort(np.argsort(y)))[0, 1])
        print(
            f"velocity: call -> answer mean {[(a, round(b)) for a, b in heard_pairs]}; Spearman {rho:.2f}"
        )
        # 5. Duet against a looping player.
        loop_s = 2 * 4 * 60 / 100

        def duet_body(recorder):  # type: ignore[no-untyped-def]
            t0 = time.perf_counter() + 0.3
            loops = int(args.duet_s // loop_s)
            for k in range(loops):
                play(recorder, CALL, 100.0, 90, t0 + k * loop_s)
            recorder.stop_frame = recorder.client.frame_time  # type: ignore[attr-defined]
            time.sleep(6.0)

        sent, heard, lines, rate = session(env, base + ["--mode", "duet"], duet_body)
        player_end = max(e.frame for e in sent) + int(0.6 * rate)
        ons = agent_ons(heard)
        open_at: dict[int, int] = {}
        longest = 0
        for e in heard:
            if len(e.data) != 3 or e.data[0] & 0xF0 not in (NOTE_ON, NOTE_OFF):
                continue
            if e.data[0] & 0xF0 == NOTE_ON and e.data[2]:
                open_at[e.data[1]] = e.frame
            elif e.data[1] in open_at:
                longest = max(longest, e.frame - open_at.pop(e.data[1]))
        bar_s = 4 * 60 / 100
        in_key = np.mean([e.data[1] % 12 in C_MINOR for e in ons]) if ons else float("nan")
        after = [e for e in ons if e.frame > player_end + 2 * bar_s * rate]
        # Vertical dissonance at shared onsets: agent and player notes within 30 ms.
        player_on = np.array([e.frame for e in sent], dtype=float)
        player_pitch = [e.data[1] for e in sent]
        intervals = []
        for e in ons:
            if len(player_on):
                i = int(np.argmin(np.abs(player_on - e.frame)))
                if abs(player_on[i] - e.frame) <= 0.03 * rate:
                    intervals.append((e.data[1] - player_pitch[i]) % 12)
        dissonant = np.mean([i in (1, 6, 11) for i in intervals]) if intervals else float("nan")
        print(f"duet vertical m2/M7/tritone at {len(intervals)} shared onsets: {dissonant:.1%}")
        last = max((e.frame for e in ons), default=player_end)
        print(
            f"duet {args.duet_s:g} s at 100 bpm: {len(ons)} agent notes; longest {longest / rate / bar_s:.2f} "
            f"bars (bound 2); in C minor {in_key:.1%}; last agent onset "
            f"{(last - player_end) / rate / bar_s:+.2f} bars after the player stopped; "
            f"{len(after)} notes more than 2 bars after"
        )
    finally:
        stop_jack_server(server.process)


if __name__ == "__main__":
    main()
