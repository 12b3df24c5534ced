"""``--record session.mid``: both parts of a session, on separate tracks, written with mido.

``Recorder`` collects timestamped messages (player input as received, agent output as sent);
``RecordingSink`` wraps a NoteSink and records what goes through it. ``write`` converts the
nanosecond times into ticks at the session's tempo, so the file plays back as it was heard.
"""

from __future__ import annotations

from pathlib import Path

from exports.midi import CONTROL_CHANGE, NOTE_OFF, NOTE_ON
from live_agent.protocols import Clock, NoteSink

TICKS_PER_BEAT = 480
PLAYER = "player"
AGENT = "agent"


class Recorder:
    """Timestamped messages of two parts; ``origin_ns`` is time zero of the file."""

    def __init__(self, bpm: float, origin_ns: int | None = None) -> None:
        self.bpm = bpm
        self.origin_ns = origin_ns
        self.parts: dict[str, list[tuple[int, tuple[int, ...]]]] = {PLAYER: [], AGENT: []}

    def add(self, part: str, time_ns: int, data: tuple[int, ...]) -> None:
        if self.origin_ns is None:
            self.origin_ns = time_ns
        self.parts[part].append((time_ns, tuple(data)))

    def write(self, path: str | Path, names: dict[str, str] | None = None) -> Path:
        """Write a type-1 MIDI file: a tempo track, then one track per part. Returns the path."""
        import mido

        names = names or {PLAYER: "player", AGENT: "deepjam"}
        origin = self.origin_ns or 0
        tempo = mido.bpm2tempo(self.bpm)
        ticks_per_ns = TICKS_PER_BEAT * self.bpm / 60e9
        midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        conductor = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)])
        midi.tracks.append(conductor)
        for part in (PLAYER, AGENT):
            track = mido.MidiTrack([mido.MetaMessage("track_name", name=names[part], time=0)])
            last_tick = 0
            for time_ns, data in sorted(self.parts[part], key=lambda item: item[0]):
                tick = max(0, round((time_ns - origin) * ticks_per_ns))
                message = mido.Message.from_bytes(list(data))
                track.append(message.copy(time=max(0, tick - last_tick)))
                last_tick = max(last_tick, tick)
            midi.tracks.append(track)
        path = Path(path)
        midi.save(str(path))
        return path


class RecordingSink:
    """A NoteSink that records everything it passes on to ``sink`` as the agent's part."""

    def __init__(self, sink: NoteSink, recorder: Recorder, clock: Clock) -> None:
        self.sink = sink
        self.recorder = recorder
        self.clock = clock

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        self.sink.note_on(channel, pitch, velocity)
        self.recorder.add(AGENT, self.clock.now_ns(), (NOTE_ON | channel, pitch, velocity))

    def note_off(self, channel: int, pitch: int) -> None:
        self.sink.note_off(channel, pitch)
        self.recorder.add(AGENT, self.clock.now_ns(), (NOTE_OFF | channel, pitch, 0))

    def control_change(self, channel: int, control: int, value: int) -> None:
        self.sink.control_change(channel, control, value)
        self.recorder.add(AGENT, self.clock.now_ns(), (CONTROL_CHANGE | channel, control, value))

    def send(self, data: tuple[int, ...]) -> None:
        # MIDI thru: the player's own notes, already on the player's track.
        self.sink.send(data)


class SilentSink:
    """A NoteSink with no port (offline answers, benchmarks): a RecordingSink around it keeps
    what is sent."""

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        pass

    def note_off(self, channel: int, pitch: int) -> None:
        pass

    def control_change(self, channel: int, control: int, value: int) -> None:
        pass

    def send(self, data: tuple[int, ...]) -> None:
        pass
