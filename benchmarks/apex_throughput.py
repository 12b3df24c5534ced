"""Ape-X throughput: env steps/s and updates/s of ``train --ray --actors N`` against one process.

    python3 benchmarks/apex_throughput.py [--budget-s 40] [--actors 1 2 4] [--corpus default]

Same config for every run: the default preset's env (256 parallel episodes, its reward with a
style model of the Q-network's shape, so the style term costs what it costs in training),
network ([256, 256]), learner (batch 128, Double DQN with Ψ-learning, replay 100k), and
``learning_starts`` 2,000; one torch thread per process.

1. the single process: ``DqnLearner.learn`` (one update per vector step of 256 transitions);
2. ``training.scale.apex.run_distributed`` on a local Ray cluster of 2 CPUs, with 1, 2 and 4
   experience actors; the learner (this process) updates with the same ``DqnLearner.update``.

Rates are taken from each run's own timeline, in ``--window-s`` windows from ``--warmup-s``
after its first update to the end; the figures are the medians of those windows (one run each).
Then the parts' costs, from the Ape-X runs' own timers: actor ms per vector step (of which the
style model's log p and the ε-greedy forward), learner ms per update, ms to take one chunk
(ray.get + the copy into the replay), bytes per transition; and the hop a replay *actor* would
add: a 128-transition batch fetched from an actor that holds the buffer, against the same
sample taken in the learner's own buffer. These are the inputs of the README's on-paper big
cluster.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train_throughput import load_corpus  # noqa: E402

LEARNING_STARTS = 2_000


@dataclass
class Rates:
    name: str
    env_steps_per_s: float
    updates_per_s: float
    windows: int
    seconds: float


def window_rates(
    timeline: list[tuple[float, int, int]], since_s: float, window_s: float
) -> tuple[float, float, int]:
    """Median env steps/s and updates/s over windows of ``window_s`` from ``since_s`` on."""
    points = [p for p in timeline if p[0] >= since_s]
    if len(points) < 2:
        return float("nan"), float("nan"), 0
    steps_rates, update_rates = [], []
    start = points[0]
    for point in points[1:]:
        if point[0] - start[0] >= window_s:
            dt = point[0] - start[0]
            steps_rates.append((point[1] - start[1]) / dt)
            update_rates.append((point[2] - start[2]) / dt)
            start = point
    if not steps_rates:
        dt = points[-1][0] - points[0][0]
        return (points[-1][1] - points[0][1]) / dt, (points[-1][2] - points[0][2]) / dt, 1
    return statistics.median(steps_rates), statistics.median(update_rates), len(steps_rates)


def make_parts(corpus_arg: str, seed: int) -> dict[str, Any]:
    from training.config import load_config
    from training.networks import build_q_network, network_args_for
    from training.style_model import StyleModel

    config = load_config("default")
    spec = config.build_spec()
    args = network_args_for(spec, config.network.hidden, config.network.dueling)
    style = StyleModel(build_q_network(args).eval(), args, {}, "cpu")
    learner_config = dataclasses.replace(config.learner, learning_starts=LEARNING_STARTS)
    env_config = dataclasses.replace(config.env_config(), seed=seed)
    return {
        "config": config,
        "spec": spec,
        "args": args,
        "style": style,
        "learner_config": learner_config,
        "env_config": env_config,
        "corpus": load_corpus(corpus_arg),
        "reward_weights": config.reward_weights(),
    }


def make_learner(parts: dict[str, Any], seed: int) -> Any:
    from training.dqn import DqnLearner
    from training.networks import build_q_network

    q = build_q_network(parts["args"])
    q.load_state_dict(parts["style"].network.state_dict())  # as training: Q starts as the style
    return DqnLearner(
        q,
        build_q_network(parts["args"]),
        parts["learner_config"],
        parts["spec"].state_dim,
        10**12,
        seed=seed,
    )


def run_single(
    parts: dict[str, Any], budget_s: float, warmup_s: float, window_s: float
) -> tuple[Rates, dict[str, float]]:
    """The single process, with its parts' CPU time (time.thread_time) per vector step."""
    from training.env.environment import MelodyEnv

    cpu = {"style": 0.0, "env": 0.0, "update": 0.0}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            t0 = time.thread_time()
            out = fn(*args)
            cpu[name] += time.thread_time() - t0
            return out

        return wrapper

    env = MelodyEnv(
        parts["spec"],
        parts["corpus"],
        parts["env_config"],
        parts["reward_weights"],
        timed("style", parts["style"].log_probs),
    )
    env.step = timed("env", env.step)  # type: ignore[method-assign]
    learner = make_learner(parts, 0)
    learner.update = timed("update", learner.update)  # type: ignore[method-assign]
    timeline: list[tuple[float, int, int]] = []
    first_update: list[float] = []

    def on_progress(p: Any) -> None:
        now = time.monotonic()
        if p.updates and not first_update:
            first_update.append(now)
        timeline.append((now, p.global_step, p.updates))

    start, start_cpu = time.monotonic(), time.process_time()
    learner.learn(env, 10**12, start + budget_s, on_progress)
    wall_s, process_cpu_s = time.monotonic() - start, time.process_time() - start_cpu
    steps, updates, n = window_rates(timeline, first_update[0] + warmup_s, window_s)
    vector_steps = learner.global_step / parts["env_config"].n_envs
    costs = {
        "cpu_ms_per_vector_step_without_update": 1000
        * (process_cpu_s - cpu["update"])
        / vector_steps,
        "env_cpu_ms_per_vector_step": 1000 * (cpu["env"] - cpu["style"]) / vector_steps,
        "style_cpu_ms_per_vector_step": 1000 * cpu["style"] / vector_steps,
        "update_cpu_ms": 1000 * cpu["update"] / max(learner.updates, 1),
        "cpu_share": process_cpu_s / wall_s,
    }
    return Rates("single process", steps, updates, n, wall_s), costs


def run_apex(
    ray: Any, parts: dict[str, Any], actors: int, budget_s: float, warmup_s: float, window_s: float
) -> tuple[Rates, Any]:
    from training.scale.apex import ActorSetup, ApexOptions, run_distributed

    setup = ActorSetup(
        spec=parts["spec"],
        corpus=parts["corpus"],
        env_config=parts["env_config"],
        reward_weights=parts["reward_weights"],
        style_model=parts["style"].to_dict(),
        network_args=parts["args"],
    )
    learner = make_learner(parts, 0)
    start = time.monotonic()
    # The deadline counts from the actors' start: run_distributed waits for them first.
    report = run_distributed(
        ray,
        learner,
        setup,
        ApexOptions(actors=actors),
        10**12,
        deadline_s=None,
        env_seed=0,
        callback=_stop_after(budget_s),
    )
    assert report.first_update_s is not None, "no update in the budget"
    steps, updates, n = window_rates(report.timeline, report.first_update_s + warmup_s, window_s)
    name = f"Ape-X, {actors} actor{'s' if actors > 1 else ''}"
    return Rates(name, steps, updates, n, time.monotonic() - start), report


def _stop_after(budget_s: float) -> Any:
    """A callback that stops the loop ``budget_s`` after its first chunk."""
    first: list[float] = []

    def callback(p: Any) -> bool:
        now = time.monotonic()
        if not first:
            first.append(now)
        return now - first[0] >= budget_s

    return callback


def replay_hop_ms(ray: Any, parts: dict[str, Any], repeats: int) -> tuple[float, float]:
    """(ms to fetch a sampled batch from a replay actor, ms to sample it in-process): medians."""
    from training.dqn import ReplayBuffer

    spec, c = parts["spec"], parts["learner_config"]
    n_envs = parts["env_config"].n_envs

    def filled() -> ReplayBuffer:
        buffer = ReplayBuffer(c.buffer_size, n_envs, spec.state_dim, c.n_step, c.gamma)
        rng = np.random.default_rng(0)
        for _ in range(64):
            buffer.add(
                (rng.random((n_envs, spec.state_dim)) < 0.1).astype(np.float16),
                rng.integers(0, spec.n_actions, n_envs),
                rng.random(n_envs).astype(np.float32),
                rng.random(n_envs) < 0.02,
            )
        return buffer

    class ReplayActor:
        def __init__(self) -> None:
            torch.set_num_threads(1)
            self.buffer = filled()
            self.rng = np.random.default_rng(1)

        def sample(self, batch_size: int) -> Any:
            return self.buffer.sample(batch_size, self.rng)

    actor = ray.remote(num_cpus=1)(ReplayActor).remote()
    ray.get(actor.sample.remote(c.batch_size))
    remote_ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ray.get(actor.sample.remote(c.batch_size))
        remote_ms.append(1000 * (time.perf_counter() - t0))
    ray.kill(actor)
    local, rng = filled(), np.random.default_rng(1)
    local_ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        local.sample(c.batch_size, rng)
        local_ms.append(1000 * (time.perf_counter() - t0))
    return statistics.median(remote_ms), statistics.median(local_ms)


def learner_floor_ms(parts: dict[str, Any], repeats: int) -> dict[str, float]:
    """Learner costs that a GPU does not shrink, on this CPU (medians, ms): sampling a batch
    from a replay of 1, 4 and 64 streams, and a whole ``DqnLearner.update`` at batch 2 (the
    per-update dispatch overhead: ~40 torch ops whatever the batch), against batch 128."""
    from training.dqn import ReplayBuffer

    spec, c = parts["spec"], parts["learner_config"]
    n_envs = parts["env_config"].n_envs
    rng = np.random.default_rng(0)
    out: dict[str, float] = {}
    for streams in (1, 4, 64):
        buffer = ReplayBuffer(
            c.buffer_size, n_envs, spec.state_dim, c.n_step, c.gamma, "cpu", streams
        )
        for _ in range(buffer.slots):
            for stream in range(streams):
                buffer.add(
                    (rng.random((n_envs, spec.state_dim)) < 0.12).astype(np.float16),
                    rng.integers(0, spec.n_actions, n_envs),
                    rng.random(n_envs).astype(np.float32),
                    rng.random(n_envs) < 0.02,
                    stream,
                )
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            buffer.sample(c.batch_size, rng)
            times.append(1000 * (time.perf_counter() - t0))
        out[f"sample_ms_{streams}_streams"] = statistics.median(times)
    for batch in (2, c.batch_size):
        small = dict(parts, learner_config=dataclasses.replace(c, batch_size=batch))
        learner = make_learner(small, 0)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            learner.update(buffer)
            times.append(1000 * (time.perf_counter() - t0))
        out[f"update_ms_batch_{batch}"] = statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--budget-s", type=float, default=40.0, help="seconds per run (40)")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="skipped after 1st update")
    parser.add_argument("--window-s", type=float, default=5.0, help="rate window (5 s)")
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--corpus", default="default", help="default|corpus .npz|MIDI folder")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster (2)")
    parser.add_argument("--hop-repeats", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    parts = make_parts(args.corpus, 0)
    print(
        f"corpus {parts['corpus'].name!r}: {parts['corpus'].n_tunes} tunes; {os.cpu_count()} "
        f"cores; load {os.getloadavg()[0]:.2f}; {args.budget_s:.0f} s per run, medians of "
        f"{args.window_s:.0f}-s windows from {args.warmup_s:.0f} s after the first update",
        flush=True,
    )
    single_rates, single_costs = run_single(parts, args.budget_s, args.warmup_s, args.window_s)
    results: list[Rates] = [single_rates]
    print(_row(results[0]), flush=True)

    from training.scale.cluster import ray_cluster

    reports = []
    t0 = time.monotonic()
    # The local cluster's workers run at this process's priority (ray_cluster), as the single
    # process does: on a shared machine, Ray's default niceness 15 would starve the actors.
    with ray_cluster("benchmarks/apex_throughput.py", num_cpus=args.cpus) as ray:
        cluster_start_s = time.monotonic() - t0
        for n in args.actors:
            rates, report = run_apex(ray, parts, n, args.budget_s, args.warmup_s, args.window_s)
            results.append(rates)
            reports.append(report)
            print(_row(rates) + f" (actors started in {report.actor_start_s:.1f} s)", flush=True)
        hop_ms, local_ms = replay_hop_ms(ray, parts, args.hop_repeats)

    single = results[0]
    print(
        f"\nload {os.getloadavg()[0]:.2f} at the end; Ray cluster start {cluster_start_s:.1f} s\n"
    )
    print("| run | env steps/s | updates/s | × single env steps/s | × single updates/s |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.name} | {r.env_steps_per_s:,.0f} | {r.updates_per_s:,.1f} | "
            f"{r.env_steps_per_s / single.env_steps_per_s:.2f} | "
            f"{r.updates_per_s / single.updates_per_s:.2f} |"
        )
    sc = single_costs
    print(
        f"\nCPU time per part (time.thread_time; the share of a core each process got is its "
        f"CPU/wall): single process: {sc['cpu_ms_per_vector_step_without_update']:.1f} ms per "
        f"vector step of 256 without the update (env {sc['env_cpu_ms_per_vector_step']:.1f}, "
        f"style log p {sc['style_cpu_ms_per_vector_step']:.1f}, the rest ε-greedy Q and replay), "
        f"{sc['update_cpu_ms']:.2f} ms per update; it got {sc['cpu_share']:.0%} of a core."
    )
    print(
        "| actors | actor CPU ms/vector step (process) | of which style log p | ε-greedy Q | "
        "learner CPU ms/update | learner CPU ms/chunk taken | actor / learner core share | "
        "bytes/transition |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    costs = []
    for report in reports:
        vector_steps = sum(report.transitions) / parts["env_config"].n_envs
        cost = {
            "actors": report.actors,
            "actor_cpu_ms_per_vector_step": 1000 * report.actor_busy_cpu_s / vector_steps,
            "actor_process_cpu_ms_per_vector_step": 1000
            * report.actor_process_cpu_s
            / vector_steps,
            "style_cpu_ms_per_vector_step": 1000 * report.actor_style_cpu_s / vector_steps,
            "select_cpu_ms_per_vector_step": 1000 * report.actor_select_cpu_s / vector_steps,
            "update_cpu_ms": 1000 * report.update_cpu_s / max(report.updates, 1),
            # everything the learner does that is not an update (ray.get, replay copy, Ray's
            # threads, bookkeeping), per chunk of chunk_vector_steps vector steps taken
            "learner_other_cpu_ms_per_chunk": 1000
            * (report.learner_process_cpu_s - report.update_cpu_s)
            / report.chunks,
            "ingest_cpu_ms_per_chunk": 1000 * report.ingest_cpu_s / report.chunks,
            "transitions_per_chunk": sum(report.transitions) / report.chunks,
            "bytes_per_transition": report.chunk_bytes / sum(report.transitions),
            "actor_core_share": report.actor_busy_cpu_s / max(report.actor_busy_s, 1e-9),
            "learner_core_share": report.learner_process_cpu_s / max(report.loop_s, 1e-9),
            "broadcasts": report.broadcasts,
        }
        costs.append(cost)
        print(
            f"| {report.actors} | {cost['actor_cpu_ms_per_vector_step']:.1f} "
            f"({cost['actor_process_cpu_ms_per_vector_step']:.1f}) | "
            f"{cost['style_cpu_ms_per_vector_step']:.1f} | "
            f"{cost['select_cpu_ms_per_vector_step']:.1f} | {cost['update_cpu_ms']:.2f} | "
            f"{cost['learner_other_cpu_ms_per_chunk']:.2f} | "
            f"{cost['actor_core_share']:.0%} / {cost['learner_core_share']:.0%} | "
            f"{cost['bytes_per_transition']:,.0f} |"
        )
    # What these CPU costs give on 2 idle cores: the single process on one core; one actor and
    # the learner on a core each.
    one = costs[0] if reports and reports[0].actors == 1 else None
    if one is not None:
        single_steps = (
            256 * 1000 / (sc["cpu_ms_per_vector_step_without_update"] + sc["update_cpu_ms"])
        )
        actor_steps = 256 * 1000 / one["actor_process_cpu_ms_per_vector_step"]
        chunks_per_s = actor_steps / one["transitions_per_chunk"]
        learner_ms_left = 1000 - chunks_per_s * one["learner_other_cpu_ms_per_chunk"]
        learner_updates = learner_ms_left / one["update_cpu_ms"]
        print(
            f"\nfrom CPU time, on 2 idle cores: single process {single_steps:,.0f} env steps/s "
            f"and {single_steps / 256:.1f} updates/s; --actors 1: {actor_steps:,.0f} env "
            f"steps/s ({actor_steps / single_steps:.2f}x) and {learner_updates:.1f} updates/s "
            f"({learner_updates / (single_steps / 256):.2f}x)"
        )
    print(
        f"\nreplay actor hop: a batch of {parts['learner_config'].batch_size} from a replay actor "
        f"{hop_ms:.2f} ms (median of {args.hop_repeats}) against {local_ms:.2f} ms sampled in "
        "the learner's own buffer"
    )
    floor = learner_floor_ms(parts, args.hop_repeats)
    batch = parts["learner_config"].batch_size
    print(
        "learner, this CPU, medians: sample a batch of "
        f"{parts['learner_config'].batch_size} from 1 / 4 / 64 streams "
        f"{floor['sample_ms_1_streams']:.2f} / {floor['sample_ms_4_streams']:.2f} / "
        f"{floor['sample_ms_64_streams']:.2f} ms; update at batch 2 "
        f"{floor['update_ms_batch_2']:.2f} ms, at batch {batch} "
        f"{floor[f'update_ms_batch_{batch}']:.2f} ms "
        "(both including their sample)"
    )
    print(f"load {os.getloadavg()[0]:.2f} at the very end")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "rates": [r.__dict__ for r in results],
                    "costs": costs,
                    "single_costs": single_costs,
                    "replay_hop_ms": hop_ms,
                    "local_sample_ms": local_ms,
                    "cluster_start_s": cluster_start_s,
                    "learner_floor_ms": floor,
                },
                indent=2,
            )
        )
    return 0


def _row(r: Rates) -> str:
    return (
        f"{r.name}: {r.env_steps_per_s:,.0f} env steps/s, {r.updates_per_s:,.1f} updates/s "
        f"(median of {r.windows} windows, {r.seconds:.0f} s)"
    )


if __name__ == "__main__":
    sys.exit(main())
