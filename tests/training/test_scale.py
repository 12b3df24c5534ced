"""Scale-out on Ray, on the session's one local cluster (tests/conftest.py): the Ray corpus
build equals the single-process one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exports.midi_files import write_melodies
from exports.spec import HOLD_EVENT as H
from exports.spec import REST_EVENT as R
from live_agent.cli import main
from training.data.corpus import build_folder_corpus
from training.data.corpus_data import Corpus

ray = pytest.importorskip("ray", reason="the scale extra (ray) is installed by .ci/setup")


pytestmark = pytest.mark.usefixtures("ray_local")  # the session's one cluster (tests/conftest.py)


def tune(pitches: list[int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    events: list[int] = []
    for p in rng.choice(pitches, size=24):
        events += [int(p)] + [H] * int(rng.integers(0, 4))
    return np.array(events + [H, R], dtype=np.int16)


@pytest.fixture
def midi_folder(tmp_path: Path) -> Path:
    """Thirty tunes in nested folders (names that sort differently as strings and as paths),
    one corrupt file, one empty file, one without notes."""
    folder = tmp_path / "tunes"
    for sub in ("a", "a-b", "a/c"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(10):
        for j, sub in enumerate(("a", "a-b", "a/c")):
            write_melodies(
                folder / sub / f"t{i}.mid", [("m", tune([60, 62, 64, 67, 69], 3 * i + j))]
            )
    (folder / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    (folder / "empty.midi").write_bytes(b"")
    write_melodies(folder / "silent.mid", [("m", np.array([R] * 16, dtype=np.int16))])
    return folder


def assert_same_corpus(a: Corpus, b: Corpus, same_source: bool = True) -> None:
    assert a.name == b.name
    assert a.source == b.source or not same_source
    assert a.titles == b.titles
    assert a.skipped == b.skipped
    for field in ("events", "offsets", "tonic", "minor", "validation"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_ray_build_equals_the_single_process_build(midi_folder: Path) -> None:
    from training.scale.ingest import build_corpus_ray

    single = build_folder_corpus(midi_folder)
    on_ray = build_corpus_ray(midi_folder)
    assert single.n_tunes == 30 and len(single.skipped) == 3
    assert_same_corpus(on_ray, single)
    # Through a filesystem URI the workers read bytes, not paths: still the same corpus.
    uri = f"file://{midi_folder}"
    from_uri = build_corpus_ray(uri)
    assert from_uri.source == uri
    assert_same_corpus(from_uri, single, same_source=False)


def test_cli_ray_build_writes_the_same_file(
    midi_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single, on_ray = tmp_path / "single.npz", tmp_path / "ray.npz"
    assert main(["corpus", "build", "--from", str(midi_folder), "--out", str(single)]) == 0
    assert main(["corpus", "build", "--from", str(midi_folder), "--ray", "--out", str(on_ray)]) == 0
    printed = capsys.readouterr().out
    assert "skipped: 3" in printed and "corrupt.mid: cannot read MIDI file" in printed
    assert_same_corpus(Corpus.load(on_ray), Corpus.load(single))
    assert main(["corpus", "build", "--ray"]) == 2  # --ray needs --from: one line, exit 2


def test_the_live_side_imports_neither_ray_nor_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, live_agent, live_agent.cli; print(sorted({'ray', 'torch'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
