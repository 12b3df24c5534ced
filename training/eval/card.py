"""A shipped style's model card (``live_agent/models/<style>.md``), from what train, eval and
answer wrote, plus the style's figures beside its corpus and the other shipped styles.

    python3 -m training.eval.card --model live_agent/models/chorale.onnx \\
        --config training/presets/chorale.toml --corpus chorale --train-log runs/chorale.log \\
        --eval-dir runs/chorale-eval --answer-png live_agent/models/chorale-answer.png \\
        --compare live_agent/models/folk.onnx=folk --out live_agent/models/chorale.md

The style figures: the model's answers to held-out 2-bar calls, played as ``deepjam jam`` plays
them (``training.eval.evaluate.answer_as_live``: live's start, length and opening note, at the
live default temperature ``exports.selection.DEFAULT_TEMPERATURE``) beside the tunes' own next
two bars: note onsets per bar, the inter-onset-interval histogram (in 16ths,
the bins of ``exports.encoding.CALL_IOI_BIN_EDGES``) and the register (mean MIDI pitch, 10th and
90th percentile of the onsets). Then the eval's own figures (``EvalResult.figures``, which
``deepjam eval`` writes to ``figures.json`` beside ``eval.md``).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from exports.encoding import CALL_IOI_BIN_EDGES
from exports.selection import DEFAULT_TEMPERATURE
from exports.spec import Spec

CARD_CALLS = 300
CARD_TEMPERATURE = DEFAULT_TEMPERATURE


class StyleFigures(NamedTuple):
    onsets_per_bar: float
    ioi_shares: np.ndarray  # (len(CALL_IOI_BIN_EDGES),) share of IOIs per bin
    mean_pitch: float
    low_pitch: float  # 10th percentile of onset pitches
    high_pitch: float  # 90th percentile


def style_figures(melodies: list[np.ndarray], steps_per_bar: int) -> StyleFigures:
    """Density, IOI histogram and register of some grid melodies (absolute pitches)."""
    onsets = [np.flatnonzero(np.asarray(m) >= 0) for m in melodies]
    steps = sum(len(m) for m in melodies)
    pitches = np.concatenate([np.asarray(m)[o] for m, o in zip(melodies, onsets, strict=True)])
    iois = np.concatenate([np.diff(o) for o in onsets if len(o) > 1] or [np.zeros(0, np.int64)])
    bins = np.searchsorted(CALL_IOI_BIN_EDGES, iois, side="right") - 1
    counts = np.bincount(bins[bins >= 0], minlength=len(CALL_IOI_BIN_EDGES)).astype(float)
    total = counts.sum()
    return StyleFigures(
        onsets_per_bar=float(sum(len(o) for o in onsets) / max(steps, 1) * steps_per_bar),
        ioi_shares=counts / total if total else counts,
        mean_pitch=float(pitches.mean()) if len(pitches) else float("nan"),
        low_pitch=float(np.percentile(pitches, 10)) if len(pitches) else float("nan"),
        high_pitch=float(np.percentile(pitches, 90)) if len(pitches) else float("nan"),
    )


def answers_and_continuations(
    model_path: Path, corpus: Any, n: int = CARD_CALLS, seed: int = 0
) -> tuple[Spec, list[np.ndarray], list[np.ndarray]]:
    """(spec, the model's answers to ``n`` held-out 2-bar calls as live plays them at the live
    default temperature, the tunes' own next 2 bars), absolute grid events."""
    from exports.model_file import load_model
    from training.eval.evaluate import answer_as_live, held_out_calls

    policy = load_model(model_path)
    spec = policy.spec
    rng = np.random.default_rng(seed)
    calls = held_out_calls(corpus, spec, 2, 2, n, rng)
    answers = answer_as_live(spec, calls.events, policy.q_values, CARD_TEMPERATURE, rng)
    full = [c for c in calls.continuation if len(c) == 2 * spec.steps_per_bar]
    return spec, list(answers.events), full


def eval_figures_table(eval_dir: Path) -> list[str]:
    """Markdown rows of the eval's figures (``figures.json``, ``EvalResult.figures`` per
    column), each with what it is (``training.eval.evaluate.FIGURES``); none when the eval
    folder has no figures.json."""
    import json

    from training.eval.evaluate import FIGURES

    path = eval_dir / "figures.json"
    if not path.is_file():
        return []
    columns: dict[str, dict[str, float]] = json.loads(path.read_text(encoding="utf-8"))
    names = list(columns)
    out = [
        "| Figure | " + " | ".join(names) + " | What it is |",
        "|---|" + "---:|" * len(names) + "---|",
    ]
    for key, what in FIGURES.items():
        cells = [f"{float(columns[n].get(key, float('nan'))):.3g}" for n in names]
        out.append(f"| `{key}` | " + " | ".join(cells) + f" | {what} |")
    return out


def ioi_header() -> str:
    edges = list(CALL_IOI_BIN_EDGES) + [None]
    names = [
        f"{a}" if b is not None and b == a + 1 else (f"{a}-{b - 1}" if b is not None else f"{a}+")
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    ]
    return " | ".join(f"IOI {n}" for n in names)


def figures_table(rows: dict[str, StyleFigures]) -> list[str]:
    """Markdown rows: onsets per bar, register, IOI shares."""
    out = [
        "| | Onsets per bar | Mean pitch | Pitch p10-p90 | " + ioi_header() + " |",
        "|---|---:|---:|---:|" + "---:|" * len(CALL_IOI_BIN_EDGES),
    ]
    for name, f in rows.items():
        shares = " | ".join(f"{s:.0%}" for s in f.ioi_shares)
        out.append(
            f"| {name} | {f.onsets_per_bar:.2f} | {f.mean_pitch:.1f} | "
            f"{f.low_pitch:.0f}-{f.high_pitch:.0f} | {shares} |"
        )
    return out


def _demote(markdown: str) -> str:
    """eval.md's headings one level down, its title dropped."""
    lines = []
    for line in markdown.splitlines():
        if line.startswith("# "):
            continue
        lines.append("#" + line if line.startswith("#") else line)
    return "\n".join(lines)


def write_card(args: argparse.Namespace) -> str:
    from exports.model_file import load_model
    from training.data.corpus import resolve_corpus

    model = load_model(args.model)
    meta = model.metadata
    corpus = resolve_corpus(args.corpus)
    spec, answers, continuations = answers_and_continuations(args.model, corpus)
    spb = spec.steps_per_bar
    rows = {
        f"{meta.style_name}: answers (T={CARD_TEMPERATURE:g})": style_figures(answers, spb),
        f"{corpus.name} corpus: the tunes' own next bars": style_figures(continuations, spb),
    }
    for spec_text in args.compare:
        path, _, name = spec_text.partition("=")
        other = resolve_corpus(name)
        _, other_answers, other_cont = answers_and_continuations(Path(path), other)
        other_name = load_model(path).metadata.style_name
        rows[f"{other_name}: answers (T={CARD_TEMPERATURE:g})"] = style_figures(other_answers, spb)
        rows[f"{other.name} corpus: next bars"] = style_figures(other_cont, spb)
    data = Path(args.model).read_bytes()
    digest = hashlib.sha256(data).hexdigest()[:16]
    summary = corpus.summary()
    config_text = Path(args.config).read_text()
    train_log = Path(args.train_log).read_text().strip()
    eval_md = (Path(args.eval_dir) / "eval.md").read_text()
    name = Path(args.model).name
    lines = [
        f"# The {meta.style_name!r} style: `{name}`",
        "",
        f"{meta.style_description}",
        "",
        f"- **File**: `live_agent/models/{name}`, {len(data):,} bytes (sha256 prefix `{digest}`). "
        f"`deepjam inspect live_agent/models/{name}` prints its contract and metadata.",
        f"- **Switch to it live**: program change {args.slot} on the control channel "
        "(the packaged `live_agent/controls.toml`), or `deepjam jam --model "
        f"live_agent/models/{name}`.",
        f"- **Contract**: spec version {meta.spec_version}, {spec.state_dim} state features, "
        f"{spec.n_actions} actions (as `default.onnx`; see `default.md`).",
        "",
        "## Training data",
        "",
        f"`{args.corpus_command}`: {summary['tunes']} tunes ({summary['train_tunes']} for "
        f"training, {summary['validation_tunes']} held out), {summary['steps']:,} sixteenth-note "
        f"steps; {corpus.source}.",
    ]
    if args.corpus_note:
        lines += ["", args.corpus_note]
    lines += [
        "",
        "## Training",
        "",
        "```",
        args.train_command,
        "```",
        "",
        f"{args.machine_note} Its log:",
        "",
        "```",
        train_log,
        "```",
        "",
        f"The config (`{args.config}`, recorded in the model's metadata):",
        "",
        "```toml",
        config_text.strip(),
        "```",
        "",
        "## The style in figures",
        "",
        f"Answers to {CARD_CALLS} held-out 2-bar calls at T={CARD_TEMPERATURE:g} (the live "
        "default) beside the tunes' own next 2 bars (training/eval/card.py). IOI: the gap "
        "between onsets in 16ths, share per bin.",
        "",
        *figures_table(rows),
        "",
    ]
    figures = eval_figures_table(Path(args.eval_dir))
    if figures:
        lines += [
            f"The eval's figures at T={CARD_TEMPERATURE:g}, answers as live plays them "
            "(`deepjam eval`, figures.json):",
            "",
            *figures,
            "",
        ]
    lines += [
        "## An answer",
        "",
        f"`deepjam answer live_agent/examples/call.mid -o a.mid --model live_agent/models/{name} "
        f"--plot {Path(args.answer_png).name}`:",
        "",
        f"![an answer]({Path(args.answer_png).name})",
    ]
    if args.answer_note:
        lines += ["", args.answer_note]
    lines += [
        "",
        "## Evaluation",
        "",
        f"`{args.eval_command}` (eval.md):",
        "",
        _demote(eval_md),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--corpus-command", required=True)
    parser.add_argument("--corpus-note", default="")
    parser.add_argument("--train-log", type=Path, required=True)
    parser.add_argument("--train-command", required=True)
    parser.add_argument(
        "--machine-note",
        required=True,
        help="where and beside what it trained, e.g. 'On 2 idle cores, 1 torch thread, no GPU.'",
    )
    parser.add_argument("--eval-dir", type=Path, required=True)
    parser.add_argument("--eval-command", required=True)
    parser.add_argument("--answer-png", type=Path, required=True)
    parser.add_argument("--answer-note", default="")
    parser.add_argument("--slot", type=int, required=True)
    parser.add_argument("--compare", action="append", default=[], help="MODEL=CORPUS")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.write_text(write_card(args))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
