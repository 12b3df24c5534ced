"""A real headless Chromium (Debian's ``chromium``) driven over the Chrome DevTools Protocol, on
the pipe transport (``--remote-debugging-pipe``: NUL-separated JSON on fds 3 and 4), so the
tests need no websocket package. ``open(url)``, ``evaluate(js)``, ``click(selector)`` (real
mouse events at the element's centre) and ``screenshot()`` (PNG bytes)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

WINDOW = (1000, 860)


def chromium_path() -> str:
    """The chromium binary; fails under CI=true when it is missing, else skips."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "chromium is not installed (apt-get install chromium); the browser test needs it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


class HeadlessBrowser:
    def __init__(self, profile_dir: Path, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        flags = [
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--mute-audio",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile_dir}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
        ]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
        self.log_path = profile_dir / "chromium.log"
        log = self.log_path.open("wb")
        # A launcher puts the pipes on fds 3 and 4, where Chromium looks for them (no
        # preexec_fn: the tests' JACK clients run threads).
        launcher = (
            "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); "
            "a, b = os.dup(r), os.dup(w); os.dup2(a, 3); os.dup2(b, 4); "
            "[os.close(fd) for fd in {r, w, a, b} - {3, 4}]; "
            "os.set_inheritable(3, True); os.set_inheritable(4, True); "
            "os.execv(sys.argv[3], sys.argv[3:])"
        )
        command = [sys.executable, "-c", launcher, str(to_chrome_r), str(from_chrome_w)]
        self.process = subprocess.Popen(
            [*command, chromium_path(), *flags, "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._id = 0
        self.session = ""
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = self.call(
            "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
        )["sessionId"]

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one CDP command (to the page once attached) and return its result."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                ready, _, _ = select.select([self._from_chrome], [], [], max(0.0, left))
                if not ready:
                    raise TimeoutError(f"chromium did not answer {method} in {self.timeout_s} s")
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError(
                        f"chromium quit (exit {self.process.poll()}):\n{self.log_path.read_text()[-2000:]}"
                    )
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") != self._id:
                continue  # an event
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply["result"]  # type: ignore[no-any-return]

    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 10.0) -> Any:
        """Poll ``expression`` until it is truthy (an error, e.g. while the page loads, counts
        as false); its value."""
        deadline = time.monotonic() + timeout_s
        last: object = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError as err:
                value, last = None, err
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"{expression} stayed false for {timeout_s} s (last error: {last})")

    def click(self, selector: str, at: tuple[float, float] = (0.5, 0.5)) -> None:
        """A left click with the mouse on the element ``selector``, at ``at`` (fractions of its
        width and height from its top left; default its centre)."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })()"
        )
        x, y = box[0] + at[0] * box[2], box[1] + at[1] * box[3]
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"])

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):  # it may be gone
            self.call("Browser.close")
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(timeout=5)
        os.close(self._to_chrome)
        os.close(self._from_chrome)

    def __enter__(self) -> HeadlessBrowser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
