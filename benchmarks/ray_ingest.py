"""Corpus ingest: the single-process build against Ray on a local cluster of 1 and 2 CPUs.

    python benchmarks/ray_ingest.py --files 100000 --repeats 3
    python benchmarks/ray_ingest.py --files 100000 --folder /tmp/midi100k   # keep the files

Generates ``--files`` small MIDI files (8 bars, one melody each) in a temporary folder (or in
``--folder``, reused when it already holds them), then times ``build_folder_corpus`` and
``build_corpus_ray`` (cluster start included, and apart) and prints files/s, medians over
``--repeats``, the 1 -> 2 worker scaling, and Ray on 1 worker against the single process.
Checks that every build gives the same corpus.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from exports.midi_files import write_melodies
from exports.spec import HOLD_EVENT, REST_EVENT
from training.data.corpus import build_folder_corpus


def generate(folder: Path, n_files: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n_files):
        events = np.full(128, HOLD_EVENT, dtype=np.int16)
        onsets = np.arange(0, 126, int(rng.choice([2, 4])))
        events[onsets] = rng.integers(55, 80, size=len(onsets))
        events[-1] = REST_EVENT
        sub = folder / f"{i // 1000:03d}"
        sub.mkdir(exist_ok=True)
        write_melodies(sub / f"{i:06d}.mid", [("melody", events)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--folder", type=Path, help="generate the files here and keep them (reused next time)"
    )
    args = parser.parse_args()
    from training.data.corpus import assemble_corpus
    from training.scale.cluster import ray_cluster
    from training.scale.ingest import _list_files, build_corpus_ray

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "corpus"
        folder.mkdir(parents=True, exist_ok=True)
        if sum(1 for _ in folder.rglob("*.mid")) != args.files:
            t0 = time.perf_counter()
            generate(folder, args.files)
            print(f"generated {args.files:,} files in {time.perf_counter() - t0:.1f} s")
        # Rounds of (single, Ray 1 worker, Ray 2 workers): on a shared machine each round
        # sees about the same load, so the ratios hold up better than the absolute rates.
        single_s: list[float] = []
        total_s: dict[int, list[float]] = {1: [], 2: []}
        parse_s: dict[int, list[float]] = {1: [], 2: []}
        print(f"load average at the start: {os.getloadavg()[0]:.1f} (2 cores)")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            reference = build_folder_corpus(folder)
            single_s.append(time.perf_counter() - t0)
            for workers in (1, 2):
                t0 = time.perf_counter()
                with ray_cluster("benchmarks/ray_ingest.py", num_cpus=workers):
                    t1 = time.perf_counter()
                    corpus = build_corpus_ray(folder)
                    parse_s[workers].append(time.perf_counter() - t1)
                total_s[workers].append(time.perf_counter() - t0)
                assert corpus.titles == reference.titles
                assert np.array_equal(corpus.events, reference.events)
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        single = statistics.median(single_s)
        print(
            f"single process: {args.files / single:,.0f} files/s "
            f"(median of {args.repeats}: {single:.1f} s)"
        )
        rates = {w: args.files / statistics.median(parse_s[w]) for w in (1, 2)}
        totals = {w: statistics.median(total_s[w]) for w in (1, 2)}
        for workers in (1, 2):
            print(
                f"ray, {workers} worker(s): {rates[workers]:,.0f} files/s without the cluster "
                f"start, {args.files / totals[workers]:,.0f} files/s with it "
                f"(medians of {args.repeats}: {statistics.median(parse_s[workers]):.1f} s, "
                f"{totals[workers]:.1f} s)"
            )
        print(
            f"scaling 1 -> 2 workers: {rates[2] / rates[1]:.2f}x (linear = 2.00x; "
            f"{rates[2] / rates[1] / 2:.2f} of linear)"
        )
        # What no worker can share: the driver's listing and assembly (keys already computed
        # by the workers). With the rest split evenly over 2 idle cores, 1 -> 2 workers gives
        # at most (serial + parallel) / (serial + parallel / 2).
        t0 = time.perf_counter()
        _list_files(str(folder))
        list_s = time.perf_counter() - t0
        tunes = [(t, reference.tune(i), t) for i, t in enumerate(reference.titles)]
        keys = list(zip(reference.tonic.tolist(), reference.minor.tolist(), strict=True))
        t0 = time.perf_counter()
        assemble_corpus(reference.name, str(folder), tunes, reference.skipped, keys)
        serial_s = list_s + time.perf_counter() - t0
        parallel_s = max(single - serial_s, 0.0)  # parsing and keys: the workers' share
        bound = (serial_s + parallel_s) / (serial_s + parallel_s / 2)
        print(
            f"driver's serial part: {serial_s:.1f} s of the single process's {single:.1f} s "
            f"(listing {list_s:.1f} s); with the rest on 2 idle cores, 1 -> 2 workers could "
            f"reach {bound:.2f}x ({bound / 2:.2f} of linear)"
        )
        start_s = totals[1] - statistics.median(parse_s[1])
        print(
            f"ray on 1 worker against the single process: {single * rates[1] / args.files:.2f}x "
            f"its speed without the cluster start; {totals[1]:.1f} s with it against "
            f"{single:.1f} s + {start_s:.1f} s of cluster start"
        )


if __name__ == "__main__":
    main()
