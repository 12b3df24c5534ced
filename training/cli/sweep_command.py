"""``deepjam sweep SPEC.toml``: many ``deepjam train`` trials from one base style, ranked by an
eval figure (``--ray``: as Ray Tune trials on a cluster).

    deepjam sweep training/presets/sweeps/example.toml --out sweeps/example --ray
    deepjam sweep my_sweep.toml --out sweeps/mine --ray --address auto   # a running cluster
    deepjam sweep my_sweep.toml --out sweeps/mine --ray --resume         # after a crash

The spec format is in ``training.scale.sweep`` (and in ``--help``).
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

SPEC_HELP = """\
SPEC.toml:
  [sweep]    config = "default" (a preset or a style TOML), corpus = "default" (or a .npz, or
             a MIDI folder), metric = NAME (below), mode = "max" | "min", samples = 1 (draws
             of the ranges per grid point), seed = 0, steps = N and minutes = M (each trial's
             budget), cpus_per_trial = 1, max_concurrent = 0 (--ray: 0 = as the CPUs allow)
  [eval]     compositions = 200, key_calls = 50, seed = 0, temperature = 1.0 (deepjam eval's)
  [overrides] dotted config keys set for every trial, e.g. budget.log_interval_steps = 5000
  [search]   the axes; dotted config keys (learner.learning_rate, reward.w_play, env.n_envs,
             seed, ...) or corpus (a list of corpora: one style each), each either
               a list          a grid axis: every value, crossed with the other lists
               { uniform = [lo, hi] } | { log_uniform = [lo, hi] } | { randint = [lo, hi] } |
               { choice = [a, b, ...] }   drawn for each of the samples
Relative paths are relative to the spec file. Each trial trains into OUT/trials/trial-NNN/
(checkpoint.pt, tb/, metrics.json, eval.md + PNGs, trial.json); OUT/results.md ranks them
and OUT/trials.png plots them. --resume skips finished trials.

metrics: {metrics}
"""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``deepjam sweep``."""
    from training.scale.sweep import METRICS

    parser = subparsers.add_parser(
        "sweep",
        help="train many trials (grid or random search over a style's config, or corpora) "
        "and rank them by an eval figure",
        description="Run the trials of a sweep spec: each a `deepjam train` run from the base "
        "style with overrides, scored by `deepjam eval`'s figures on its corpus; writes "
        "OUT/results.md (ranked) and OUT/trials.png. With --ray, Ray Tune runs them.",
        epilog=SPEC_HELP.replace(
            "{metrics}", textwrap.fill(", ".join(METRICS), 92, subsequent_indent="  ")
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("spec", type=Path, help="the sweep spec, a TOML file (format below)")
    parser.add_argument(
        "--out", type=Path, help="sweep folder (default: sweeps/<spec name without .toml>)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the sweep in --out: finished trials "
        "are kept, an unfinished one resumes from its checkpoint",
    )
    parser.add_argument(
        "--ray",
        action="store_true",
        help="run the trials as Ray Tune trials (the scale "
        "extra); default: one after another in this process",
    )
    parser.add_argument(
        "--address",
        help="with --ray: the cluster to join (auto, ray://host:10001); default: a local "
        "cluster of --cpus CPUs",
    )
    parser.add_argument(
        "--cpus",
        type=int,
        help="with --ray and no --address: the local cluster's CPUs (default: all)",
    )
    parser.set_defaults(func=run_sweep_command, requires_extra="train")


def run_sweep_command(args: argparse.Namespace) -> int:
    """The handler: check the arguments, run the sweep; 1 when a trial failed."""
    from exports.errors import ConfigError
    from exports.extras import require_extra
    from training.scale.sweep import load_spec, run_sweep

    if args.address and not args.ray:
        raise ConfigError("--address joins a Ray cluster: pass --ray too")
    if args.cpus is not None and args.cpus < 1:
        raise ConfigError(f"--cpus must be at least 1, got {args.cpus}")
    if args.ray:
        require_extra("scale", "deepjam sweep --ray")
    spec = load_spec(args.spec)
    out = args.out if args.out is not None else Path("sweeps") / args.spec.stem
    result = run_sweep(spec, out, args.resume, args.ray, args.address, args.cpus)
    return 1 if result.failed else 0
