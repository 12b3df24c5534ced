"""A style is labelled as the user's: --name/--description, else the corpus's name with the
default preset; the label travels into the checkpoint, the ONNX file and `deepjam inspect`."""

from __future__ import annotations

from pathlib import Path

import pytest

from exports.errors import ConfigError
from live_agent.cli import main
from tests.support.corpus import tiny_corpus, write_config
from training.checkpoint import load_checkpoint
from training.cli.train_command import style_label, train

DEFAULT_ABOUT = "Folk tunes and chorale melodies"


def test_flags_win() -> None:
    assert style_label("default", DEFAULT_ABOUT, "bach", 412, "Chorales", "Bach, four voices") == (
        "Chorales",
        "Bach, four voices",
    )


def test_the_default_preset_on_another_corpus_takes_the_corpus_name() -> None:
    name, about = style_label("default", DEFAULT_ABOUT, "bach-chorales", 412)
    assert name == "bach-chorales"
    assert about == "trained on bach-chorales (412 tunes) with the default preset"
    assert DEFAULT_ABOUT not in about


def test_the_default_corpus_and_a_named_preset_keep_their_own_label() -> None:
    assert style_label("default", DEFAULT_ABOUT, "default", 4660) == ("default", DEFAULT_ABOUT)
    assert style_label("reels", "fast", "my-band", 30) == ("reels", "fast")
    with pytest.raises(ConfigError, match="--name must not be empty"):
        style_label("default", "", "x", 1, "  ")


@pytest.mark.slow  # a training run
def test_the_name_reaches_the_checkpoint_the_model_and_inspect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tiny_corpus(tmp_path / "my-band.npz")
    config = write_config(tmp_path / "tiny.toml")
    path = train(str(config), str(corpus), tmp_path / "run", progress_bar=False, name="My Band")
    checkpoint = load_checkpoint(path)
    assert checkpoint.style_name == "My Band"
    assert checkpoint.style_description.startswith("trained on tiny (10 tunes)")
    onnx = tmp_path / "my-band.onnx"
    assert main(["export", str(path), "-o", str(onnx), "--corpus", str(corpus)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(onnx), "--calls", "0"]) == 0
    assert "style             My Band: trained on tiny (10 tunes)" in capsys.readouterr().out
