"""A two-voice corpus from Bach's chorales: the soprano as the line, an inner voice beside it.

The default corpus keeps only each chorale's soprano. Here every four-part chorale in music21's
``bach`` folder gives two tunes: (soprano, alto) and (soprano, tenor). The soprano is the tune
(``Corpus.events``): the player's call in answer episodes and the player's line in duets; the
inner voice is ``Corpus.second``, step for step beside it: what the agent learns to play in a
duet turn against the player's line (``training.env.environment``: duet rows' continuation). So
the chorale style's duet plays an inner voice under the player's melody, as Bach voiced it.

Both tunes of one chorale share its split key, so a chorale is held out whole. Parts are found
by name (Soprano, Alto, Tenor); a file without all three is skipped with its reason. Notes go
onto the 16th grid as in ``training.data.corpus`` (tied notes merged; each part's top line).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from exports.spec import HOLD_EVENT, REST_EVENT
from training.data.corpus import (
    MIN_NOTES,
    Log,
    TuneSource,
    _stderr,
    assemble_corpus,
    events_from_music21,
    list_sources,
)
from training.data.corpus_data import Corpus

INNER_VOICES = ("alto", "tenor")
"""The voices the agent plays, each against the soprano."""


def _part(score: Any, voice: str) -> Any | None:
    for part in getattr(score, "parts", []):
        label = f"{part.partName or ''} {part.id or ''}".lower()
        if voice in label:
            return part
    return None


def pad_to(events: np.ndarray, n_steps: int) -> np.ndarray:
    """``events`` lengthened to ``n_steps``: its last note released (REST), then HOLD."""
    out = np.full(n_steps, HOLD_EVENT, dtype=np.int16)
    out[: len(events)] = events
    if len(events) < n_steps:
        out[len(events)] = REST_EVENT
    return out


@dataclass
class ParsedChorale:
    source: TuneSource
    voices: dict[str, np.ndarray] | None  # soprano and each inner voice, aligned
    reason: str


def parse_chorale(source: TuneSource) -> ParsedChorale:
    """One chorale's soprano, alto and tenor on one grid; never raises (reason instead)."""
    from music21 import converter

    try:
        score = converter.parse(source.path)
        parts = {v: _part(score, v) for v in ("soprano", *INNER_VOICES)}
        missing = [v for v, p in parts.items() if p is None]
        if missing:
            return ParsedChorale(source, None, f"no {'/'.join(missing)} part")
        lines = {v: events_from_music21(p) for v, p in parts.items()}
    except Exception as err:  # music21 raises many kinds on odd input: skip and name the file
        reason = " ".join(f"{type(err).__name__}: {err}".split())[:200]
        return ParsedChorale(source, None, reason)
    short = [v for v, (_, dropped, notes) in lines.items() if notes - dropped < MIN_NOTES]
    if short:
        return ParsedChorale(source, None, f"{'/'.join(short)}: fewer than {MIN_NOTES} notes")
    n_steps = max(len(e) for e, _, _ in lines.values())
    return ParsedChorale(source, {v: pad_to(e, n_steps) for v, (e, _, _) in lines.items()}, "")


def build_chorale_corpus(
    limit: int | None = None, workers: int | None = None, log: Log | None = _stderr
) -> Corpus:
    """The two-voice chorale corpus (see the module docstring), named ``chorale``; ``limit``
    caps the chorales read, ``workers`` processes parse in parallel (default: CPUs, at most 2)."""
    say = log or (lambda _line: None)
    sources = list_sources(["bach"], limit)
    n_workers = max(1, workers if workers is not None else min(2, os.cpu_count() or 1))
    say(f"parsing {len(sources)} chorales (soprano, alto, tenor) with {n_workers} worker(s)")
    t0 = time.perf_counter()
    if n_workers == 1 or len(sources) < 2 * n_workers:
        results = [parse_chorale(s) for s in sources]
    else:
        import multiprocessing

        import music21  # noqa: F401  imported once here, inherited by forked workers

        context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        with context.Pool(n_workers) as pool:
            results = list(pool.imap(parse_chorale, sources, chunksize=4))
    tunes, seconds = [], []
    for r in results:
        if r.voices is None:
            continue
        for inner in INNER_VOICES:
            tunes.append((f"bach/{r.source.title} {inner}", r.voices["soprano"], r.source.title))
            seconds.append(r.voices[inner])
    skipped = [(r.source.name, r.reason) for r in results if r.voices is None]
    say(
        f"parsed {len(tunes) // len(INNER_VOICES)} chorales in {time.perf_counter() - t0:.0f} s "
        f"({len(tunes)} soprano/inner-voice pairs); skipped {len(skipped)}"
    )
    corpus = assemble_corpus(
        "chorale", "music21 corpus: bach (soprano with alto, soprano with tenor)", tunes, skipped
    )
    corpus.second = np.concatenate(seconds).astype(np.int16)
    return corpus
