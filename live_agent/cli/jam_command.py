"""``deepjam jam``: play live, listening on a MIDI input and answering on a MIDI output.

Threads: rtmidi's input thread (timestamps and enqueues only), the session's scheduler thread
(decides and sends on the 16th grid), the port watchdog, and the main thread, which waits for
Ctrl-C / SIGTERM and then runs the one shutdown path, in ``finally``:

    gate the output (``session.notes.close_gate``: no new note-on, then every sounding note
    ended: note-offs, CC 123, CC 120, once) -> stop event -> sentinel on the inbox -> join the
    scheduler (timeout) -> close the ports. A scheduler that crashed has ended its notes in its
    own ``finally``; the command then exits 1.

The output gate is what keeps "all notes off within 50 ms of the signal" true even while the
scheduler sleeps towards its next step (up to a 16th, 125 ms at 120 bpm). A signal that lands
just before a step boundary is caught at the boundary: Python runs its handler in the main
thread only once that thread has the GIL (a millisecond or more while the scheduler spins
towards the boundary), but its C-level handler writes to the wakeup fd the moment the signal
lands; ``SignalLatch`` reads that fd before each note-on (the ledger's ``stop_asked``), so the
boundary's note-on is not sent and the gate closes there, on the scheduler thread.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from live_agent.cli.help_format import DefaultsHelpFormatter
from live_agent.cli.model_path import resolve_model_path
from live_agent.cli.summary import stop_summary
from live_agent.io.ports import API_CHOICES
from live_agent.options import add_jam_arguments

JOIN_TIMEOUT_S = 1.0
VIEW_REFRESH_S = 0.25
VIEW_CHOICES = ("auto", "terminal", "plain")
WEB_DEFAULT_PORT = 8765
BACKENDS = ("rtmidi", "jack-client")
GIL_SWITCH_INTERVAL_S = 0.0002
"""MIDI callbacks (rtmidi's and JACK-Client's) run Python in JACK's realtime thread and need the
GIL within a fraction of a period; with CPython's default 5 ms a busy scheduler thread makes
them miss cycles (xruns, duplicated and lost MIDI; docs/measurements.md)."""


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "jam",
        formatter_class=DefaultsHelpFormatter,
        help="play live: listen on a MIDI input, answer or play along on a MIDI output",
        description="Play live with a trained model. Name the ports to use with --input and "
        "--output (see `deepjam ports`), or pass --virtual to make ports 'deepjam in' and "
        "'deepjam out' for the sides not named, to patch in your DAW or JACK. Ctrl-C or SIGTERM "
        "stops it with every note released.",
    )
    ports = parser.add_argument_group("ports")
    ports.add_argument(
        "--model",
        type=Path,
        default=None,
        help="ONNX model from `deepjam export` (default: the packaged live_agent/models/default.onnx)",
    )
    ports.add_argument(
        "--input", default=None, help="MIDI input to listen to: a name or part of one"
    )
    ports.add_argument(
        "--output", default=None, help="MIDI output to play on: a name or part of one"
    )
    ports.add_argument(
        "--virtual",
        action="store_true",
        help="make virtual ports 'deepjam in' / 'deepjam out' for the sides not named",
    )
    ports.add_argument(
        "--synth",
        action="store_true",
        help="start FluidSynth with the General MIDI soundfont (JACK), play on it and send "
        "its sound to the system's playback; it stops when deepjam does",
    )
    ports.add_argument(
        "--api", choices=API_CHOICES, default="auto", help="MIDI system (default: auto, JACK first)"
    )
    ports.add_argument(
        "--backend",
        choices=BACKENDS,
        default="rtmidi",
        help="rtmidi (any --api; one client per port) or jack-client (JACK only: both ports in "
        "one client, notes placed to the frame; needs the JACK-Client package)",
    )
    ports.add_argument(
        "--no-watchdog", action="store_true", help="do not watch and reopen lost or dead ports"
    )
    add_jam_arguments(parser)
    parser.add_argument(
        "--view",
        choices=VIEW_CHOICES,
        default="auto",
        help="terminal: one screen updated in place (ports, tempo, key, controls, a piano roll "
        "of both parts); plain: log lines; auto: the screen on a terminal, else the log",
    )
    parser.add_argument(
        "--web",
        nargs="?",
        const=str(WEB_DEFAULT_PORT),
        default=None,
        metavar="PORT",
        help=f"also show the live view in a browser, at http://127.0.0.1:PORT/ (default port "
        f"{WEB_DEFAULT_PORT}; 0: any free one), with sliders and buttons that act as the "
        "controls' CCs do; it serves this machine only (127.0.0.1)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="also print the timing details at the end"
    )
    parser.set_defaults(func=run)


class SignalLatch:
    """Whether SIGINT or SIGTERM has landed, known the moment it does: Python's C-level signal
    handler writes the signal's number to the wakeup fd at once, from whichever thread the
    signal interrupted, while the Python-level handler waits for the main thread to run.
    Call it from any thread (a non-blocking read of a pipe, a few microseconds); ``close()``
    restores the previous wakeup fd. Install it from the main thread, after the handlers."""

    SIGNALS = frozenset((signal.SIGINT, signal.SIGTERM))

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        self.landed = False
        self._lock = threading.Lock()

    def __call__(self) -> bool:
        """True once SIGINT or SIGTERM has been delivered to this process."""
        if self.landed:
            return True
        with self._lock:
            try:
                data = os.read(self._read_fd, 64)
            except (BlockingIOError, OSError):
                return self.landed
            self.landed = self.landed or any(byte in self.SIGNALS for byte in data)
            return self.landed

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        os.close(self._read_fd)
        os.close(self._write_fd)


def _log(line: str) -> None:
    from live_agent.io.ports import log_line  # not lost while the watchdog probes (fd 2 hidden)

    log_line(f"deepjam jam: {line}")


def check_port_choice(input_name: str | None, output_name: str | None, virtual: bool) -> None:
    """Each side needs a port name, or --virtual; raises PortError (one line) otherwise."""
    from exports.errors import PortError

    missing = [
        flag for flag, name in (("--input", input_name), ("--output", output_name)) if not name
    ]
    if missing and not virtual:
        raise PortError(
            f"no {' or '.join(missing)} given: name the port (see `deepjam ports`), or pass "
            "--virtual to make 'deepjam in' / 'deepjam out' and connect them yourself"
        )


def own_port_name(api: int, client_name: str, port_name: str) -> str:
    """The name to connect to for a port deepjam made: ``client:port`` on JACK (what
    ``jack_connect`` takes), the port's own name elsewhere."""
    from live_agent.io.ports import api_ids, jack_port_name

    return jack_port_name(client_name, port_name) if api == api_ids()["jack"] else port_name


def port_report(
    api: int,
    wanted_input: str | None,
    wanted_output: str | None,
    in_name: str,
    out_name: str,
    own_in: str | None,
    own_out: str | None,
) -> list[str]:
    """The start-up lines about ports: the exact names, which side is connected already, and
    copy-pasteable connect commands for the side the user must patch."""
    from exports.errors import PortError
    from live_agent.io.ports import connect_lines, list_ports

    lines = []
    lines.append(
        f"listening on {own_in!r}: connect your keyboard to it"
        if own_in
        else f"listening on {in_name!r} (connected)"
    )
    lines.append(
        f"playing on {own_out!r}: connect it to a synth or a DAW track"
        if own_out
        else f"playing on {out_name!r} (connected)"
    )
    if own_in or own_out:
        try:
            seen = list_ports(api)
        except PortError:
            seen = None
        lines += [f"  {line}" for line in connect_lines(api, own_in, own_out, seen)]
    return lines


def use_terminal_view(choice: str) -> bool:
    """``--view auto``: the live view on a terminal, the plain log on anything else."""
    if choice == "plain":
        return False
    if choice == "terminal":
        return True
    return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"


def make_view(choice: str, snapshot_fn: Any) -> Any:
    """The terminal view drawing ``snapshot_fn()`` when ``--view`` asks for it (or, with
    ``auto``, on a TTY), else None (the plain log)."""
    if not use_terminal_view(choice):
        return None
    from live_agent.view.terminal import TerminalView

    return TerminalView(snapshot_fn)


def snapshot_source(
    session: Any,
    policy: Any,
    api: int,
    in_name: str,
    out_name: str,
    own_in: str | None,
    own_out: str | None,
) -> Any:
    """The one function that snapshots ``session`` for the views (terminal and browser)."""
    from live_agent.view.snapshot import PortState, take_snapshot

    connections = PortConnections(api)

    def snapshot() -> Any:
        ports = [
            PortState(
                "keyboard in", own_in or in_name, connections.connected(own_in) if own_in else True
            ),
            PortState(
                "deepjam out",
                own_out or out_name,
                connections.connected(own_out) if own_out else True,
            ),
        ]
        return take_snapshot(session, ports, policy.metadata.style_name)

    return snapshot


class PortConnections:
    """Whether deepjam's own JACK ports have a peer other than deepjam's own (the watchdog's
    probe), asked of ``jack_lsp`` at most every ``interval_s``; None (unknown) on other MIDI
    systems or without jack_lsp."""

    def __init__(self, api: int, interval_s: float = 2.0) -> None:
        from live_agent.io.ports import api_ids

        self.enabled = api == api_ids()["jack"] and shutil.which("jack_lsp") is not None
        self.interval_s = interval_s
        self._checked: dict[str, tuple[float, bool | None]] = {}

    def connected(self, port: str | None) -> bool | None:
        if not self.enabled or port is None:
            return None
        now = time.monotonic()
        when, known = self._checked.get(port, (-1e9, None))
        if now - when < self.interval_s:
            return known
        from live_agent.io.ports import is_own_port

        try:
            listing = subprocess.run(
                ["jack_lsp", "-c", port], capture_output=True, text=True, timeout=2
            ).stdout
            # A peer that is deepjam's own (the watchdog's probe) is not the user's keyboard.
            answer: bool | None = any(
                line.startswith("   ") and not is_own_port(line.strip())
                for line in listing.splitlines()
            )
        except (OSError, subprocess.SubprocessError):
            answer = None
        self._checked[port] = (now, answer)
        return answer


def run(args: argparse.Namespace) -> int:
    import queue

    from exports.errors import ConfigError
    from exports.extras import require_extra
    from exports.model_file import load_model
    from exports.paths import output_file
    from live_agent.clock import RealClock
    from live_agent.controls import ModelSlots, ModelWatcher, check_slots, file_mtime_ns
    from live_agent.engine import Session
    from live_agent.io.midi_io import ByteSink, JackClientIO, MidiInput, MidiOutput
    from live_agent.io.ports import instance_names, resolve_api
    from live_agent.io.synth import Synth, check_synth, start_synth
    from live_agent.io.watchdog import PortWatchdog
    from live_agent.link_clock import LinkGrid
    from live_agent.options import options_from_args

    options = options_from_args(args)
    web_port = None
    if args.web is not None:
        from live_agent.view.web import parse_web_address

        web_port = parse_web_address(args.web)[1]  # 127.0.0.1 only (before any port opens)
    if args.synth and args.output:
        raise ConfigError(
            f"--synth plays on deepjam's own FluidSynth, and --output {args.output!r} names "
            "another; pass one of them"
        )
    if options.clock == "link":
        require_extra("link", "--clock link (Ableton Link)")  # before any port opens
    if args.synth:
        check_synth()  # installed? (before any port opens)
    check_port_choice(args.input, args.output or ("synth" if args.synth else None), args.virtual)
    if options.record is not None:
        output_file(options.record, "--record")
    jack_backend = args.backend == "jack-client"
    if jack_backend and args.api not in ("auto", "jack"):
        raise ConfigError(
            f"--backend jack-client works with JACK only, got --api {args.api}; "
            "drop --api or use --backend rtmidi"
        )
    model_path = resolve_model_path(args.model)
    loaded_mtime_ns = file_mtime_ns(model_path)  # before the load: a newer file is a swap
    policy = load_model(model_path)
    policy.warm_up()
    api = resolve_api("jack" if jack_backend or args.synth else args.api)

    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    stop_event = threading.Event()
    midi_in: MidiInput | JackClientIO | None = None
    midi_out: ByteSink | None = None
    watchdog: PortWatchdog | None = None
    model_watcher: ModelWatcher | None = None
    worker: threading.Thread | None = None
    session: Any = None
    synth: Synth | None = None
    panel: Any = None
    link_grid: LinkGrid | None = None
    link_report = ""
    signalled_ns: list[int] = []
    crashed: list[BaseException] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # Main thread, between bytecodes: wake everyone; the finally below does the rest.
        signalled_ns.append(time.perf_counter_ns())
        if session is not None:  # first: no note may start once shutdown has begun
            session.notes.close_gate(extra_channels=(options.channel,))
        stop_event.set()
        inbox.put(None)

    started_s = time.monotonic()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    latch = SignalLatch()
    switch_interval_s = sys.getswitchinterval()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        output_wanted = args.output
        if args.synth:
            synth = start_synth(api)
            output_wanted = synth.midi_port
            _log(f"started FluidSynth ({synth.soundfont.name}): its sound goes to system playback")
        if jack_backend:
            jack_io = JackClientIO(inbox, args.input, output_wanted)
            midi_in, midi_out = jack_io, jack_io
            in_name, out_name = jack_io.input_name, jack_io.output_name
            own_in = in_name if args.input is None else None
            own_out = out_name if output_wanted is None else None
        else:
            names = instance_names(api)  # a second deepjam on this system gets its own
            rt_in = MidiInput(
                inbox, api, args.input, virtual=args.input is None, client_name=names.input
            )
            midi_in = rt_in
            rt_out = MidiOutput(
                api, output_wanted, virtual=output_wanted is None, client_name=names.output
            )
            midi_out = rt_out
            in_name, out_name = rt_in.name, rt_out.name
            own_in = own_port_name(api, rt_in.client_name, in_name) if rt_in.virtual else None
            own_out = (
                own_port_name(api, rt_out.client_name, out_name) if output_wanted is None else None
            )
        if options.clock == "link":
            spec = policy.spec
            link_grid = LinkGrid(options.bpm, spec.beats_per_bar, spec.steps_per_beat).start()
            link_report = link_grid.describe()
            _log(f"joined {link_report}; the first 16th falls on its next bar")
        session = Session(policy, options, midi_out, RealClock(), inbox, grid=link_grid)
        session.notes.stop_asked = latch  # no note-on once a signal has landed
        midi_out.reopen_guard = session.notes.reopen_then_panic  # a port back: end its notes
        session.warm_up()
        _log(f"live controls and program changes on channel {session.control_channel + 1} only")
        if session.controls.model_slots:
            check_slots(session.controls.model_slots, load_model)
            slots = ModelSlots(
                session.controls.model_slots,
                load_model,
                session.swap_policy,
                on_error=_log,
                on_info=_log,
            )
            session.program_handler = slots.program_change
            _log(f"styles by program change on the control channel: {slots.listing()}")

        # Hot swap when the model file changes (e.g. a new `deepjam export` over it).
        def adopt(new_policy: Any) -> None:
            session.swap_policy(new_policy)
            _log(f"{policy.path.name} changed on disk: swapped to the new model")

        model_watcher = ModelWatcher(
            policy.path, load_model, adopt, on_error=_log, loaded_mtime_ns=loaded_mtime_ns
        )
        model_watcher.start()
        if not args.no_watchdog:
            if isinstance(midi_in, JackClientIO):
                watchdog = PortWatchdog(None, None, _log, jack_io=midi_in)
            else:
                watchdog = PortWatchdog(
                    midi_in,  # type: ignore[arg-type]
                    midi_out,  # type: ignore[arg-type]
                    _log,
                    probe_client_name=names.watchdog,
                )
            watchdog.start()
        session.log = _log  # the player's tempo, as it locks and moves

        def play() -> None:
            try:
                session.run(stop_event)
            except BaseException as err:  # its finally has ended every note already
                crashed.append(err)
                raise

        worker = threading.Thread(target=play, name="deepjam-scheduler", daemon=True)
        worker.start()
        for line in port_report(api, args.input, args.output, in_name, out_name, own_in, own_out):
            _log(line)
        snapshot = snapshot_source(session, policy, api, in_name, out_name, own_in, own_out)
        if web_port is not None:
            from live_agent.view.web import WebPanel

            panel = WebPanel(session, snapshot, web_port)
            _log(f"live view in your browser: {panel.start()}")
        tempo_text = (
            f"{link_grid.tempo_bpm:.1f} bpm from the Link session"
            if link_grid is not None
            else f"{options.bpm:g} bpm until another is heard"
        )
        _log(
            f"playing {policy.metadata.style_name!r} ({policy.path.name}), {options.mode}, "
            f"clock {options.clock} ({tempo_text}), "
            f"channel {options.channel + 1}; Ctrl-C to stop"
        )
        view = make_view(args.view, snapshot)
        mode_shown = session.mode.name
        with view if view is not None else contextlib.nullcontext():
            while not stop_event.wait(VIEW_REFRESH_S):
                if session.mode.name != mode_shown:  # by the mode CC or the browser's button
                    mode_shown = session.mode.name
                    _log(f"mode: {mode_shown}")
                if view is not None:
                    view.update()
                if link_grid is not None and link_grid.describe() != link_report:
                    link_report = link_grid.describe()  # a peer came or went, or a new tempo
                    _log(link_report)
                if not worker.is_alive():
                    _log("the scheduler stopped; shutting down")
                    break
        if crashed:
            _log(f"the scheduler failed: {type(crashed[0]).__name__}: {crashed[0]}")
    finally:
        stop_event.set()
        inbox.put(None)
        if session is not None:
            session.notes.close_gate(extra_channels=(options.channel,))
        if panel is not None:
            panel.stop()
        if worker is not None:
            worker.join(JOIN_TIMEOUT_S)
            if worker.is_alive():
                _log(f"the scheduler did not stop within {JOIN_TIMEOUT_S} s")
        if link_grid is not None:
            link_grid.stop()
        if watchdog is not None:
            watchdog.stop()
        if model_watcher is not None:
            model_watcher.stop()
        if midi_out is not None:
            midi_out.close()
        if midi_in is not None and midi_in is not midi_out:
            midi_in.close()
        if synth is not None:
            synth.stop()
            _log("stopped FluidSynth")
        if session is not None and session.recorder is not None and options.record is not None:
            _log(f"recorded both parts to {session.recorder.write(options.record)}")
        latch.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sys.setswitchinterval(switch_interval_s)
        if midi_in is not None and midi_out is not None:
            _log(
                stop_summary(
                    time.monotonic() - started_s,
                    midi_in.received,
                    session.stats if session is not None else None,
                    midi_in.callback_errors,
                    midi_out.send_errors,
                )
            )
            if args.verbose:
                _log(
                    f"details: {midi_in.received} messages in, {midi_out.sent} out, "
                    f"{midi_out.send_errors} send errors, {midi_in.callback_errors} input errors"
                    + (
                        f", {midi_in.cycles} JACK cycles, {midi_in.late_messages} sent late"
                        if isinstance(midi_in, JackClientIO)
                        else ""
                    )
                    + (f"; session {session.stats}" if session is not None else "")
                )
    return 1 if crashed else 0
