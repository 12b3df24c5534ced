"""Building corpora of grid melodies: the public-domain default, or a user's MIDI folder.

The default corpus comes from the melodies inside music21's wheel (all public domain):

    bach      Bach chorales (the soprano part)           412 tunes, MusicXML / Humdrum
    oneills   O'Neill's Music of Ireland (1850 tunes)    ~2,000 tunes, ABC
    ryans     Ryan's Mammoth Collection                  ~1,060 tunes, ABC
    airds     Aird's Selection of Airs                   ~1,180 tunes, ABC

(essenFolksong is left out: its licence is non-commercial.) An ABC file holds many tunes; each
is parsed on its own, so one bad tune costs only itself. music21 offsets become steps via
``quarterLength * 4``; notes off the 16th grid (triplets) round to the nearest step and
collisions are dropped (~2.5% of notes). Repeats are not expanded.

Every tune gets its Krumhansl–Schmuckler key (``exports.tonality.estimate_key`` on the
duration-weighted pitch-class histogram) and a deterministic validation flag (~10%, from a hash of
its title, so the same tune in two collections lands on the same side).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exports.errors import CorpusError, MidiFileError
from exports.grid import sounding_pitches
from exports.midi_files import STEPS_PER_QUARTER, events_from_timed_notes, read_midi_folder
from exports.spec import PITCH_CLASSES
from exports.tonality import estimate_key
from training.data.corpus_data import Corpus

COLLECTIONS: dict[str, str] = {
    "bach": "bach",
    "oneills": "oneills1850",
    "ryans": "ryansMammoth",
    "airds": "airdsAirs",
}
"""Collection name on the command line -> folder inside music21's corpus."""
BACH_SUFFIXES = (".mxl", ".xml", ".krn")
NOT_CHORALES = frozenset({"bwv846"})
"""Files in music21's bach folder that are not chorales (BWV 846: the C major prelude, WTC I)."""
MIN_NOTES = 8
"""A tune with fewer notes is skipped: too short to learn a line from."""
VALIDATION_BUCKETS = 10
"""One tune in VALIDATION_BUCKETS (by title hash) is held out: ~10%."""
SMALL_CORPUS_TUNES = 50
PROGRESS_EVERY_TUNES = 250

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- cache location


def cache_dir() -> Path:
    """``$DEEPJAM_CACHE``, else ``$XDG_CACHE_HOME/deepjam``, else ``~/.cache/deepjam``."""
    if os.environ.get("DEEPJAM_CACHE"):
        return Path(os.environ["DEEPJAM_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "deepjam"
    return Path.home() / ".cache" / "deepjam"


def default_corpus_path() -> Path:
    """Where ``deepjam corpus build`` writes the default corpus: ``<cache>/corpus/default.npz``."""
    return cache_dir() / "corpus" / "default.npz"


# ---------------------------------------------------------------- keys and split


def tune_key(events: np.ndarray) -> tuple[int, bool]:
    """(tonic pitch class, minor) of a tune, from its duration-weighted pitch-class histogram."""
    sounding = sounding_pitches(events)
    pcs = sounding[sounding >= 0] % PITCH_CLASSES
    histogram = np.bincount(pcs, minlength=PITCH_CLASSES)
    tonic, minor = estimate_key(histogram)
    return int(tonic), bool(minor)


def _split_key(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()


def is_validation(title: str) -> bool:
    """Deterministic: whether a tune with this title is held out (~1 in 10, by SHA-1)."""
    digest = hashlib.sha1(_split_key(title).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % VALIDATION_BUCKETS == 0


def assemble_corpus(
    name: str,
    source: str,
    tunes: Sequence[tuple[str, np.ndarray, str]],
    skipped: list[tuple[str, str]],
    keys: Sequence[tuple[int, bool]] | None = None,
) -> Corpus:
    """A Corpus from (title, events, split key) triples: keys estimated, split by split key.

    ``keys`` are the tunes' ``tune_key`` results when computed already (by the parallel
    parsers of ``deepjam corpus build --ray``)."""
    if not tunes:
        raise CorpusError(
            f"corpus {name!r} from {source} has no usable tunes ({len(skipped)} skipped); "
            "expected at least one melody"
        )
    lengths = np.array([len(e) for _, e, _ in tunes], dtype=np.int64)
    if keys is None:
        keys = [tune_key(e) for _, e, _ in tunes]
    return Corpus(
        name=name,
        events=np.concatenate([e for _, e, _ in tunes]).astype(np.int16),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        titles=[t for t, _, _ in tunes],
        tonic=np.array([k[0] for k in keys], dtype=np.int64),
        minor=np.array([k[1] for k in keys], dtype=bool),
        validation=np.array([is_validation(s) for _, _, s in tunes], dtype=bool),
        skipped=list(skipped),
        source=source,
    )


# ---------------------------------------------------------------- music21 sources


@dataclass(frozen=True)
class TuneSource:
    """One tune to parse: a Bach file, or one tune's text cut out of an ABC file."""

    collection: str
    path: str
    name: str
    """Unique, human-readable: ``oneills/0626-0635.abc#626``."""
    abc_text: str | None = None
    title: str = ""


def music21_corpus_dir() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return path.read_text(encoding="latin-1")


_TUNE_START = re.compile(r"(?m)^(?=X:)")
_TITLE = re.compile(r"(?m)^T:\s*(.*?)\s*$")
_NUMBER = re.compile(r"^X:\s*(\S*)")


def split_abc(text: str) -> tuple[str, list[str]]:
    """(file header, [tune text, ...]): an ABC file cut at each ``X:`` line."""
    chunks = _TUNE_START.split(text)
    return chunks[0], [c for c in chunks[1:] if c.strip()]


def list_sources(
    collections: Iterable[str] = tuple(COLLECTIONS), limit: int | None = None
) -> list[TuneSource]:
    """The tunes of the named collections, in a fixed order; at most ``limit`` per collection."""
    root = music21_corpus_dir()
    sources: list[TuneSource] = []
    for collection in collections:
        if collection not in COLLECTIONS:
            raise CorpusError(
                f"unknown collection {collection!r}; expected some of {', '.join(COLLECTIONS)}"
            )
        folder = root / COLLECTIONS[collection]
        found: list[TuneSource] = []
        if collection == "bach":
            for path in sorted(folder.iterdir()):
                if path.suffix in BACH_SUFFIXES and path.stem not in NOT_CHORALES:
                    found.append(
                        TuneSource(collection, str(path), f"bach/{path.stem}", title=path.stem)
                    )
        else:
            for path in sorted(folder.glob("*.abc")):
                header, tunes = split_abc(_read_text(path))
                for tune in tunes:
                    number = _NUMBER.match(tune)
                    titled = _TITLE.search(tune)
                    title = titled.group(1) if titled else ""
                    label = number.group(1) if number and number.group(1) else "?"
                    found.append(
                        TuneSource(
                            collection,
                            str(path),
                            f"{collection}/{path.name}#{label}",
                            abc_text=header + tune,
                            title=title or f"{path.stem} {label}",
                        )
                    )
        sources.extend(found[:limit] if limit is not None else found)
    return sources


def events_from_music21(stream: Any) -> tuple[np.ndarray, int, int]:
    """A music21 stream's top line on the grid: (events int16, notes dropped, notes read).

    Tied notes are merged; grace notes (no duration) are left out; of a chord the top pitch.
    """
    starts: list[float] = []
    ends: list[float] = []
    pitches: list[int] = []
    for element in stream.flatten().notes:
        quarter_length = float(element.quarterLength)
        if quarter_length <= 0:
            continue
        start = float(element.offset)
        pitch = max(p.midi for p in element.pitches)
        tie = getattr(element, "tie", None)
        continues_tie = tie is not None and tie.type in ("stop", "continue")
        if continues_tie and pitches and pitches[-1] == pitch and abs(ends[-1] - start) < 1e-6:
            ends[-1] = start + quarter_length
            continue
        starts.append(start)
        ends.append(start + quarter_length)
        pitches.append(pitch)
    events, dropped = events_from_timed_notes(
        np.array(starts) * STEPS_PER_QUARTER,
        np.array(ends) * STEPS_PER_QUARTER,
        np.array(pitches, dtype=np.int64),
    )
    return events, dropped, len(pitches)


def _soprano(score: Any) -> Any:
    parts = list(getattr(score, "parts", []))
    for part in parts:
        label = f"{part.partName or ''} {part.id or ''}".lower()
        if "soprano" in label:
            return part
    return parts[0] if parts else score


@dataclass
class ParsedTune:
    source: TuneSource
    events: np.ndarray | None
    reason: str
    dropped: int
    notes: int


def parse_source(source: TuneSource) -> ParsedTune:
    """Parse one tune with music21; never raises (a failure comes back as its reason)."""
    from music21 import converter

    try:
        if source.abc_text is not None:
            score = converter.parseData(source.abc_text, format="abc")
            stream = score
        else:
            score = converter.parse(source.path)
            stream = _soprano(score)
        events, dropped, notes = events_from_music21(stream)
    except Exception as err:  # music21 raises many kinds on odd input: skip and name the tune
        reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
        return ParsedTune(source, None, reason, 0, 0)
    if notes - dropped < MIN_NOTES:
        return ParsedTune(source, None, f"{notes - dropped} notes, expected >= {MIN_NOTES}", 0, 0)
    return ParsedTune(source, events, "", dropped, notes)


def build_default_corpus(
    collections: Iterable[str] = tuple(COLLECTIONS),
    limit: int | None = None,
    workers: int | None = None,
    log: Log | None = _stderr,
) -> Corpus:
    """Parse the public-domain melodies in music21's corpus into a Corpus (in memory).

    ``limit`` caps the tunes per collection; ``workers`` processes parse in parallel (default:
    the CPU count, at most 2). Tunes that fail to parse are skipped and listed in
    ``corpus.skipped``. Titles read ``<collection>/<title>``. Progress goes to ``log``.
    """
    collections = list(collections)
    say = log or (lambda _line: None)
    sources = list_sources(collections, limit)
    if not sources:
        raise CorpusError(f"no tunes found in collections {collections}")
    n_workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
    say(f"parsing {len(sources)} tunes from {', '.join(collections)} with {n_workers} worker(s)")
    t0 = time.perf_counter()
    results: list[ParsedTune] = []

    def progress() -> None:
        if len(results) % PROGRESS_EVERY_TUNES == 0 or len(results) == len(sources):
            elapsed = time.perf_counter() - t0
            eta = elapsed / len(results) * (len(sources) - len(results))
            say(f"  {len(results)}/{len(sources)} tunes, {elapsed:.0f} s, ~{eta:.0f} s left")

    if n_workers == 1 or len(sources) < 2 * n_workers:
        for source in sources:
            results.append(parse_source(source))
            progress()
    else:
        import multiprocessing

        import music21  # noqa: F401  imported once here, inherited by forked workers

        context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        with context.Pool(n_workers) as pool:
            for parsed in pool.imap(parse_source, sources, chunksize=4):
                results.append(parsed)
                progress()
    tunes = [
        (f"{r.source.collection}/{r.source.title}", r.events, r.source.title)
        for r in results
        if r.events is not None
    ]
    skipped = [(r.source.name, r.reason) for r in results if r.events is None]
    notes = sum(r.notes for r in results)
    dropped = sum(r.dropped for r in results)
    say(
        f"parsed {len(tunes)} tunes in {time.perf_counter() - t0:.0f} s; skipped {len(skipped)}; "
        f"{dropped} of {notes} notes ({100 * dropped / max(notes, 1):.1f}%) collided on the grid"
    )
    return assemble_corpus("default", "music21 corpus: " + ",".join(collections), tunes, skipped)


# ---------------------------------------------------------------- user folders


def build_folder_corpus(folder: str | Path) -> Corpus:
    """A Corpus from every MIDI file under ``folder`` (see ``exports.midi_files``).

    Titles are paths relative to the folder; unreadable files are listed in ``corpus.skipped``.
    """
    root = Path(folder)
    try:
        melodies, skipped = read_midi_folder(root)
    except MidiFileError as err:
        raise CorpusError(str(err)) from err
    if not melodies:
        raise CorpusError(
            f"no readable MIDI files (*.mid, *.midi) under {root}"
            + (f"; skipped: {'; '.join(f'{n}: {r}' for n, r in skipped[:5])}" if skipped else "")
        )
    tunes = [(name, events, name) for name, events in melodies]
    return assemble_corpus(root.name or str(root), str(root), tunes, skipped)


def warn_if_small(corpus: Corpus) -> None:
    """One line on stderr when a corpus is too small to learn a style from."""
    if corpus.n_tunes < SMALL_CORPUS_TUNES:
        _stderr(
            f"deepjam: warning: corpus {corpus.name!r} has only {corpus.n_tunes} tunes; "
            f"a style needs {SMALL_CORPUS_TUNES}+ to generalise (it will mostly copy them)"
        )


def resolve_corpus(arg: str) -> Corpus:
    """``"default"`` (the cached default corpus), the name of a corpus built into the cache
    (``deepjam corpus build --style chorale`` -> ``chorale``), a built ``.npz`` corpus, or a
    MIDI folder.

    Raises CorpusError saying what to do when the default corpus is not built yet or ``arg`` is
    none of these. Warns (one line on stderr) when the corpus has fewer than 50 tunes.
    """
    if arg == "default":
        path = default_corpus_path()
        if not path.is_file():
            raise CorpusError(
                f"the default corpus is not built yet (expected {path}); run "
                "`deepjam corpus build` once (about 2 minutes), or pass a folder of MIDI files"
            )
        corpus = Corpus.load(path)
    elif (
        not Path(arg).expanduser().exists()
        and "/" not in arg
        and (cache_dir() / "corpus" / f"{arg}.npz").is_file()
    ):
        corpus = Corpus.load(cache_dir() / "corpus" / f"{arg}.npz")  # e.g. `--corpus chorale`
    else:
        path = Path(arg).expanduser()
        if path.is_dir():
            corpus = build_folder_corpus(path)
        elif path.is_file() and path.suffix == ".npz":
            corpus = Corpus.load(path)
        else:
            raise CorpusError(
                "expected 'default', a corpus .npz file or a folder of MIDI files (or the name of "
                f"a corpus in {cache_dir() / 'corpus'}), got {arg!r}"
                + (" (no such file or folder)" if not path.exists() else "")
            )
    warn_if_small(corpus)
    return corpus
