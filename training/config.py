"""A style's training config: TOML (tomllib) read into frozen dataclasses.

Each field's docstring says what the value means; ``deepjam train --config`` takes a preset name
(``training/presets/<name>.toml``) or a path. Sections: ``[style]``, ``[spec]``, ``[reward]``
(weights, see ``training.env.reward.RewardWeights``), ``[env]`` (see
``training.env.environment.EnvConfig``), ``[network]``, ``[learner]``, ``[budget]``,
``[style_model]``, ``[finetune]`` (see ``FineTuneConfig``). The ``[reward]`` weights scale whole
groups of rules; the rules themselves and their magnitudes (phrases, not echoes: related rhythm,
motif development, no two-note oscillations, leaps and repeats at the corpus's rate, a stable
close) are documented in ``training.env.reward``. A bad value raises ConfigError naming the field, e.g.
``learner.gamma: expected a number in [0, 1), got 1.5``.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from exports.errors import ConfigError
from exports.spec import Spec

PRESETS_DIR = Path(__file__).parent / "presets"
DEFAULT_PRESET = "default"


@dataclass(frozen=True)
class StyleInfo:
    name: str = "default"
    """Style name, shown by the live player and stored in the model's metadata."""
    description: str = ""
    """One line saying what the style sounds like and what it was trained on."""


NETWORK_KINDS = ("mlp", "hybrid", "dilated")
"""The Q-network's (and the style model's) architectures; see ``training.networks``."""


@dataclass(frozen=True)
class NetworkConfig:
    kind: str = "mlp"
    """Architecture of the Q-network and the style model: "mlp" (the whole state, as a vector),
    "hybrid" (the MLP over the last 32 steps, with a strided convolution over the whole window:
    use it with [spec] window_steps = 128, a 4-bar call and its answer) or "dilated" (a dilated
    convolution stack only). See training/networks.py."""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer widths of the MLP Q-network (and of the style model)."""
    dueling: bool = False
    """Dueling head: Q = V(s) + A(s, a) - mean A (Wang et al. 2016)."""
    init_from_style_model: bool = True
    """Start the Q-network from the style model's weights (RL Tuner does); needs dueling off."""


@dataclass(frozen=True)
class LearnerConfig:
    learning_rate: float = 2.5e-4
    """Adam step size."""
    gamma: float = 0.9
    """Discount per 16th step (0.9: about two beats of look-ahead)."""
    batch_size: int = 128
    """Transitions per gradient update."""
    buffer_size: int = 100_000
    """Replay capacity in transitions (stored as float16 states)."""
    learning_starts: int = 10_000
    """Transitions in the replay buffer before the first update (also after a resume)."""
    train_frequency: int = 1
    """Vector steps between updates: 1 = one update per env.n_envs transitions."""
    updates_per_step: int = 1
    """Gradient updates each time the learner trains."""
    target_update_interval: int = 250
    """Updates between hard target-network syncs (used when tau == 1)."""
    tau: float = 1.0
    """Polyak rate of the target network per update; 1.0 = hard sync every interval."""
    double_dqn: bool = True
    """Double DQN target: the online network picks a', the target network values it."""
    n_step: int = 1
    """Steps of reward summed in the TD target before bootstrapping."""
    start_epsilon: float = 1.0
    """Exploration at the start: probability of a random action."""
    end_epsilon: float = 0.05
    """Exploration after the decay."""
    exploration_fraction: float = 0.3
    """Fraction of the env-step budget over which epsilon decays linearly."""
    loss: str = "huber"
    """TD loss: "huber" (smooth L1) or "mse"."""
    max_grad_norm: float = 10.0
    """Gradient clipping norm; 0 disables it."""
    kl_control: str = "none"
    """"psi": RL Tuner's Psi-learning (KL-control toward the style model): the reward's
    ``w_style * log p_style`` is the KL term and the TD target backs up the soft value
    ``kl_temperature * logsumexp(Q' / kl_temperature)`` instead of the max, so the policy is
    softmax(Q / T) near the style prior; "none": the hard max (Q-learning)."""
    kl_temperature: float = 1.0
    """The soft backup's temperature T for ``kl_control = "psi"`` (sample at about T live)."""


@dataclass(frozen=True)
class BudgetConfig:
    env_steps: int = 5_000_000
    """Stop after this many transitions (summed over the parallel envs)."""
    minutes: float = 10.0
    """...or after this much wall time of the RL phase, whichever comes first; 0 = no limit."""
    checkpoint_interval_s: float = 60.0
    """Seconds between checkpoints; a kill loses at most this much."""
    log_interval_steps: int = 20_000
    """Transitions between TensorBoard scalar writes."""


@dataclass(frozen=True)
class StyleModelConfig:
    epochs: int = 10
    """Passes over the training split for the supervised next-action model."""
    batch_size: int = 512
    """States per supervised step."""
    learning_rate: float = 1e-3
    """Adam step size."""
    max_minutes: float = 2.0
    """Stop the style model early after this much wall time; 0 = no limit."""
    max_states: int = 400_000
    """Cap on training states (random tunes/windows beyond it are left out) to bound memory."""
    pair_fraction: float = 0.0
    """Share of each batch from real (call, continuation) pairs: answer episodes as the env
    cuts them (``[env]``: call lengths, augmentation), the tune's own continuation as the
    target; the rest are windows of single tunes with a silent or unrelated player. 0 = the
    call-blind model of spec 1."""


@dataclass(frozen=True)
class FineTuneConfig:
    from_model: str = ""
    """Weights a fresh run starts from (both the style model and the Q-network), then fine-tunes
    on the corpus: a shipped style's name ("default": ``live_agent/models/default.onnx``), a
    path to an ONNX file from ``deepjam export``, or "" (random weights). Matched by parameter
    name and shape (``training.finetune``): a shipped style that does not fit the network or
    spec is reported in one line and skipped; a path that does not fit is refused."""
    when_tunes_below: int = 200
    """Fine-tune only when the corpus has fewer tunes than this (a small folder of the user's
    own); 0 = always. 50 files from scratch gave a style that repeats one note."""


@dataclass(frozen=True)
class StyleConfig:
    style: StyleInfo = field(default_factory=StyleInfo)
    """Name and description."""
    spec: dict[str, Any] = field(default_factory=dict)
    """Overrides of exports.spec.Spec (window_steps, pitch_low, ...); empty = the default spec."""
    reward: dict[str, Any] = field(default_factory=dict)
    """Reward weights, passed to training.env.reward.RewardWeights."""
    env: dict[str, Any] = field(default_factory=dict)
    """Environment settings, passed to training.env.environment.EnvConfig."""
    network: NetworkConfig = field(default_factory=NetworkConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    style_model: StyleModelConfig = field(default_factory=StyleModelConfig)
    finetune: FineTuneConfig = field(default_factory=FineTuneConfig)
    """Start from a shipped style's weights on a small corpus (``training.finetune``)."""
    seed: int = 0
    """Seed of numpy and torch."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def build_spec(self) -> Spec:
        try:
            return Spec.from_dict(dict(self.spec))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"spec: {err}") from err

    def env_config(self) -> Any:
        """The ``[env]`` table as a checked ``training.env.environment.EnvConfig``."""
        from training.env.environment import EnvConfig

        env = _build(EnvConfig, dict(self.env), "env")
        if env.n_envs < 1:
            raise ConfigError(f"env.n_envs: expected an integer >= 1, got {env.n_envs}")
        if not 0.0 <= env.answer_fraction <= 1.0:
            raise ConfigError(
                f"env.answer_fraction: expected a number in [0, 1], got {env.answer_fraction}"
            )
        return env

    def reward_weights(self) -> Any:
        """The ``[reward]`` table as ``training.env.reward.RewardWeights``."""
        from training.env.reward import RewardWeights

        try:
            return RewardWeights.from_dict(dict(self.reward))
        except ConfigError as err:
            raise ConfigError(f"reward: {err}") from err

    def replace(self, section: str, **values: Any) -> StyleConfig:
        """A copy with fields of one section changed (``section=""`` for top-level fields)."""
        if not section:
            return dataclasses.replace(self, **values)
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **values)}
        )


def _check_value(where: str, value: Any, annotation: Any) -> Any:
    """Check one TOML value against a field annotation; returns the value (ints widened)."""
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_check_value(f"{where}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        return value
    raise ConfigError(f"{where}: unsupported field type {annotation!r}")


def _build(cls: type, values: Any, where: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a table, got {values!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown config field {name!r}; known: {sorted(known)}")
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        path = f"{where}.{name}" if where else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _build(hint, value, path)  # type: ignore[arg-type]
        else:
            kwargs[name] = _check_value(path, value, hint)
    return cls(**kwargs)


def _validate(config: StyleConfig) -> None:
    """Range checks; each raises ConfigError naming the field."""
    lc, bc, sc = config.learner, config.budget, config.style_model

    def need(ok: bool, name: str, rule: str, value: Any) -> None:
        if not ok:
            raise ConfigError(f"{name}: expected {rule}, got {value!r}")

    need(bool(config.style.name.strip()), "style.name", "a non-empty name", config.style.name)
    need(
        config.network.kind in NETWORK_KINDS,
        "network.kind",
        f"one of {list(NETWORK_KINDS)}",
        config.network.kind,
    )
    need(
        all(h > 0 for h in config.network.hidden),
        "network.hidden",
        "positive widths",
        config.network.hidden,
    )
    need(
        not (config.network.dueling and config.network.init_from_style_model),
        "network.init_from_style_model",
        "false when network.dueling is true (the style model has no dueling head)",
        config.network.init_from_style_model,
    )
    need(lc.learning_rate > 0, "learner.learning_rate", "a number > 0", lc.learning_rate)
    need(0 <= lc.gamma < 1, "learner.gamma", "a number in [0, 1)", lc.gamma)
    need(lc.batch_size >= 1, "learner.batch_size", "an integer >= 1", lc.batch_size)
    need(
        lc.buffer_size >= lc.batch_size,
        "learner.buffer_size",
        ">= learner.batch_size",
        lc.buffer_size,
    )
    need(lc.learning_starts >= 0, "learner.learning_starts", "an integer >= 0", lc.learning_starts)
    need(lc.train_frequency >= 1, "learner.train_frequency", "an integer >= 1", lc.train_frequency)
    need(
        lc.updates_per_step >= 1, "learner.updates_per_step", "an integer >= 1", lc.updates_per_step
    )
    need(
        lc.target_update_interval >= 1,
        "learner.target_update_interval",
        "an integer >= 1",
        lc.target_update_interval,
    )
    need(0 < lc.tau <= 1, "learner.tau", "a number in (0, 1]", lc.tau)
    need(lc.n_step >= 1, "learner.n_step", "an integer >= 1", lc.n_step)
    need(
        0 <= lc.end_epsilon <= lc.start_epsilon <= 1,
        "learner.end_epsilon",
        "0 <= end_epsilon <= start_epsilon <= 1",
        lc.end_epsilon,
    )
    need(
        0 < lc.exploration_fraction <= 1,
        "learner.exploration_fraction",
        "a number in (0, 1]",
        lc.exploration_fraction,
    )
    need(lc.loss in ("huber", "mse"), "learner.loss", '"huber" or "mse"', lc.loss)
    need(lc.max_grad_norm >= 0, "learner.max_grad_norm", "a number >= 0", lc.max_grad_norm)
    need(bc.env_steps >= 1, "budget.env_steps", "an integer >= 1", bc.env_steps)
    need(bc.minutes >= 0, "budget.minutes", "a number >= 0 (0 = no limit)", bc.minutes)
    need(
        bc.checkpoint_interval_s > 0,
        "budget.checkpoint_interval_s",
        "a number > 0",
        bc.checkpoint_interval_s,
    )
    need(
        bc.log_interval_steps >= 1,
        "budget.log_interval_steps",
        "an integer >= 1",
        bc.log_interval_steps,
    )
    need(sc.epochs >= 0, "style_model.epochs", "an integer >= 0", sc.epochs)
    need(sc.batch_size >= 1, "style_model.batch_size", "an integer >= 1", sc.batch_size)
    need(sc.learning_rate > 0, "style_model.learning_rate", "a number > 0", sc.learning_rate)
    need(sc.max_minutes >= 0, "style_model.max_minutes", "a number >= 0", sc.max_minutes)
    need(sc.max_states >= 1, "style_model.max_states", "an integer >= 1", sc.max_states)
    need(
        config.finetune.when_tunes_below >= 0,
        "finetune.when_tunes_below",
        "an integer >= 0 (0 = always)",
        config.finetune.when_tunes_below,
    )
    config.build_spec()
    config.env_config()
    config.reward_weights()


def config_from_dict(values: dict[str, Any]) -> StyleConfig:
    """A checked StyleConfig from plain values (a parsed TOML file or a checkpoint's config)."""
    config = _build(StyleConfig, values, "")
    _validate(config)
    return config


def apply_overrides(config: StyleConfig, overrides: dict[str, Any]) -> StyleConfig:
    """``config`` with dotted keys replaced (``"learner.learning_rate"``, ``"reward.w_play"``,
    ``"env.n_envs"``, ``"seed"``), checked as a config file is; raises ConfigError (one line)
    naming an unknown key or a bad value."""
    values = config.to_dict()
    for key, value in overrides.items():
        *sections, name = key.split(".")
        table = values
        for i, section in enumerate(sections):
            inner = table.get(section)
            if not isinstance(inner, dict):
                where = ".".join(sections[: i + 1])
                raise ConfigError(
                    f"unknown config section {where!r} in override {key!r}; known: "
                    f"{sorted(k for k, v in table.items() if isinstance(v, dict))}"
                )
            table = inner
        if not name:
            raise ConfigError(f"override {key!r}: expected a dotted key like learner.gamma")
        table[name] = value
    return config_from_dict(values)


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def resolve_config_path(preset_or_path: str) -> Path:
    """A preset name (``default``) or a path to a TOML file -> the file's path."""
    path = Path(preset_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(
                f"config file {path} does not exist; pass a TOML file or one of the presets "
                f"{available_presets()}"
            )
        return path
    preset = PRESETS_DIR / f"{preset_or_path}.toml"
    if not preset.is_file():
        raise ConfigError(
            f"no preset named {preset_or_path!r}; available: {available_presets()}, "
            f"or pass a path to a .toml file"
        )
    return preset


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML file's tables; ConfigError in one line naming ``what`` it is (e.g. "config")
    when it cannot be read or is not TOML."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{what} {path} is not valid TOML ({err})") from err
    except OSError as err:
        raise ConfigError(f"cannot read {what} {path} ({err.strerror})") from err


def load_config(preset_or_path: str = DEFAULT_PRESET) -> StyleConfig:
    """Read and check a style config; raises ConfigError (one line) naming a bad field."""
    path = resolve_config_path(preset_or_path)
    values = read_toml(path, "config")
    try:
        return config_from_dict(values)
    except ConfigError as err:
        raise ConfigError(f"config {path}: {err}") from err
