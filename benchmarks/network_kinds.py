"""The style model by network kind and window: what each hears of the phrase, for what it costs.

    python3 benchmarks/network_kinds.py --kind hybrid --window 128 [--minutes 2] [--corpus PATH]

Trains the style model (``training.style_model.train_style_model``, the default preset's
``[style_model]`` and ``[env]``: 3/4 of each batch real (call, continuation) pairs) for a fixed
wall time on one torch thread, then prints, on the corpus's held-out tunes:

* ``val log-lik`` (nats/step) and ``accuracy``: the next action of held-out tunes, player silent;
* ``pairs: true / other call``: mean log p of held-out continuations given their own call and
  given another tune's call (moved into the same key frame); ``gap`` = true - other, how much the
  model listens; ``true ranks higher``: the share of continuations more likely with their call;
* the network's parameters and the style model's updates in the budget.

One kind per run, so that each fits the shared machine's heavy-job limit.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", default="mlp", help="mlp | hybrid | dilated (mlp)")
    parser.add_argument("--window", type=int, default=32, help="window_steps of the spec (32)")
    parser.add_argument("--minutes", type=float, default=2.0, help="style model budget (2)")
    parser.add_argument("--corpus", default="default", help="default | corpus .npz | MIDI folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--channels", default="", help="hybrid convolution widths, e.g. 32,32,32,32 (default)"
    )
    args = parser.parse_args(argv)

    import torch

    import training.networks
    from training.config import load_config
    from training.data.corpus import resolve_corpus
    from training.style_model import train_style_model

    if args.channels:
        training.networks.HYBRID_CHANNELS = tuple(int(c) for c in args.channels.split(","))
    torch.set_num_threads(1)
    config = load_config("default")
    spec = dataclasses.replace(config.build_spec(), window_steps=args.window)
    style_config = dataclasses.replace(config.style_model, max_minutes=args.minutes, epochs=1000)
    corpus = resolve_corpus(args.corpus)
    start = time.monotonic()
    model = train_style_model(
        spec,
        corpus,
        style_config,
        config.network.hidden,
        seed=args.seed,
        env_config=config.env_config(),
        kind=args.kind,
    )
    seconds = time.monotonic() - start
    m = model.metrics
    params = sum(p.numel() for p in model.network.parameters())
    true, other = m["style_pair_val_log_lik"], m["style_pair_val_log_lik_other_call"]
    print(
        f"| {args.kind} {args.channels} | {args.window} | {spec.state_dim} | {params:,} | "
        f"{m['style_updates']:,.0f} | {m['style_val_log_lik']:.3f} | "
        f"{m['style_val_accuracy']:.3f} | {true:.3f} | {other:.3f} | {true - other:.3f} | "
        f"{m['style_pair_val_ranks_true']:.0%} | {seconds:.0f} |"
    )
    print(
        "columns: kind | window | state_dim | params | updates | val log-lik | accuracy | "
        "pairs true call | other call | gap | true ranks higher | seconds "
        f"(corpus {corpus.name!r}, {corpus.n_tunes} tunes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
