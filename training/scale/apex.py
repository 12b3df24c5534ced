"""Distributed experience, Ape-X style (Horgan et al. 2018): ``deepjam train --ray --actors N``.

    deepjam train --config default --corpus default --out runs/folk --ray --actors 4
    deepjam train ... --ray --actors 64 --address auto --device cuda   # a running cluster

Parts:

* **N experience actors** (``ExperienceActor``, one Ray actor each). Each runs its own vectorized
  ``MelodyEnv`` with the run's reward, the style model's log p included (the style reward is
  computed on the actor, where the states are, as in Ape-X), and acts ε-greedily with a fixed
  ε of its own, ``ε_i = ε^(1 + α·i/(N−1))`` (ε = 0.4, α = 7; one actor: ε). It sends
  ``chunk_vector_steps`` vector steps at a time: float16 states, actions, rewards, dones, and
  the returns of the episodes that ended.
* **One learner**, the driver process (on ``--device``, so it may be the GPU node). It owns the
  replay (one ``ReplayBuffer`` with a stream per actor, since each actor's vector steps are
  one stream whose next state is the following slot), and calls ``DqnLearner.update`` on it: the
  same update as the single-process trainer (Double DQN / Ψ-learning, target sync, clipping).
  Every ``broadcast_every_updates`` updates it ``ray.put``s the Q-network's CPU state dict once;
  the actors load it at their next chunk (a version number says whether it is new).
* **Flow control.** The learner keeps ``in_flight`` rollout calls queued per actor (an actor
  works on the next chunk while the learner takes the last), and between chunks it updates as
  fast as it can, once the replay holds ``learning_starts`` transitions. So a slow learner
  makes actors wait, and a slow actor leaves the learner updating on the replay it has.

Deviations from the single-process loop: the ε schedule (``start_epsilon`` → ``end_epsilon``)
is replaced by the fixed per-actor ε's; ``train_frequency`` is unused (the learner is not tied
to env steps); ``global_step`` counts the transitions the learner has received. Checkpoints are
the single process's (``TrainRun.save``). A resumed run resumes the learner (networks,
optimizer, counters); the replay starts empty and refills for ``learning_starts`` transitions,
as in a single-process resume.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from exports.errors import ConfigError
from training.dqn import DqnLearner, ReplayBuffer, TrainProgress

APEX_EPSILON = 0.4
"""Ape-X's base ε (Horgan et al. 2018, section 4.1)."""
APEX_ALPHA = 7.0
"""Ape-X's spread of the per-actor ε's."""


def actor_epsilons(
    n_actors: int, epsilon: float = APEX_EPSILON, alpha: float = APEX_ALPHA
) -> list[float]:
    """Ape-X's ε of each actor: ``ε^(1 + α·i/(N−1))`` for i = 0..N−1 (one actor: ``ε``)."""
    if n_actors < 1:
        raise ConfigError(f"--actors must be >= 1, got {n_actors}")
    if n_actors == 1:
        return [epsilon]
    return [epsilon ** (1.0 + alpha * i / (n_actors - 1)) for i in range(n_actors)]


@dataclass(frozen=True)
class ApexOptions:
    """How the distributed loop runs (the defaults are what ``deepjam train --ray`` uses)."""

    actors: int = 2
    epsilon: float = APEX_EPSILON
    alpha: float = APEX_ALPHA
    broadcast_every_updates: int = 20
    """K: the learner sends fresh Q-network weights every K updates."""
    chunk_vector_steps: int = 4
    """Vector steps (of ``n_envs`` transitions) an actor sends at a time."""
    in_flight: int = 2
    """Rollout calls queued per actor (2: the actor never waits for the learner to ask)."""
    cpus_per_actor: float | None = None
    """Ray CPUs each actor asks for (default: min(1, the cluster's CPUs / actors))."""

    def check(self) -> None:
        if self.actors < 1:
            raise ConfigError(f"--actors must be >= 1, got {self.actors}")
        for name in ("broadcast_every_updates", "chunk_vector_steps", "in_flight"):
            if getattr(self, name) < 1:
                raise ConfigError(f"apex {name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ActorSetup:
    """What every actor needs to build its env and Q-network (sent once, by ``ray.put``)."""

    spec: Any  # exports.spec.Spec
    corpus: Any  # the training tunes (Corpus)
    env_config: Any  # EnvConfig; each actor reseeds it
    reward_weights: Any  # RewardWeights
    style_model: dict[str, Any] | None  # StyleModel.to_dict(), or None: no style term
    network_args: dict[str, Any]


@dataclass
class Chunk:
    """``vector_steps`` consecutive vector steps of one actor's stream."""

    actor: int
    states: np.ndarray  # (T, N, D) float16: the state each action was taken in
    actions: np.ndarray  # (T, N) int16
    rewards: np.ndarray  # (T, N) float32
    dones: np.ndarray  # (T, N) bool
    episode_returns: list[float]
    terms: dict[str, float]  # mean of each reward term over the chunk
    weight_version: int  # the broadcast the actor acted with (0: the starting weights)
    busy_s: float  # the actor's wall time for this chunk
    busy_cpu_s: float  # its main thread's CPU time (time.thread_time) for it
    process_cpu_s: float  # the whole actor process's CPU time (Ray's own threads included)
    style_cpu_s: float  # of busy_cpu_s: the style model's log p (the style reward)
    select_cpu_s: float  # of busy_cpu_s: the ε-greedy Q forward

    @property
    def transitions(self) -> int:
        return int(self.actions.size)


class ExperienceActor:
    """One Ape-X actor: its own ``MelodyEnv`` and Q-network copy, acting with a fixed ε.

    A plain class: ``run_distributed`` wraps it with ``ray.remote`` (so importing this module
    does not import Ray)."""

    def __init__(self, index: int, epsilon: float, setup: ActorSetup, seed: int) -> None:
        from training.env.environment import MelodyEnv
        from training.networks import build_q_network
        from training.style_model import StyleModel

        torch.set_num_threads(1)
        self.index = index
        self.epsilon = epsilon
        self.style_cpu_s = 0.0
        style_log_probs = None
        if setup.style_model is not None:
            style_model = StyleModel.from_dict(setup.style_model, "cpu")
            style_model.network.eval()

            @torch.no_grad()
            def timed_log_probs(states: np.ndarray) -> np.ndarray:
                started = time.thread_time()
                out = style_model.log_probs(states)
                self.style_cpu_s += time.thread_time() - started
                return out

            style_log_probs = timed_log_probs
        self.env = MelodyEnv(
            setup.spec,
            setup.corpus,
            replace(setup.env_config, seed=seed),
            setup.reward_weights,
            style_log_probs,
        )
        self.q_network = build_q_network(setup.network_args).eval()
        self.weight_version = -1
        self.rng = np.random.default_rng(seed)
        self.states = self.env.reset()
        self.running_returns = np.zeros(len(self.states), dtype=np.float64)

    def ready(self) -> int:
        """The actor's index, once it is built (the learner waits for all before it starts)."""
        return self.index

    def rollout(self, vector_steps: int, version: int, weights: list[Any]) -> Chunk:
        """Load the weights if ``version`` is newer than the actor's, then play ``vector_steps``
        vector steps. ``weights`` is ``[ObjectRef of a state dict]``: nested, so Ray fetches it
        only when it is new."""
        from training.dqn import select_actions

        started, started_cpu, started_process = (
            time.perf_counter(),
            time.thread_time(),
            time.process_time(),
        )
        self.style_cpu_s = 0.0
        if version > self.weight_version:
            import ray

            self.q_network.load_state_dict(ray.get(weights[0]))
            self.weight_version = version
        n, d = self.states.shape
        states = np.empty((vector_steps, n, d), dtype=np.float16)
        actions = np.empty((vector_steps, n), dtype=np.int16)
        rewards = np.empty((vector_steps, n), dtype=np.float32)
        dones = np.empty((vector_steps, n), dtype=bool)
        term_sums: dict[str, float] = {}
        episode_returns: list[float] = []
        select_cpu_s = 0.0
        for t in range(vector_steps):
            t0 = time.thread_time()
            action = select_actions(self.q_network, self.states, self.epsilon, self.rng)
            select_cpu_s += time.thread_time() - t0
            result = self.env.step(action)
            states[t], actions[t], rewards[t], dones[t] = (
                self.states,
                action,
                result.rewards,
                result.dones,
            )
            for name, value in (result.terms or {}).items():
                term_sums[name] = term_sums.get(name, 0.0) + float(np.mean(value))
            self.running_returns += result.rewards
            ended = np.flatnonzero(result.dones)
            episode_returns.extend(self.running_returns[ended].tolist())
            self.running_returns[ended] = 0.0
            self.states = result.states
        return Chunk(
            actor=self.index,
            states=states,
            actions=actions,
            rewards=rewards,
            dones=dones,
            episode_returns=episode_returns,
            terms={k: v / vector_steps for k, v in term_sums.items()},
            weight_version=self.weight_version,
            busy_s=time.perf_counter() - started,
            busy_cpu_s=time.thread_time() - started_cpu,
            process_cpu_s=time.process_time() - started_process,
            style_cpu_s=self.style_cpu_s,
            select_cpu_s=select_cpu_s,
        )


def add_chunk(replay: ReplayBuffer, chunk: Chunk) -> None:
    """Append a chunk to its actor's stream of the learner's replay."""
    for t in range(len(chunk.actions)):
        replay.add(chunk.states[t], chunk.actions[t], chunk.rewards[t], chunk.dones[t], chunk.actor)


@dataclass
class ApexReport:
    """What the distributed loop did and what its parts cost (the benchmark's figures)."""

    actors: int
    epsilons: list[float]
    transitions: list[int]
    """Transitions received from each actor."""
    weight_versions: list[int]
    """The latest weight version each actor acted with (0: the starting weights)."""
    broadcasts: int = 0
    started_at_step: int = 0
    started_at_updates: int = 0
    actor_start_s: float = 0.0
    """Wall time from creating the actors to all of them built (processes, imports, env)."""
    chunks: int = 0
    chunk_bytes: int = 0
    actor_busy_s: float = 0.0
    actor_busy_cpu_s: float = 0.0
    actor_process_cpu_s: float = 0.0
    actor_style_cpu_s: float = 0.0
    actor_select_cpu_s: float = 0.0
    ingest_s: float = 0.0
    """Learner time spent taking chunks: ray.get and the copy into the replay."""
    ingest_cpu_s: float = 0.0
    """The same, its thread's CPU time."""
    update_s: float = 0.0
    """Learner time in ``DqnLearner.update``."""
    update_cpu_s: float = 0.0
    """The same, its thread's CPU time."""
    loop_s: float = 0.0
    """Wall time of the loop after the actors started."""
    learner_process_cpu_s: float = 0.0
    """The learner process's CPU time over the loop (Ray's own threads included)."""
    broadcast_s: float = 0.0
    wait_s: float = 0.0
    """Learner time blocked on actors (replay below learning_starts)."""
    updates: int = 0
    first_update_s: float | None = None
    """time.monotonic() of the first update."""
    timeline: list[tuple[float, int, int]] = field(default_factory=list)
    """(time.monotonic(), global_step, updates) after each chunk taken."""

    def summary(self) -> dict[str, Any]:
        """The run's Ape-X figures for ``metrics["apex"]`` (JSON-able)."""
        out = asdict(self)
        out.pop("timeline")
        return out


def _cpu_state_dict(network: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in network.state_dict().items()}


def run_distributed(
    ray: Any,
    learner: DqnLearner,
    setup: ActorSetup,
    options: ApexOptions,
    until_step: int,
    deadline_s: float | None = None,
    env_seed: int = 0,
    callback: Callable[[TrainProgress], bool | None] | None = None,
) -> ApexReport:
    """The Ape-X loop on a running Ray cluster (``ray`` is the module): start the actors, then
    take their chunks into the replay and update with ``learner.update`` until the learner has
    received ``until_step`` transitions, ``deadline_s`` (time.monotonic()) passes, or the
    callback (called once per chunk taken) returns True. The actors are killed on return.
    Returns the ``ApexReport``."""
    options.check()
    c = learner.config
    epsilons = actor_epsilons(options.actors, options.epsilon, options.alpha)
    cpus = options.cpus_per_actor
    if cpus is None:
        cpus = min(1.0, float(ray.cluster_resources().get("CPU", 1.0)) / options.actors)
    remote_actor = ray.remote(num_cpus=cpus)(ExperienceActor)
    setup_ref = ray.put(setup)
    actors = [
        remote_actor.remote(i, epsilons[i], setup_ref, env_seed + 1_000_003 * (i + 1))
        for i in range(options.actors)
    ]
    report = ApexReport(
        actors=options.actors,
        epsilons=epsilons,
        transitions=[0] * options.actors,
        weight_versions=[-1] * options.actors,
        started_at_step=learner.global_step,
        started_at_updates=learner.updates,
    )
    n_envs = setup.env_config.n_envs
    # One stream per actor: a transition's next state is the next one of its own actor.
    replay = ReplayBuffer(
        c.buffer_size,
        n_envs,
        learner.state_dim,
        c.n_step,
        c.gamma,
        learner.device,
        n_streams=options.actors,
    )
    learning_starts = min(max(c.learning_starts, c.batch_size), replay.capacity // 2)
    version = 0
    weights = [ray.put(_cpu_state_dict(learner.q_network))]
    pending: list[deque[Any]] = [deque() for _ in actors]
    owner: dict[Any, int] = {}

    def submit(i: int) -> None:
        ref = actors[i].rollout.remote(options.chunk_vector_steps, version, weights)
        pending[i].append(ref)
        owner[ref] = i

    loss_sum = q_sum = 0.0
    loss_n = 0
    last_broadcast_updates = learner.updates
    try:
        t0 = time.monotonic()
        ray.get([actor.ready.remote() for actor in actors])  # all actors play from the start
        report.actor_start_s = time.monotonic() - t0
        loop_started, loop_started_cpu = time.monotonic(), time.process_time()
        for i in range(len(actors)):
            for _ in range(options.in_flight):
                submit(i)
        stop = False
        while learner.global_step < until_step and not stop:
            now = time.monotonic()
            if deadline_s is not None and now >= deadline_s:
                break
            can_update = replay.size >= learning_starts
            heads = [q[0] for q in pending]
            if can_update:
                ready, _ = ray.wait(heads, num_returns=len(heads), timeout=0)
            else:
                timeout = 1.0 if deadline_s is None else max(min(1.0, deadline_s - now), 0.0)
                ready, _ = ray.wait(heads, num_returns=1, timeout=timeout)
                report.wait_s += time.monotonic() - now
            for ref in ready:
                t0, t0_cpu = time.monotonic(), time.thread_time()
                i = owner.pop(ref)
                chunk: Chunk = ray.get(ref)
                pending[i].popleft()
                submit(i)
                add_chunk(replay, chunk)
                report.ingest_s += time.monotonic() - t0
                report.ingest_cpu_s += time.thread_time() - t0_cpu
                learner.global_step += chunk.transitions
                report.transitions[i] += chunk.transitions
                report.weight_versions[i] = chunk.weight_version
                report.chunks += 1
                report.chunk_bytes += (
                    chunk.states.nbytes + chunk.actions.nbytes + chunk.rewards.nbytes
                ) + chunk.dones.nbytes
                report.actor_busy_s += chunk.busy_s
                report.actor_busy_cpu_s += chunk.busy_cpu_s
                report.actor_process_cpu_s += chunk.process_cpu_s
                report.actor_style_cpu_s += chunk.style_cpu_s
                report.actor_select_cpu_s += chunk.select_cpu_s
                report.timeline.append((time.monotonic(), learner.global_step, learner.updates))
                if callback is not None:
                    progress = TrainProgress(
                        global_step=learner.global_step,
                        updates=learner.updates,
                        epsilon=epsilons[i],
                        mean_reward=float(np.mean(chunk.rewards)),
                        loss=loss_sum / loss_n if loss_n else None,
                        q_mean=q_sum / loss_n if loss_n else None,
                        episode_returns=chunk.episode_returns,
                        terms=chunk.terms,
                    )
                    loss_sum = q_sum = 0.0
                    loss_n = 0
                    if callback(progress):
                        stop = True
                        break
            if stop or replay.size < learning_starts:
                continue
            t0, t0_cpu = time.monotonic(), time.thread_time()
            if report.first_update_s is None:
                report.first_update_s = t0
            before = learner.updates
            stats = learner.update(replay)
            report.update_s += time.monotonic() - t0
            report.update_cpu_s += time.thread_time() - t0_cpu
            report.updates += learner.updates - before
            loss_sum += stats.loss
            q_sum += stats.q_mean
            loss_n += 1
            if learner.updates - last_broadcast_updates >= options.broadcast_every_updates:
                t0 = time.monotonic()
                version += 1
                # CRUCIAL: one ray.put per broadcast; every actor's next call carries the ref.
                weights = [ray.put(_cpu_state_dict(learner.q_network))]
                last_broadcast_updates = learner.updates
                report.broadcasts += 1
                report.broadcast_s += time.monotonic() - t0
        report.loop_s = time.monotonic() - loop_started
        report.learner_process_cpu_s = time.process_time() - loop_started_cpu
    finally:
        for actor in actors:
            ray.kill(actor)
    return report


def run_apex_loop(run: Any, log: Any, actors: int, address: str | None = None) -> ApexReport:
    """The DQN phase of ``deepjam train --ray --actors N`` for a ``TrainRun``: the Ape-X loop
    (``run_distributed``) on the cluster at ``address`` (default: a fresh local one), with the
    single-process run's TrainLog progress and its checkpoint every
    ``budget.checkpoint_interval_s``. ``run.metrics["apex"]`` gets the ``ApexReport`` summary.
    Returns the report."""
    from training.scale.cluster import ray_cluster

    options = ApexOptions(actors=actors)
    options.check()
    budget, learner = run.config.budget, run.learner
    style = run.style_model.to_dict() if run.style_model is not None else None
    setup = ActorSetup(
        spec=run.spec,
        corpus=run.train_corpus,
        env_config=run.env_config,
        reward_weights=run.reward_weights,
        style_model=style,
        network_args=run.network_args,
    )
    with ray_cluster("deepjam train --ray", address) as ray:
        log.line(
            f"Ray: {actors} experience actor(s), ε "
            + ", ".join(f"{e:.3g}" for e in actor_epsilons(actors))
            + f"; learner on {run.device}"
        )
        on_progress = run.progress_handler(log)
        deadline_s = run.deadline_s()
        report = run_distributed(
            ray,
            learner,
            setup,
            options,
            budget.env_steps,
            deadline_s,
            env_seed=run.env_config.seed or 0,
            callback=on_progress,
        )
    run.metrics["apex"] = report.summary()
    log.line(
        f"Ray: actors started in {report.actor_start_s:.1f} s; transitions per actor "
        + ", ".join(f"{n:,}" for n in report.transitions)
        + f"; {report.broadcasts} weight broadcasts (every {options.broadcast_every_updates} "
        f"updates), actors at version {min(report.weight_versions)}..{max(report.weight_versions)}"
    )
    if report.loop_s > 0:
        log.line(
            f"Ray: {sum(report.transitions) / report.loop_s:,.0f} env steps/s and "
            f"{report.updates / report.loop_s:.0f} updates/s over the {report.loop_s:.0f} s after "
            "the actors started (the done line below counts the cluster's start too)"
        )
    return report
