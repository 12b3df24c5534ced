"""``deepjam corpus build|info``: build a corpus of grid melodies, or describe one.

    deepjam corpus build                       the default corpus from music21 (public domain)
    deepjam corpus build --from ~/midi/reels   a corpus from your own MIDI folder
    deepjam corpus build --style chorale       a shipped style's corpus (folk, reels, chorale)
    deepjam corpus info [default|PATH.npz]

Handlers import music21 and the builder inside themselves, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from training.data.corpus_data import Corpus

ALL_COLLECTIONS = "bach,oneills,ryans,airds"
SKIPPED_SHOWN = 50


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``deepjam corpus`` with its ``build`` and ``info`` actions."""
    parser = subparsers.add_parser(
        "corpus",
        help="build or describe a corpus of melodies to train a style on",
        description="Build a corpus of grid melodies (16th-note steps) or describe one.",
    )
    actions = parser.add_subparsers(dest="corpus_action", metavar="ACTION", required=True)

    build = actions.add_parser(
        "build",
        help="build the default corpus (music21's public-domain tunes) or one from a MIDI folder",
        description=(
            "Without --from: parse the public-domain melodies shipped in music21 (Bach chorale "
            "sopranos, O'Neill's 1850, Ryan's Mammoth, Aird's Airs; about 4,600 tunes, about 2 "
            "minutes on 2 idle cores) into <cache>/corpus/default.npz. With --from DIR: read every "
            "*.mid/*.midi under DIR. The cache is $DEEPJAM_CACHE, else $XDG_CACHE_HOME/deepjam, "
            "else ~/.cache/deepjam."
        ),
    )
    build.add_argument(
        "--from",
        dest="from_dir",
        metavar="DIR",
        help="a folder of MIDI files (searched recursively) instead of the default collections; "
        "with --ray also a filesystem URI (s3://bucket/midi, gs://..., hdfs://...)",
    )
    build.add_argument(
        "--ray",
        action="store_true",
        help="parse the --from files in parallel on a Ray cluster (needs the scale extra); "
        "the corpus is identical to the single-process build",
    )
    build.add_argument(
        "--address",
        metavar="ADDR",
        help="with --ray: the cluster to join (auto, ray://host:10001); default: a local "
        "cluster of --workers CPUs",
    )
    build.add_argument(
        "--style",
        choices=("folk", "reels", "chorale"),
        help="the corpus of a shipped style, into <cache>/corpus/STYLE.npz: folk (O'Neill, Ryan, "
        "Aird) and reels (their `R: reel` tunes) are chosen from the built default corpus; "
        "chorale reads Bach's chorales in two voices (soprano with alto, soprano with tenor)",
    )
    build.add_argument(
        "--collections",
        default=ALL_COLLECTIONS,
        help=f"comma-separated music21 collections for the default corpus (default: {ALL_COLLECTIONS})",
    )
    build.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="at most N tunes per collection (with --style chorale: N chorales), for quick tries",
    )
    build.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="where to write the .npz (default: <cache>/corpus/default.npz without --from, "
        "<cache>/corpus/<folder name>.npz with --from)",
    )
    build.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="parser processes (default: CPU count, at most 2); with --ray: the local "
        "cluster's CPUs (default: all)",
    )
    build.set_defaults(func=run_build)

    info = actions.add_parser("info", help="describe a built corpus")
    info.add_argument(
        "corpus",
        nargs="?",
        default="default",
        help="'default' (the cached default corpus), a corpus .npz, or a MIDI folder",
    )
    info.set_defaults(func=run_info)


def describe(corpus: Corpus) -> list[str]:
    """Lines of counts: tunes per collection, train/validation, steps, keys, skipped with reasons."""
    import numpy as np

    lines = [f"corpus {corpus.name!r} from {corpus.source}"]
    if corpus.source.startswith("music21"):
        per_collection = Counter(title.split("/", 1)[0] for title in corpus.titles)
        lines.append(
            "  tunes per collection: "
            + ", ".join(f"{name} {count}" for name, count in per_collection.items())
        )
    lengths = np.diff(corpus.offsets)
    summary = corpus.summary()
    lines.append(
        f"  tunes: {summary['tunes']} (train {summary['train_tunes']}, "
        f"validation {summary['validation_tunes']})"
    )
    if len(lengths):
        lines.append(
            f"  steps: {summary['steps']} (16ths; median tune {int(np.median(lengths))}, "
            f"min {int(lengths.min())}, max {int(lengths.max())})"
        )
    lines.append(
        f"  keys: {int((~corpus.minor).sum())} major, {int(corpus.minor.sum())} minor "
        f"over {len(set(corpus.tonic.tolist()))} tonics"
    )
    lines.append(f"  skipped: {len(corpus.skipped)}")
    for name, reason in corpus.skipped[:SKIPPED_SHOWN]:
        lines.append(f"    {name}: {reason}")
    if len(corpus.skipped) > SKIPPED_SHOWN:
        lines.append(f"    ... and {len(corpus.skipped) - SKIPPED_SHOWN} more")
    return lines


def run_build(args: argparse.Namespace) -> int:
    from exports.errors import ConfigError
    from exports.extras import require_extra
    from training.data.corpus import (
        build_default_corpus,
        build_folder_corpus,
        cache_dir,
        default_corpus_path,
        warn_if_small,
    )

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1 tune per collection, got {args.limit}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.from_dir is None:
        require_extra("train", "deepjam corpus build (the default corpus is read with music21)")
    if args.style is not None and args.from_dir is not None:
        raise ConfigError("--style builds from music21's corpus: drop --from (or --style)")
    if (args.ray or args.address) and args.from_dir is None:
        raise ConfigError("--ray builds from a MIDI folder: pass --from DIR (or a URI)")
    if args.address and not args.ray:
        raise ConfigError("--address joins a Ray cluster: pass --ray too")
    t0 = time.perf_counter()
    if args.from_dir is not None and args.ray:
        require_extra("scale", "deepjam corpus build --ray")
        from training.scale.ingest import build_corpus_ray

        corpus = build_corpus_ray(args.from_dir, args.address, args.workers)
        out = args.out or cache_dir() / "corpus" / f"{corpus.name}.npz"
    elif args.style is not None:
        from training.data.corpus_data import Corpus
        from training.data.styles import build_style_corpus

        default = default_corpus_path()
        base = Corpus.load(default) if args.style != "chorale" and default.is_file() else None
        corpus = build_style_corpus(args.style, base, workers=args.workers, limit=args.limit)
        out = args.out or cache_dir() / "corpus" / f"{args.style}.npz"
    elif args.from_dir is not None:
        corpus = build_folder_corpus(Path(args.from_dir))
        out = args.out or cache_dir() / "corpus" / f"{corpus.name}.npz"
    else:
        collections = [c.strip() for c in args.collections.split(",") if c.strip()]
        corpus = build_default_corpus(collections, limit=args.limit, workers=args.workers)
        out = args.out or default_corpus_path()
    corpus.save(out)
    for line in describe(corpus):
        print(line)
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s")
    warn_if_small(corpus)
    return 0


def run_info(args: argparse.Namespace) -> int:
    from training.data.corpus import resolve_corpus

    for line in describe(resolve_corpus(args.corpus)):
        print(line)
    return 0
