"""Controls TOML, ModelSlots, JamOptions validation, and the no-torch rule of live_agent."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from exports.errors import ConfigError, ModelError
from exports.model_file import load_model
from live_agent.controls import ControlAction, ControlMap, ModelSlots, load_controls
from live_agent.options import JamOptions, add_jam_arguments, options_from_args


def test_packaged_controls_match_the_defaults() -> None:
    packaged = load_controls()
    assert packaged.apply(74, 127) == ControlAction("temperature", 1.5)
    assert packaged.apply(71, 0) == ControlAction("density", 0.0)
    assert packaged.apply(76, 0) == ControlAction("register_shift", -24)
    assert packaged.apply(77, 100) == ControlAction("mode", "duet")
    assert packaged.apply(119, 127) == ControlAction("panic", 127)
    assert packaged.apply(119, 0) is None
    assert packaged.apply(1, 64) is None
    assert packaged == ControlMap(model_slots=packaged.model_slots)
    assert packaged.model_slots[0].name == "default.onnx"  # the shipped styles: test_program_change


def test_controls_file_with_channel_and_model_slots(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'channel = 2\n[temperature]\ncc = 1\nmin = 0.0\nmax = 2.0\n[models]\n3 = "folk.onnx"\n'
    )
    controls = load_controls(path)
    assert controls.channel == 1
    assert controls.apply(1, 127) == ControlAction("temperature", 2.0)
    assert controls.density is None and controls.mode_cc is None
    assert controls.model_slots == {3: tmp_path / "folk.onnx"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[temperature]\ncc = 300\n", "cc must be a number 0..127"),
        ("channel = 17\n", "channel must be 0 (--input-channel, else channel 1) or 1..16"),
        ("[models]\nx = 1\n", "[models] entries"),
        ("[[[", "is not valid TOML"),
    ],
)
def test_bad_controls_file_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_controls(path)


def test_model_slots_load_off_thread_and_report_errors(onnx_model: Path, tmp_path: Path) -> None:
    loaded: list[object] = []
    errors: list[str] = []
    done = threading.Event()

    def on_loaded(policy: object) -> None:
        loaded.append(policy)
        done.set()

    slots = ModelSlots(
        {0: onnx_model, 1: tmp_path / "missing.onnx"}, load_model, on_loaded, errors.append
    )
    assert slots.program_change(0)
    assert done.wait(10)
    assert slots.program_change(1)
    assert not slots.program_change(5)
    slots.join()
    assert len(loaded) == 1 and loaded[0].spec.window_steps == 32  # type: ignore[attr-defined]
    assert any("does not exist" in e for e in errors)
    assert any("no style in slot 5" in e for e in errors)
    assert isinstance(ModelError("x"), ValueError)


def test_options_from_the_command_line_are_validated() -> None:
    parser = argparse.ArgumentParser()
    add_jam_arguments(parser)
    options = options_from_args(
        parser.parse_args(
            ["--channel", "3", "--input-channel", "1", "--mode", "duet", "--bpm", "90"]
        )
    )
    assert (options.channel, options.input_channel, options.mode) == (2, 0, "duet")
    assert options.step_ns == round(60e9 / 90 / 4)
    with pytest.raises(ConfigError, match="channel must be 1..16, got 17"):
        options_from_args(parser.parse_args(["--channel", "17"]))
    with pytest.raises(ConfigError, match="density must be within 0..1"):
        JamOptions(density=1.5)
    with pytest.raises(ConfigError, match="register limits"):
        JamOptions(register_low=90, register_high=80)


def test_live_agent_never_imports_torch() -> None:
    code = (
        "import sys, live_agent.engine, live_agent.cli.answer_command, live_agent.controls; "
        "print('torch' in sys.modules, 'training' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


def test_model_watcher_swaps_when_the_file_changes(onnx_model: Path, tmp_path: Path) -> None:
    import os
    import shutil

    from live_agent.controls import ModelWatcher

    path = tmp_path / "live.onnx"
    shutil.copy(onnx_model, path)
    loaded: list[object] = []
    errors: list[str] = []
    watcher = ModelWatcher(path, load_model, loaded.append, errors.append)
    assert not watcher.poll()  # unchanged
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert watcher.poll() and len(loaded) == 1
    path.write_bytes(b"not onnx")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert not watcher.poll()
    assert errors and "cannot be used" in errors[0]


def test_model_watcher_sees_a_file_written_before_it_started(
    onnx_model: Path, tmp_path: Path
) -> None:
    """A new export that lands between jam's model load and the watcher's start is a swap."""
    import os
    import shutil

    from live_agent.controls import ModelWatcher, file_mtime_ns

    path = tmp_path / "live.onnx"
    shutil.copy(onnx_model, path)
    loaded_mtime_ns = file_mtime_ns(path)
    assert loaded_mtime_ns is not None
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # the new export
    loaded: list[object] = []
    watcher = ModelWatcher(path, load_model, loaded.append, loaded_mtime_ns=loaded_mtime_ns)
    assert watcher.poll() and len(loaded) == 1
    assert file_mtime_ns(tmp_path / "missing.onnx") is None


def test_help_comes_from_the_options_docstrings() -> None:
    """``--help`` shows each JamOptions field's docstring (the one place an option is
    described), and every field has a flag."""
    import argparse
    import dataclasses

    from live_agent.options import JamOptions, add_jam_arguments, field_docs

    parser = argparse.ArgumentParser(prog="jam", formatter_class=argparse.RawTextHelpFormatter)
    add_jam_arguments(parser)
    text = " ".join(parser.format_help().split())
    docs = field_docs(JamOptions)
    assert set(docs) == {f.name for f in dataclasses.fields(JamOptions)}
    for name, doc in docs.items():
        assert "--" + name.replace("_", "-") in text
        assert doc in text, name
