"""`deepjam jam --web` on a real JACK server, looked at and clicked by a real headless Chromium:
the page shows the running jam (a screenshot with both parts in its piano roll), and a click on
its mode button switches the jam's mode, as the mode CC does (a beat later); its density slider
and panic button act as their CCs do too."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest

from exports.midi import ALL_NOTES_OFF, CONTROL_CHANGE, NOTE_OFF, NOTE_ON
from tests.support.headless_browser import HeadlessBrowser
from tests.support.jack_probe import JackRecorder, jack_recorder, run_jam

DEEPJAM_IN = "deepjam-in:deepjam in"
DEEPJAM_OUT = "deepjam-out:deepjam out"
URL_LINE = re.compile(r"live view in your browser: (http://127\.0\.0\.1:\d+/)")
YOU_RGB = (0x2B, 0xD4, 0xE0)
DEEPJAM_RGB = (0xE0, 0x48, 0xC8)
"""The page's colours of the two parts (web_page.html's --you and --deepjam)."""


def _wait_for_line(jam_lines: list[str], pattern: re.Pattern[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in list(jam_lines):
            match = pattern.search(line)
            if match:
                return match.group(1) if match.groups() else line
        time.sleep(0.05)
    raise TimeoutError(f"no line matching {pattern.pattern!r}:\n" + "\n".join(jam_lines))


def _play(recorder: JackRecorder, notes: list[tuple[int, float]]) -> None:
    deadline = time.perf_counter()
    for pitch, length_s in notes:
        recorder.send((NOTE_ON, pitch, 96))
        deadline += length_s * 0.9
        time.sleep(max(0.0, deadline - time.perf_counter()))
        recorder.send((NOTE_OFF, pitch, 0))
        deadline += length_s * 0.1
        time.sleep(max(0.0, deadline - time.perf_counter()))


def _all_notes_off_after(recorder: JackRecorder, frame: int) -> bool:
    return any(
        e.frame >= frame and e.data[0] & 0xF0 == CONTROL_CHANGE and e.data[1] == ALL_NOTES_OFF
        for e in list(recorder.events)
    )


def _pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    return int((np.abs(image[..., :3].astype(int) - np.array(rgb)).max(axis=-1) < tolerance).sum())


@pytest.mark.jack
def test_the_browser_shows_the_jam_and_its_mode_button_switches_it(
    jack_server, scale_model_path: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    args = ["--model", str(scale_model_path), "--temperature", "0", "--virtual", "--api", "jack"]
    args += ["--mode", "answer", "--bpm", "150", "--answer-bars", "1", "--web", "0"]
    args += ["--view", "plain"]
    with jack_recorder("web-player") as recorder, run_jam(args, env=jack_server.env) as jam:
        url = _wait_for_line(jam.lines, URL_LINE, 10.0)
        recorder.wait_for_port(DEEPJAM_OUT)
        recorder.connect_from(DEEPJAM_OUT)
        recorder.connect_to(DEEPJAM_IN)
        with HeadlessBrowser(tmp_path) as browser:
            browser.open(url)
            browser.wait_for("document.getElementById('status').textContent === 'live'")
            assert browser.evaluate("document.body.dataset.mode") == "answer"
            # A call in E-flat; the answer follows it, and both show in the roll.
            _play(recorder, [(63, 0.2), (67, 0.2), (70, 0.2), (75, 0.2), (70, 0.2), (63, 0.4)])
            browser.wait_for(
                "[...document.querySelectorAll('#info tr')].some(r => "
                "/played\\s*[1-9]\\d* notes? in [1-9]/.test(r.textContent))",
                timeout_s=8.0,
            )
            time.sleep(0.6)  # a poll or two more: the answer's notes reach the roll
            png = browser.screenshot()
            (tmp_path / "panel.png").write_bytes(png)
            image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, len(png)
            assert image.shape[0] > 500 and image.shape[1] > 900, image.shape
            rgb = image.astype(np.int32)
            packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
            assert len(np.unique(packed)) > 50, "a page, not a blank"
            assert _pixels_near(image, YOU_RGB) > 200, "the call is in the roll"
            assert _pixels_near(image, DEEPJAM_RGB) > 100, "the answer is in the roll"

            browser.click("#mode-button")
            # jam's own log says so once the session switched (the CC's beat later) ...
            _wait_for_line(jam.lines, re.compile(r"deepjam jam: mode: (duet)"), 5.0)
            # ... and the page, which reads the session's state, shows it.
            browser.wait_for("document.body.dataset.mode === 'duet'", timeout_s=3.0)
            assert "switch to answer" in browser.evaluate(
                "document.getElementById('mode-button').textContent"
            )

            # A slider clicked a quarter of the way along: the density CC, heard by the session.
            browser.click("#slider-density", at=(0.25, 0.5))
            density = browser.wait_for(
                "(t => t !== '1.00' && t)(document.getElementById('value-density').textContent)",
                timeout_s=3.0,
            )
            assert 0.1 < float(density) < 0.4, density
            # Panic: deepjam's output gets all-notes-off (CC 123) while the jam goes on.
            clicked_frame = recorder.client.frame_time
            browser.click("#panic-button")
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline and not _all_notes_off_after(recorder, clicked_frame):
                time.sleep(0.05)
            assert _all_notes_off_after(recorder, clicked_frame), "panic reached the output"
            assert jam.process.poll() is None, "the jam plays on after a panic"
    assert any("every note released" in line for line in jam.lines), jam.stderr_text()
