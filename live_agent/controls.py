"""Live controls over MIDI: control changes move temperature, density, register and mode, and
trigger panic; program change N swaps the model to slot N.

The mapping comes from a TOML file (the packaged ``live_agent/controls.toml`` by default).
``ControlMap.apply`` turns one CC into a ``ControlAction`` that the session carries out on its
own thread. ``ModelSlots`` loads a slot's model on a background thread (an ONNX session takes
milliseconds to build, too long for the scheduler) and hands it to ``Session.swap_policy``.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from exports.midi import MAX_DATA, SEMITONES_PER_OCTAVE

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from exports.errors import ConfigError, DeepjamError
from live_agent.protocols import Policy

CENTER = 64
MODE_MESSAGES = 2
"""The mode CC must say the same side this many times in a row, and stand for a beat, to
switch the mode (a knob or fader turned past the middle sends a stream of values; one stray
message is not a musician's choice)."""


class ControlAction(NamedTuple):
    """What a CC asks for: ``name`` in temperature, density, register_shift, mode, panic."""

    name: str
    value: float | int | str


@dataclass(frozen=True)
class RangeControl:
    cc: int
    low: float
    high: float

    def scale(self, value: int) -> float:
        """CC value 0..127 -> low..high, linearly."""
        return self.low + (self.high - self.low) * value / MAX_DATA


@dataclass
class ControlMap:
    """CC number -> control. ``channel`` None: the session decides (``--input-channel``, else
    channel 1; ``Session.control_channel``), never from the notes it hears."""

    channel: int | None = None
    temperature: RangeControl | None = field(default_factory=lambda: RangeControl(74, 0.0, 1.5))
    density: RangeControl | None = field(default_factory=lambda: RangeControl(71, 0.0, 1.0))
    register: RangeControl | None = field(default_factory=lambda: RangeControl(76, -2, 2))
    mode_cc: int | None = 77
    panic_cc: int | None = 119
    model_slots: dict[int, Path] = field(default_factory=dict)

    def apply(self, control: int, value: int) -> ControlAction | None:
        """The action a CC asks for, or None when it is not mapped. The session checks the
        channel first (``Session.control_channel``)."""
        if self.temperature is not None and control == self.temperature.cc:
            return ControlAction("temperature", self.temperature.scale(value))
        if self.density is not None and control == self.density.cc:
            return ControlAction("density", self.density.scale(value))
        if self.register is not None and control == self.register.cc:
            octaves = round(self.register.scale(value))
            return ControlAction("register_shift", SEMITONES_PER_OCTAVE * octaves)
        if control == self.mode_cc:
            return ControlAction("mode", "answer" if value < CENTER else "duet")
        if control == self.panic_cc and value >= CENTER:
            return ControlAction("panic", value)
        return None


def _cc(table: dict[str, Any], name: str, source: str) -> int:
    cc = table.get("cc")
    if not isinstance(cc, int) or not 0 <= cc <= MAX_DATA:
        raise ConfigError(f"{source}: [{name}] cc must be a number 0..127, got {cc!r}")
    return cc


def _range(table: dict[str, Any] | None, name: str, source: str) -> RangeControl | None:
    if table is None:
        return None
    low, high = table.get("min", 0.0), table.get("max", 1.0)
    if not isinstance(low, int | float) or not isinstance(high, int | float):
        raise ConfigError(f"{source}: [{name}] min and max must be numbers, got {low!r}, {high!r}")
    return RangeControl(_cc(table, name, source), float(low), float(high))


def packaged_models_dir() -> Path:
    """The folder of the shipped models (``live_agent/models``)."""
    return Path(str(resources.files("live_agent").joinpath("models")))


def slot_path(value: str, base: Path) -> Path:
    """Where a ``[models]`` entry points: an absolute path as it is; a relative one inside
    ``base`` (the controls file's folder), else, when no such file is there, among the shipped
    models (so a copy of the packaged file still finds ``folk.onnx``)."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    if (base / path).is_file():
        return base / path
    shipped = packaged_models_dir() / path
    return shipped if shipped.is_file() else base / path


def load_controls(path: Path | None = None) -> ControlMap:
    """Read a controls TOML file (None: the packaged default); raises ConfigError when invalid."""
    if path is None:
        text = resources.files("live_agent").joinpath("controls.toml").read_text()
        source = "packaged controls.toml"
        base = packaged_models_dir()
    else:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise ConfigError(
                f"cannot read controls file {str(path)!r}: {err.strerror}; check the path"
            ) from err
        source, base = str(path), Path(path).parent
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source} is not valid TOML ({err}); fix the file") from err
    channel = data.get("channel", 0)
    if not isinstance(channel, int) or not 0 <= channel <= 16:
        raise ConfigError(
            f"{source}: channel must be 0 (--input-channel, else channel 1) or 1..16, "
            f"got {channel!r}"
        )
    slots: dict[int, Path] = {}
    for key, value in data.get("models", {}).items():
        if not str(key).isdigit() or not 0 <= int(key) <= MAX_DATA or not isinstance(value, str):
            raise ConfigError(
                f'{source}: [models] entries must be 0..127 = "file.onnx", got {key} = {value!r}'
            )
        slots[int(key)] = slot_path(value, base)
    mode = data.get("mode")
    panic = data.get("panic")
    return ControlMap(
        channel=None if channel == 0 else channel - 1,
        temperature=_range(data.get("temperature"), "temperature", source),
        density=_range(data.get("density"), "density", source),
        register=_range(data.get("register"), "register", source),
        mode_cc=None if mode is None else _cc(mode, "mode", source),
        panic_cc=None if panic is None else _cc(panic, "panic", source),
        model_slots=slots,
    )


class ModelSlots:
    """Program change -> load that slot's model off the scheduler thread, then hand it over.

    ``loader`` is ``exports.model_file.load_model`` in real use; ``on_loaded`` is
    ``Session.swap_policy``. Loads run on one worker thread of their own, so a program change
    costs the scheduler thread only a queue put. A slot with no model, or a model that fails to
    load, is reported as one line through ``on_error`` and play goes on with the current model;
    a switch is reported through ``on_info``. When program changes come faster than models
    load, the latest one wins (the ones queued before it are skipped).
    """

    def __init__(
        self,
        slots: dict[int, Path],
        loader: Callable[[Path], Policy],
        on_loaded: Callable[[Policy], None],
        on_error: Callable[[str], None] = lambda message: None,
        on_info: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.slots = slots
        self.loader = loader
        self.on_loaded = on_loaded
        self.on_error = on_error
        self.on_info = on_info
        self.switches = 0
        """Models handed over so far."""
        self._lock = threading.Lock()
        self._latest = 0
        self._pending = 0
        self._idle = threading.Event()
        self._idle.set()
        self._requests: queue.SimpleQueue[tuple[int, Path, int] | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="deepjam-model-slots", daemon=True)
        self._worker.start()

    def listing(self) -> str:
        """The slots in one line: ``0 folk.onnx, 1 chorale.onnx``."""
        return ", ".join(f"{n} {p.name}" for n, p in sorted(self.slots.items())) or "none"

    def program_change(self, program: int) -> bool:
        """Queue loading slot ``program``; False (and one line to ``on_error``) when no model
        is mapped to it. Cheap: called on the scheduler thread."""
        path = self.slots.get(program)
        if path is None:
            self.on_error(
                f"program change {program}: no style in slot {program} (slots: "
                f"{self.listing()}); keeping the current style"
            )
            return False
        with self._lock:
            self._latest += 1
            self._pending += 1
            self._idle.clear()
            ticket = self._latest
        self._requests.put((program, path, ticket))
        return True

    def _run(self) -> None:
        while (request := self._requests.get()) is not None:
            try:
                if request[2] == self._latest:  # a later program change supersedes this one
                    self._load(*request)
            finally:
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.set()

    def _load(self, program: int, path: Path, ticket: int) -> None:
        try:
            policy = self.loader(path)
        except DeepjamError as err:
            self.on_error(f"program change {program}: {err}; keeping the current style")
            return
        if ticket != self._latest:  # superseded while it loaded
            return
        self.on_loaded(policy)
        self.switches += 1
        metadata = getattr(policy, "metadata", None)
        name = getattr(metadata, "style_name", "") or path.stem
        self.on_info(f"program change {program}: now playing the {name!r} style ({path.name})")

    def join(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued program change is done; False on timeout."""
        return self._idle.wait(timeout_s)

    def close(self) -> None:
        """Stop the worker thread (after the loads queued so far)."""
        self._requests.put(None)


def check_slots(slots: dict[int, Path], loader: Callable[[Path], Policy]) -> None:
    """Load each slot's model once, at the start of a jam, so that a missing file or one that is
    not a deepjam model is one line then, not a surprise at its program change; raises
    ConfigError naming the first such slot."""
    for program, path in sorted(slots.items()):
        try:
            loader(path)
        except DeepjamError as err:
            raise ConfigError(
                f"controls: [models] slot {program} cannot be played ({err}); fix that entry "
                "or remove it"
            ) from err


def file_mtime_ns(path: Path) -> int | None:
    """The file's ``st_mtime_ns``; None when it cannot be read (missing, no permission)."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class ModelWatcher:
    """Hot swap on file change: polls a model file's modification time on its own thread and,
    when it changes (e.g. ``deepjam export`` wrote a new version), loads it and hands it over.

    ``start()`` / ``stop()``; a file that fails to load is reported through ``on_error`` and
    the current model plays on. Polling (every ``interval_s``) needs no extra package.
    ``loaded_mtime_ns`` is the file's ``st_mtime_ns`` when the playing model was loaded (default:
    now).
    """

    def __init__(
        self,
        path: Path,
        loader: Callable[[Path], Policy],
        on_loaded: Callable[[Policy], None],
        on_error: Callable[[str], None] = lambda message: None,
        interval_s: float = 0.5,
        loaded_mtime_ns: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.loader = loader
        self.on_loaded = on_loaded
        self.on_error = on_error
        self.interval_s = interval_s
        self.swaps = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The stamp of the file as it was when the playing model was read from it, so a new
        # version written between that load and this watcher's start is still seen.
        self._stamp = self._mtime() if loaded_mtime_ns is None else loaded_mtime_ns

    def _mtime(self) -> int | None:
        return file_mtime_ns(self.path)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="deepjam-model-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def poll(self) -> bool:
        """Check once; True when a changed file was loaded and handed over."""
        stamp = self._mtime()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            policy = self.loader(self.path)
        except DeepjamError as err:
            self.on_error(f"{self.path} changed but cannot be used: {err}")
            return False
        self.on_loaded(policy)
        self.swaps += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()
