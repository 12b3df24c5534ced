"""Decision time of the live agent, in microseconds: p50 / p99 / max.

* ``decide``: encode + ONNX + choose, back to back on one state (``Decider.decide``);
* ``parts``: the same split into state (both windows moved into the frame, then
  ``exports.encoding.encode_states``), ONNX Q-values and choose_actions;
* ``session step``: what the scheduler times per step between the decision deadline and the
  boundary (close the player's step, push both parts, decide), a player chord changing each step;
* ``encode_states``: the encoder alone on the two windows, for scale.

    python3 benchmarks/decision_time.py [--model m.onnx] [--n 20000] [--temperature 0.5]
    python3 benchmarks/decision_time.py --kind hybrid --window 128

Without --model it writes a random MLP of the default spec (state_dim of the spec, 1130 since spec 2 -> 256 -> 256 -> 39).
With --kind (and --window, the spec's window_steps) it exports a random network of that kind
(``training.networks``: mlp, hybrid, dilated; hidden [256, 256]) through ``deepjam export``'s
writer, parity with torch checked, and times that.
"""

from __future__ import annotations

import argparse
import queue
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def write_mlp(path: Path, hidden: int = 256, seed: int = 0) -> Path:
    """A random MLP Q-network (state -> 256 -> 256 -> actions) with deepjam metadata: the size
    of the trained models, for timing when no trained model is at hand."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from exports.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
    from exports.spec import DEFAULT_SPEC

    spec = DEFAULT_SPEC
    rng = np.random.default_rng(seed)
    sizes = [spec.state_dim, hidden, hidden, spec.n_actions]
    nodes, inits, x = [], [], INPUT_NAME
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        inits += [
            numpy_helper.from_array(w, f"w{i}"),
            numpy_helper.from_array(np.zeros(n_out, np.float32), f"b{i}"),
        ]
        last = i == len(sizes) - 2
        y = OUTPUT_NAME if last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y if last else f"g{i}"]))
        if not last:
            nodes.append(helper.make_node("Relu", [f"g{i}"], [y]))
        x = y
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", spec.state_dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", spec.n_actions])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = ModelMetadata(
        spec=spec, reward_weights={"style": 1.0}, style_name="random-mlp", corpus={"name": "none"}
    )
    helper.set_model_props(model, meta.to_props())
    onnx.save(model, str(path))
    return path


def write_network(path: Path, kind: str, window_steps: int, seed: int = 0) -> Path:
    """A random ``kind`` network (``training.networks``) over a ``window_steps`` window, written
    by ``exports.onnx_writer.export_onnx`` (parity with torch checked); needs torch."""
    import dataclasses

    import torch

    from exports.metadata import ModelMetadata
    from exports.onnx_writer import export_onnx
    from exports.spec import DEFAULT_SPEC
    from exports.state_samples import synthetic_states
    from training.networks import build_q_network, network_args_for

    spec = dataclasses.replace(DEFAULT_SPEC, window_steps=window_steps)
    torch.manual_seed(seed)
    network = build_q_network(network_args_for(spec, kind=kind))
    meta = ModelMetadata(
        spec=spec, reward_weights={"style": 1.0}, style_name=f"random-{kind}", corpus={}
    )
    states = synthetic_states(spec, 200, np.random.default_rng(seed))
    report = export_onnx(network, meta, path, states)
    print(f"{kind} W={window_steps}: parity max |dQ| {report.max_abs_diff:.2g}")
    return path


def timed(fn, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        start = time.perf_counter_ns()
        fn(i)
        out[i] = time.perf_counter_ns() - start
    return out


def row(name: str, ns: np.ndarray) -> str:
    us = ns / 1e3
    return f"{name:<28} {np.percentile(us, 50):8.1f} {np.percentile(us, 99):8.1f} {us.max():9.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--kind", default=None, help="mlp | hybrid | dilated: a random network")
    parser.add_argument("--window", type=int, default=32, help="window_steps with --kind (32)")
    args = parser.parse_args()

    from exports.encoding import StepContext, encode_states
    from exports.model_file import load_model
    from exports.selection import choose_actions
    from live_agent.agent import Decider
    from live_agent.clock import FakeClock
    from live_agent.controls import ControlMap
    from live_agent.engine import Session
    from live_agent.options import JamOptions
    from live_agent.recording import SilentSink

    folder = Path(tempfile.mkdtemp())
    if args.model is not None:
        model = args.model
    elif args.kind is not None:
        model = write_network(folder / f"{args.kind}{args.window}.onnx", args.kind, args.window)
    else:
        model = write_mlp(folder / "mlp256.onnx")
    policy = load_model(model)
    policy.warm_up(200)
    n, t = args.n, args.temperature
    decider = Decider(policy, np.random.default_rng(0))
    chroma = np.zeros(12, dtype=bool)
    # A realistic window: a C major line against held chords.
    for step in range(2 * policy.spec.window_steps):
        chroma[:] = False
        pitch = 60 + (0, 2, 4, 5, 7, 9, 11)[step % 7]
        chroma[pitch % 12] = True
        decider.observe_step(chroma, pitch, step % 2 == 0, chroma, pitch - 12, step % 4 == 0)

    rows = [
        row(
            "decide (encode+ONNX+choose)",
            timed(lambda i: decider.decide(5, False, 0.0, t, 1.0, 0, 36, 96), n),
        )
    ]
    state = decider.state(5, False, 0.0)
    q = policy.q_values(state)
    mask = decider.allowed_mask(0, 36, 96)
    rows.append(row("  state (frame + encode)", timed(lambda i: decider.state(i, False, 0.0), n)))
    rows.append(row("  ONNX q_values", timed(lambda i: policy.q_values(state), n)))
    rows.append(
        row("  choose_actions", timed(lambda i: choose_actions(q, t, decider.rng, mask), n))
    )
    agent_window = decider.agent.window().in_frame(decider.frame_tonic_semitones)
    player_window = decider.player.window().in_frame(decider.frame_tonic_semitones)
    context = StepContext(np.array([5]), np.array([False]), np.array([False]), np.array([0.0]))
    rows.append(
        row(
            "    encode_states alone",
            timed(lambda i: encode_states(policy.spec, agent_window, player_window, context), n),
        )
    )

    session = Session(
        policy,
        JamOptions(mode="duet", temperature=t, seed=0),
        SilentSink(),
        FakeClock(),
        queue.SimpleQueue(),
        controls=ControlMap(),
    )
    chords = [(60, 64, 67), (62, 65, 69), (64, 67, 71), (65, 69, 72)]

    def session_step(i: int) -> None:
        # the player's chord changes each step (before the timed decision, as input would)
        listener = session.listener
        listener.all_off()
        for pitch in chords[i % 4]:
            listener.note_on(pitch, i)
        start = time.perf_counter_ns()
        session.decide(i, None)
        durations[i] = time.perf_counter_ns() - start
        session.send(i)  # off the decision path: sends, folds the key

    durations = np.empty(n, dtype=np.int64)
    for i in range(n):
        session_step(i)
    rows.append(row("session step (close+push+decide)", durations))
    rows.append(row("  with send + key update", timed(session_step, min(n, 5000))))

    print(f"model {Path(model).name}, temperature {t}, n {n}")
    print(f"{'microseconds':<28} {'p50':>8} {'p99':>8} {'max':>9}")
    for line in rows:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
