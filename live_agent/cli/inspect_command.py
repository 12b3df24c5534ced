"""``deepjam inspect MODEL.onnx``: what a model file says about itself, and how fast it decides.

Reads the file with the live player's own reader (``exports.model_file.load_model``), so a file
that inspects cleanly is one ``deepjam jam`` will accept. No torch.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from exports.metadata import ModelMetadata
from exports.onnx_writer import PRECISION_KEY  # numpy-only at import: no torch, no onnx

LABEL_WIDTH = 18


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "inspect",
        help="show a model file's metadata, size and decision latency",
        description=(
            "Print what a deepjam ONNX model says about itself (style, spec, network, action "
            "vocabulary, reward weights, corpus, training), its size, and how long one decision takes on this machine. "
            "Refuses, in one line, a file deepjam cannot play."
        ),
    )
    parser.add_argument("model", help="a .onnx file written by `deepjam export`")
    parser.add_argument(
        "--calls",
        type=int,
        default=2000,
        help="single-state decisions to time, after a warm-up (default: 2000; 0 skips timing)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="onnxruntime threads (default: 1, as in play)"
    )
    parser.set_defaults(func=run)


def _human_bytes(size: int) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _pairs(values: dict[str, Any]) -> str:
    """{'a': 1, 'b': {...}} -> 'a 1, b {...}' (nested values as compact JSON)."""
    if not values:
        return "(none)"
    parts = []
    for key, value in sorted(values.items()):
        if isinstance(value, float):
            text = f"{value:.4g}"
        elif isinstance(value, str | int):
            text = str(value)
        else:
            text = json.dumps(value, sort_keys=True)
        parts.append(f"{key} {text}")
    return ", ".join(parts)


def describe(metadata: ModelMetadata, precision: str) -> list[tuple[str, str]]:
    """(label, text) lines describing a model's metadata, in reading order."""
    spec = metadata.spec
    style = metadata.style_name
    if metadata.style_description:
        style += f": {metadata.style_description}"
    return [
        ("style", style),
        (
            "spec",
            f"version {metadata.spec_version}; {spec.beats_per_bar} beats a bar, "
            f"{spec.steps_per_beat} steps a beat; window {spec.window_steps} steps; "
            f"key-relative range {spec.pitch_low}..{spec.pitch_high} ({spec.n_pitches} pitches); "
            f"key half-life {spec.key_half_life_steps:g} steps",
        ),
        (
            "network",
            # The file records the spec, not the network's kind (MLP, convolution, hybrid): what
            # any kind reads and returns is the window and the action vocabulary.
            f"kind not recorded in the file; reads a window of {spec.window_steps} steps "
            f"({spec.state_dim} state features), returns {spec.n_actions} Q-values; "
            f"weights {precision}",
        ),
        (
            "actions",
            f"{spec.action_vocabulary} vocabulary, {len(metadata.vocabulary)} actions: "
            f"{metadata.vocabulary[0]}, {metadata.vocabulary[1]}, {metadata.vocabulary[2]} .. "
            f"{metadata.vocabulary[-1]}",
        ),
        ("reward weights", _pairs(metadata.reward_weights)),
        ("corpus", _pairs(metadata.corpus)),
        ("training steps", f"{metadata.training_steps:,}"),
        ("source", metadata.source_version or "(unknown)"),
    ]


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """{'a': 1.23456, 'b': {'c': 2}} -> [('a', '1.235'), ('b.c', '2')], sorted by name."""
    rows: list[tuple[str, str]] = []
    for key, value in sorted(values.items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, f"{name}.")
        elif isinstance(value, float):
            rows.append((name, f"{value:.4g}"))
        elif isinstance(value, str | int):
            rows.append((name, str(value)))
        else:
            rows.append((name, json.dumps(value, sort_keys=True)))
    return rows


def metrics_table(metrics: dict[str, Any], columns: int = 2) -> list[str]:
    """The training metrics as a table: one metric a cell, name and value aligned, ``columns``
    cells a row, read down each column. ``['(none)']`` when there are none."""
    rows = _flatten(metrics)
    if not rows:
        return ["(none)"]
    name_width = max(len(name) for name, _ in rows)
    value_width = max(len(value) for _, value in rows)
    cells = [f"{name:<{name_width}}  {value:>{value_width}}" for name, value in rows]
    height = -(-len(cells) // columns)
    lines = []
    for r in range(height):
        line = "    ".join(
            cells[c * height + r] for c in range(columns) if c * height + r < len(cells)
        )
        lines.append(line.rstrip())
    return lines


def run(args: argparse.Namespace) -> int:
    from exports.errors import ConfigError
    from exports.model_file import decision_latency, load_model

    if args.calls < 0 or args.threads < 1:
        raise ConfigError(
            f"expected --calls >= 0 and --threads >= 1, got {args.calls} and {args.threads}"
        )
    model = load_model(args.model, threads=args.threads)
    props = dict(model.session.get_modelmeta().custom_metadata_map)
    try:
        precision = str(json.loads(props.get(PRECISION_KEY, '"float32"')))
    except json.JSONDecodeError:
        precision = "unknown"
    size = model.path.stat().st_size
    print(f"{model.path}  ({_human_bytes(size)}, {size:,} bytes)")
    for label, text in describe(model.metadata, precision):
        print(f"  {label:<{LABEL_WIDTH}}{text}")
    table = metrics_table(model.metadata.metrics)
    print(f"  {'metrics':<{LABEL_WIDTH}}{table[0]}")
    for line in table[1:]:
        print(f"  {'':<{LABEL_WIDTH}}{line}")
    if args.calls:
        figures = decision_latency(model, calls=args.calls, warmup_calls=200)
        print(
            f"  {'decision latency':<{LABEL_WIDTH}}p50 {figures.p50_us:.1f} us, "
            f"p99 {figures.p99_us:.1f} us, max {figures.max_us:.1f} us "
            f"({figures.calls:,} single-state calls after 200 warm-up, {args.threads} thread(s), "
            f"this machine, back to back)"
        )
    return 0
