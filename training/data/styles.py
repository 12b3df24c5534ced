"""The corpora of the shipped styles, all from music21's public-domain corpus.

    folk      O'Neill's 1850, Ryan's Mammoth, Aird's Airs: the default corpus without Bach
    reels     the tunes of O'Neill's and Ryan's marked ``R: reel``: running 8ths at speed
    chorale   Bach's chorales in two voices: soprano with alto, soprano with tenor
              (``training.data.chorales``)

folk and reels are chosen from the built default corpus (``deepjam corpus build``), so nothing
is parsed twice: a tune keeps its grid events, key and validation side. A reel is a tune whose
ABC header says ``R: reel`` (every tune of that title in the collection, so a title that is a
reel in one place and a hornpipe in another is left out). ``deepjam corpus build --style NAME``
writes ``<cache>/corpus/NAME.npz``; ``deepjam train --corpus NAME`` finds it there.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np

from exports.errors import CorpusError
from training.data.corpus import Log, _stderr, list_sources
from training.data.corpus_data import Corpus

STYLE_CORPORA = ("folk", "reels", "chorale")
FOLK_COLLECTIONS = ("oneills", "ryans", "airds")
REEL_COLLECTIONS = ("oneills", "ryans")
_RHYTHM = re.compile(r"(?m)^R:\s*(.*?)\s*$")


def tune_rhythms(collections: tuple[str, ...]) -> dict[str, set[str]]:
    """``collection/title`` (as the default corpus names tunes) -> the ABC ``R:`` fields of
    every tune of that title, lower case (read from the ABC text; nothing is parsed)."""
    rhythms: dict[str, set[str]] = defaultdict(set)
    for source in list_sources(collections):
        found = _RHYTHM.search(source.abc_text or "")
        rhythms[f"{source.collection}/{source.title}"].add(found.group(1).lower() if found else "")
    return rhythms


def folk_corpus(default: Corpus) -> Corpus:
    """The default corpus's O'Neill, Ryan and Aird tunes."""
    keep = [i for i, t in enumerate(default.titles) if t.split("/", 1)[0] in FOLK_COLLECTIONS]
    return default.select(
        np.array(keep, np.int64), "folk", "music21 corpus: " + ",".join(FOLK_COLLECTIONS)
    )


def reels_corpus(default: Corpus) -> Corpus:
    """The default corpus's reels (O'Neill's and Ryan's, ``R: reel``)."""
    rhythms = tune_rhythms(REEL_COLLECTIONS)
    keep = [i for i, t in enumerate(default.titles) if rhythms.get(t) == {"reel"}]
    return default.select(
        np.array(keep, np.int64),
        "reels",
        "music21 corpus: " + ",".join(REEL_COLLECTIONS) + " (R: reel)",
    )


def build_style_corpus(
    name: str,
    default: Corpus | None,
    workers: int | None = None,
    log: Log | None = _stderr,
    limit: int | None = None,
) -> Corpus:
    """The corpus of style ``name`` (one of ``STYLE_CORPORA``); folk and reels need the built
    ``default`` corpus, chorale parses the chorales itself (at most ``limit`` of them). Raises
    CorpusError when the default corpus holds none of the style's tunes."""
    if name == "chorale":
        from training.data.chorales import build_chorale_corpus

        return build_chorale_corpus(limit=limit, workers=workers, log=log)
    if name not in STYLE_CORPORA:
        raise CorpusError(
            f"unknown style corpus {name!r}; expected one of {', '.join(STYLE_CORPORA)}"
        )
    if default is None:
        raise CorpusError(
            f"the {name} corpus is chosen from the default corpus: run `deepjam corpus build` first"
        )
    corpus = folk_corpus(default) if name == "folk" else reels_corpus(default)
    if corpus.n_tunes == 0:
        raise CorpusError(
            f"the default corpus ({default.n_tunes} tunes) holds no {name} tunes; rebuild it in "
            "full with `deepjam corpus build` (no --limit, all collections)"
        )
    if log is not None:
        log(f"chose {corpus.n_tunes} of the default corpus's {default.n_tunes} tunes for {name}")
    return corpus
