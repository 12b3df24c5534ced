"""``deepjam eval``: RL Tuner's Table 1, style fidelity and answer quality, as markdown and PNGs.

    deepjam eval CHECKPOINT_OR_ONNX --corpus default|PATH|DIR --out DIR [--compositions N]
                 [--seed S] [--temperature T]

The answers are played as ``deepjam jam`` plays them, through the same code: live's start step,
answer length and opening note, at live's default temperature
(``exports.selection.DEFAULT_TEMPERATURE``) unless ``--temperature`` says otherwise.

Writes ``DIR/eval.md`` (the tables), ``DIR/figures.json`` (``EvalResult.figures`` per column),
``DIR/training_curves.png`` (from the run's TensorBoard
event files next to a checkpoint, else the checkpoint's metrics) and ``DIR/piano_rolls.png``
(sample calls and answers), and prints the tables. A degenerate style (one-note runs, trills,
one pitch: ``training.eval.musicianship``) gets a warning in plain words. Every number comes from code
(``training.eval.evaluate``); nothing is typed in except the paper's own Table 1 columns.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_COMPOSITIONS = 1000


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a trained model: RL Tuner Table 1, style fidelity, answers in key",
        description="Evaluate a trained style: RL Tuner's Table 1, style fidelity against "
        "held-out tunes and answers in key in all 12 keys, written to OUT/eval.md with PNGs "
        "(training curves, piano rolls of calls and answers).",
    )
    parser.add_argument("model", help="a checkpoint (.pt, from deepjam train) or an ONNX model")
    parser.add_argument(
        "--corpus",
        default="default",
        help="'default' (the built default corpus), a corpus .npz, or a folder of MIDI files; "
        "its held-out tunes give the calls and the reference melodies",
    )
    parser.add_argument("--out", required=True, type=Path, help="folder for eval.md and PNGs")
    parser.add_argument(
        "--compositions",
        type=int,
        default=DEFAULT_COMPOSITIONS,
        help=f"32-step compositions per policy (default {DEFAULT_COMPOSITIONS}; the paper "
        "used 100,000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="softmax temperature of the sampled answers (default: live's, "
        "exports.selection.DEFAULT_TEMPERATURE = 0.5; 1 = RL Tuner's softmax(Q))",
    )
    parser.add_argument(
        "--key-calls",
        type=int,
        default=200,
        help="calls answered in each of the 12 keys for the answer-quality table (default 200)",
    )
    parser.add_argument(
        "--answer-gap-steps",
        type=int,
        default=None,
        help="silent steps between a call's last note and the answer (default: where live "
        "answers start, exports.turns; 0 = the bar line after the call, as trained)",
    )
    parser.set_defaults(func=run_eval)


def load_policies(model_path: Path) -> tuple[Any, dict[str, Any], dict[str, Any], Path | None]:
    """(spec, {column: policy}, checkpoint metrics, checkpoint path or None) for a model file.

    A checkpoint gives the Q-network and, when it holds one, the style model; an ONNX file gives
    the Q-network only. Raises a DeepjamError with the fix when the file is neither.
    """
    from exports.errors import ModelError
    from training.eval.evaluate import Q_COLUMN, STYLE_COLUMN, TorchPolicy

    if model_path.suffix == ".onnx":
        from exports.model_file import load_model

        model = load_model(model_path)
        return model.spec, {Q_COLUMN: model}, dict(model.metadata.metrics), None
    if not model_path.is_file():
        raise ModelError(
            f"model {str(model_path)!r} does not exist; expected a checkpoint (.pt) from "
            "`deepjam train` or an .onnx file from `deepjam export`"
        )
    from training.checkpoint import load_checkpoint
    from training.style_model import StyleModel

    checkpoint = load_checkpoint(model_path)
    policies: dict[str, Any] = {Q_COLUMN: TorchPolicy(checkpoint.q_network(), checkpoint.spec)}
    if checkpoint.style_model:
        style = StyleModel.from_dict(checkpoint.style_model)
        policies[STYLE_COLUMN] = TorchPolicy(style.network, checkpoint.spec, log_softmax=True)
    return checkpoint.spec, policies, dict(checkpoint.metrics), model_path


def run_eval(args: argparse.Namespace) -> int:
    from exports.errors import ConfigError

    if args.compositions < 1:
        raise ConfigError(f"--compositions must be >= 1, got {args.compositions}")
    if args.key_calls < 1:
        raise ConfigError(f"--key-calls must be >= 1, got {args.key_calls}")
    if args.temperature is not None and not 0.0 <= args.temperature <= 10.0:
        raise ConfigError(f"--temperature must be within 0..10, got {args.temperature}")
    model_path = Path(args.model)
    from exports.selection import DEFAULT_TEMPERATURE

    _, written = evaluate_model(
        model_path,
        args.corpus,
        args.out,
        compositions=args.compositions,
        seed=args.seed,
        temperature=DEFAULT_TEMPERATURE if args.temperature is None else args.temperature,
        key_calls=args.key_calls,
        answer_gap_steps=args.answer_gap_steps,
    )
    sys.stdout.write(written[0].read_text(encoding="utf-8"))  # eval.md
    print("\nwrote " + ", ".join(str(p) for p in written))
    return 0


def evaluate_model(
    model_path: Path,
    corpus_arg: str,
    out: Path,
    compositions: int = DEFAULT_COMPOSITIONS,
    seed: int = 0,
    temperature: float | None = None,
    key_calls: int = 200,
    answer_gap_steps: int | None = None,
) -> tuple[Any, list[Path]]:
    """``deepjam eval`` without the printing: evaluate ``model_path`` on ``corpus_arg``'s
    held-out tunes and write ``out/eval.md`` and the PNGs. Returns the
    ``training.eval.evaluate.EvalResult`` and the paths written (``deepjam sweep`` scores
    trials by the result's figures). ``temperature`` None: live's default; ``answer_gap_steps``
    None: live's start."""
    import json

    import torch

    from exports.errors import ConfigError
    from training.data.corpus import resolve_corpus
    from training.eval.evaluate import (
        KEY_NAMES,
        LIVE,
        Q_COLUMN,
        STYLE_COLUMN,
        evaluate_policies,
        few_tunes_warning,
        format_markdown,
    )
    from training.eval.musicianship import degenerate_warning
    from training.eval.plots import (
        curves_from_metrics,
        plot_listening,
        plot_piano_rolls,
        plot_training_curves,
        read_tensorboard_scalars,
    )

    torch.set_num_threads(1)
    spec, policies, metrics, checkpoint_path = load_policies(model_path)
    corpus = resolve_corpus(corpus_arg)
    if temperature is None:
        from exports.selection import DEFAULT_TEMPERATURE

        temperature = DEFAULT_TEMPERATURE
    if answer_gap_steps is not None and answer_gap_steps < 0:
        raise ConfigError(f"--answer-gap-steps must be >= 0, got {answer_gap_steps}")
    result = evaluate_policies(
        spec,
        policies,
        corpus,
        n_compositions=compositions,
        seed=seed,
        temperature=temperature,
        key_calls=min(key_calls, compositions),
        answer_gap_steps=LIVE if answer_gap_steps is None else answer_gap_steps,
    )
    if answer_gap_steps is None:
        result.notes.append(
            "answers are played as `deepjam jam` plays them: from the step where live answers "
            "start, as many bars as live answers the call, opening with a note, temperature "
            f"{temperature:g}"
        )
    else:
        result.notes.append(
            f"answers start {answer_gap_steps} silent steps after the call's last note (not "
            "where live starts)"
            if answer_gap_steps
            else "answers start on the bar line after the call (as trained, not as live)"
        )
    warning = few_tunes_warning(compositions, result.call_tunes, result.calls_from_training_tunes)
    if warning is not None:
        print(f"deepjam eval: warning: {warning}", file=sys.stderr, flush=True)
        result.notes.append(f"warning: {warning}")
    if STYLE_COLUMN not in policies:
        result.notes.append(
            "an ONNX file carries the Q-network only: evaluate the checkpoint (.pt) to see the "
            "style model's column too"
        )
    reasons = result.degenerate(Q_COLUMN)
    if reasons:
        line = degenerate_warning(reasons, f"the style in {model_path.name}")
        print(f"deepjam eval: {line}", file=sys.stderr, flush=True)
        result.notes.insert(0, f"**{line}**")
    out.mkdir(parents=True, exist_ok=True)
    report = format_markdown(result, title=f"deepjam evaluation of {model_path.name}")
    (out / "eval.md").write_text(report, encoding="utf-8")
    figures = {name: result.figures(name) for name in policies}
    (out / "figures.json").write_text(
        json.dumps(figures, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )

    curves = read_tensorboard_scalars(checkpoint_path.parent) if checkpoint_path else {}
    if not curves:
        curves = curves_from_metrics(metrics)
    plot_training_curves(curves, out / "training_curves.png", title=model_path.name)
    pairs = [(s["call"], s["answer"]) for s in result.samples]
    titles = [
        f"{s['policy']}: call from a tune in {KEY_NAMES[s['tonic']]} "
        f"{'minor' if s['minor'] else 'major'}, answered in {KEY_NAMES[s['answer_tonic']]} "
        f"{'minor' if s['answer_minor'] else 'major'} (the key it heard)"
        for s in result.samples
    ]
    plot_piano_rolls(pairs, out / "piano_rolls.png", titles, spec.steps_per_bar)
    written = [
        out / "eval.md",
        out / "figures.json",
        out / "training_curves.png",
        out / "piano_rolls.png",
    ]
    if result.listening:  # call against answer, the first policy
        name, heard = next(iter(result.listening.items()))
        plot_listening(heard, out / "listening.png", title=f"{model_path.name}: {name}")
        written.append(out / "listening.png")
    return result, written
