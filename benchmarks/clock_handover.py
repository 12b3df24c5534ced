"""Does `deepjam jam` (the shipped default: --clock auto, answer mode) still answer after clock
bytes and random traffic? From an outside JACK client, on a JACK server of its own.

Each scenario runs one `deepjam jam` (the packaged default model, default options, virtual
ports) and, ``--rounds`` times: the disturbance, half a second of quiet, then a one-bar call at
120 bpm (four 8ths and a held note). A round counts as answered when deepjam starts a note within
``ANSWER_WAIT_S`` of the call's end. The scenarios:

* none: no disturbance (the baseline);
* lone F8: one MIDI clock tick; lone FA: one Start;
* start-stop: a DAW's Start, two bars of clock at 110 bpm, Stop;
* random: ``--messages`` random messages at 2,000 a second: every system real-time and common
  byte (clock, Start, Stop, Continue, Song Position ...; no sysex, whose unterminated start would
  swallow the port upstream of deepjam) and channel messages (notes, CCs, program changes,
  pitch bend ...) on channels 2..16 (channel 1 is the controls' channel: CCs there are meant),
  then CC 123 and CC 64 = 0 on every channel (the notes left held end, as a keyboard's panic).

Printed: answered rounds of N per scenario, deepjam's mode changes and clock hand-overs as it
logged them, and its stop line.

    python3 benchmarks/clock_handover.py                        # 5 rounds, 10k messages, ~3 min
    python3 benchmarks/clock_handover.py --rounds 3 --messages 2000 --period 128
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEEPJAM_IN = "deepjam-in:deepjam in"
DEEPJAM_OUT = "deepjam-out:deepjam out"
CLOCK, START, CONTINUE, STOP, SPP = 0xF8, 0xFA, 0xFB, 0xFC, 0xF2
CALL_BPM = 120.0
CALL = [(0, 2, 67), (2, 2, 69), (4, 2, 71), (6, 2, 72), (8, 8, 74)]  # (step, steps, pitch)
ANSWER_WAIT_S = 4.0
QUIET_S = 0.5
DAW_BPM = 110.0
SEND_RATE = 2000.0
"""Random messages a second: a few a JACK period, as a busy controller sends."""


def random_messages(rng: np.random.Generator, count: int) -> list[tuple[int, ...]]:
    """``count`` random messages: system bytes, and channel messages on channels 2..16."""
    system = [(CLOCK,), (START,), (CONTINUE,), (STOP,), (0xFE,), (0xFF,), (0xF6,)]
    messages: list[tuple[int, ...]] = []
    for _ in range(count):
        if rng.random() < 0.3:
            kind = int(rng.integers(len(system) + 2))
            if kind == len(system):
                messages.append((SPP, int(rng.integers(128)), int(rng.integers(128))))
            elif kind == len(system) + 1:
                messages.append((0xF3, int(rng.integers(128))))  # song select
            else:
                messages.append(system[kind])
            continue
        status = int(rng.choice([0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0]))
        channel = int(rng.integers(1, 16))
        data = [int(b) for b in rng.integers(0, 128, 2)]
        length = 2 if status in (0xC0, 0xD0) else 3
        messages.append((status | channel, *data[: length - 1]))
    return messages


def play_call(recorder: object) -> None:
    step_s = 60.0 / CALL_BPM / 4
    events = []
    for start, length, pitch in CALL:
        events.append((start * step_s, (0x90, pitch, 90)))
        events.append(((start + length) * step_s - 0.01, (0x80, pitch, 0)))
    t0 = time.perf_counter()
    for at_s, message in sorted(events):
        time.sleep(max(0.0, t0 + at_s - time.perf_counter()))
        recorder.send(message)  # type: ignore[attr-defined]


def disturb(recorder: object, scenario: str, rng: np.random.Generator, messages: int) -> None:
    send = recorder.send  # type: ignore[attr-defined]
    if scenario == "lone F8":
        send((CLOCK,))
    elif scenario == "lone FA":
        send((START,))
    elif scenario == "start-stop":
        tick_s = 60.0 / DAW_BPM / 24
        send((START,))
        deadline = time.perf_counter()
        for _ in range(24 * 8):
            send((CLOCK,))
            deadline += tick_s
            time.sleep(max(0.0, deadline - time.perf_counter()))
        send((STOP,))
    elif scenario == "random":
        deadline = time.perf_counter()
        for message in random_messages(rng, messages):
            send(message)
            deadline += 1.0 / SEND_RATE
            time.sleep(max(0.0, deadline - time.perf_counter()))
        for channel in range(16):
            send((0xB0 | channel, 123, 0))
            send((0xB0 | channel, 64, 0))


@dataclass
class Result:
    scenario: str
    answered: int
    rounds: int
    modes: list[str]
    """deepjam's log lines of mode changes."""
    clock: list[str]
    """deepjam's log lines of MIDI clock hand-overs."""
    stop: str


def run_scenario(
    scenario: str, rounds: int, messages: int, env: dict[str, str], seed: int
) -> Result:
    from tests.support import jack_probe as probe

    rng = np.random.default_rng(seed)
    args = ["--virtual", "--api", "jack", "--view", "plain"]
    answered = 0
    with (
        probe.jack_recorder("clock-bench") as recorder,
        probe.run_jam(args, env=env, ready_timeout_s=60.0) as jam,
    ):
        recorder.wait_for_port(DEEPJAM_OUT)
        recorder.connect_from(DEEPJAM_OUT)
        recorder.connect_to(DEEPJAM_IN)
        time.sleep(0.5)
        for _ in range(rounds):
            disturb(recorder, scenario, rng, messages)
            time.sleep(QUIET_S)
            play_call(recorder)
            call_end = recorder.client.frame_time
            deadline = time.monotonic() + ANSWER_WAIT_S
            heard = False
            while time.monotonic() < deadline and not heard:
                time.sleep(0.05)
                heard = any(e.frame > call_end for e in recorder.note_ons())
            answered += heard
            time.sleep(2.5 if heard else 0.5)  # let the answer end before the next round
    lines = [line.removeprefix("deepjam jam: ") for line in jam.lines]
    return Result(
        scenario,
        answered,
        rounds,
        modes=[line for line in lines if line.startswith("mode:")],
        clock=[line for line in lines if "MIDI clock" in line],
        stop=next((line for line in lines if line.startswith("stopped after")), "(no stop line)"),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="disturbance + call, per scenario")
    parser.add_argument("--messages", type=int, default=10_000, help="random messages a round")
    parser.add_argument("--period", type=int, default=128, help="JACK period, frames")
    parser.add_argument(
        "--scenarios",
        default="none,lone F8,lone FA,start-stop,random",
        help="comma-separated: none, lone F8, lone FA, start-stop, random",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # tests.support: the JACK server and the probe
    from tests.support.jack_server import start_jack_server, stop_jack_server

    results = []
    with tempfile.TemporaryDirectory(prefix="deepjam-bench-") as tmp:
        server = start_jack_server(
            f"deepjam-clock-bench-{os.getpid()}", Path(tmp) / "jackd.log", args.period
        )
        os.environ["JACK_DEFAULT_SERVER"] = server.name  # the probe's own clients, too
        try:
            for scenario in args.scenarios.split(","):
                results.append(
                    run_scenario(
                        scenario.strip(), args.rounds, args.messages, server.env, args.seed
                    )
                )
        finally:
            stop_jack_server(server.process)
    print(
        f"deepjam jam (shipped default, --clock auto, answer) from an outside JACK client; JACK "
        f"dummy 48 kHz -p {args.period}; a 1-bar call at {CALL_BPM:g} bpm after each disturbance"
    )
    print(f"{'scenario':<12} {'answered':>9}  mode changes / clock hand-overs logged")
    for r in results:
        clock = ", ".join(sorted(set(r.clock))) or "none"
        modes = ", ".join(r.modes) or "none"
        print(
            f"{r.scenario:<12} {r.answered:>4} of {r.rounds:<2}  modes: {modes}; "
            f"clock: {clock} ({len(r.clock)} lines)"
        )
    for r in results:
        print(f"{r.scenario}: {r.stop}")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
