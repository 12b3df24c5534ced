"""``deepjam sweep SPEC.toml``: many ``deepjam train`` trials from one base style, ranked by an
eval figure; with ``--ray`` they run as Ray Tune trials on a cluster.

The spec (TOML) has four tables; keys are dotted config keys (``learner.learning_rate``,
``reward.w_play``, ``env.n_envs``, ``seed``: every field of ``training/config.py``), written
plain (``learner.learning_rate = ...``) or quoted (``"learner.learning_rate" = ...``)::

    [sweep]
    config = "default"          # base style: a preset name or a style TOML
    corpus = "default"          # 'default', a corpus .npz or a folder of MIDI files
    metric = "listening.mean"   # the eval figure that ranks the trials (METRICS)
    mode = "max"                # "max" or "min": which end of it is best
    samples = 1                 # draws of the [search] ranges per grid point
    seed = 0                    # seeds the draws
    steps = 200000              # each trial's env-step budget (optional)
    minutes = 2.0               # each trial's wall-time budget (optional; 0 = none)
    cpus_per_trial = 1          # with --ray: CPUs reserved per trial
    max_concurrent = 0          # with --ray: trials at once (0 = as the CPUs allow)

    [eval]                      # deepjam eval's settings for scoring each trial
    compositions = 200
    key_calls = 50
    seed = 0
    temperature = 0.5           # live's default (exports.selection.DEFAULT_TEMPERATURE)

    [overrides]                 # the same for every trial
    budget.log_interval_steps = 5000

    [search]                    # the axes
    learner.learning_rate = [1e-4, 3e-4]            # a list: a grid axis (crossed with the others)
    reward.w_play = { uniform = [1.0, 2.0] }        # a range: drawn for each sample
    learner.kl_temperature = { log_uniform = [0.3, 3.0] }
    learner.n_step = { randint = [1, 3] }           # inclusive
    reward.w_theory = { choice = [0.5, 1.0] }
    corpus = ["bach.npz", "~/midi/reels"]            # one style per corpus

Relative paths (config, corpora) are relative to the spec file. Each trial trains into
``OUT/trials/trial-NNN/`` (checkpoint.pt, tb/, metrics.json, train.log, and eval.md with the
PNGs of ``deepjam eval`` on the trial's corpus), then writes ``trial.json`` (its parameters and
figures): that file marks it finished. ``OUT/results.md`` ranks the trials and
``OUT/trials.png`` plots them. ``--resume`` skips the finished trials and resumes an unfinished
one from its checkpoint. No early stopping: the figures come from the eval after training.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exports.errors import ConfigError
from exports.selection import DEFAULT_TEMPERATURE
from training.eval.evaluate import FIGURES as EVAL_FIGURES

TRIALS_DIR = "trials"
TRIAL_RECORD = "trial.json"
SWEEP_RECORD = "sweep.json"
RESULTS_NAME = "results.md"
PLOT_NAME = "trials.png"
CORPUS_KEY = "corpus"

METRICS: dict[str, str] = {
    **EVAL_FIGURES,
    "train.eval_greedy_return": "greedy Q return on validation episodes (deepjam train)",
    "train.eval_style_greedy_return": "the style model's greedy return on them",
    "train.eval_random_return": "random play's return on them",
    "train.mean_episode_return": "training episodes' mean return, at the end",
    "train.mean_reward": "mean reward per step, last log window",
    "train.style_val_log_lik": "style model validation log-likelihood, nats/step",
    "train.style_val_accuracy": "style model validation accuracy",
    "train.env_steps_per_s": "DQN env steps per second",
    "train.updates_per_s": "DQN updates per second",
}
"""Every figure a trial reports (for the Q-network's answers), name -> what it is."""
HEADLINE_FIGURES = (
    "train.eval_greedy_return",
    "answer_quality.mean",
    "listening.mean",
    "fidelity.interval_js_bits",
)
"""Shown in the results table beside the ranking metric."""

DISTRIBUTIONS = ("uniform", "log_uniform", "randint", "choice")
_SWEEP_KEYS = {
    "name",
    "config",
    "corpus",
    "metric",
    "mode",
    "samples",
    "seed",
    "steps",
    "minutes",
    "cpus_per_trial",
    "max_concurrent",
}
_EVAL_KEYS = {"compositions", "key_calls", "seed", "temperature"}


@dataclass(frozen=True)
class Axis:
    """One searched key: a grid axis (``values``) or a range drawn per sample."""

    key: str
    values: list[Any] | None = None
    distribution: str = ""
    bounds: list[Any] = field(default_factory=list)
    """[low, high] (uniform, log_uniform, randint) or the choices."""

    def draw(self, rng: Any) -> Any:
        """One value of a range axis."""
        if self.distribution == "uniform":
            return _round(rng.uniform(self.bounds[0], self.bounds[1]))
        if self.distribution == "log_uniform":
            low, high = math.log(self.bounds[0]), math.log(self.bounds[1])
            return _round(math.exp(rng.uniform(low, high)))
        if self.distribution == "randint":
            return int(rng.integers(self.bounds[0], self.bounds[1] + 1))
        return self.bounds[int(rng.integers(len(self.bounds)))]


def _round(x: float) -> float:
    """4 significant digits: readable in the table, fine for a hyper-parameter."""
    return float(f"{x:.4g}")


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, checked sweep spec (see the module docstring)."""

    path: Path
    name: str
    config: str
    corpus: str
    metric: str
    mode: str
    samples: int = 1
    seed: int = 0
    steps: int | None = None
    minutes: float | None = None
    cpus_per_trial: float = 1.0
    max_concurrent: int = 0
    eval: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    axes: list[Axis] = field(default_factory=list)


@dataclass
class Trial:
    """One trial: its name, the config overrides, the corpus, and what the table shows."""

    name: str
    overrides: dict[str, Any]
    corpus: str
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "overrides": self.overrides,
            "corpus": self.corpus,
            "params": self.params,
        }


# ------------------------------------------------------------------ the spec


def _flatten(table: dict[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables -> dotted keys; a table naming one distribution is a value."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not (len(value) == 1 and next(iter(value)) in DISTRIBUTIONS):
            if not value:
                raise ConfigError(f"{where}.{dotted}: expected a value, got an empty table")
            flat.update(_flatten(value, where, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _resolve_path(value: str, base: Path) -> str:
    """A path relative to the spec file; preset names and 'default' stay as they are."""
    if value == "default" or "://" in value:
        return value
    path = Path(value).expanduser()
    looks_like_path = path.suffix or "/" in value or (base / path).exists()
    if not looks_like_path:
        return value  # a preset name
    return str(path if path.is_absolute() else (base / path).resolve())


def _need(ok: bool, where: str, rule: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{where}: expected {rule}, got {value!r}")


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _axis(key: str, value: Any) -> Axis:
    where = f"search.{key}"
    if isinstance(value, list):
        _need(bool(value), where, "a non-empty list of values", value)
        return Axis(key, values=list(value))
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: expected a list of values (a grid axis) or a range such as "
            f"{{ uniform = [1e-4, 1e-3] }} ({', '.join(DISTRIBUTIONS)}), got {value!r}"
        )
    ((kind, bounds),) = value.items()
    _need(isinstance(bounds, list) and bool(bounds), f"{where}.{kind}", "a list", bounds)
    if kind == "choice":
        return Axis(key, distribution=kind, bounds=list(bounds))
    if kind == "randint":
        _need(
            len(bounds) == 2
            and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
            and bounds[0] <= bounds[1],
            f"{where}.randint",
            "[low, high], integers, low <= high",
            bounds,
        )
    else:
        _need(
            len(bounds) == 2 and all(_is_number(b) for b in bounds) and bounds[0] < bounds[1],
            f"{where}.{kind}",
            "[low, high], numbers, low < high",
            bounds,
        )
        if kind == "log_uniform":
            _need(bounds[0] > 0, f"{where}.log_uniform", "low > 0", bounds)
    return Axis(
        key,
        distribution=kind,
        bounds=[float(b) for b in bounds] if kind != "randint" else list(bounds),
    )


def load_spec(path: Path) -> SweepSpec:
    """Read and check a sweep spec; raises ConfigError (one line) naming what is wrong:
    an unknown key, a bad range, an unknown metric, a config override that does not check."""
    from training.config import read_toml

    path = Path(path)
    raw = read_toml(path, "sweep spec")
    try:
        return _parse_spec(raw, path)
    except ConfigError as err:
        raise ConfigError(f"sweep spec {path}: {err}") from err


def _parse_spec(raw: dict[str, Any], path: Path) -> SweepSpec:
    unknown = sorted(set(raw) - {"sweep", "eval", "overrides", "search"})
    if unknown:
        raise ConfigError(
            f"unknown table or key {unknown[0]!r}; expected [sweep], [eval], [overrides], [search]"
        )
    for table in raw:
        _need(isinstance(raw[table], dict), table, "a table", raw[table])
    sweep = raw.get("sweep", {})
    evals = raw.get("eval", {})
    for name, known, values in (("sweep", _SWEEP_KEYS, sweep), ("eval", _EVAL_KEYS, evals)):
        bad = sorted(set(values) - known)
        if bad:
            raise ConfigError(f"unknown key '{name}.{bad[0]}'; known: {sorted(known)}")
    base = path.parent
    if "metric" not in sweep:
        raise ConfigError("[sweep] needs metric = NAME, the eval figure that ranks the trials")
    metric = sweep["metric"]
    if metric not in METRICS:
        raise ConfigError(
            f"sweep.metric: unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}"
        )
    mode = sweep.get("mode")
    _need(mode in ("max", "min"), "sweep.mode", '"max" or "min" (which end is best)', mode)

    def number(
        table: dict[str, Any], where: str, key: str, default: Any, rule: str, ok: Any
    ) -> Any:
        value = table.get(key, default)
        if value is None:
            return None
        _need(_is_number(value) and ok(value), f"{where}.{key}", rule, value)
        return value

    def integer(x: Any) -> bool:
        return isinstance(x, int)

    samples = number(
        sweep, "sweep", "samples", 1, "an integer >= 1", lambda x: integer(x) and x >= 1
    )
    seed = number(sweep, "sweep", "seed", 0, "an integer", integer)
    steps = number(
        sweep, "sweep", "steps", None, "an integer >= 1", lambda x: integer(x) and x >= 1
    )
    minutes = number(sweep, "sweep", "minutes", None, "a number >= 0", lambda x: x >= 0)
    cpus = number(sweep, "sweep", "cpus_per_trial", 1, "a number > 0", lambda x: x > 0)
    concurrent = number(
        sweep, "sweep", "max_concurrent", 0, "an integer >= 0", lambda x: integer(x) and x >= 0
    )
    eval_settings = {
        "compositions": number(
            evals, "eval", "compositions", 200, "an integer >= 1", lambda x: integer(x) and x >= 1
        ),
        "key_calls": number(
            evals, "eval", "key_calls", 50, "an integer >= 1", lambda x: integer(x) and x >= 1
        ),
        "seed": number(evals, "eval", "seed", 0, "an integer", integer),
        "temperature": float(
            number(
                evals, "eval", "temperature", DEFAULT_TEMPERATURE, "a number > 0", lambda x: x > 0
            )
        ),
    }
    for key in ("name", "config", "corpus"):
        if key in sweep:
            _need(
                isinstance(sweep[key], str) and sweep[key].strip() != "",
                f"sweep.{key}",
                "a non-empty string",
                sweep[key],
            )
    overrides = _flatten(raw.get("overrides", {}), "overrides")
    if CORPUS_KEY in overrides:
        raise ConfigError("overrides.corpus: set the corpus in [sweep] corpus = ...")
    axes = [_axis(k, v) for k, v in _flatten(raw.get("search", {}), "search").items()]
    for axis in axes:
        if axis.key in overrides:
            raise ConfigError(f"{axis.key!r} is both in [overrides] and in [search]; keep one")
        if axis.key == CORPUS_KEY:
            _need(
                axis.values is not None and all(isinstance(v, str) for v in axis.values),
                "search.corpus",
                "a list of corpora (strings)",
                axis.values if axis.values is not None else axis.distribution,
            )
    if samples > 1 and all(a.values is not None for a in axes):
        raise ConfigError(
            "sweep.samples > 1 needs a range in [search] (a list is a grid axis); to repeat "
            "trials, search seed = [0, 1, 2]"
        )
    config = _resolve_path(sweep.get("config", "default"), base)
    corpus = _resolve_path(sweep.get("corpus", "default"), base)
    axes = [
        Axis(a.key, values=[_resolve_path(v, base) for v in a.values or []])
        if a.key == CORPUS_KEY
        else a
        for a in axes
    ]
    spec = SweepSpec(
        path=path,
        name=sweep.get("name", path.stem),
        config=config,
        corpus=corpus,
        metric=metric,
        mode=mode,
        samples=int(samples),
        seed=int(seed),
        steps=steps,
        minutes=None if minutes is None else float(minutes),
        cpus_per_trial=float(cpus),
        max_concurrent=int(concurrent),
        eval=eval_settings,
        overrides=overrides,
        axes=axes,
    )
    _check_overrides(spec)
    return spec


def _check_overrides(spec: SweepSpec) -> None:
    """Every value a trial may get, applied to the base config and checked as a config file:
    the grid values, the range ends and the choices."""
    from training.config import apply_overrides, load_config

    base = load_config(spec.config)
    apply_overrides(base, spec.overrides)
    for axis in spec.axes:
        if axis.key == CORPUS_KEY:
            continue
        values = axis.values if axis.values is not None else axis.bounds
        for value in values:
            try:
                apply_overrides(base, {**spec.overrides, axis.key: value})
            except ConfigError as err:
                raise ConfigError(f"search.{axis.key} = {value!r}: {err}") from err


def expand_trials(spec: SweepSpec) -> list[Trial]:
    """The trials, in a fixed order: the grid's cartesian product (axes in spec order), and for
    each grid point ``samples`` draws of the ranges from one generator seeded with the spec's
    seed. The same spec always gives the same trials (so a resumed sweep finds its own)."""
    import numpy as np

    rng = np.random.default_rng(spec.seed)
    grid = [a for a in spec.axes if a.values is not None]
    ranges = [a for a in spec.axes if a.values is None]
    trials: list[Trial] = []
    for point in itertools.product(*[a.values or [] for a in grid]):
        for _ in range(spec.samples):
            params = dict(zip([a.key for a in grid], point, strict=True))
            params.update({a.key: a.draw(rng) for a in ranges})
            params = {a.key: params[a.key] for a in spec.axes}  # spec order
            corpus = str(params.get(CORPUS_KEY, spec.corpus))
            overrides = {**spec.overrides, **{k: v for k, v in params.items() if k != CORPUS_KEY}}
            trials.append(Trial(f"trial-{len(trials):03d}", overrides, corpus, params))
    return trials


# ------------------------------------------------------------------ one trial


def eval_figures(result: Any, train_metrics: dict[str, Any]) -> dict[str, float]:
    """The METRICS figures of an ``EvalResult`` (the Q-network's column,
    ``EvalResult.figures``) and a run's ``metrics.json``; NaN where a figure is undefined (e.g.
    no leap at all)."""
    nan = float("nan")
    figures: dict[str, float] = dict(result.figures())
    for name in METRICS:
        if name.startswith("train."):
            value = train_metrics.get(name[len("train.") :])
            figures[name] = float(value) if _is_number(value) else nan
    return figures


def trial_dir(out: Path, name: str) -> Path:
    return Path(out) / TRIALS_DIR / name


def run_trial(trial: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Train one trial into its run folder (resuming its checkpoint when one is there),
    evaluate it on its corpus, write ``trial.json``; returns that record (parameters,
    figures, seconds). Log lines go to the folder's ``train.log``."""
    from training.cli.eval_command import evaluate_model
    from training.cli.train_command import CHECKPOINT_NAME, train

    folder = trial_dir(Path(settings["out"]), trial["name"])
    record_path = folder / TRIAL_RECORD
    if record_path.exists():
        return dict(json.loads(record_path.read_text(encoding="utf-8")))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    resume = (folder / CHECKPOINT_NAME).exists()
    with (folder / "train.log").open("a", encoding="utf-8") as log, contextlib.redirect_stderr(log):
        checkpoint = train(
            settings["config"],
            trial["corpus"],
            folder,
            resume=resume,
            minutes=settings["minutes"],
            steps=settings["steps"],
            threads=max(1, int(settings["cpus_per_trial"])),
            progress_bar=False,
            overrides=trial["overrides"],
        )
        evaluation = settings["eval"]
        result, _ = evaluate_model(
            checkpoint,
            trial["corpus"],
            folder,
            compositions=evaluation["compositions"],
            seed=evaluation["seed"],
            temperature=evaluation["temperature"],
            key_calls=evaluation["key_calls"],
        )
    train_metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    record = {
        **trial,
        "figures": eval_figures(result, train_metrics),
        "seconds": time.monotonic() - started,
        "resumed": resume,
    }
    tmp = folder / f".{TRIAL_RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, record_path)  # atomic: a trial is finished or it is not
    return record


def _tune_trial(config: dict[str, Any]) -> None:
    """The Ray Tune trainable: one trial, its figures reported to Tune."""
    from ray import tune

    record = run_trial(config["trial"], config["settings"])
    tune.report({k.replace(".", "/"): v for k, v in record["figures"].items()})


# ------------------------------------------------------------------ the sweep


@dataclass
class SweepResult:
    """What ``run_sweep`` returns: the finished trials' records ranked best first, the
    failures (trial name -> one line), and the files written."""

    ranked: list[dict[str, Any]]
    failed: dict[str, str]
    table_path: Path
    plot_path: Path
    skipped: list[str] = field(default_factory=list)
    """Trials found finished when the sweep started (a resume)."""


def _settings(spec: SweepSpec, out: Path) -> dict[str, Any]:
    return {
        "out": str(out.resolve()),
        "config": spec.config,
        "steps": spec.steps,
        "minutes": spec.minutes,
        "cpus_per_trial": spec.cpus_per_trial,
        "eval": dict(spec.eval),
    }


def _load_records(out: Path, trials: list[Trial]) -> dict[str, dict[str, Any]]:
    records = {}
    for trial in trials:
        path = trial_dir(out, trial.name) / TRIAL_RECORD
        if path.exists():
            records[trial.name] = json.loads(path.read_text(encoding="utf-8"))
    return records


def _start_record(spec: SweepSpec, out: Path, trials: list[Trial], resume: bool) -> None:
    """Write ``OUT/sweep.json`` (a fresh sweep), or check a resumed one has the same trials."""
    record_path = out / SWEEP_RECORD
    listed = [t.to_dict() for t in trials]
    if resume:
        if not record_path.exists():
            raise ConfigError(
                f"--resume: {out} holds no sweep ({SWEEP_RECORD} is missing); run without "
                "--resume to start one"
            )
        before = json.loads(record_path.read_text(encoding="utf-8"))
        if before.get("trials") != json.loads(json.dumps(listed)):
            raise ConfigError(
                f"--resume: the spec's trials differ from those the sweep in {out} started "
                "with; resume with the same spec, or choose another --out"
            )
        return
    if record_path.exists():
        raise ConfigError(
            f"{out} already holds a sweep; pass --resume to continue it, or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    record = {"spec": str(spec.path), "metric": spec.metric, "mode": spec.mode, "trials": listed}
    tmp = out / f".{SWEEP_RECORD}.tmp"
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, record_path)


def rank(records: list[dict[str, Any]], metric: str, mode: str) -> list[dict[str, Any]]:
    """Best first by ``metric`` (``mode`` "max" or "min"); trials without the figure last."""

    def key(record: dict[str, Any]) -> tuple[int, float]:
        value = float(record["figures"].get(metric, float("nan")))
        if not math.isfinite(value):
            return (1, 0.0)
        return (0, -value if mode == "max" else value)

    return sorted(records, key=key)


def run_sweep(
    spec: SweepSpec,
    out: Path,
    resume: bool = False,
    use_ray: bool = False,
    address: str | None = None,
    num_cpus: int | None = None,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run the spec's trials not finished yet, then write ``OUT/results.md`` and
    ``OUT/trials.png``. With ``use_ray``, Ray Tune runs them on the cluster at ``address``
    (default: this process's, else a local one of ``num_cpus`` CPUs); else one after another
    in this process. Returns the ``SweepResult``."""
    say = log or _stderr
    out = Path(out)
    trials = expand_trials(spec)
    _start_record(spec, out, trials, resume)
    finished = _load_records(out, trials)
    pending = [t for t in trials if t.name not in finished]
    if finished:
        say(f"{len(finished)} of {len(trials)} trials finished already: {', '.join(finished)}")
    say(
        f"{len(pending)} trial(s) to run ({spec.metric}, {spec.mode} is best)"
        + (" on Ray Tune" if use_ray and pending else "")
    )
    settings = _settings(spec, out)
    failed: dict[str, str] = {}
    if pending and use_ray:
        failed = _run_on_ray(spec, out, pending, settings, address, num_cpus, say)
    else:
        for trial in pending:
            try:
                record = run_trial(trial.to_dict(), settings)
            except Exception as err:  # noqa: BLE001 - one failed trial does not end the sweep
                failed[trial.name] = _one_line(err)
                say(f"{trial.name} failed: {failed[trial.name]}")
                continue
            say(_finished_line(record, spec.metric))
    records = _load_records(out, trials)
    ranked = rank(list(records.values()), spec.metric, spec.mode)
    table_path = write_table(spec, out, ranked, trials, failed)
    plot_path = plot_trials(spec, out / PLOT_NAME, ranked)
    if ranked:
        best = ranked[0]
        say(
            f"best: {best['name']} {spec.metric} = {best['figures'][spec.metric]:.4g} "
            f"({_params_text(best['params'])}); table {table_path}, plot {plot_path}"
        )
    return SweepResult(ranked, failed, table_path, plot_path, skipped=list(finished))


def _run_on_ray(
    spec: SweepSpec,
    out: Path,
    pending: list[Trial],
    settings: dict[str, Any],
    address: str | None,
    num_cpus: int | None,
    say: Callable[[str], None],
) -> dict[str, str]:
    """The pending trials as Ray Tune trials; returns the failures (name -> one line)."""
    from training.scale.cluster import ray_cluster

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    with ray_cluster("deepjam sweep --ray", address, num_cpus):
        from ray import tune

        class Report(tune.Callback):  # type: ignore[misc]
            def on_trial_complete(self, iteration: int, trials: Any, trial: Any, **_: Any) -> None:
                path = trial_dir(out, trial.config["trial"]["name"]) / TRIAL_RECORD
                if path.exists():
                    say(_finished_line(json.loads(path.read_text(encoding="utf-8")), spec.metric))

        names = {t.name for t in pending}
        runs = out / "tune"
        attempt = 1 + sum(1 for p in runs.glob("run-*")) if runs.exists() else 1
        tuner = tune.Tuner(
            tune.with_resources(_tune_trial, {"cpu": spec.cpus_per_trial}),
            param_space={
                "trial": tune.grid_search([t.to_dict() for t in pending]),
                "settings": settings,
            },
            tune_config=tune.TuneConfig(
                max_concurrent_trials=spec.max_concurrent or None,
                trial_name_creator=lambda t: str(t.config["trial"]["name"]),
                trial_dirname_creator=lambda t: str(t.config["trial"]["name"]),
            ),
            run_config=tune.RunConfig(
                name=f"run-{attempt}",
                storage_path=str(runs.resolve()),
                verbose=0,
                callbacks=[Report()],
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        grid = tuner.fit()
        failed: dict[str, str] = {}
        for result in grid:
            name = str(result.config["trial"]["name"]) if result.config else "?"
            if result.error is not None and name in names:
                failed[name] = _one_line(result.error)
                say(f"{name} failed: {failed[name]}")
    return failed


def _one_line(err: BaseException) -> str:
    cause = err
    while getattr(cause, "cause", None) is not None:  # Ray's RayTaskError wraps the real one
        cause = cause.cause
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {_value_text(v)}" for k, v in params.items()) or "base config"


def _value_text(value: Any) -> str:
    if isinstance(value, str) and ("/" in value or os.sep in value):
        return Path(value).name
    return f"{value:g}" if isinstance(value, float) else str(value)


def _figure_text(value: Any) -> str:
    return f"{value:.4g}" if _is_number(value) and math.isfinite(value) else "n/a"


def _finished_line(record: dict[str, Any], metric: str) -> str:
    value = record["figures"].get(metric, float("nan"))
    return (
        f"{record['name']} finished in {record['seconds']:.0f} s: {metric} = "
        f"{_figure_text(value)} ({_params_text(record['params'])})"
    )


def write_table(
    spec: SweepSpec,
    out: Path,
    ranked: list[dict[str, Any]],
    trials: list[Trial],
    failed: dict[str, str],
) -> Path:
    """``OUT/results.md``: the finished trials ranked best first (their parameters, the
    metric, the headline figures, the run folder), then the failed or unfinished ones."""
    keys = [a.key for a in spec.axes]
    others = [f for f in HEADLINE_FIGURES if f != spec.metric]
    lines = [
        f"# Sweep {spec.name}: {len(ranked)} of {len(trials)} trials finished",
        "",
        f"Ranked by `{spec.metric}` ({METRICS[spec.metric]}), {spec.mode} is best. Base "
        f"config `{_value_text(spec.config)}`, corpus `{_value_text(spec.corpus)}`"
        + (f", {spec.steps:,} env steps" if spec.steps else "")
        + (f", {spec.minutes:g} min" if spec.minutes else "")
        + f" per trial; eval on {spec.eval['compositions']} held-out calls. Spec: "
        f"`{spec.path.name}`.",
        "",
        "| Rank | Trial | "
        + " | ".join(f"`{k}`" for k in keys)
        + (" | " if keys else "")
        + f"**{spec.metric}** | "
        + " | ".join(others)
        + " | Run folder |",
        "|---:|---|" + "---|" * len(keys) + "---:|" + "---:|" * len(others) + "---|",
    ]
    for i, record in enumerate(ranked, start=1):
        params = [_value_text(record["params"].get(k, "")) for k in keys]
        figures = record["figures"]
        cells = [str(i), record["name"], *params, f"**{_figure_text(figures.get(spec.metric))}**"]
        cells += [_figure_text(figures.get(f)) for f in others]
        cells.append(f"[{TRIALS_DIR}/{record['name']}]({TRIALS_DIR}/{record['name']}/eval.md)")
        lines.append("| " + " | ".join(cells) + " |")
    done = {r["name"] for r in ranked}
    missing = [t for t in trials if t.name not in done]
    if missing:
        lines += ["", "Not finished:", ""]
        for t in missing:
            why = failed.get(t.name, "not run yet (deepjam sweep --resume runs it)")
            lines.append(f"- {t.name} ({_params_text(t.params)}): {why}")
    path = out / RESULTS_NAME
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plot_trials(spec: SweepSpec, path: Path, ranked: list[dict[str, Any]]) -> Path:
    """``OUT/trials.png``: the metric per trial, best first, and the metric against each
    searched key (a log axis for a log_uniform range)."""
    from training.eval.plots import _pyplot

    plt = _pyplot()
    axes_shown = spec.axes[:3]
    fig, panels = plt.subplots(
        1, 1 + len(axes_shown), figsize=(5 + 4 * len(axes_shown), 4), squeeze=False
    )
    names = [r["name"] for r in ranked]
    values = [float(r["figures"].get(spec.metric, float("nan"))) for r in ranked]
    bars = panels[0][0]
    bars.bar(range(len(values)), values, color="#3b6ea8")
    bars.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    bars.set_ylabel(spec.metric)
    bars.set_title(f"trials, best first ({spec.mode} is best)")
    for panel, axis in zip(panels[0][1:], axes_shown, strict=False):
        xs = [r["params"].get(axis.key) for r in ranked]
        if all(_is_number(x) for x in xs):
            panel.scatter(xs, values, color="#3b6ea8")
            if axis.distribution == "log_uniform" or (
                xs and min(xs) > 0 and max(xs) / min(xs) >= 10
            ):
                panel.set_xscale("log")
        else:
            labels = sorted({_value_text(x) for x in xs})
            panel.scatter([labels.index(_value_text(x)) for x in xs], values, color="#3b6ea8")
            panel.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        panel.set_xlabel(axis.key)
        panel.set_ylabel(spec.metric)
    fig.suptitle(f"sweep {spec.name}: {len(ranked)} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _stderr(line: str) -> None:
    print(f"deepjam sweep: {line}", file=sys.stderr, flush=True)
