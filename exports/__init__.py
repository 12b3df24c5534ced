"""The model contract shared by training and the live agent (numpy and stdlib only)."""

from exports.encoding import (
    NoteChange,
    PartWindow,
    StepContext,
    action_events,
    decode_action,
    encode_states,
    event_actions,
    monophonic_window,
)
from exports.errors import (
    ConfigError,
    CorpusError,
    DeepjamError,
    MidiFileError,
    ModelError,
    PortError,
)
from exports.metadata import INPUT_NAME, OUTPUT_NAME, ModelMetadata
from exports.spec import (
    DEFAULT_SPEC,
    FIRST_NOTE_ACTION,
    HOLD,
    HOLD_EVENT,
    REST,
    REST_EVENT,
    SPEC_VERSION,
    Spec,
)
from exports.tonality import (
    estimate_call_key,
    estimate_key,
    key_shift,
    to_absolute,
    to_relative,
)

__all__ = [
    "DEFAULT_SPEC",
    "FIRST_NOTE_ACTION",
    "HOLD",
    "HOLD_EVENT",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "REST",
    "REST_EVENT",
    "SPEC_VERSION",
    "ConfigError",
    "CorpusError",
    "DeepjamError",
    "MidiFileError",
    "ModelError",
    "ModelMetadata",
    "NoteChange",
    "PartWindow",
    "PortError",
    "Spec",
    "StepContext",
    "action_events",
    "decode_action",
    "encode_states",
    "estimate_call_key",
    "estimate_key",
    "event_actions",
    "key_shift",
    "monophonic_window",
    "to_absolute",
    "to_relative",
]
