"""MIDI files in and out on the 16th grid: real files written and read back."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from exports.errors import MidiFileError
from exports.midi_files import (
    END_MARKER,
    events_from_timed_notes,
    read_melodies,
    read_melody,
    read_midi_folder,
    write_melodies,
)
from exports.spec import HOLD_EVENT as H
from exports.spec import REST_EVENT as R

# Leading silence, repeated notes (60 60), a rest inside, a note held into trailing silence.
PLAYER = np.array([H, 60, H, 60, 62, R, H, 64, H, H, 64, 64, R, H, H, H], dtype=np.int16)
AGENT = np.array([72, H, R, 71, 71, 71, H, H, R, H, H, H, 67, H, H, H], dtype=np.int16)


def write_raw_midi(
    path: Path,
    notes: list[tuple[int, int, int, int]],
    ticks_per_beat: int = 96,
    end_tick: int | None = None,
) -> None:
    """A type-0 file straight from mido: notes are (start_tick, end_tick, pitch, channel)."""
    timed = []
    for start, end, pitch, channel in notes:
        timed.append((start, 1, mido.Message("note_on", note=pitch, velocity=80, channel=channel)))
        timed.append((end, 0, mido.Message("note_off", note=pitch, velocity=0, channel=channel)))
    timed.sort(key=lambda x: (x[0], x[1]))
    track = mido.MidiTrack()
    now = 0
    for tick, _, msg in timed:
        track.append(msg.copy(time=tick - now))
        now = tick
    if end_tick is not None:
        track.append(mido.MetaMessage("end_of_track", time=end_tick - now))
    midi = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    midi.save(str(path))


def test_grid_to_midi_to_grid_is_exact_per_part(tmp_path: Path) -> None:
    path = tmp_path / "duet.mid"
    write_melodies(path, [("player", PLAYER), ("agent", AGENT)], bpm=100, velocity=[70, 100])

    parts = read_melodies(path)

    assert [name for name, _ in parts] == ["player", "agent"]
    np.testing.assert_array_equal(parts[0][1], PLAYER)
    np.testing.assert_array_equal(parts[1][1], AGENT)
    assert parts[0][1].dtype == np.int16


def test_written_file_has_tempo_channels_velocities_and_end_marker(tmp_path: Path) -> None:
    path = tmp_path / "duet.mid"
    write_melodies(path, [("player", PLAYER), ("agent", AGENT)], bpm=100, channels=[2, 5])

    midi = mido.MidiFile(str(path))

    assert midi.ticks_per_beat == 480
    tempos = [m.tempo for m in midi.tracks[0] if m.type == "set_tempo"]
    assert tempos == [600_000]  # 100 bpm
    markers = [m for m in midi.tracks[0] if m.type == "marker"]
    assert [m.text for m in markers] == [END_MARKER]
    assert sum(m.time for m in midi.tracks[0]) == len(PLAYER) * 120
    player_channels = {m.channel for m in midi.tracks[1] if m.type == "note_on"}
    agent_channels = {m.channel for m in midi.tracks[2] if m.type == "note_on"}
    assert (player_channels, agent_channels) == ({2}, {5})
    # The repeated 60 is released before it is struck again, at the same tick.
    kinds = [(m.type, m.note) for m in midi.tracks[1] if m.type.startswith("note")]
    assert kinds[:4] == [("note_on", 60), ("note_off", 60), ("note_on", 60), ("note_off", 60)]


def test_default_channels_skip_the_drum_channel(tmp_path: Path) -> None:
    path = tmp_path / "many.mid"
    parts = [(f"p{i}", np.array([60 + i, R], dtype=np.int16)) for i in range(11)]
    write_melodies(path, parts)
    channels = [
        {m.channel for m in track if m.type == "note_on"}
        for track in mido.MidiFile(path).tracks[1:]
    ]
    assert channels == [{c} for c in (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11)]
    assert len(read_melodies(path)) == 11  # none mistaken for drums


def test_midi_to_grid_to_midi_to_grid_is_exact(tmp_path: Path) -> None:
    # A file from elsewhere (96 ticks per quarter: a 16th is 24 ticks), already on the grid.
    source = tmp_path / "source.mid"
    write_raw_midi(
        source,
        [(0, 24, 67, 0), (24, 48, 67, 0), (96, 144, 69, 0), (144, 240, 71, 0), (288, 312, 72, 0)],
    )
    first = read_melody(source)
    # The grid ends with the last note (symusic does not report end_of_track).
    expected = [67, 67, R, H, 69, H, 71, H, H, H, R, H, 72]
    np.testing.assert_array_equal(first, expected)

    again = tmp_path / "again.mid"
    write_melodies(again, [("melody", first)])
    np.testing.assert_array_equal(read_melody(again), first)


def test_top_line_of_polyphony_and_drums_left_out(tmp_path: Path) -> None:
    path = tmp_path / "chords.mid"
    write_raw_midi(
        path,
        [
            (0, 96, 60, 0),  # C-E-G chord: G is the top line
            (0, 96, 64, 0),
            (0, 96, 67, 0),
            (0, 192, 48, 1),  # a long bass note: cut when the next top onset comes
            (0, 24, 90, 9),  # a drum hit above everything: ignored
            (48, 72, 95, 9),
            (96, 120, 62, 0),
        ],
    )
    events = read_melody(path)
    # step 0: G (67) until step 4, where D (62) starts; then the bass (48) is not re-struck.
    np.testing.assert_array_equal(events, [67, H, H, H, 62, R, H, H])


def test_off_grid_onsets_round_to_the_nearest_sixteenth(tmp_path: Path) -> None:
    path = tmp_path / "swing.mid"
    # 96 tpq: 16th = 24 ticks. Triplet eighths at 0, 32, 64 -> steps 0, 1.33->1, 2.67->3.
    write_raw_midi(path, [(0, 32, 60, 0), (32, 64, 62, 0), (64, 96, 64, 0), (100, 118, 65, 0)])
    np.testing.assert_array_equal(read_melody(path), [60, 62, H, 64, 65])


def test_colliding_onsets_keep_the_highest_and_count_the_rest() -> None:
    # Sixteenth triplets: 0, 2/3, 4/3 steps -> 0, 1, 1 (collision: 64 beats 62).
    events, dropped = events_from_timed_notes(
        np.array([0, 2 / 3, 4 / 3]), np.array([2 / 3, 4 / 3, 2]), np.array([60, 62, 64])
    )
    np.testing.assert_array_equal(events, [60, 64])
    assert dropped == 1


def test_short_notes_last_one_step_and_min_steps_pads_with_hold() -> None:
    events, dropped = events_from_timed_notes(
        np.array([0.1, 3.0]), np.array([0.2, 4.0]), np.array([60, 61]), min_steps=7
    )
    np.testing.assert_array_equal(events, [60, R, H, 61, R, H, H])
    assert dropped == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "cannot read MIDI file"),
        (b"MThd\x00\x00\x00\x06garbage bytes that are not a MIDI file", "cannot read MIDI file"),
    ],
)
def test_unreadable_bytes_raise_one_line_naming_the_file(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "broken.mid"
    path.write_bytes(content)
    with pytest.raises(MidiFileError) as info:
        read_melody(path)
    message = str(info.value)
    assert "broken.mid" in message and reason in message
    assert "\n" not in message


def test_file_without_melodic_notes_is_refused(tmp_path: Path) -> None:
    drums = tmp_path / "drums.mid"
    write_raw_midi(drums, [(0, 24, 36, 9), (48, 72, 38, 9)])
    with pytest.raises(MidiFileError, match=r"drums\.mid has no notes outside the drum channel"):
        read_melody(drums)
    silent = tmp_path / "silent.mid"
    write_raw_midi(silent, [], end_tick=96)
    with pytest.raises(MidiFileError, match="silent.mid has no notes"):
        read_melodies(silent)
    with pytest.raises(MidiFileError, match="does not exist"):
        read_melody(tmp_path / "missing.mid")


def test_write_refuses_bad_channels_velocities_and_events(tmp_path: Path) -> None:
    path = tmp_path / "x.mid"
    with pytest.raises(MidiFileError, match="channels are 0..15"):
        write_melodies(path, [("a", PLAYER)], channels=[16])
    with pytest.raises(MidiFileError, match="velocity must be 1..127"):
        write_melodies(path, [("a", PLAYER)], velocity=0)
    with pytest.raises(MidiFileError, match="part 'a'"):
        write_melodies(path, [("a", np.array([60, 200], dtype=np.int16))])
    with pytest.raises(MidiFileError, match="expected at least one part"):
        write_melodies(path, [])
    assert not path.exists()


def test_folder_reading_names_the_bad_files_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "set" / "inner").mkdir(parents=True)
    write_melodies(tmp_path / "set" / "a.mid", [("m", PLAYER)])
    write_melodies(tmp_path / "set" / "inner" / "b.MIDI", [("m", AGENT)])
    (tmp_path / "set" / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00")
    (tmp_path / "set" / "empty.mid").write_bytes(b"")
    (tmp_path / "set" / "notes.txt").write_text("not a MIDI file, not even looked at")

    melodies, skipped = read_midi_folder(tmp_path / "set")

    assert [name for name, _ in melodies] == ["a.mid", "inner/b.MIDI"]
    np.testing.assert_array_equal(melodies[0][1], PLAYER)
    np.testing.assert_array_equal(melodies[1][1], AGENT)
    assert [name for name, _ in skipped] == ["corrupt.mid", "empty.mid"]
    assert all("cannot read MIDI file" in reason for _, reason in skipped)


def test_folder_that_is_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(MidiFileError, match="expected a folder of MIDI files"):
        read_midi_folder(tmp_path / "nowhere")
