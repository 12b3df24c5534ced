"""Corpora: from a MIDI folder, from music21's public-domain tunes, and the `deepjam corpus` CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from exports.errors import CorpusError
from exports.midi_files import write_melodies
from exports.spec import HOLD_EVENT as H
from exports.spec import REST_EVENT as R
from live_agent.cli import main
from training.data.corpus import (
    build_default_corpus,
    build_folder_corpus,
    cache_dir,
    default_corpus_path,
    events_from_music21,
    is_validation,
    list_sources,
    resolve_corpus,
    split_abc,
)
from training.data.corpus_data import Corpus

D_MAJOR = [62, 64, 66, 67, 69, 71, 73, 74]
A_MINOR = [69, 71, 72, 74, 76, 77, 79, 81]


def scale_tune(pitches: list[int], tonic: int, repeats: int = 3) -> np.ndarray:
    """Scale up and down, then a long tonic: an unambiguous key."""
    line = (pitches + pitches[::-1]) * repeats + [tonic]
    events = []
    for p in line:
        events += [p, H]
    events += [H] * 6 + [R]
    return np.array(events, dtype=np.int16)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty deepjam cache for this test."""
    monkeypatch.setenv("DEEPJAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def midi_folder(tmp_path: Path) -> Path:
    """Twelve tunes (D major and A minor), one corrupt file and one empty file."""
    folder = tmp_path / "tunes"
    (folder / "minor").mkdir(parents=True)
    for i in range(6):
        write_melodies(folder / f"d{i}.mid", [("m", scale_tune(D_MAJOR, 62))])
        write_melodies(folder / "minor" / f"a{i}.midi", [("m", scale_tune(A_MINOR, 69))])
    (folder / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    (folder / "empty.mid").write_bytes(b"")
    return folder


def test_cache_dir_prefers_deepjam_cache_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPJAM_CACHE", str(tmp_path / "dj"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_corpus_path() == tmp_path / "dj" / "corpus" / "default.npz"
    monkeypatch.delenv("DEEPJAM_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "deepjam"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "deepjam"


def test_folder_corpus_has_keys_split_and_named_skips(midi_folder: Path) -> None:
    corpus = build_folder_corpus(midi_folder)

    assert corpus.n_tunes == 12
    assert corpus.titles[0] == "d0.mid" and "minor/a0.midi" in corpus.titles
    for title, tonic, minor in zip(corpus.titles, corpus.tonic, corpus.minor, strict=True):
        assert (int(tonic), bool(minor)) == ((9, True) if "minor" in title else (2, False))
    assert dict(corpus.skipped).keys() == {"corrupt.mid", "empty.mid"}
    np.testing.assert_array_equal(corpus.tune(0), scale_tune(D_MAJOR, 62))
    assert corpus.validation.tolist() == [is_validation(t) for t in corpus.titles]


def test_validation_split_is_by_title_and_about_a_tenth() -> None:
    titles = [f"tune number {i}" for i in range(2000)]
    flags = [is_validation(t) for t in titles]
    assert 0.07 < np.mean(flags) < 0.13
    # The same tune spelled differently in two collections lands on the same side.
    assert is_validation("The Rose Tree") == is_validation("the rose-tree")


def test_resolve_corpus_on_a_folder_warns_that_it_is_small(
    midi_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = resolve_corpus(str(midi_folder))
    assert corpus.n_tunes == 12
    err = capsys.readouterr().err
    assert "only 12 tunes" in err and err.count("\n") == 1


def test_resolve_corpus_default_missing_says_to_build(cache: Path) -> None:
    with pytest.raises(CorpusError, match="run `deepjam corpus build`"):
        resolve_corpus("default")
    with pytest.raises(CorpusError, match="expected 'default', a corpus .npz file or a folder"):
        resolve_corpus(str(cache / "nothing.npz"))


def test_resolve_corpus_reads_a_saved_npz_and_the_cached_default(
    midi_folder: Path, cache: Path
) -> None:
    built = build_folder_corpus(midi_folder)
    built.save(default_corpus_path())
    for arg in ("default", str(default_corpus_path())):
        loaded = resolve_corpus(arg)
        assert loaded.titles == built.titles
        np.testing.assert_array_equal(loaded.events, built.events)
        np.testing.assert_array_equal(loaded.validation, built.validation)
        assert loaded.skipped == built.skipped


def test_folder_without_readable_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.mid").write_bytes(b"")
    with pytest.raises(CorpusError, match=r"no readable MIDI files .* x\.mid: cannot read"):
        build_folder_corpus(tmp_path / "bad")


def test_music21_stream_to_grid_merges_ties_and_drops_collisions() -> None:
    from music21 import chord, note, stream, tie

    part = stream.Stream()
    first = note.Note("C4", quarterLength=1.0)
    first.tie = tie.Tie("start")
    tied = note.Note("C4", quarterLength=0.5)
    tied.tie = tie.Tie("stop")
    part.append([first, tied, note.Rest(quarterLength=0.5)])
    part.append(chord.Chord(["E4", "G4"], quarterLength=0.5))  # top: G4 = 67
    for name in ("A4", "B4", "C5"):  # 16th triplet at steps 10, 10.67, 11.33 -> 10, 11, 11
        part.append(note.Note(name, quarterLength=1 / 6))
    part.append(note.Note("D5", quarterLength=0.25))
    part.append(note.Note("E5", quarterLength=0.0).getGrace())  # no duration: left out

    events, dropped, notes = events_from_music21(part)

    # The collision on step 11 keeps the higher C5 (72) and drops B4.
    np.testing.assert_array_equal(events, [60, H, H, H, H, H, R, H, 67, H, 69, 72, 74])
    assert (dropped, notes) == (1, 6)


def test_abc_files_are_cut_into_tunes() -> None:
    header, tunes = split_abc("% book\n\nX:1\nT:One\nK:G\nGABc|\n\nX:2\nT:Two\nK:D\nDEF|\n")
    assert header == "% book\n\n"
    assert [t.splitlines()[1] for t in tunes] == ["T:One", "T:Two"]


def test_small_real_build_from_music21(cache: Path) -> None:
    corpus = build_default_corpus(["bach", "oneills"], limit=6, workers=1, log=None)

    assert corpus.n_tunes == 12 and corpus.skipped == []
    assert corpus.titles[0] == "bach/bwv1.6"
    assert (int(corpus.tonic[0]), bool(corpus.minor[0])) == (5, False)  # BWV 1.6 is in F major
    assert sum(t.startswith("oneills/") for t in corpus.titles) == 6
    assert corpus.validation.tolist() == [is_validation(t.split("/", 1)[1]) for t in corpus.titles]
    lengths = np.diff(corpus.offsets)
    assert lengths.min() >= 32  # whole tunes, not fragments
    assert corpus.events.min() >= R and corpus.events.max() <= 127
    # A soprano line: no onset below C4 in a Bach chorale's top part.
    bach = corpus.events[: corpus.offsets[6]]
    assert bach[bach >= 0].min() >= 60


def test_sources_limit_per_collection_and_unknown_collection() -> None:
    sources = list_sources(["airds", "ryans"], limit=3)
    assert [s.collection for s in sources] == ["airds"] * 3 + ["ryans"] * 3
    assert all(
        s.abc_text and s.abc_text.count("\nX:") + s.abc_text.startswith("X:") == 1 for s in sources
    )
    assert "bach/bwv846" not in {s.name for s in list_sources(["bach"])}  # a prelude
    with pytest.raises(CorpusError, match="unknown collection 'essen'"):
        list_sources(["essen"])


def test_cli_build_from_folder_then_info(
    midi_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine.npz"
    assert main(["corpus", "build", "--from", str(midi_folder), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "tunes: 12 (train" in printed
    assert "skipped: 2" in printed and "corrupt.mid: cannot read MIDI file" in printed
    assert Corpus.load(out).n_tunes == 12

    assert main(["corpus", "info", str(out)]) == 0
    assert "tunes: 12" in capsys.readouterr().out


def test_cli_build_default_with_limit_writes_the_cache(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["corpus", "build", "--collections", "bach,airds", "--limit", "3", "--workers", "2"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "tunes per collection: bach 3, airds 3" in printed
    assert Corpus.load(cache / "corpus" / "default.npz").n_tunes == 6


def test_cli_errors_are_one_line_with_exit_code_2(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["corpus", "info"]) == 2
    assert "run `deepjam corpus build`" in capsys.readouterr().err
    assert main(["corpus", "build", "--limit", "0"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err


def test_corpus_build_help_does_not_import_music21() -> None:
    code = (
        "import sys\n"
        "from live_agent.cli import main\n"
        "try:\n    main(['corpus', 'build', '--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('music21' in sys.modules, 'torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "--collections" in result.stdout
    assert result.stdout.strip().endswith("False False")
