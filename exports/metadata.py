"""The metadata every deepjam ONNX model carries, as ONNX ``metadata_props``.

Each field is stored under ``deepjam.<field>`` as JSON. The live player reads the spec from the
model (window, range) and refuses a model whose spec version or vocabulary does not fit this
build: the contract travels inside the file, never beside it.

``deepjam.action_vocabulary`` says what an action is (``exports.spec.ACTION_VOCABULARIES``:
``"melodic"`` notes, or, once comping exists, ``"chord"``); it repeats the spec's field so that a
reader sees the kind of model without parsing the spec. A file without it is melodic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from exports.errors import ModelError
from exports.spec import ACTION_VOCABULARIES, MELODIC, SPEC_CHANGES, SPEC_VERSION, Spec

METADATA_PREFIX = "deepjam."
INPUT_NAME = "state"
OUTPUT_NAME = "q_values"

REQUIRED_FIELDS = ("spec", "spec_version", "vocabulary", "reward_weights", "style_name", "corpus")


@dataclass(frozen=True)
class ModelMetadata:
    """What a model file says about itself."""

    spec: Spec
    reward_weights: dict[str, float]
    style_name: str
    corpus: dict[str, Any]
    """Training data summary: name, tunes, steps, source."""
    spec_version: int = SPEC_VERSION
    vocabulary: tuple[str, ...] = ()
    """Action names, index = action id; filled from ``spec`` when left empty."""
    style_description: str = ""
    training_steps: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    source_version: str = ""

    def __post_init__(self) -> None:
        if not self.vocabulary:
            object.__setattr__(self, "vocabulary", self.spec.vocabulary())

    def to_props(self) -> dict[str, str]:
        """ONNX metadata_props: ``deepjam.<field>`` -> JSON text."""
        values: dict[str, Any] = {
            "spec": self.spec.to_dict(),
            "spec_version": self.spec_version,
            "action_vocabulary": self.spec.action_vocabulary,
            "vocabulary": list(self.vocabulary),
            "reward_weights": self.reward_weights,
            "style_name": self.style_name,
            "style_description": self.style_description,
            "corpus": self.corpus,
            "training_steps": self.training_steps,
            "metrics": self.metrics,
            "source_version": self.source_version,
        }
        return {METADATA_PREFIX + k: json.dumps(v, sort_keys=True) for k, v in values.items()}

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = "model") -> ModelMetadata:
        """Parse and check metadata_props; raises ModelError with one line saying what to do."""
        fix = "re-export it with `deepjam export CHECKPOINT -o FILE.onnx`"
        values: dict[str, Any] = {}
        for key, text in props.items():
            if not key.startswith(METADATA_PREFIX):
                continue
            name = key[len(METADATA_PREFIX) :]
            try:
                values[name] = json.loads(text)
            except json.JSONDecodeError as err:
                raise ModelError(
                    f"{source}: metadata field {key!r} is not valid JSON; {fix}"
                ) from err
        missing = [f for f in REQUIRED_FIELDS if f not in values]
        if missing:
            raise ModelError(
                f"{source} is not a deepjam model: metadata fields {missing} are missing; {fix}"
            )
        version = values["spec_version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise ModelError(
                f"{source}: metadata 'spec_version' must be an integer, got {version!r}; {fix}"
            )
        if version > SPEC_VERSION:
            raise ModelError(
                f"{source} was exported for model spec version {version}, but this deepjam reads "
                f"version {SPEC_VERSION}; upgrade deepjam to read it, or {fix} using this "
                f"version of deepjam"
            )
        if version < SPEC_VERSION:
            raise ModelError(
                f"{source} was exported for model spec version {version}, but this deepjam reads "
                f"version {SPEC_VERSION} ({SPEC_CHANGES.get(SPEC_VERSION, 'a new contract')}); "
                f"retrain it with `deepjam train` and `deepjam export` of this version"
            )
        if not isinstance(values["spec"], dict):
            raise ModelError(
                f"{source}: metadata 'spec' must be a JSON object, got {values['spec']!r}; {fix}"
            )
        _check_action_vocabulary(values, source, fix)
        try:
            spec = Spec.from_dict(values["spec"])
        except (TypeError, ValueError) as err:
            raise ModelError(f"{source}: metadata field 'spec' is invalid ({err}); {fix}") from err
        raw_vocabulary = values["vocabulary"]
        if not isinstance(raw_vocabulary, list) or not all(
            isinstance(v, str) for v in raw_vocabulary
        ):
            raise ModelError(
                f"{source}: metadata 'vocabulary' must be a list of action names, got "
                f"{type(raw_vocabulary).__name__}; the file was altered after export; {fix}"
            )
        vocabulary = tuple(raw_vocabulary)
        expected = spec.vocabulary()
        if vocabulary != expected:
            differs = next(
                (i for i, (a, b) in enumerate(zip(vocabulary, expected, strict=False)) if a != b),
                min(len(vocabulary), len(expected)),
            )
            got = vocabulary[differs] if differs < len(vocabulary) else "(none)"
            want = expected[differs] if differs < len(expected) else "(none)"
            raise ModelError(
                f"{source}: its vocabulary ({len(vocabulary)} actions) does not match its spec "
                f"({spec.n_actions} actions, {spec.pitch_low}..{spec.pitch_high}): action "
                f"{differs} is {got!r}, expected {want!r}; the file was altered after export; "
                f"{fix}"
            )
        weights = values["reward_weights"]
        if not isinstance(weights, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in weights.values()
        ):
            raise ModelError(
                f"{source}: metadata 'reward_weights' must map names to numbers; {fix}"
            )
        for name, kind in (("corpus", dict), ("metrics", dict), ("style_name", str)):
            if name in values and not isinstance(values[name], kind):
                raise ModelError(
                    f"{source}: metadata {name!r} must be a JSON {kind.__name__}, got "
                    f"{type(values[name]).__name__}; {fix}"
                )
        steps = values.get("training_steps", 0)
        if isinstance(steps, bool) or not isinstance(steps, int):
            raise ModelError(
                f"{source}: metadata 'training_steps' must be an integer, got {steps!r}; {fix}"
            )
        return cls(
            spec=spec,
            spec_version=version,
            vocabulary=vocabulary,
            reward_weights={k: float(v) for k, v in weights.items()},
            style_name=str(values["style_name"]),
            style_description=str(values.get("style_description", "")),
            corpus=dict(values["corpus"]),
            training_steps=int(values.get("training_steps", 0)),
            metrics=dict(values.get("metrics", {})),
            source_version=str(values.get("source_version", "")),
        )


def _check_action_vocabulary(values: dict[str, Any], source: str, fix: str) -> None:
    """The model's action vocabulary is one this build plays, and its two records agree (the
    spec's field and ``deepjam.action_vocabulary``; both absent: melodic)."""
    in_spec = values["spec"].get("action_vocabulary", MELODIC)
    stated = values.get("action_vocabulary", in_spec)
    for kind in (stated, in_spec):
        if kind not in ACTION_VOCABULARIES:
            raise ModelError(
                f"{source} plays the action vocabulary {kind!r}, which this deepjam does not "
                f"know (known: {list(ACTION_VOCABULARIES)}); upgrade deepjam to play it"
            )
    if stated != in_spec:
        raise ModelError(
            f"{source}: metadata 'action_vocabulary' is {stated!r} but its spec says "
            f"{in_spec!r}; the file was altered after export; {fix}"
        )
