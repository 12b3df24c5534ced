"""The options of a live session, shared by ``deepjam jam`` and ``deepjam answer``.

``JamOptions`` is the one place they are defined; ``add_jam_arguments`` puts them on an
argparse parser (field docstrings become the ``--help``) and ``options_from_args`` reads them
back, validated, so both commands accept exactly the same flags.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path

from exports.errors import ConfigError
from exports.midi import MAX_DATA, MIDI_CHANNELS
from exports.selection import DEFAULT_TEMPERATURE
from exports.spec import GRID_STEPS_PER_BEAT
from exports.tonality import KEY_AUTO, parse_key
from exports.turns import DEFAULT_ANSWER_BARS_MAX

MODES = ("answer", "duet")
CLOCK_SOURCES = ("auto", "internal", "midi", "player", "link")


@dataclass
class JamOptions:
    """How the agent plays. Channels are 0-based here; the CLI shows 1..16."""

    mode: str = "answer"
    """answer: wait for the player's phrase to end, then answer it; duet: play along, leaving the
    player room (a share of their sounding time, its own register) and silent when they stop."""
    bpm: float = 120.0
    """Tempo of the 16th-note grid when the clock is internal (and until another is heard),
    beats per minute."""
    clock: str = "auto"
    """auto: MIDI clock when it arrives, else the player's beat once heard, else --bpm; internal:
    own tempo (--bpm); midi: follow MIDI clock (24 ppqn) and start/stop from the input; player:
    the player's beat (tempo and phase from their onsets), --bpm until it is locked; link: join
    the Ableton Link session (its tempo, beat and bar; --bpm while no other peer is there)."""
    temperature: float = DEFAULT_TEMPERATURE
    """Softmax temperature over Q-values; 0 = always the best action (greedy)."""
    density: float = 1.0
    """Chance, 0..1, that the agent may start a note on a step (1 = as the model likes); in
    duet also the room it takes: it sounds in at most 40% x density of the player's sounding
    time."""
    key: str = KEY_AUTO
    """The key the agent answers in: auto (judged from each call, the whole phrase) or a key
    that holds for the session, e.g. "A minor", Eb, "F# minor", Bbm."""
    register_shift: int = 0
    """Semitones added to every agent note (a live control moves it by octaves)."""
    register_low: int = 36
    """Lowest MIDI pitch the agent may play (after the register shift)."""
    register_high: int = 96
    """Highest MIDI pitch the agent may play (after the register shift)."""
    channel: int = 0
    """MIDI channel the agent plays on, 1..16 (0-based inside deepjam)."""
    input_channel: int | None = None
    """Listen only to this input channel, 1..16; unset: all channels."""
    thru: bool = False
    """Forward the player's notes to the output too."""
    answer_bars: int | None = None
    """answer mode: fix the answer's length in bars; unset: as many bars as the call (it
    stops early when the player resumes)."""
    answer_bars_max: int = DEFAULT_ANSWER_BARS_MAX
    """answer mode: the longest answer, in bars."""
    duet_bars: int = 4
    """duet mode: phrase length in bars (progress runs over it; the key frame moves between)."""
    velocity: int | None = None
    """Velocity of the agent's notes, 1..127; unset: follow the player's dynamics."""
    duet_wait_notes: int = 4
    """duet mode: the player's notes heard before the agent plays along (0: from the start)."""
    max_hold_bars: float = 2.0
    """No agent note is held longer than this many bars, whatever the model chooses."""
    held_timeout_steps: int = 256
    """A player note held this long without a note-off is taken as lost (stuck) and dropped."""
    seed: int | None = None
    """Seed of the sampler (temperature, density); unset: a fresh one each run."""
    controls: Path | None = None
    """TOML file of CC mappings; unset: the packaged live_agent/controls.toml."""
    record: Path | None = None
    """Write both parts to this MIDI file when the session ends."""

    def __post_init__(self) -> None:
        self.validate()

    @property
    def fixed_key(self) -> tuple[int, bool] | None:
        """(tonic pitch class, minor) fixed by ``key``; None for auto."""
        return parse_key(self.key)

    @property
    def step_ns(self) -> int:
        """Length of one 16th-note step at ``bpm``, nanoseconds."""
        return round(60e9 / self.bpm / GRID_STEPS_PER_BEAT)

    def validate(self) -> None:
        """Raise ConfigError (one line: the value, the rule) when a value is out of range."""
        checks: list[tuple[bool, str]] = [
            (self.mode in MODES, f"mode must be one of {MODES}, got {self.mode!r}"),
            (
                self.clock in CLOCK_SOURCES,
                f"clock must be one of {CLOCK_SOURCES}, got {self.clock!r}",
            ),
            (20.0 <= self.bpm <= 400.0, f"bpm must be within 20..400, got {self.bpm}"),
            (
                0.0 <= self.temperature <= 10.0,
                f"temperature must be within 0..10, got {self.temperature}",
            ),
            (0.0 <= self.density <= 1.0, f"density must be within 0..1, got {self.density}"),
            (
                -48 <= self.register_shift <= 48,
                f"register shift must be within -48..48 semitones, got {self.register_shift}",
            ),
            (
                0 <= self.register_low <= self.register_high <= MAX_DATA,
                f"register limits must satisfy 0 <= low <= high <= 127, got {self.register_low}..{self.register_high}",
            ),
            (0 <= self.channel < MIDI_CHANNELS, f"channel must be 1..16, got {self.channel + 1}"),
            (
                self.input_channel is None or 0 <= self.input_channel < MIDI_CHANNELS,
                f"input channel must be 1..16, got {None if self.input_channel is None else self.input_channel + 1}",
            ),
            (
                self.answer_bars is None or 1 <= self.answer_bars <= 64,
                f"answer bars must be within 1..64, got {self.answer_bars}",
            ),
            (
                1 <= self.answer_bars_max <= 64,
                f"answer bars max must be within 1..64, got {self.answer_bars_max}",
            ),
            (1 <= self.duet_bars <= 64, f"duet bars must be within 1..64, got {self.duet_bars}"),
            (
                self.velocity is None or 1 <= self.velocity <= MAX_DATA,
                f"velocity must be within 1..127, got {self.velocity}",
            ),
            (
                0 <= self.duet_wait_notes <= 64,
                f"duet wait must be within 0..64 notes, got {self.duet_wait_notes}",
            ),
            (
                0.25 <= self.max_hold_bars <= 64,
                f"max hold must be within 0.25..64 bars, got {self.max_hold_bars}",
            ),
            (
                self.held_timeout_steps >= 1,
                f"held timeout must be >= 1 step, got {self.held_timeout_steps}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        parse_key(self.key)  # ConfigError (one line: what is accepted) for a key it cannot read


ONE_BASED = ("channel", "input_channel")
"""Fields that are 0-based inside and 1..16 on the command line."""


def field_docs(cls: type) -> dict[str, str]:
    """Each dataclass field's docstring (the string literal right under it), white space folded:
    what ``--help`` shows for it."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _value_type(annotation: str) -> type:
    """``'int | None'`` -> int: the type a flag's text is parsed with."""
    name = annotation.replace(" | None", "").strip()
    return {"int": int, "float": float, "str": str, "Path": Path}[name]


def add_jam_arguments(
    parser: argparse.ArgumentParser, *, bpm_default: float | None = 120.0
) -> None:
    """Add one flag per JamOptions field to ``parser`` (``--register-low`` for
    ``register_low``), with the field's docstring as its help; channels are 1-based here."""
    defaults = JamOptions()
    docs = field_docs(JamOptions)
    choices = {"mode": MODES, "clock": CLOCK_SOURCES}
    group = parser.add_argument_group("playing")
    for field in dataclasses.fields(JamOptions):
        flag = "--" + field.name.replace("_", "-")
        help_text = docs[field.name].replace("%", "%%")
        default = getattr(defaults, field.name)
        if field.name == "bpm":
            default = bpm_default
        if field.name in ONE_BASED and default is not None:
            default += 1
        if isinstance(default, bool) or field.type == "bool":
            group.add_argument(flag, action="store_true", help=help_text)
            continue
        group.add_argument(
            flag,
            type=_value_type(str(field.type)),
            default=default,
            choices=choices.get(field.name),
            help=help_text,
        )


def options_from_args(args: argparse.Namespace, **overrides: object) -> JamOptions:
    """JamOptions from parsed ``add_jam_arguments`` flags; raises ConfigError on a bad value."""
    values: dict[str, object] = {}
    for field in dataclasses.fields(JamOptions):
        value = getattr(args, field.name)
        if field.name in ONE_BASED and value is not None:
            value -= 1
        values[field.name] = value
    if values["bpm"] is None:
        values["bpm"] = JamOptions.bpm
    values.update(overrides)
    return JamOptions(**values)  # type: ignore[arg-type]
