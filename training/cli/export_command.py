"""``deepjam export CHECKPOINT -o style.onnx``: a trained style as an ONNX model for the player.

The file carries the contract (spec, spec version, vocabulary), the style (name, description,
reward weights, corpus summary, training steps, metrics) and where it came from (deepjam version
and git commit). Before it takes its name it must give torch's Q-values back on a few hundred
states cut from the training corpus (``exports.onnx_writer.export_onnx``). ``--quantize`` adds
an int8 copy beside it, kept only if it picks the same greedy action on >= 99% of held-out
states.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

PARITY_STATES = 300
HELD_OUT_STATES = 1000
SEED = 20261125


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "export",
        help="write a trained checkpoint as an ONNX model (metadata inside, parity-checked)",
        description=(
            "Export a checkpoint's Q-network to ONNX with the model contract and the style in "
            "its metadata. The file is written only if onnxruntime matches torch (max |dQ| <= "
            "1e-4, same greedy actions) on states from the training corpus."
        ),
    )
    parser.add_argument("checkpoint", help="a checkpoint written by `deepjam train`")
    parser.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    parser.add_argument(
        "--quantize",
        action="store_true",
        help="also write an int8 copy (OUTPUT stem + .int8.onnx), kept only if its greedy "
        "action equals the float model's on >= 99%% of held-out states",
    )
    parser.add_argument("--name", help="style name to record (default: the checkpoint's)")
    parser.add_argument("--description", help="style description (default: the checkpoint's)")
    parser.add_argument(
        "--corpus",
        help="corpus to draw check states from: 'default', a corpus .npz or a MIDI folder "
        "(default: the one the checkpoint was trained on; random melodies if unavailable)",
    )
    parser.add_argument(
        "--parity-states",
        type=int,
        default=PARITY_STATES,
        help=f"states for the torch/ONNX parity check (default: {PARITY_STATES})",
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, >= 17 (default: 17)")
    parser.set_defaults(func=run)


def int8_path(output: Path) -> Path:
    """style.onnx -> style.int8.onnx"""
    return output.with_name(f"{output.stem}.int8{output.suffix or '.onnx'}")


def source_version() -> str:
    """'deepjam 0.1.0 (git 3f04b95)', with '+dirty' for uncommitted changes when known."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = f"deepjam {version('deepjam')}"
    except PackageNotFoundError:
        text = "deepjam (not installed)"
    repo = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return text
    return f"{text} (git {sha}{'+dirty' if dirty else ''})" if sha else text


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """Only the JSON-able scalars (and short lists of them) of a metrics/corpus dict."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, bool | int | float | str) or value is None:
            out[str(key)] = value
        elif isinstance(value, np.generic):
            out[str(key)] = value.item()
        elif isinstance(value, list | tuple) and len(value) <= 16:
            if all(isinstance(v, bool | int | float | str) for v in value):
                out[str(key)] = list(value)
        elif isinstance(value, dict):
            out[str(key)] = _plain(value)
        elif hasattr(value, "item") and getattr(value, "numel", lambda: 0)() == 1:
            out[str(key)] = value.item()  # a one-element tensor
    return out


def _corpus_argument(checkpoint: Any, explicit: str | None) -> str | None:
    """The corpus to cut check states from: --corpus, else what the checkpoint names."""
    if explicit:
        return explicit
    for holder in (checkpoint.config, checkpoint.extra):
        for key in ("corpus", "corpus_arg", "corpus_path"):
            if isinstance(holder.get(key), str) and holder[key]:
                return holder[key]
    source = checkpoint.corpus.get("source")
    if isinstance(source, str) and source and Path(source).expanduser().exists():
        return source
    return "default"


def check_states(
    spec: Any,
    corpus_arg: str | None,
    say: Any,
    n_parity: int = PARITY_STATES,
    trained_corpus: dict[str, Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """(parity states from training tunes, held-out states from validation tunes, where from).

    Falls back to random melodies in the spec's range, with a printed note, when the corpus
    cannot be read; notes it when the corpus differs from ``trained_corpus`` (a summary).
    """
    trained_corpus = trained_corpus or {}
    from exports.errors import DeepjamError
    from exports.state_samples import synthetic_states, window_states
    from exports.tonality import to_relative

    rng = np.random.default_rng(SEED)
    try:
        if corpus_arg is None:
            raise FileNotFoundError("no corpus named")
        from training.data.corpus import resolve_corpus

        corpus = resolve_corpus(corpus_arg)
    except (DeepjamError, OSError, ImportError) as err:
        say(
            f"note: corpus {corpus_arg!r} is not available ({err}); checking on random "
            f"melodies in the spec's range instead"
        )
        return (
            synthetic_states(spec, n_parity, rng),
            synthetic_states(spec, HELD_OUT_STATES, rng),
            "random melodies",
        )
    found = {"tunes": corpus.n_tunes, "steps": int(len(corpus.events))}
    if any(k in trained_corpus and trained_corpus[k] != v for k, v in found.items()):
        say(
            f"note: corpus {corpus_arg!r} ({found['tunes']} tunes, {found['steps']} steps) is "
            f"not the one the checkpoint was trained on ({trained_corpus.get('tunes')} tunes, "
            f"{trained_corpus.get('steps')} steps); checking on its windows anyway (pass "
            f"--corpus to choose)"
        )
    tunes = [
        np.asarray(to_relative(corpus.tune(i).astype(np.int64), corpus.tonic[i]))
        for i in range(corpus.n_tunes)
    ]
    train = [i for i in range(corpus.n_tunes) if not corpus.validation[i]] or list(
        range(corpus.n_tunes)
    )
    held = [i for i in range(corpus.n_tunes) if corpus.validation[i]] or train

    def states(rows: list[int], n: int) -> np.ndarray:
        return window_states(spec, [tunes[i] for i in rows], corpus.minor[rows], n, rng)

    origin = f"corpus {corpus.name}"
    if corpus_arg != corpus.name:
        origin += f" from {corpus_arg}"
    return states(train, n_parity), states(held, HELD_OUT_STATES), origin


def run(args: argparse.Namespace) -> int:
    import torch

    from exports.errors import ConfigError
    from exports.metadata import ModelMetadata
    from exports.onnx_writer import export_onnx, quantize_onnx
    from training.checkpoint import load_checkpoint

    torch.set_num_threads(1)  # docs/measurements.md: 2 threads collapse when anything else runs

    def say(line: str) -> None:
        print(line, flush=True)

    if args.parity_states < 1:
        raise ConfigError(f"expected --parity-states >= 1, got {args.parity_states}")
    output = Path(args.output)
    checkpoint = load_checkpoint(args.checkpoint)
    spec = checkpoint.spec
    metadata = ModelMetadata(
        spec=spec,
        reward_weights=dict(checkpoint.reward_weights),
        style_name=args.name or checkpoint.style_name or output.stem,
        style_description=(
            args.description if args.description is not None else checkpoint.style_description
        ),
        corpus=_plain(checkpoint.corpus),
        training_steps=int(checkpoint.global_step),
        metrics=_plain(checkpoint.metrics),
        source_version=source_version(),
    )
    parity_states, held_out, origin = check_states(
        spec,
        _corpus_argument(checkpoint, args.corpus),
        say,
        args.parity_states,
        trained_corpus=checkpoint.corpus,
    )
    report = export_onnx(checkpoint.q_network(), metadata, output, parity_states, opset=args.opset)
    say(
        f"wrote {output} ({report.size_bytes / 1e6:.2f} MB) in {report.export_s:.2f} s "
        f"({report.exporter} exporter, opset {report.opset}); style {metadata.style_name!r}, "
        f"{metadata.training_steps:,} training steps"
    )
    say(
        f"parity onnxruntime vs torch on {report.n_states} states ({origin}): max |dQ| "
        f"{report.max_abs_diff:.2e} (limit {report.tolerance:g}), same greedy action on "
        f"{report.argmax_agreement:.1%}"
    )
    warn_if_degenerate(output, _corpus_argument(checkpoint, args.corpus), say)
    if args.quantize:
        quantized = quantize_onnx(output, int8_path(output), held_out)
        f, q = quantized.float_latency, quantized.int8_latency
        say(
            f"wrote {quantized.path} (int8): same greedy action as float on "
            f"{quantized.agreement:.1%} of {quantized.n_states} held-out states ({origin}), "
            f"max |dQ| {quantized.max_abs_diff:.3g}"
        )
        say(
            f"  size  float {quantized.float_size_bytes / 1e6:.2f} MB, "
            f"int8 {quantized.int8_size_bytes / 1e6:.2f} MB"
        )
        say(
            f"  one decision on this machine: float p50 {f.p50_us:.1f} us / p99 {f.p99_us:.1f} us, "
            f"int8 p50 {q.p50_us:.1f} us / p99 {q.p99_us:.1f} us"
        )
    return 0


def warn_if_degenerate(model_path: Path, corpus_arg: str | None, say: Any) -> None:
    """Answer held-out calls with the exported model as live plays
    (``training.eval.musicianship.check_style``) and say, in plain words, when the style is
    degenerate (one-note runs, trills, one pitch); a line saying why when there is no corpus to
    cut calls from."""
    from exports.errors import DeepjamError
    from exports.model_file import load_model
    from training.data.corpus import resolve_corpus
    from training.eval.musicianship import check_style, style_check_line

    try:
        corpus = resolve_corpus(corpus_arg or "default")
    except DeepjamError as err:
        say(f"degenerate-pattern check skipped: no corpus to cut calls from ({err})")
        return
    model = load_model(model_path)
    try:
        figures = check_style(model.spec, model.q_values, corpus)
    except ValueError as err:  # no held-out call of 3+ notes in a tiny corpus
        say(f"degenerate-pattern check skipped: {err}")
        return
    line, degenerate = style_check_line(figures, f"the style in {model_path.name}")
    if degenerate:
        print(f"deepjam export: {line}", file=sys.stderr, flush=True)
    else:
        say(line)
