"""``deepjam corpus build --from PATH --ray``: read the MIDI files of a corpus in parallel with
Ray Data.

The file list is made once, on the driver, in the single-process build's order
(``exports.midi_files.midi_folder_files``); Ray Data spreads the parsing over the cluster's
workers; the driver puts the results back in that order and calls the same ``assemble_corpus``.
So the corpus is identical to ``build_folder_corpus`` for the same files, corrupt files skipped
and named with the same reasons. ``PATH`` is a local folder, or a URI of any filesystem pyarrow
opens (``s3://bucket/midi``, ``gs://...``, ``hdfs://...``): the workers then read the bytes
through that filesystem.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from exports.errors import MidiFileError
from exports.midi_files import MIDI_SUFFIXES, midi_folder_files, read_melody
from training.data.corpus import CorpusError, assemble_corpus
from training.data.corpus_data import Corpus
from training.scale.cluster import ray_cluster

ROWS_PER_BATCH = 256
"""Files parsed per Ray Data batch: large enough that Ray's per-batch cost (about a
millisecond) is small against ~256 parses, small enough to spread 1k files over workers."""


def _is_uri(path: str) -> bool:
    return "://" in path


def _list_files(source: str) -> tuple[str, list[tuple[str, str]]]:
    """(the corpus name, [(name relative to the source, path to read)]) in corpus order."""
    if not _is_uri(source):
        root = Path(source)
        try:
            files = midi_folder_files(root)
        except MidiFileError as err:
            raise CorpusError(str(err)) from err
        return root.name or str(root), [(f.relative_to(root).as_posix(), str(f)) for f in files]
    from pyarrow import fs

    filesystem, base = fs.FileSystem.from_uri(source)
    infos = filesystem.get_file_info(fs.FileSelector(base, recursive=True))
    base_path = PurePosixPath(base)
    paths = sorted(
        PurePosixPath(i.path)
        for i in infos
        if i.type == fs.FileType.File and PurePosixPath(i.path).suffix.lower() in MIDI_SUFFIXES
    )
    return base_path.name or source, [(p.relative_to(base_path).as_posix(), str(p)) for p in paths]


def parse_batch(batch: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Ray Data batch function: the ``path`` column -> ``events`` (int16 bytes) and ``reason``
    (empty when read; the one-line MidiFileError text when skipped)."""
    filesystem = None
    if _is_uri(source):
        from pyarrow import fs

        filesystem, _ = fs.FileSystem.from_uri(source)
    events_out: list[bytes] = []
    reasons: list[str] = []
    for path in batch["path"]:
        path = str(path)
        try:
            if filesystem is None:
                events = read_melody(path)
            else:
                with filesystem.open_input_file(path) as handle:
                    events = read_melody(path, handle.readall())
            events_out.append(np.asarray(events, dtype=np.int16).tobytes())
            reasons.append("")
        except MidiFileError as err:
            events_out.append(b"")
            reasons.append(str(err))
    return {
        "index": batch["index"],
        "events": np.array(events_out, dtype=object),
        "reason": np.array(reasons, dtype=object),
    }


def build_corpus_ray(
    source: str | Path,
    address: str | None = None,
    num_cpus: int | None = None,
    log: Any = None,
) -> Corpus:
    """The corpus of every MIDI file under ``source`` (a folder or a filesystem URI), parsed on
    a Ray cluster (``address``; default: this process's cluster, else a local one with
    ``num_cpus``). Returns the same Corpus as ``build_folder_corpus`` on the same files."""
    source = str(source)
    name, files = _list_files(source)
    if not files:
        raise CorpusError(f"no readable MIDI files (*.mid, *.midi) under {source}")
    t0 = time.perf_counter()
    with ray_cluster("deepjam corpus build --ray", address, num_cpus) as ray:
        ray.data.DataContext.get_current().enable_progress_bars = False
        items = [{"index": i, "path": path} for i, (_, path) in enumerate(files)]
        dataset = ray.data.from_items(items).map_batches(
            parse_batch,
            fn_kwargs={"source": source},
            batch_size=ROWS_PER_BATCH,
            batch_format="numpy",
        )
        events_by_index: list[bytes] = [b""] * len(files)
        reason_by_index: list[str] = ["not parsed"] * len(files)
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            for index, events, reason in zip(
                batch["index"], batch["events"], batch["reason"], strict=True
            ):
                events_by_index[int(index)] = events
                reason_by_index[int(index)] = str(reason)
    tunes, skipped = [], []
    for (rel, _), events, reason in zip(files, events_by_index, reason_by_index, strict=True):
        if reason:
            skipped.append((rel, reason))
        else:
            tunes.append((rel, np.frombuffer(events, dtype=np.int16).copy(), rel))
    if log is not None:
        log(f"parsed {len(files):,} files on Ray in {time.perf_counter() - t0:.1f} s")
    if not tunes:
        raise CorpusError(
            f"no readable MIDI files (*.mid, *.midi) under {source}; skipped: "
            + "; ".join(f"{n}: {r}" for n, r in skipped[:5])
        )
    return assemble_corpus(name, source, tunes, skipped)


def _stderr(line: str) -> None:
    print(f"deepjam corpus: {line}", file=sys.stderr, flush=True)
