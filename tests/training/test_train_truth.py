"""Training tells the truth: the bar's total and ETA follow the budget that
binds first, Ctrl-C saves and prints the exact resume command, ``--resume`` of a finished run
says so, and ``eval`` warns when its calls come from a few tunes. Real tiny runs; a real SIGINT
to a real ``deepjam train`` process."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from live_agent.cli import main as deepjam_main
from tests.support.corpus import tiny_corpus, write_config
from training.checkpoint import load_checkpoint
from training.cli.train_command import CHECKPOINT_NAME, binding_budget, clock_text
from training.eval.evaluate import MIN_CALL_TUNES, few_tunes_warning

DEEPJAM = [sys.executable, "-m", "live_agent.cli"]
ETA = re.compile(r"\| (\d+:\d\d) of (\d+:\d\d) \(time binds\), ([\d,]+) steps.*ETA (\d+):(\d\d)")


def test_the_budget_that_binds_first_sets_the_eta() -> None:
    # 1,000 steps left at 100/s: 10 s; 60 s of time left: the steps bind.
    assert binding_budget(1000, 100.0, 60.0) == ("steps", 10.0)
    # 100 s of steps against 30 s of time: time binds, and its ETA is the time left.
    assert binding_budget(10_000, 100.0, 30.0) == ("time", 30.0)
    # No rate measured yet: a time budget is the only ETA known.
    assert binding_budget(10_000, None, 30.0) == ("time", 30.0)
    assert binding_budget(10_000, None, None) == ("steps", float("inf"))
    assert binding_budget(0, 100.0, 30.0) == ("steps", 0.0)
    assert binding_budget(10_000, 100.0, -2.0) == ("time", 0.0)
    assert [clock_text(s) for s in (0, 59.6, 61, 3599, 3661)] == [
        "0:00",
        "1:00",
        "1:01",
        "59:59",
        "1:01:01",
    ]


class StderrReader:
    """Reads a process's stderr in a thread, split at ``\\r`` and ``\\n`` (the bar redraws with
    ``\\r``), each piece stamped with time.monotonic() when it arrived."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.pieces: list[tuple[float, str]] = []
        self.process = process
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        buffer = b""
        while chunk := self.process.stderr.read1(4096):  # type: ignore[attr-defined]
            buffer += chunk
            *done, buffer = re.split(rb"[\r\n]", buffer)
            now = time.monotonic()
            self.pieces += [(now, p.decode()) for p in done if p.strip()]
        if buffer.strip():
            self.pieces.append((time.monotonic(), buffer.decode()))

    def text(self) -> str:
        return "\n".join(p for _, p in self.pieces)

    def wait_for(self, predicate, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            if predicate(self.pieces):
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out; stderr so far:\n{self.text()}")

    def finish(self, timeout_s: float) -> int:
        code = self.process.wait(timeout=timeout_s)
        self.thread.join(timeout=5)
        return code


def start(command: list[str]) -> StderrReader:
    """``command`` with SIGINT at its default (a background CI shell may have it ignored)."""
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return StderrReader(process)


def time_bar(pieces: list[tuple[float, str]]) -> list[tuple[float, str, int, float]]:
    """(arrived, budget text, step, ETA seconds) of each time-bound bar redraw."""
    found = []
    for arrived, piece in pieces:
        m = ETA.search(piece)
        if m:
            step = int(m.group(3).replace(",", ""))
            found.append((arrived, m.group(2), step, int(m.group(4)) * 60.0 + int(m.group(5))))
    return found


@pytest.mark.slow
def test_ctrl_c_saves_and_prints_the_resume_command_that_then_finishes_on_time(
    tmp_path: Path,
) -> None:
    corpus = tiny_corpus(tmp_path / "tiny.npz")
    config = write_config(tmp_path / "tiny.toml")  # checkpoints every 60 s: none on their own
    out = tmp_path / "run"
    budget = ["--minutes", "0.4", "--steps", "100000000"]  # 24 s of wall time binds
    command = ["train", "--config", str(config), "--corpus", str(corpus), "--out", str(out)]
    first = start(DEEPJAM + command + budget)
    try:
        # A redraw of the bar inside the DQN phase, then Ctrl-C.
        first.wait_for(lambda p: any(s > 0 for _, _, s, _ in time_bar(p)), timeout_s=90)
        bars = time_bar(first.pieces)
        assert {total for _, total, _, _ in bars} == {"0:24"}, first.text()
        first.process.send_signal(signal.SIGINT)
        code = first.finish(timeout_s=60)
    finally:
        if first.process.poll() is None:
            first.process.kill()
            first.process.wait()
    text = first.text()
    assert code == 130, text
    saved = re.search(r"stopped: saved at step ([\d,]+); resume with: (.+)$", text, re.M)
    assert saved, text
    step = int(saved.group(1).replace(",", ""))
    checkpoint = load_checkpoint(out / CHECKPOINT_NAME)
    assert checkpoint.global_step == step > 0
    assert not checkpoint.extra["finished"]
    words = shlex.split(saved.group(2))
    assert words[:2] == ["deepjam", "train"] and "--resume" in words
    assert "--corpus" in words and words[words.index("--out") + 1] == str(out)

    # The printed command, exactly, resumes it; the rest of the 24 s binds and the ETA is true.
    resumed = start(DEEPJAM + words[1:])
    code = resumed.finish(timeout_s=120)
    text = resumed.text()
    assert code == 0, text
    assert f"resuming {out / CHECKPOINT_NAME} at step {step:,}" in text
    ended = next(t for t, p in resumed.pieces if "DQN phase over" in p)
    bars = [b for b in time_bar(resumed.pieces) if b[0] < ended]
    assert len(bars) >= 3 and {total for _, total, _, _ in bars} == {"0:24"}, text
    for arrived, _, _, eta_s in bars:
        # Whole seconds on the bar (±0.5 s), a redraw a second, a loaded machine: ±2 s.
        assert abs(arrived + eta_s - ended) <= 2.0, (arrived + eta_s - ended, text)
    final = load_checkpoint(out / CHECKPOINT_NAME)
    assert final.global_step > step and final.extra["finished"]
    assert final.extra["elapsed_s"] >= 24.0

    # --resume again: finished, in one line, and nothing is trained or rewritten.
    mtime = (out / CHECKPOINT_NAME).stat().st_mtime_ns
    again = subprocess.run(DEEPJAM + words[1:], capture_output=True, text=True, timeout=60)
    lines = [line for line in again.stderr.splitlines() if line.strip()]
    assert again.returncode == 0 and len(lines) == 1, again.stderr
    assert "is already finished" in lines[0] and "of its 0.4-minute budget" in lines[0]
    assert "--minutes 0.8" in lines[0] and f"deepjam export {out / CHECKPOINT_NAME}" in lines[0]
    assert (out / CHECKPOINT_NAME).stat().st_mtime_ns == mtime


@pytest.mark.slow  # an evaluation run
def test_eval_on_a_tiny_corpus_warns_that_its_calls_come_from_a_few_tunes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert few_tunes_warning(1000, MIN_CALL_TUNES, False) is None
    corpus = tiny_corpus(tmp_path / "tiny.npz", n_tunes=10)  # 2 of them held out
    model = Path(__file__).parents[2] / "live_agent" / "models" / "default.onnx"
    out = tmp_path / "eval"
    code = deepjam_main(
        ["eval", str(model), "--corpus", str(corpus), "--out", str(out)]
        + ["--compositions", "40", "--key-calls", "4"]
    )
    assert code == 0
    err = capsys.readouterr().err
    warning = [line for line in err.splitlines() if line.startswith("deepjam eval: warning")]
    assert len(warning) == 1, err
    assert "all 40 calls come from 2 held-out tunes" in warning[0]
    assert f"fewer than the {MIN_CALL_TUNES}" in warning[0]
    assert "all 40 calls come from 2 held-out tunes" in (out / "eval.md").read_text()
