"""The ``deepjam`` command's front door: version, missing extras, help texts and one-line errors."""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

import pytest

from exports.extras import EXTRAS
from live_agent.cli import main, package_version
from live_agent.cli.inspect_command import metrics_table
from live_agent.cli.summary import stop_summary
from live_agent.engine import SessionStats

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
IMPORT_NAMES = {"jack-client": "jack"}
"""Distributions whose module is named otherwise."""


def run_main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_version() -> None:
    code, out, _ = run_main(["--version"])
    assert code == 0 and out.strip() == f"deepjam {package_version()}"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", package_version())


def test_extras_table_is_pyproject_s() -> None:
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra, modules in EXTRAS.items():
        names = [re.split(r"[<>=!;\[ ]", spec, maxsplit=1)[0].lower() for spec in optional[extra]]
        assert sorted(IMPORT_NAMES.get(n, n) for n in names) == sorted(modules), extra


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--out", "runs/x"],
        ["eval", "m.pt", "--out", "e"],
        ["export", "m.pt", "-o", "m.onnx"],
        ["corpus", "build"],
    ],
)
def test_a_missing_train_extra_is_one_line_naming_the_pip_command(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for module in ("torch", "music21"):
        monkeypatch.setitem(sys.modules, module, None)  # not importable, as without the extra
    code, _, err = run_main(argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"deepjam {argv[0]}") and "needs the train extra" in err
    assert 'pip install torch==2.13.0 && pip install "deepjam[train]"' in err
    assert list(tmp_path.iterdir()) == [], "checked before any work"


def test_corpus_from_a_folder_needs_no_train_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "music21", None)
    code, _, err = run_main(["corpus", "build", "--from", str(tmp_path / "none")])
    assert code == 2 and "extra" not in err  # the folder's own error, not the extra's


def test_help_texts() -> None:
    _, jam_help, _ = run_main(["jam", "--help"])
    assert "(default: 0.5)" in jam_help and "(default: 120.0)" in jam_help
    assert "(default: None)" not in jam_help
    _, eval_help, _ = run_main(["eval", "--help"])
    description = eval_help.split("\n\n")[1]
    assert not description.lstrip().startswith("`"), description


def test_inspect_of_a_non_model_does_not_name_a_flag_it_lacks(tmp_path: Path) -> None:
    bad = tmp_path / "not.onnx"
    bad.write_bytes(b"not a model")
    code, _, err = run_main(["inspect", str(bad)])
    assert code == 2 and "--model" not in err and "deepjam export" in err


def test_a_broken_midi_file_reads_in_deepjam_s_words(tmp_path: Path) -> None:
    from exports.errors import MidiFileError
    from exports.midi_files import read_melody

    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06")
    with pytest.raises(MidiFileError) as caught:
        read_melody(bad)
    text = str(caught.value)
    assert "Invaild" not in text and "MiniMidi" not in text and "not a valid MIDI file" in text


def test_metrics_table_aligns_one_metric_a_cell() -> None:
    lines = metrics_table({"b": 0.123456, "a": {"x": 2, "y": "z"}, "c": 3.0}, columns=2)
    assert lines == ["a.x       2    b    0.1235", "a.y       z    c         3"]
    assert metrics_table({}) == ["(none)"]


def test_stop_summary_speaks_plainly() -> None:
    stats = SessionStats(notes_sent=85, answers=12, interruptions=3)
    stats.timing.steps = 1600
    text = stop_summary(133.2, 340, stats, input_errors=0, send_errors=0)
    assert text == (
        "stopped after 2 min 13 s; heard 340 messages; played 85 notes in 12 answers (3 cut "
        "short when you came back in); every 16th on time; every note released"
    )
    stats.timing.late_steps = 4
    assert "4 16ths of 1,600 came late (0.2%" in stop_summary(5, 1, stats, 0, 0)
