"""Reading a model file: what fits is loaded and runs; everything else is one clear ModelError.

The models here are built with the onnx package (one Gemm layer, no torch), so that bad graphs
(wrong names, dtypes, widths) can be made on purpose; tampering edits metadata_props the way a
user or a stale tool would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from exports.errors import ModelError
from exports.metadata import INPUT_NAME, METADATA_PREFIX, OUTPUT_NAME, ModelMetadata
from exports.model_file import decision_latency, load_model
from exports.spec import ACTION_VOCABULARIES, MELODIC, SPEC_CHANGES, SPEC_VERSION, Spec
from live_agent.cli import main

SPEC = Spec(window_steps=4, pitch_low=60, pitch_high=72)


def metadata(spec: Spec = SPEC) -> ModelMetadata:
    return ModelMetadata(
        spec=spec,
        reward_weights={"style": 1.0, "theory": 0.5},
        style_name="test-style",
        corpus={"name": "unit", "tunes": 3},
        style_description="a linear model",
        training_steps=123,
        metrics={"in_key": 0.9},
        source_version="deepjam 0.1.0",
    )


def linear_model(
    spec: Spec = SPEC,
    state_dim: int | None = None,
    n_actions: int | None = None,
    input_name: str = INPUT_NAME,
    elem_type: int = TensorProto.FLOAT,
    seed: int = 0,
) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """Q = state @ W + b as an ONNX model with the deepjam metadata; (proto, W, b)."""
    state_dim = spec.state_dim if state_dim is None else state_dim
    n_actions = spec.n_actions if n_actions is None else n_actions
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(state_dim, n_actions)).astype(np.float32)
    bias = rng.normal(size=n_actions).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", [input_name, "W", "b"], [OUTPUT_NAME])],
        "q_network",
        [helper.make_tensor_value_info(input_name, elem_type, ["batch", state_dim])],
        [helper.make_tensor_value_info(OUTPUT_NAME, elem_type, ["batch", n_actions])],
        initializer=[
            numpy_helper.from_array(
                weights.astype(helper.tensor_dtype_to_np_dtype(elem_type)), "W"
            ),
            numpy_helper.from_array(bias.astype(helper.tensor_dtype_to_np_dtype(elem_type)), "b"),
        ],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    for key, value in metadata(spec).to_props().items():
        proto.metadata_props.add(key=key, value=value)
    return proto, weights, bias


def save(proto: onnx.ModelProto, path: Path) -> Path:
    onnx.save(proto, str(path))
    return path


def tampered(path: Path, edit: Callable[[dict[str, str]], None]) -> Path:
    """Rewrite the deepjam metadata of the ONNX file at ``path`` with ``edit``, in place."""
    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    edit(props)
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    proto, _, _ = linear_model()
    return save(proto, tmp_path / "style.onnx")


def test_a_fitting_model_loads_and_computes_its_q_values(tmp_path: Path) -> None:
    proto, weights, bias = linear_model()
    model = load_model(save(proto, tmp_path / "style.onnx"))
    assert model.metadata == metadata()
    assert model.spec == SPEC
    states = np.random.default_rng(1).random((5, SPEC.state_dim), dtype=np.float32)
    np.testing.assert_allclose(
        model.q_values(states), states @ weights + bias, rtol=1e-5, atol=1e-5
    )
    model.warm_up(3)
    figures = decision_latency(model, calls=50, warmup_calls=5)
    assert 0 < figures.p50_us <= figures.p99_us <= figures.max_us and figures.calls == 50


def _set(field: str, value: object) -> Callable[[dict[str, str]], None]:
    def edit(props: dict[str, str]) -> None:
        props[METADATA_PREFIX + field] = json.dumps(value)

    return edit


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            _set("spec_version", SPEC_VERSION + 1),
            f"exported for model spec version {SPEC_VERSION + 1}, but this deepjam reads version "
            f"{SPEC_VERSION}; upgrade deepjam",
        ),
        (_set("spec_version", SPEC_VERSION - 1), f"spec version {SPEC_VERSION - 1}"),
        (
            _set("vocabulary", ["HOLD", "REST", *[f"NOTE_ON:{p}" for p in range(61, 74)]]),
            "vocabulary (15 actions) does not match its spec (15 actions, 60..72): action 2 is "
            "'NOTE_ON:61', expected 'NOTE_ON:60'",
        ),
        (_set("vocabulary", "HOLD REST"), "'vocabulary' must be a list of action names"),
        (
            _set("spec", {**SPEC.to_dict(), "pitch_high": 71}),
            "vocabulary (15 actions) does not match its spec (14 actions, 60..71)",
        ),
        (_set("spec", {**SPEC.to_dict(), "tempo": 120}), "metadata field 'spec' is invalid"),
        (_set("reward_weights", {"style": "high"}), "'reward_weights' must map names to numbers"),
        (_set("corpus", "bach"), "'corpus' must be a JSON dict"),
        (_set("training_steps", "many"), "'training_steps' must be an integer"),
        (lambda props: props.pop(METADATA_PREFIX + "vocabulary"), "is not a deepjam model"),
        (
            lambda props: props.update({METADATA_PREFIX + "spec": "{not json"}),
            "'deepjam.spec' is not valid JSON",
        ),
    ],
    ids=[
        "newer-spec-version",
        "older-spec-version",
        "shifted-vocabulary",
        "vocabulary-not-a-list",
        "spec-range-changed",
        "unknown-spec-field",
        "weights-not-numbers",
        "corpus-not-a-dict",
        "steps-not-an-int",
        "missing-field",
        "bad-json",
    ],
)
def test_tampered_metadata_is_refused_naming_the_problem_and_the_fix(
    model_path: Path, edit: Callable[[dict[str, str]], None], expected: str
) -> None:
    with pytest.raises(ModelError) as caught:
        load_model(tampered(model_path, edit))
    message = str(caught.value)
    assert expected in message
    assert "deepjam export" in message  # the fix
    assert "\n" not in message


def test_the_action_vocabulary_travels_in_the_file_and_a_model_without_it_is_melodic(
    model_path: Path,
) -> None:
    props = {p.key: p.value for p in onnx.load(str(model_path)).metadata_props}
    assert json.loads(props[METADATA_PREFIX + "action_vocabulary"]) == MELODIC
    assert json.loads(props[METADATA_PREFIX + "spec"])["action_vocabulary"] == MELODIC

    def made_before_chords(props: dict[str, str]) -> None:
        del props[METADATA_PREFIX + "action_vocabulary"]
        spec = json.loads(props[METADATA_PREFIX + "spec"])
        del spec["action_vocabulary"]
        props[METADATA_PREFIX + "spec"] = json.dumps(spec)

    model = load_model(tampered(model_path, made_before_chords))
    assert model.spec.action_vocabulary == MELODIC and model.spec == SPEC


@pytest.mark.parametrize("where", ["both", "spec", "top-level"])
def test_a_model_with_an_unknown_action_vocabulary_is_refused_naming_the_known_ones(
    model_path: Path, where: str
) -> None:
    def arpeggios(props: dict[str, str]) -> None:
        if where in ("both", "top-level"):
            props[METADATA_PREFIX + "action_vocabulary"] = json.dumps("arpeggio")
        if where in ("both", "spec"):
            spec = json.loads(props[METADATA_PREFIX + "spec"])
            props[METADATA_PREFIX + "spec"] = json.dumps({**spec, "action_vocabulary": "arpeggio"})

    with pytest.raises(ModelError) as caught:
        load_model(tampered(model_path, arpeggios))
    message = str(caught.value)
    assert message == (
        f"style.onnx plays the action vocabulary 'arpeggio', which this deepjam does not know "
        f"(known: {list(ACTION_VOCABULARIES)}); upgrade deepjam to play it"
    )


def test_two_records_of_the_action_vocabulary_that_disagree_are_refused(
    model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a second vocabulary is known, a file whose top-level field and spec disagree was
    altered after export."""
    monkeypatch.setattr("exports.metadata.ACTION_VOCABULARIES", (MELODIC, "chord"))
    with pytest.raises(ModelError, match="'action_vocabulary' is 'chord' but its spec says"):
        load_model(tampered(model_path, _set("action_vocabulary", "chord")))


def test_an_older_spec_version_is_refused_saying_what_changed_and_to_retrain(
    model_path: Path,
) -> None:
    with pytest.raises(ModelError) as caught:
        load_model(tampered(model_path, _set("spec_version", SPEC_VERSION - 1)))
    assert str(caught.value) == (
        f"style.onnx was exported for model spec version {SPEC_VERSION - 1}, but this deepjam "
        f"reads version {SPEC_VERSION} ({SPEC_CHANGES[SPEC_VERSION]}); retrain it with "
        f"`deepjam train` and `deepjam export` of this version"
    )


def test_a_spec_changed_consistently_is_caught_by_the_graph_width(model_path: Path) -> None:
    wider = Spec(window_steps=5, pitch_low=60, pitch_high=72)

    def edit(props: dict[str, str]) -> None:
        props[METADATA_PREFIX + "spec"] = json.dumps(wider.to_dict())

    with pytest.raises(
        ModelError,
        match=rf"has {SPEC.state_dim} state features but its metadata spec says {wider.state_dim}; the file was altered",
    ):
        load_model(tampered(model_path, edit))


def test_a_model_on_another_grid_than_16ths_is_refused(model_path: Path) -> None:
    """``Spec.steps_per_beat`` is honoured or refused: deepjam's clock, tempo follower and MIDI
    files count 16ths, so a model trained on 8ths (or triplets) is not played in 16ths."""

    def edit(props: dict[str, str]) -> None:
        props[METADATA_PREFIX + "spec"] = json.dumps({**SPEC.to_dict(), "steps_per_beat": 8})

    with pytest.raises(ModelError, match="steps_per_beat must be 4 .*got 8") as caught:
        load_model(tampered(model_path, edit))
    assert "deepjam export" in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"n_actions": SPEC.n_actions + 1}, f"has {SPEC.n_actions + 1} action features"),
        ({"input_name": "obs"}, "expected input 'state' and output 'q_values', got inputs ['obs']"),
        ({"elem_type": TensorProto.DOUBLE}, "to be a 2-D float32 tensor"),
    ],
    ids=["extra-action", "input-name", "float64"],
)
def test_a_graph_that_does_not_fit_its_spec_is_refused(
    tmp_path: Path, kwargs: dict[str, object], expected: str
) -> None:
    proto, _, _ = linear_model(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ModelError) as caught:
        load_model(save(proto, tmp_path / "bad.onnx"))
    assert expected in str(caught.value)
    assert "deepjam export" in str(caught.value)


def _broken_files(model_path: Path) -> dict[str, Path]:
    data = model_path.read_bytes()
    truncated = model_path.with_name("truncated.onnx")
    truncated.write_bytes(data[: len(data) // 2])
    text = model_path.with_name("notes.onnx")
    text.write_text("this is a shopping list, not a neural network\n")
    empty = model_path.with_name("empty.onnx")
    empty.write_bytes(b"")
    return {"truncated": truncated, "text": text, "empty": empty}


@pytest.mark.parametrize("kind", ["truncated", "text", "empty"])
def test_a_file_that_is_not_onnx_gives_one_clear_line(model_path: Path, kind: str) -> None:
    bad = _broken_files(model_path)[kind]
    with pytest.raises(ModelError) as caught:
        load_model(bad)
    message = str(caught.value)
    assert message.startswith(f"{bad.name} is not ") and "deepjam export" in message
    assert "\n" not in message


@pytest.mark.parametrize("kind", ["truncated", "text", "missing", "tampered"])
def test_the_cli_reports_a_bad_model_in_one_line_without_a_traceback(
    model_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if kind == "missing":
        bad = model_path.with_name("nowhere.onnx")
    elif kind == "tampered":
        bad = tampered(model_path, _set("spec_version", SPEC_VERSION + 1))
    else:
        bad = _broken_files(model_path)[kind]
    code = main(["inspect", str(bad)])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("deepjam inspect: error: ") and bad.name in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_a_process_without_torch_loads_and_runs_the_model(tmp_path: Path) -> None:
    proto, weights, bias = linear_model()
    path = save(proto, tmp_path / "style.onnx")
    states = np.random.default_rng(2).random((3, SPEC.state_dim), dtype=np.float32)
    np.save(tmp_path / "states.npy", states)
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any `import torch` now raises ImportError\n"
        "import numpy as np\n"
        "from exports.model_file import load_model\n"
        f"model = load_model({str(path)!r})\n"
        f"q = model.q_values(np.load({str(tmp_path / 'states.npy')!r}))\n"
        f"np.save({str(tmp_path / 'q.npy')!r}, q)\n"
        "print(model.metadata.style_name, sorted(m for m in sys.modules if m.startswith('torch')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-800:]
    assert done.stdout.split()[0] == "test-style"
    assert done.stdout.strip().endswith("['torch']")  # only the blocker itself
    np.testing.assert_allclose(
        np.load(tmp_path / "q.npy"), states @ weights + bias, rtol=1e-5, atol=1e-5
    )
