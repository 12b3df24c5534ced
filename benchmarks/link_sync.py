"""How close `deepjam jam --clock link` plays to an Ableton Link session's 16ths.

A second Link peer in this process sets the session's tempo; `deepjam jam --clock link` (the
scale model: a note on every 16th, rtmidi on JACK's dummy driver) joins it; a JACK client plays a
2-bar call on the peer's grid and stamps deepjam's answer to the frame. Each answer onset is
compared with the peer's nearest 16th, on the peer's own Link timeline (the same procedure as
tests/integration/test_link_clock.py, whose helpers this uses). Also reported: the JACK client's
own call notes against the same grid (the machine's jitter, and JACK's one-period quantization).

    python3 benchmarks/link_sync.py                   # 3 calls at 100 bpm, 3 with a change to 130
    python3 benchmarks/link_sync.py --runs 5 --period 64
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="calls per case")
    parser.add_argument("--period", type=int, default=256, help="JACK period, frames")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.integration import test_link_clock as test
    from tests.support.jack_server import (
        GIL_SWITCH_INTERVAL_S,
        start_jack_server,
        stop_jack_server,
    )
    from tests.support.link_peer import LinkPeer
    from tests.support.scale_model import write_scale_model

    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # the probe's callback needs the GIL
    workdir = Path(tempfile.mkdtemp(prefix="deepjam-link-"))
    scale = write_scale_model(workdir / "scale.onnx")
    name = f"deepjam-bench-link-{os.getpid()}"
    server = start_jack_server(name, workdir / "jackd.log", period_frames=args.period)
    os.environ["JACK_DEFAULT_SERVER"] = name
    rows = []
    try:
        for change in (None, 130.0):
            for _ in range(args.runs):
                with LinkPeer(test.PEER_BPM, test.BEATS_PER_BAR) as peer:
                    run = test.answer_a_call(server, scale, peer, tempo_change_bpm=change)
                verdict = test.judge(run)
                rows.append((change, run, verdict))
    finally:
        stop_jack_server(server.process)
    period_ms = args.period / server.sample_rate * 1e3
    print(
        f"Answer onsets vs the Link peer's 16ths, ms (+ = after it); JACK dummy "
        f"{server.sample_rate} Hz, -p {args.period} = {period_ms:.2f} ms, rtmidi backend"
    )
    print(f"{'case':<22} {'notes':>5} {'median':>7} {'p90|e|':>7} {'max|e|':>7} {'call p50':>9}")
    for change, run, verdict in rows:
        case = "100 bpm" if change is None else f"100 -> {change:.0f} mid-answer"
        e = verdict.error_ms
        print(
            f"{case:<22} {len(e):5d} {np.median(e):7.2f} {np.percentile(np.abs(e), 90):7.2f} "
            f"{np.abs(e).max():7.2f} {np.median(run.call_error_ms):9.2f}"
        )
    every = np.concatenate([v.error_ms for _, _, v in rows])
    print(
        f"all {len(every)} onsets: median {np.median(every):.2f} ms, p90 |e| "
        f"{np.percentile(np.abs(every), 90):.2f} ms"
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
