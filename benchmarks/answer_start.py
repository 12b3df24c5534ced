"""Where a style's answers begin, by where the answer starts: the first onset of 2-bar answers to
held-out 2-bar calls, in steps, and how often it comes half a bar late or never.

The styles are trained with answers on the bar line after the call (gap 0). Live, an answer
starts where the phrase's end was heard, some steps after the call's last sound: gaps 4 and 8
stand for that. Each gap is answered as trained (the network alone) and as live answers
(``--opening-note``: the first step among the notes, ``AnswerMode.opens_turn``).

    python3 benchmarks/answer_start.py [--model live_agent/models/default.onnx]
        [--corpus default] [--calls 400] [--temperature 0.5]

Measured (shipped default, 400 calls, temperature 0.5): gap 8 without the opening note, 28.7% of
answers began half a bar late or more and 6.0% stayed silent; with it, none.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATE_STEPS = 8
"""Half a bar of 16ths: an answer whose first note comes this late has kept the player waiting."""


def first_onsets(events: np.ndarray) -> np.ndarray:
    """(N,) step of each answer's first onset; the answer's length when it has none."""
    played = events >= 0
    return np.where(played.any(axis=1), played.argmax(axis=1), events.shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "live_agent/models/default.onnx"))
    parser.add_argument("--corpus", default="default")
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--temperature", type=float, default=0.5)
    args = parser.parse_args()

    from exports.model_file import load_model
    from training.data.corpus import resolve_corpus
    from training.env.environment import answer_calls
    from training.eval.evaluate import held_out_calls

    policy = load_model(args.model)
    spec = policy.spec
    calls = held_out_calls(
        resolve_corpus(args.corpus), spec, 2, 2, args.calls, np.random.default_rng(0)
    )
    print(f"{args.calls} held-out 2-bar calls, 2-bar answers, temperature {args.temperature}")
    print(
        f"{'answers':44s} {'first onset p90':>15s} {'>= 8 late':>9s} {'silent':>7s} {'notes':>6s}"
    )

    def row(name: str, events: np.ndarray) -> None:
        first = first_onsets(events)
        notes = (events >= 0).sum(axis=1).mean()
        print(
            f"{name:44s} {np.percentile(first, 90):15.1f} {np.mean(first >= LATE_STEPS):9.1%} "
            f"{np.mean(first >= events.shape[1]):7.1%} {notes:6.1f}"
        )

    steps = 2 * spec.steps_per_bar
    # A tune may end before its answer would: those continuations are left out.
    whole = [c for c in calls.continuation if len(c) >= steps]
    row(f"the tunes' own continuations ({len(whole)} whole)", np.array([c[:steps] for c in whole]))
    for gap in (0, 4, 8):
        for opening in (False, True):
            answers = answer_calls(
                spec,
                calls.events,
                policy.q_values,
                args.temperature,
                np.random.default_rng(1),
                answer_gap_steps=gap,
                opening_note=opening,
            )
            start = "on the bar line (as trained)" if gap == 0 else f"{gap} steps after the call"
            row(f"{start}{', opening note' if opening else ''}", answers.events)


if __name__ == "__main__":
    main()
