"""How fast the live agent decides, and how close to the grid its notes leave.

1. Decision time (encode the state + ONNX Q-values + choose the action, the live ``Decider``), in
   microseconds: back to back (>= 10,000 decisions) and at the live rate (one per 16th at
   --live-bpm: cold caches, as in play).
2. Output timing: ``deepjam jam`` (duet, greedy, a model that starts a note every 16th) runs as a
   subprocess on its own JACK server (dummy driver, -p 64 by default); a separate JACK client
   listening on deepjam's output port stamps each note-on to the frame. Reported: deviation of
   the onsets from their best-fit grid (p50 / p99 / max, ms) at 120 and 180 bpm.

    python3 benchmarks/live_latency.py                 # everything, ~1.5 min
    python3 benchmarks/live_latency.py --model m.onnx  # decision time of a real model
    python3 benchmarks/live_latency.py --no-jack       # decision time only
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from decision_time import write_mlp  # the same random MLP, timed the same way

ROOT = Path(__file__).resolve().parents[1]


def percentiles_us(durations_ns: np.ndarray) -> tuple[float, float, float]:
    d = np.asarray(durations_ns, dtype=np.float64) / 1e3
    return float(np.percentile(d, 50)), float(np.percentile(d, 99)), float(d.max())


def time_decisions(model_path: Path, count: int, interval_s: float, seed: int = 0) -> np.ndarray:
    """Durations (ns) of ``count`` decisions (encode + Q + choose), one every ``interval_s``
    (0: back to back). Each step feeds a random player note so the state keeps changing."""
    from exports.model_file import load_model
    from live_agent.agent import Decider

    policy = load_model(model_path)
    policy.warm_up()
    rng = np.random.default_rng(seed)
    decider = Decider(policy, np.random.default_rng(seed))
    chroma = np.zeros(12, dtype=bool)
    durations = np.empty(count, dtype=np.int64)
    deadline = time.perf_counter()
    for step in range(count):
        pitch = int(rng.integers(55, 80))
        chroma[:] = False
        chroma[pitch % 12] = True
        decider.observe_step(chroma, pitch, bool(step % 2), chroma, pitch, True)
        start = time.perf_counter_ns()
        decider.decide(step, False, 0.0, 0.5, 1.0, 0, 36, 96)
        durations[step] = time.perf_counter_ns() - start
        if interval_s > 0:
            deadline += interval_s
            time.sleep(max(0.0, deadline - time.perf_counter()))
    return durations


def measure_grid(
    bpm: float, seconds: float, scale_model: Path, server_env: dict[str, str], backend: str
) -> dict[str, Any]:
    """Run deepjam jam at ``bpm`` and measure its note-ons against the best-fit grid."""
    from tests.support import jack_probe as probe

    os.environ["JACK_DEFAULT_SERVER"] = server_env["JACK_DEFAULT_SERVER"]
    args = ["--model", str(scale_model), "--mode", "duet", "--temperature", "0", "--bpm", str(bpm)]
    args += ["--virtual", "--api", "jack", "--backend", backend]
    out_port = "deepjam:deepjam out" if backend == "jack-client" else "deepjam-out:deepjam out"
    with (
        probe.jack_recorder("deepjam-grid-probe") as recorder,
        probe.run_jam(args, env=server_env) as jam,
    ):
        recorder.wait_for_port(out_port)
        recorder.connect_from(out_port)
        time.sleep(seconds)
        onsets = recorder.note_ons()
    stats = [line for line in jam.lines if "stopped:" in line]
    frames = np.array([e.frame for e in onsets], dtype=np.float64)
    if len(frames) < 8:
        raise RuntimeError(f"only {len(frames)} note-ons at {bpm} bpm:\n{jam.stderr_text()}")
    step_s = 60.0 / bpm / 4
    deviation = probe.grid_deviation_ms(frames[4:] / recorder.sample_rate, step_s)  # skip warm-up
    intervals = np.diff(frames) / recorder.sample_rate / step_s
    return {
        "backend": backend,
        "bpm": bpm,
        "notes": float(len(frames)),
        "p50": float(np.percentile(deviation, 50)),
        "p99": float(np.percentile(deviation, 99)),
        "max": float(deviation.max()),
        "off_grid": float(np.sum(np.abs(intervals - np.round(intervals)) > 0.25)),
        "log": stats[0] if stats else "",
    }


def main(argv: list[str] | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="deepjam-bench-") as tmp:
        return run(argv, Path(tmp))


def run(argv: list[str] | None, workdir: Path) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="ONNX model (default: packaged, else a random MLP)"
    )
    parser.add_argument("--decisions", type=int, default=10_000, help="back-to-back decisions")
    parser.add_argument(
        "--live-decisions", type=int, default=240, help="decisions at the live rate"
    )
    parser.add_argument("--live-bpm", type=float, default=180.0, help="tempo of the live-rate run")
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds of play per tempo")
    parser.add_argument(
        "--period", type=int, default=64, help="JACK period (frames) of the timing server"
    )
    parser.add_argument("--no-jack", action="store_true", help="measure decision time only")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))  # tests.support: the JACK server, probe and scale model
    model = args.model
    default = ROOT / "live_agent" / "models" / "default.onnx"
    if model is None:
        model = default if default.is_file() else write_mlp(workdir / "mlp256.onnx")
    print(f"model: {model.name}")

    rows = []
    back = time_decisions(model, args.decisions, 0.0)
    rows.append((f"back to back, {args.decisions}", *percentiles_us(back)))
    step_s = 60.0 / args.live_bpm / 4
    live = time_decisions(model, args.live_decisions, step_s, seed=1)
    rows.append(
        (f"one per 16th at {args.live_bpm:g} bpm, {args.live_decisions}", *percentiles_us(live))
    )
    print("\nDecision time (encode + ONNX + choose), microseconds")
    print(f"{'run':<36} {'p50':>8} {'p99':>8} {'max':>8}")
    for name, p50, p99, worst in rows:
        print(f"{name:<36} {p50:8.1f} {p99:8.1f} {worst:8.1f}")
    if args.no_jack:
        return 0

    from tests.support.jack_server import start_jack_server, stop_jack_server
    from tests.support.scale_model import write_scale_model

    scale = write_scale_model(workdir / "scale.onnx")
    name = f"deepjam-bench-{os.getpid()}"
    server = start_jack_server(name, workdir / "jackd.log", period_frames=args.period)
    results = []
    try:
        for backend in ("rtmidi", "jack-client"):
            for bpm in (120.0, 180.0):
                results.append(measure_grid(bpm, args.seconds, scale, server.env, backend))
    finally:
        stop_jack_server(server.process)
    period_ms = args.period / server.sample_rate * 1e3
    print(
        f"\nOutput onsets vs best-fit grid, ms (JACK dummy, {server.sample_rate} Hz, "
        f"-p {args.period} = {period_ms:.2f} ms; separate JACK client on deepjam's output)"
    )
    print(
        f"{'backend':<12} {'bpm':>5} {'notes':>6} {'p50':>7} {'p99':>7} {'max':>7} {'off-grid':>9}"
    )
    for r in results:
        print(
            f"{r['backend']:<12} {r['bpm']:5.0f} {r['notes']:6.0f} {r['p50']:7.3f} "
            f"{r['p99']:7.3f} {r['max']:7.3f} {r['off_grid']:9.0f}"
        )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for r in results:
        if r["log"]:
            print(f"{r['backend']} {r['bpm']:.0f} bpm: {r['log'].removeprefix('deepjam jam: ')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
