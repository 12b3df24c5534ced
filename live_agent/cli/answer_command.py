"""``deepjam answer call.mid -o answer.mid``: answer a recorded call, offline, through the live code.

The call is fed to the same ``Session`` that ``deepjam jam`` runs, as timestamped input on a
fake clock that jumps from deadline to deadline (as fast as the CPU allows), so what you hear here
is what the live agent would have played: the call's notes arrive with the file's own velocities,
so the answer's dynamics follow the call's as they do live. The output has the call and the
answer on their own tracks; ``--render`` makes a WAV with FluidSynth, ``--plot`` a piano roll.
``answer_call`` is that path as a function (benchmarks and tests answer calls through it).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from exports.midi import NOTE_OFF, NOTE_ON, key_name
from live_agent.cli.help_format import DefaultsHelpFormatter
from live_agent.cli.model_path import resolve_model_path
from live_agent.options import add_jam_arguments
from live_agent.recording import SilentSink

if TYPE_CHECKING:
    from live_agent.engine import Session, SessionStats
    from live_agent.options import JamOptions
    from live_agent.protocols import Policy
    from live_agent.recording import Recorder

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RENDER_RATE_HZ = 48000
DEFAULT_BPM = 120.0
CALL_NOTE_VELOCITY = 90
"""A call note's velocity where none is given (the file's own are used)."""
RENDER_PEAK_DBFS = -1.0
"""Renders are normalised to this peak: FluidSynth's own level peaks near -27 dBFS."""
RENDER_TAIL_S = 0.5
"""Release kept after the last audible sample of a render (FluidSynth adds seconds of silence)."""
RENDER_SILENCE_LEVEL = 64
"""A 16-bit sample at or below this (-54 dBFS, after normalising) is silence: FluidSynth's
render ends in a floor of a few LSB that normalising lifts to ~20 (seen: 19 for 8 s)."""
LIVE_ONLY_FLAGS = ("clock", "thru", "input_channel", "controls")
"""jam flags that mean nothing for a file (no clock, no thru port, no CCs): hidden here."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "answer",
        formatter_class=DefaultsHelpFormatter,
        help="answer a recorded call (a MIDI file) offline, through the live code path",
        description="Feed CALL to the live agent on a fast clock and write the call and the "
        "agent's answer as a two-track MIDI file.",
    )
    parser.add_argument("call", type=Path, help="MIDI file with the call (its top line is used)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="MIDI file to write")
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="ONNX model from `deepjam export` (default: the packaged live_agent/models/default.onnx)",
    )
    parser.add_argument("--render", type=Path, default=None, help="also render a WAV (FluidSynth)")
    parser.add_argument("--plot", type=Path, default=None, help="also draw a piano roll (PNG)")
    add_jam_arguments(parser, bpm_default=None)
    for action in parser._actions:
        if action.dest in LIVE_ONLY_FLAGS:
            action.help = argparse.SUPPRESS
    for action in parser._actions:
        if action.dest == "bpm":
            action.help = "tempo, beats per minute (default: the call file's tempo, else 120)"
    parser.set_defaults(func=run)


def call_tempo_bpm(path: Path) -> float:
    """The first tempo of a MIDI file, or 120 bpm when it has none (or cannot say)."""
    import mido

    try:
        midi = mido.MidiFile(str(path))
    except (OSError, ValueError, EOFError):
        return DEFAULT_BPM
    for track in midi.tracks:
        for message in track:
            if message.type == "set_tempo":
                return float(mido.tempo2bpm(message.tempo))
    return DEFAULT_BPM


class Answered(NamedTuple):
    """A call answered through the live Session (``answer_call``)."""

    session: Session
    recorder: Recorder
    stats: SessionStats
    answer: list[tuple[int, int, int]]
    """(start_step, duration_steps, pitch) of the agent's notes, from the recording."""


def answer_call(
    policy: Policy,
    options: JamOptions,
    notes: Sequence[tuple[int, int, int]],
    velocities: Sequence[int] | None = None,
) -> Answered:
    """Answer ``notes`` ((start_step, duration_steps, pitch), from step 0) offline: they reach
    the same ``Session`` that ``deepjam jam`` runs, as note-on/note-off input on a fake clock
    that jumps from deadline to deadline, with ``velocities`` (one per note, 1..127; None:
    ``CALL_NOTE_VELOCITY`` each). Runs until the answer (or the duet's bar) is over."""
    import queue
    import threading

    from live_agent.clock import FakeClock
    from live_agent.engine import Session
    from live_agent.protocols import InputEvent
    from live_agent.recording import Recorder

    if velocities is None:
        velocities = [CALL_NOTE_VELOCITY] * len(notes)
    step_ns = options.step_ns
    inbox: queue.SimpleQueue[InputEvent | None] = queue.SimpleQueue()
    timed = []
    for (start, duration, pitch), velocity in zip(notes, velocities, strict=True):
        timed.append(((start + duration) * step_ns, 0, (NOTE_OFF, pitch, 0)))
        timed.append((start * step_ns, 1, (NOTE_ON, pitch, velocity)))
    for time_ns, _, data in sorted(timed):  # a release before a re-attack on the same step
        inbox.put(InputEvent(time_ns, data))

    call_end = max(start + duration for start, duration, _ in notes)
    steps_per_bar = policy.spec.steps_per_bar
    if options.mode == "answer":
        answer_bars = options.answer_bars or options.answer_bars_max
        until = call_end + 2 * steps_per_bar + answer_bars * steps_per_bar + 1
    else:
        until = -(-call_end // steps_per_bar) * steps_per_bar + 1
    clock = FakeClock()
    recorder = Recorder(options.bpm, origin_ns=0)
    session = Session(policy, options, SilentSink(), clock, inbox, recorder=recorder)
    stats = session.run(threading.Event(), until_step=until, start_ns=0)
    return Answered(session, recorder, stats, answer_notes(recorder, step_ns))


def run(args: argparse.Namespace) -> int:
    from exports.errors import ConfigError
    from exports.extras import require_extra
    from exports.grid import note_list
    from exports.midi_files import read_melody, read_melody_velocities
    from exports.model_file import load_model
    from exports.paths import output_file
    from live_agent.options import options_from_args
    from live_agent.recording import AGENT, PLAYER

    # Everything this run needs is checked before anything is written.
    # The file's tempo is held to what the grid can play; the user's is refused when out of
    # range, as jam does.
    file_bpm = args.bpm is None
    bpm = min(400.0, max(20.0, call_tempo_bpm(args.call))) if file_bpm else args.bpm
    options = options_from_args(args, bpm=bpm, clock="internal")
    output_file(args.output, "-o")
    for flag, path in (("--plot", args.plot), ("--render", args.render), ("--record", args.record)):
        if path is not None:
            output_file(path, flag)
    if args.plot is not None:
        require_extra("plot", "--plot")
    if args.render is not None:
        check_renderer()
    policy = load_model(resolve_model_path(args.model))
    events = read_melody(args.call)  # MidiFileError (one line) when unreadable
    notes = note_list(events)
    if not notes:
        raise ConfigError(f"{args.call} has no notes to answer; expected a melody")
    on_steps = read_melody_velocities(args.call)  # the velocity of the note kept at each onset
    velocities = [int(on_steps[start]) or CALL_NOTE_VELOCITY for start, _, _ in notes]
    answered = answer_call(policy, options, notes, velocities)
    session, stats, answer = answered.session, answered.stats, answered.answer
    answered.recorder.write(args.output, names={PLAYER: "call", AGENT: "answer"})
    if options.record is not None:  # the jam option, honoured here too: the same two tracks
        answered.recorder.write(options.record, names={PLAYER: "call", AGENT: "answer"})

    decider = session.decider
    key = key_name(*decider.played_key)
    key += " (fixed by --key)" if decider.fixed_key is not None else ""
    call_end = max(start + duration for start, duration, _ in notes)
    steps_per_bar = policy.spec.steps_per_bar
    first = f", from step {answer[0][0]}" if answer else ""
    print(
        f"{args.output}: call {len(notes)} notes ({call_end} steps), answer {len(answer)} notes"
        f"{first}; key {key}; {options.mode} mode, {options.bpm:g} bpm, temperature "
        f"{options.temperature:g}; {stats.decisions} decisions"
    )
    if not answer:
        print(
            "deepjam answer: the model played nothing (all HOLD/REST); try a higher "
            "--temperature or --density 1",
            file=sys.stderr,
        )
    if args.plot is not None:
        plot_piano_roll(args.plot, notes, answer, steps_per_bar, title=args.call.name)
        print(f"{args.plot}: piano roll")
    if args.render is not None:
        render_wav(args.output, args.render)
        print(
            f"{args.render}: rendered with FluidSynth at {RENDER_RATE_HZ} Hz, "
            f"peak {RENDER_PEAK_DBFS:g} dBFS"
        )
    return 0


def answer_notes(recorder: Recorder, step_ns: int) -> list[tuple[int, int, int]]:
    """(start_step, duration_steps, pitch) of the agent's notes, from the recording."""
    from live_agent.recording import AGENT

    started: dict[int, int] = {}
    notes = []
    for time_ns, data in recorder.parts[AGENT]:
        status, pitch = data[0] & 0xF0, data[1] if len(data) > 1 else 0
        if status == NOTE_ON and data[2] > 0:
            started[pitch] = time_ns
        elif status in (NOTE_OFF, NOTE_ON) and pitch in started:
            begin = started.pop(pitch)
            notes.append((begin // step_ns, max(1, round((time_ns - begin) / step_ns)), pitch))
    return sorted(notes)


def check_renderer() -> None:
    """ConfigError (one line, with the fix) when FluidSynth or its soundfont is missing."""
    from exports.errors import ConfigError

    if shutil.which("fluidsynth") is None:
        raise ConfigError(
            "--render needs FluidSynth, which is not installed; install it "
            "(apt-get install fluidsynth fluid-soundfont-gm) or leave out --render"
        )
    if not SOUNDFONT.is_file():
        raise ConfigError(
            f"--render needs the General MIDI soundfont {SOUNDFONT}, which is missing; install it "
            "(apt-get install fluid-soundfont-gm) or leave out --render"
        )


def render_wav(midi_path: Path, wav_path: Path) -> None:
    """Render ``midi_path`` to ``wav_path`` with FluidSynth (no audio device needed)."""
    from exports.errors import ConfigError

    check_renderer()
    command = [
        "fluidsynth",
        "-ni",
        "-F",
        str(wav_path),
        "-r",
        str(RENDER_RATE_HZ),
        str(SOUNDFONT),
        str(midi_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or not wav_path.is_file():
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise ConfigError(
            f"fluidsynth could not render {midi_path} (exit {result.returncode}: "
            f"{reason[-1] if reason else 'no output'}); run it by hand: {' '.join(command)}"
        )
    normalise_wav(wav_path, RENDER_PEAK_DBFS)


def normalise_wav(path: Path, peak_dbfs: float) -> float:
    """Scale a 16-bit PCM WAV in place so that its peak is ``peak_dbfs``, and cut its silent tail
    (FluidSynth renders seconds past the last note) to ``RENDER_TAIL_S`` of release; returns the
    gain in dB (0 for a silent file, which is left as it is)."""
    import wave

    import numpy as np

    with wave.open(str(path), "rb") as reader:
        params = reader.getparams()
        frames = reader.readframes(params.nframes)
    if params.sampwidth != 2:
        return 0.0  # FluidSynth writes 16-bit by default; leave any other format untouched
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak == 0.0:
        return 0.0
    full_scale = 32767.0
    gain = full_scale * 10 ** (peak_dbfs / 20) / peak
    scaled = np.clip(np.round(samples * gain), -32768, 32767).astype("<i2")
    by_frame = scaled.reshape(-1, params.nchannels)  # (frames, channels)
    audible = np.flatnonzero(np.abs(by_frame).max(axis=1) > RENDER_SILENCE_LEVEL)
    end = len(by_frame)
    if audible.size:
        end = min(end, int(audible[-1]) + 1 + int(RENDER_TAIL_S * params.framerate))
    with wave.open(str(path), "wb") as writer:
        writer.setparams(params)
        writer.writeframes(by_frame[:end].tobytes())
    return float(20 * np.log10(gain))


def plot_piano_roll(
    path: Path,
    call: list[tuple[int, int, int]],
    answer: list[tuple[int, int, int]],
    steps_per_bar: int,
    title: str,
) -> None:
    """The call and its answer as one piano roll (``exports.piano_roll``, as ``deepjam eval``
    draws them): the call in grey, the answer in colour after it, bar lines."""
    from exports.extras import require_extra
    from exports.grid import events_from_notes
    from exports.piano_roll import plot_piano_rolls

    require_extra("plot", "--plot")
    call_end = max((start + length for start, length, _ in call), default=0)
    split = min([call_end] + [start for start, _, _ in answer])
    answer_end = max((start + length for start, length, _ in answer), default=split)
    # (in duet mode the answer may start inside the call: the call is cut there)
    cut = [(s, min(n, split - s), p) for s, n, p in call if s < split]
    call_events = events_from_notes(cut, split)
    moved = [(start - split, length, pitch) for start, length, pitch in answer]
    answer_events = events_from_notes(moved, max(1, answer_end - split))
    plot_piano_rolls(
        [(call_events, answer_events)], path, [f"deepjam answer: {title}"], steps_per_bar
    )
