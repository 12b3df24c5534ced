"""A corpus of grid melodies in memory and on disk (one compressed .npz).

Tunes are stored concatenated: ``events[offsets[i]:offsets[i+1]]`` is tune i, absolute MIDI
grid events (see ``exports.grid``). Each tune carries its Krumhansl–Schmuckler key and whether
it belongs to the validation split (split by tune, never inside one).

A two-voice corpus (the chorales: ``training.data.chorales``) also holds ``second``: a second
voice step for step beside each tune (same offsets), the part the agent learns to play in duet
turns against the tune's line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from exports.errors import CorpusError

CORPUS_FORMAT_VERSION = 1


@dataclass
class Corpus:
    name: str
    events: np.ndarray  # (total_steps,) int16 absolute grid events
    offsets: np.ndarray  # (n_tunes + 1,) int64
    titles: list[str]
    tonic: np.ndarray  # (n_tunes,) int64 pitch class of each tune's key
    minor: np.ndarray  # (n_tunes,) bool
    validation: np.ndarray  # (n_tunes,) bool: held out for evaluation
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(file or tune name, reason) for every input that could not be read."""
    source: str = ""
    second: np.ndarray | None = None
    """(total_steps,) int16 or None: a second voice aligned with ``events`` (two-voice corpora)."""

    @property
    def n_tunes(self) -> int:
        return len(self.titles)

    def tune(self, i: int) -> np.ndarray:
        return self.events[self.offsets[i] : self.offsets[i + 1]]

    def second_voice(self, i: int) -> np.ndarray | None:
        """Tune i's second voice (as long as the tune), or None in a one-voice corpus."""
        if self.second is None:
            return None
        return self.second[self.offsets[i] : self.offsets[i + 1]]

    def subset(self, validation: bool) -> Corpus:
        """The training (False) or validation (True) tunes as a corpus of their own."""
        keep = np.flatnonzero(self.validation == validation)
        return self.select(keep, f"{self.name}:{'validation' if validation else 'train'}")

    def select(self, keep: np.ndarray, name: str, source: str | None = None) -> Corpus:
        """Tunes ``keep`` (indices, in order) as a corpus of their own, named ``name``; keys and
        the validation split are kept as they are."""
        keep = np.asarray(keep, dtype=np.int64)
        parts = [self.tune(i) for i in keep]
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        second = None
        if self.second is not None:
            voices = [self.second[self.offsets[i] : self.offsets[i + 1]] for i in keep]
            second = np.concatenate(voices) if voices else np.zeros(0, np.int16)
        return Corpus(
            name=name,
            events=np.concatenate(parts) if parts else np.zeros(0, np.int16),
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            titles=[self.titles[i] for i in keep],
            tonic=self.tonic[keep],
            minor=self.minor[keep],
            validation=self.validation[keep],
            source=self.source if source is None else source,
            second=second,
        )

    def summary(self) -> dict[str, Any]:
        """The training-data summary that goes into a model's metadata (``voices``: 2 for a
        two-voice corpus)."""
        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "tunes": self.n_tunes,
            "train_tunes": int((~self.validation).sum()),
            "validation_tunes": int(self.validation.sum()),
            "steps": int(len(self.events)),
            "skipped": len(self.skipped),
        }
        if self.second is not None:
            out["voices"] = 2
        return out

    def save(self, path: Path) -> None:
        """Write atomically (temp file, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        meta = {
            "format": CORPUS_FORMAT_VERSION,
            "name": self.name,
            "titles": self.titles,
            "skipped": self.skipped,
            "source": self.source,
        }
        extra = {} if self.second is None else {"second": self.second.astype(np.int16)}
        np.savez_compressed(
            tmp,
            **extra,
            events=self.events.astype(np.int16),
            offsets=self.offsets,
            tonic=self.tonic,
            minor=self.minor,
            validation=self.validation,
            meta=np.array(json.dumps(meta)),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Corpus:
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != CORPUS_FORMAT_VERSION:
                    raise CorpusError(
                        f"corpus {path} has format {meta.get('format')}, expected "
                        f"{CORPUS_FORMAT_VERSION}; rebuild it with `deepjam corpus build`"
                    )
                second = data.get("second", None)
                if second is not None and len(second) != len(data["events"]):
                    raise ValueError(
                        f"its second voice has {len(second)} steps, its tunes {len(data['events'])}"
                    )
                return cls(
                    name=meta["name"],
                    events=data["events"],
                    offsets=data["offsets"],
                    titles=list(meta["titles"]),
                    tonic=data["tonic"],
                    minor=data["minor"],
                    validation=data["validation"],
                    skipped=[tuple(s) for s in meta["skipped"]],
                    source=meta.get("source", ""),
                    second=second,
                )
        except (OSError, KeyError, ValueError) as err:
            raise CorpusError(
                f"cannot read corpus {path} ({err}); rebuild it with `deepjam corpus build`"
            ) from err
