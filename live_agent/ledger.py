"""The note ledger: every note-on sent is recorded until its note-off, so none can stick.

All of the agent's (and the MIDI-thru) note traffic goes through a ledger. ``close_all`` sends a
note-off for each open note, then All Notes Off (CC 123) and All Sound Off (CC 120) on every
channel the ledger has used: shutdown, mode changes, model swaps and panic call it.
"""

from __future__ import annotations

from live_agent.protocols import NoteSink

ALL_SOUND_OFF = 120
ALL_NOTES_OFF = 123
NOTE_OFF_STATUS = 0x80
NOTE_ON_STATUS = 0x90


class NoteLedger:
    """Sends notes through ``sink`` and remembers which (channel, pitch) are sounding."""

    def __init__(self, sink: NoteSink) -> None:
        self.sink = sink
        self.open_notes: dict[tuple[int, int], int] = {}
        """(channel, pitch) -> how many note-ons are open (a re-struck key counts twice)."""
        self.channels_used: set[int] = set()
        self.notes_sent = 0

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        key = (channel, pitch)
        self.sink.note_on(channel, pitch, velocity)
        self.open_notes[key] = self.open_notes.get(key, 0) + 1
        self.channels_used.add(channel)
        self.notes_sent += 1

    def note_off(self, channel: int, pitch: int) -> None:
        """Release a note; a note that is not open is released anyway (harmless, and safe)."""
        key = (channel, pitch)
        self.sink.note_off(channel, pitch)
        count = self.open_notes.pop(key, 0)
        if count > 1:
            self.open_notes[key] = count - 1

    def forward(self, data: tuple[int, ...]) -> None:
        """Send a validated channel message as is (MIDI thru), keeping track of its notes."""
        status = data[0] & 0xF0
        channel = data[0] & 0x0F
        if status == NOTE_ON_STATUS and data[2] > 0:
            key = (channel, data[1])
            self.open_notes[key] = self.open_notes.get(key, 0) + 1
            self.channels_used.add(channel)
        elif status in (NOTE_OFF_STATUS, NOTE_ON_STATUS):
            key = (channel, data[1])
            count = self.open_notes.pop(key, 0)
            if count > 1:
                self.open_notes[key] = count - 1
        self.sink.send(data)

    def is_open(self, channel: int, pitch: int) -> bool:
        return (channel, pitch) in self.open_notes

    def close_all(self, extra_channels: tuple[int, ...] = ()) -> int:
        """Note-off every open note (once per open note-on), then CC 123 and CC 120.

        Returns how many note-offs were sent.
        """
        sent = 0
        for (channel, pitch), count in sorted(self.open_notes.items()):
            for _ in range(count):
                self.sink.note_off(channel, pitch)
                sent += 1
        self.open_notes.clear()
        for channel in sorted(self.channels_used | set(extra_channels)):
            self.sink.control_change(channel, ALL_NOTES_OFF, 0)
            self.sink.control_change(channel, ALL_SOUND_OFF, 0)
        return sent

    def release_notes(self) -> int:
        """Note-off every open note, without the channel-wide CCs; returns how many."""
        sent = 0
        for (channel, pitch), count in sorted(self.open_notes.items()):
            for _ in range(count):
                self.sink.note_off(channel, pitch)
                sent += 1
        self.open_notes.clear()
        return sent
