"""The contract's spec, vocabulary, grid events and action decoding."""

from __future__ import annotations

import numpy as np
import pytest

from exports import (
    DEFAULT_SPEC,
    HOLD,
    HOLD_EVENT,
    REST,
    REST_EVENT,
    Spec,
    action_events,
    decode_action,
    event_actions,
)
from exports.grid import events_from_notes, note_list, sounding_pitches, transpose, validate_events


def test_vocabulary_has_hold_rest_and_one_note_on_per_pitch() -> None:
    spec = Spec(pitch_low=60, pitch_high=71)
    vocab = spec.vocabulary()
    assert vocab[HOLD] == "HOLD" and vocab[REST] == "REST"
    assert vocab[2:] == tuple(f"NOTE_ON:{p}" for p in range(60, 72))
    assert spec.n_actions == len(vocab) == 14
    assert [spec.pitch_of_action(spec.action_for_pitch(p)) for p in range(60, 72)] == list(
        range(60, 72)
    )


def test_spec_rejects_bad_values_and_round_trips_through_dict() -> None:
    with pytest.raises(ValueError, match="pitch range"):
        Spec(pitch_low=80, pitch_high=70)
    with pytest.raises(ValueError, match="unknown spec fields"):
        Spec.from_dict({**DEFAULT_SPEC.to_dict(), "colour": "blue"})
    assert Spec.from_dict(DEFAULT_SPEC.to_dict()) == DEFAULT_SPEC
    with pytest.raises(ValueError, match="outside the agent range"):
        DEFAULT_SPEC.action_for_pitch(DEFAULT_SPEC.pitch_high + 1)


def test_the_spec_names_its_action_vocabulary_and_refuses_an_unknown_one() -> None:
    from exports.spec import ACTION_VOCABULARIES, MELODIC, SPEC_CHANGES, SPEC_VERSION

    assert DEFAULT_SPEC.action_vocabulary == MELODIC and ACTION_VOCABULARIES == (MELODIC,)
    assert DEFAULT_SPEC.to_dict()["action_vocabulary"] == MELODIC
    older = {k: v for k, v in DEFAULT_SPEC.to_dict().items() if k != "action_vocabulary"}
    assert Spec.from_dict(older) == DEFAULT_SPEC  # a spec written before the field: melodic
    with pytest.raises(ValueError, match=r"'arpeggio' is not one .* known: \['melodic'\]"):
        Spec(action_vocabulary="arpeggio")
    # Every version says what it changed (the refusal line of older models).
    assert set(SPEC_CHANGES) >= set(range(2, SPEC_VERSION + 1))


def test_sounding_pitches_forward_fills_holds_and_honours_initial_note() -> None:
    events = np.array([[HOLD_EVENT, 60, HOLD_EVENT, REST_EVENT, HOLD_EVENT, 62]])
    assert sounding_pitches(events).tolist() == [[-1, 60, 60, -1, -1, 62]]
    assert sounding_pitches(events, initial=np.array([55])).tolist() == [[55, 60, 60, -1, -1, 62]]


def test_note_list_and_events_from_notes_are_inverse() -> None:
    events = np.array([60, HOLD_EVENT, 60, REST_EVENT, HOLD_EVENT, 64, HOLD_EVENT, HOLD_EVENT])
    notes = note_list(events)
    assert notes == [(0, 2, 60), (2, 1, 60), (5, 3, 64)]
    assert events_from_notes(notes, len(events)).tolist() == events.tolist()


def test_transpose_moves_onsets_only_and_validate_rejects_garbage() -> None:
    events = np.array([60, HOLD_EVENT, REST_EVENT, 67])
    assert transpose(events, 3).tolist() == [63, HOLD_EVENT, REST_EVENT, 70]
    with pytest.raises(ValueError, match="not HOLD"):
        validate_events(np.array([60, -5]))


def test_actions_and_events_convert_both_ways_folding_out_of_range_pitches() -> None:
    spec = DEFAULT_SPEC
    actions = np.arange(spec.n_actions)
    assert event_actions(spec, action_events(spec, actions)).tolist() == actions.tolist()
    # A pitch two octaves below the range comes back folded into the range, same pitch class.
    folded = spec.pitch_of_action(int(event_actions(spec, np.array([spec.pitch_low - 23]))[0]))
    assert folded is not None and spec.pitch_low <= folded <= spec.pitch_high
    assert folded % 12 == (spec.pitch_low - 23) % 12


def test_decode_action_gives_midi_effects_in_absolute_pitch() -> None:
    spec = DEFAULT_SPEC
    note = spec.action_for_pitch(60)
    assert decode_action(spec, HOLD, sounding=64, to_absolute_semitones=3) == (None, None)
    assert decode_action(spec, REST, sounding=64, to_absolute_semitones=3) == (64, None)
    assert decode_action(spec, note, sounding=None, to_absolute_semitones=3) == (None, 63)
    assert decode_action(spec, note, sounding=63, to_absolute_semitones=3) == (
        63,
        63,
    )  # re-articulate
