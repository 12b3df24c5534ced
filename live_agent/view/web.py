"""The browser panel of ``deepjam jam --web``: the live view on a web page, with sliders and
buttons that act as the live-control CCs do.

A stdlib HTTP server (``http.server``) on 127.0.0.1 only, on its own threads; it never touches
the scheduler thread. ``GET /`` is the page (``web_page.html``, which polls); ``GET /snapshot``
is the view as JSON, drawn from the same ``JamSnapshot`` (``info_rows``, ``roll_rows``,
``bar_starts``) as the terminal's; ``POST /control`` with ``{"name": ..., "value": ...}`` turns
the request into the CC that the controls file maps to it and puts it on the session's inbox,
stamped like a MIDI input's message, so that the session carries it out exactly as it would
the knob's: same mapping, same channel, the mode's one-beat hold, panic's all-notes-off. The
key has no CC: ``{"name": "key", "value": "A minor"}`` (or ``"auto"``) is read as ``--key`` is
and handed to the session's decider (``Decider.fix_key``), whose frame takes it at the next turn.

Requests from other web pages are refused: the Host header must name this server (no DNS
rebinding), and a control must be posted as ``application/json`` (a cross-site form cannot).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from exports.errors import ConfigError, PortError
from exports.midi import CONTROL_CHANGE, MAX_DATA
from exports.tonality import KEY_AUTO, KEY_NAMES, describe_key, parse_key
from live_agent.controls import (
    MODE_MESSAGES,
    SEMITONES_PER_OCTAVE,
    ControlMap,
    RangeControl,
)
from live_agent.protocols import InputEvent
from live_agent.view.snapshot import JamSnapshot, info_rows, roll_rows

HOST = "127.0.0.1"
LOCAL_NAMES = ("127.0.0.1", "localhost")
DEFAULT_PORT = 8765
MAX_BODY_BYTES = 4096
MODES = ("answer", "duet")
"""The modes the mode CC switches between (below 64: answer; 64 and up: duet)."""


class WebControlError(ConfigError):
    """A control the panel cannot send: not mapped in the controls file, or a bad value."""


def parse_web_address(text: str) -> tuple[str, int]:
    """``--web`` value -> (host, port): 'PORT', '127.0.0.1:PORT' or 'localhost:PORT' (port 0:
    any free one). Any other host is refused (ConfigError): the panel changes the jam and has
    no password, so it is for this machine only."""
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = HOST, text
    host = host.strip("[]")
    if host not in LOCAL_NAMES:
        raise ConfigError(
            f"--web serves on 127.0.0.1 only (the panel can change the jam and has no "
            f"password), got host {host!r}; from another machine, tunnel to it: "
            f"ssh -L {port_text}:127.0.0.1:{port_text} this-machine"
        )
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(
            f"--web takes a port number 0..65535 (0: any free port), got {port_text!r}"
        )
    return HOST, int(port_text)


@dataclass(frozen=True)
class SliderRange:
    low: float
    high: float
    step: float


def slider_ranges(controls: ControlMap) -> dict[str, SliderRange | None]:
    """The sliders' ranges, in the controls' own units, from the controls file (None: that
    control is not mapped, its slider is disabled). Register moves in whole octaves."""

    def span(control: RangeControl | None, step: float) -> SliderRange | None:
        if control is None:
            return None
        return SliderRange(min(control.low, control.high), max(control.low, control.high), step)

    register = span(controls.register, 1.0)
    if register is not None:
        register = SliderRange(round(register.low), round(register.high), 1.0)
    return {
        "temperature": span(controls.temperature, 0.01),
        "density": span(controls.density, 0.01),
        "register": register,
    }


def cc_for(controls: ControlMap, name: str, value: object) -> tuple[int, int]:
    """(controller, value 0..127) of the CC that sets control ``name`` to ``value``, as the
    controls file maps it: temperature and density in their units, register in octaves, mode
    'answer' or 'duet', panic (any value). Raises WebControlError when it cannot be sent."""
    if name in ("temperature", "density", "register"):
        control = {
            "temperature": controls.temperature,
            "density": controls.density,
            "register": controls.register,
        }[name]
        if control is None:
            raise WebControlError(f"{name} has no CC in the controls file; add a [{name}] table")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise WebControlError(f"{name} takes a number, got {value!r}")
        if control.high == control.low:
            return control.cc, 0
        share = (float(value) - control.low) / (control.high - control.low)
        return control.cc, min(MAX_DATA, max(0, round(share * MAX_DATA)))
    if name == "mode":
        if controls.mode_cc is None:
            raise WebControlError("mode has no CC in the controls file; add a [mode] table")
        if value not in MODES:
            raise WebControlError(f"mode is one of {', '.join(MODES)}, got {value!r}")
        return controls.mode_cc, 0 if value == "answer" else MAX_DATA
    if name == "panic":
        if controls.panic_cc is None:
            raise WebControlError("panic has no CC in the controls file; add a [panic] table")
        return controls.panic_cc, MAX_DATA
    raise WebControlError(
        f"unknown control {name!r}; one of temperature, density, register, mode, panic, key"
    )


def snapshot_json(snapshot: JamSnapshot, controls: ControlMap) -> dict[str, Any]:
    """What the page draws, as plain JSON: the view's rows and roll (the terminal's words and
    cells), the bar lines, and the sliders' values and ranges."""
    ranges = slider_ranges(controls)
    values = {
        "temperature": snapshot.temperature,
        "density": snapshot.density,
        "register": snapshot.register_shift / SEMITONES_PER_OCTAVE,
    }
    return {
        "rows": [
            {"label": label, "segments": [{"text": t, "tone": tone} for t, tone in segments]}
            for label, segments in info_rows(snapshot)
        ],
        "roll": {
            "columns": len(snapshot.player_roll),
            "bar_starts": snapshot.bar_starts,
            "rows": [
                {"pitch": pitch, "name": name, "cells": cells}
                for pitch, name, cells in roll_rows(snapshot)
            ],
        },
        "mode": snapshot.mode,
        "modes": list(MODES),
        "answering": snapshot.answering,
        "controls": {
            name: {
                "value": values[name],
                "text": snapshot.controls[name],
                **(
                    {"enabled": True, "min": r.low, "max": r.high, "step": r.step}
                    if r is not None
                    else {"enabled": False}
                ),
            }
            for name, r in ranges.items()
        },
        "key": snapshot.key_fixed or KEY_AUTO,
        "keys": [KEY_AUTO, *KEY_NAMES],
        "mode_enabled": controls.mode_cc is not None,
        "panic_enabled": controls.panic_cc is not None,
    }


class WebPanel:
    """The panel's HTTP server for ``session`` (an ``engine.Session``), drawing
    ``snapshot_fn()``. ``start()`` binds 127.0.0.1:``port`` (0: any free port) and returns the
    URL; ``stop()`` shuts it down. Snapshots are taken at most every ``min_interval_s``,
    whatever the number of open pages."""

    def __init__(
        self,
        session: Any,
        snapshot_fn: Callable[[], JamSnapshot],
        port: int = DEFAULT_PORT,
        min_interval_s: float = 0.1,
    ) -> None:
        self.session = session
        self.snapshot_fn = snapshot_fn
        self.port = port
        self.min_interval_s = min_interval_s
        self.controls_sent = 0
        self._lock = threading.Lock()
        self._cached: tuple[float, bytes] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.page = resources.files("live_agent.view").joinpath("web_page.html").read_bytes()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://{HOST}:{self._server.server_address[1]}/"

    def start(self) -> str:
        """Bind and serve on a daemon thread; the URL. PortError when the port is taken."""
        panel = self

        class Handler(PanelHandler):
            pass

        Handler.panel = panel
        try:
            self._server = ThreadingHTTPServer((HOST, self.port), Handler)
        except OSError as err:
            raise PortError(
                f"--web cannot serve on {HOST}:{self.port}: {err.strerror}; pick another port "
                "(--web 8766), or --web 0 for any free one"
            ) from err
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="deepjam-web"
        )
        self._thread.daemon = True
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(2.0)

    def snapshot_body(self) -> bytes:
        """The JSON of the current snapshot (shared by requests within ``min_interval_s``)."""
        import time

        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.min_interval_s:
                data = snapshot_json(self.snapshot_fn(), self.session.controls)
                self._cached = (now, json.dumps(data).encode())
            return self._cached[1]

    def set_key(self, value: object) -> str:
        """Fix the session's key (a key's name, as ``--key`` reads it) or hand it back to the
        estimate (``'auto'``); the key's name as set. Raises WebControlError."""
        if not isinstance(value, str):
            raise WebControlError(f"key takes a key's name ('A minor') or 'auto', got {value!r}")
        try:
            key = parse_key(value)
        except ConfigError as err:
            raise WebControlError(str(err)) from err
        self.session.decider.fix_key(key)
        with self._lock:
            self.controls_sent += 1
            self._cached = None  # the next snapshot is fresh
        return describe_key(key)

    def send_control(self, name: str, value: object) -> tuple[int, int]:
        """Put the CC for ``name`` = ``value`` on the session's inbox, on the channel the session
        takes controls from; the (controller, value) sent. Raises WebControlError."""
        controller, cc_value = cc_for(self.session.controls, name, value)
        channel = int(self.session.control_channel)
        event = InputEvent(
            self.session.clock.now_ns(), (CONTROL_CHANGE | channel, controller, cc_value)
        )
        # The mode takes a value said twice in a row (a knob turned past the middle sends a
        # stream; one stray message is not taken): the button is a deliberate choice.
        for _ in range(MODE_MESSAGES if name == "mode" else 1):
            self.session.inbox.put(event)
        with self._lock:
            self.controls_sent += 1
            self._cached = None  # the next snapshot is fresh
        return controller, cc_value


class PanelHandler(BaseHTTPRequestHandler):
    panel: WebPanel
    server_version = "deepjam"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the stdlib's name)
        pass  # no line per request in the jam's log

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._reply(status, json.dumps(data).encode(), "application/json")

    def _host_ok(self) -> bool:
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0].strip("[]") if host else ""
        if name in LOCAL_NAMES:
            return True
        self._json(
            HTTPStatus.FORBIDDEN, {"error": f"this panel answers 127.0.0.1 only, not {host!r}"}
        )
        return False

    def do_GET(self) -> None:
        if not self._host_ok():
            return
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._reply(HTTPStatus.OK, self.panel.page, "text/html; charset=utf-8")
        elif path == "/snapshot":
            self._reply(HTTPStatus.OK, self.panel.snapshot_body(), "application/json")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no page {path!r}; the panel is at /"})

    def do_POST(self) -> None:
        if not self._host_ok():
            return
        if self.path != "/control":
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no control endpoint {self.path!r}"})
            return
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._json(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "post the control as application/json"}
            )
            return
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY_BYTES:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "a control is a small JSON object"})
            return
        try:
            request = json.loads(self.rfile.read(length))
            name, value = request["name"], request.get("value")
            if name == "key":
                self._json(HTTPStatus.OK, {"name": name, "value": self.panel.set_key(value)})
                return
            controller, cc_value = self.panel.send_control(str(name), value)
        except (ValueError, KeyError, TypeError) as err:
            message = (
                str(err)
                if isinstance(err, WebControlError)
                else (
                    'post {"name": "temperature", "value": 0.8} (or density, register, mode, '
                    "panic, key)"
                )
            )
            self._json(HTTPStatus.BAD_REQUEST, {"error": message})
            return
        self._json(HTTPStatus.OK, {"name": name, "cc": controller, "value": cc_value})
