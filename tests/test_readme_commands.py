"""Every command block of README.md runs, in a fresh venv with the extras its section installs.

The commands are parsed out of README.md, not copied here. The convention (README.md says it
at the top, in a comment):

- A command block is a fenced ```` ```sh ```` block. Each line is one command (a trailing
  ``\\`` continues it); ``&&`` chains run in order; a ``#`` comment is not run.
- A section is the text under a heading. Its ``pip install`` lines say what it installs: a
  section whose installs (or its parent ``##`` section's) include the ``train`` extra or torch
  runs in the *train* venv, any other in the *base* venv. Both are fresh (``python3 -m venv``,
  no system site packages), built by the README's own ``pip install`` lines from a copy of the
  repository, and reused by the sections after (a ``pip install`` line already run in a venv is
  not run again). Base-only sections run before those that add an extra (``plot``), train-only
  ones before those that add ``scale``, so no section sees an extra it does not install that a
  sibling added, except siblings that both add extras.
- The commands run in one scratch folder holding a copy of the repository, with ``HOME``
  there too: ``~/midi/NAME`` (your own MIDI files in the README) is filled with 60 generated
  tunes. ``DEEPJAM_CACHE`` is scratch too, so the user's cache is never touched.
- ``# = .ci/run`` after a command: it is what CI runs; the test checks that ``.ci/run`` runs
  each of its parts, rather than running the suite inside itself.
- Long commands run bounded, each until it has proved that it starts and answers:
  - ``deepjam jam``, on a real JACK server (the session's ``jack_server``). A port named with
    ``--input``/``--output`` (your keyboard, your synth) is made by the test: a JACK client of
    that name. A two-bar call is played into deepjam; then SIGTERM: jam must exit 0, its stop
    line must count an answer, and 3+ note-ons must have come out (1+ from a model the README
    trained for seconds: every answer opens with a note, and such a model may rest after it).
  - ``deepjam train``: until its DQN phase has made steps (the bar), then Ctrl-C (SIGINT):
    it must exit 130 with "saved at step N" (so the commands after it have a checkpoint). A run
    that ends by itself must exit 0.
  - ``deepjam corpus build`` from music21 (no ``--from``: the default corpus, ``--style
    chorale``): ``--limit 5`` tunes per collection is added (whole, they take minutes).
  - ``deepjam sweep``: until a trial has written a checkpoint (the sweep trains), then Ctrl-C
    (it must exit 0 or 130).
  - ``tensorboard``: until the address it prints answers HTTP 200, then SIGINT.
  - ``python3 benchmarks/NAME.py``: until it prints its first figure (a line with a digit),
    then SIGINT.
- Every other command must exit 0 within its timeout.

Marked ``slow`` (minutes: two venvs and a real run of each command); ``.ci/run`` runs it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
TUNES_PER_MIDI_FOLDER = 60
COMMAND_TIMEOUT_S = 300.0
PIP_TIMEOUT_S = 900.0
ANSWERS = re.compile(r"in (\d+) answers?\b")
"""The answers counted in jam's stop line (``played 85 notes in 12 answers``)."""
CALL = [60, 62, 64, 65, 67, 65, 64, 62]
"""The call played into a jam: C major, 8ths at 120 bpm (two bars with the rest)."""


# ------------------------------------------------------------------ parsing


@dataclass
class Command:
    line: int
    """README line number (1-based) where the command starts."""
    text: str
    """The shell command, without its comment."""
    comment: str


@dataclass
class Section:
    heading: str
    level: int
    parent: str
    """The enclosing ``##`` heading ('' at the top)."""
    commands: list[Command] = field(default_factory=list)

    def installs(self) -> list[str]:
        return [p for c in self.commands for p in split_chain(c.text) if is_pip(p)]


def split_chain(text: str) -> list[str]:
    """``a && b`` -> [a, b] (the README's chains are simple; no quoted ``&&``)."""
    return [part.strip() for part in text.split("&&") if part.strip()]


def is_pip(part: str) -> bool:
    words = shlex.split(part)
    return words[:2] == ["pip", "install"] or words[:4] == ["python3", "-m", "pip", "install"]


def parse_readme(text: str) -> list[Section]:
    """The README's sections that hold ```sh blocks, in order, with their commands."""
    sections: list[Section] = []
    current = Section("(top)", 1, "")
    parent = ""
    in_block = False
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        fence = raw.strip()
        if not in_block:
            heading = re.match(r"^(#{1,6})\s+(.*)$", raw)
            if heading:
                level = len(heading.group(1))
                if level <= 2:
                    parent = heading.group(2).strip()
                current = Section(heading.group(2).strip(), level, parent if level > 2 else "")
                sections.append(current)
            elif fence == "```sh":
                in_block = True
            continue
        if fence.startswith("```"):
            in_block = False
            continue
        if not pending:
            start = number
        pending.append(raw.rstrip())
        if raw.rstrip().endswith("\\"):
            pending[-1] = pending[-1][:-1]
            continue
        joined = " ".join(p.strip() for p in pending)
        pending = []
        command, comment = split_comment(joined)
        if command:
            current.commands.append(Command(start, command, comment))
    assert not in_block, "README.md: a ```sh block is not closed"
    return [s for s in sections if s.commands]


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment): the first ``#`` outside quotes that starts a word begins a comment."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip(), line[i + 1 :].strip()
    return line.strip(), ""


def extras_of(section: Section, sections: list[Section]) -> set[str]:
    """The extras (and ``torch``) the section's pip lines install, with its parent's."""
    found: set[str] = set()
    for s in sections:
        if s is section or (section.parent and s.heading == section.parent and s.level <= 2):
            for part in s.installs():
                for extras in re.findall(r"\.\[([a-z,]+)\]", part):
                    found |= set(extras.split(","))
                if "torch" in part:
                    found.add("torch")
    return found


def venv_name(extras: set[str]) -> str:
    return "train" if extras & {"train", "torch"} else "base"


def test_the_readme_parser_reads_blocks_sections_and_comments() -> None:
    text = "\n".join(
        [
            "# t",
            "## Install",
            "```sh",
            'pip install ".[plot]" && deepjam x a.mid   # a comment',
            "deepjam y \\",
            "    --flag 'a # not a comment'",
            "```",
            "    indented code is not run",
            "### Sub",
            "```sh",
            "# only a comment",
            "deepjam z",
            "```",
            "## Other",
            "```python",
            "print('not sh')",
            "```",
        ]
    )
    sections = parse_readme(text)
    assert [(s.heading, s.parent) for s in sections] == [("Install", ""), ("Sub", "Install")]
    install, sub = sections
    assert [c.text for c in install.commands] == [
        'pip install ".[plot]" && deepjam x a.mid',
        "deepjam y --flag 'a # not a comment'",
    ]
    assert install.commands[0].comment == "a comment" and install.commands[0].line == 4
    assert install.installs() == ['pip install ".[plot]"']
    assert [c.text for c in sub.commands] == ["deepjam z"]
    assert extras_of(sub, sections) == {"plot"}
    assert venv_name({"plot"}) == "base" and venv_name({"train", "scale"}) == "train"
    # The real README has blocks, and every one is in a section.
    real = parse_readme(README.read_text(encoding="utf-8"))
    assert len(real) >= 3 and sum(len(s.commands) for s in real) >= 10


# ------------------------------------------------------------------ running


@dataclass
class Workspace:
    root: Path
    """Scratch folder: the repository copy (cwd of every command) and HOME."""
    repo: Path
    venvs: dict[str, Path] = field(default_factory=dict)
    installed: dict[str, set[str]] = field(default_factory=dict)
    jack_env: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def env(self, venv: str) -> dict[str, str]:
        bin_dir = self.venvs[venv] / "bin"
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
        }
        env.update(self.jack_env)
        env.update(
            {
                "PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
                "VIRTUAL_ENV": str(self.venvs[venv]),
                "HOME": str(self.root / "home"),
                "DEEPJAM_CACHE": str(self.root / "cache"),
                "XDG_CACHE_HOME": str(self.root / "xdg-cache"),
                # The real pip cache: wheels that .ci/setup fetched are not fetched again.
                "PIP_CACHE_DIR": os.environ.get(
                    "PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")
                ),
                "PYTHONUNBUFFERED": "1",
                # No .pyc compile at install: it is most of torch's install time (pip then
                # installs the same files; Python compiles them when they are first imported).
                "PIP_NO_COMPILE": "1",
                # One retry: where PyTorch's CPU index (the README's torch lines) cannot be
                # reached, pip falls back on the other indexes in seconds, not minutes.
                "PIP_RETRIES": os.environ.get("PIP_RETRIES", "1"),
                "MPLBACKEND": "Agg",
            }
        )
        return env


def copy_repository(dest: Path) -> None:
    """The files git tracks or would track (a fresh checkout with the working tree's edits)."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def fill_midi_folder(folder: Path, n: int = TUNES_PER_MIDI_FOLDER) -> None:
    """``n`` eight-bar tunes in several major and minor keys: stepwise, 8ths and quarters."""
    from exports.midi_files import write_melodies
    from exports.spec import HOLD_EVENT, REST_EVENT

    rng = np.random.default_rng(len(folder.name))
    folder.mkdir(parents=True, exist_ok=True)
    major, minor = [0, 2, 4, 5, 7, 9, 11], [0, 2, 3, 5, 7, 8, 10]
    for i in range(n):
        tonic, scale = 60 + int(rng.integers(-5, 7)), major if i % 3 else minor
        degree, events = 7, []
        while len(events) < 8 * 16 - 4:
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 1, 1, 2]), 0, 13))
            pitch = tonic + 12 * (degree // 7) + scale[degree % 7] - 12
            events += [pitch] + [HOLD_EVENT] * int(rng.choice([1, 3]))
        events = events[: 8 * 16 - 4] + [tonic, HOLD_EVENT, HOLD_EVENT, REST_EVENT]
        write_melodies(folder / f"tune{i:02d}.mid", [(f"tune {i}", np.array(events, np.int16))])


class Output:
    """A process's stdout and stderr, read in threads, split at \\r and \\n."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.pieces: list[str] = []
        self.threads = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (process.stdout, process.stderr)
        ]
        for thread in self.threads:
            thread.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        buffer = b""
        while chunk := stream.read1(4096):
            buffer += chunk
            *done, buffer = re.split(rb"[\r\n]", buffer)
            self.pieces += [p.decode(errors="replace") for p in done if p.strip()]
        if buffer.strip():
            self.pieces.append(buffer.decode(errors="replace"))

    def text(self, last: int = 40) -> str:
        return "\n".join(self.pieces[-last:])

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=5)


def start(words: list[str], ws: Workspace, venv: str) -> tuple[subprocess.Popen[bytes], Output]:
    process = subprocess.Popen(
        words,
        cwd=ws.repo,
        env=ws.env(venv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return process, Output(process)


def wait_until(
    process: subprocess.Popen[bytes],
    output: Output,
    proof: Callable[[list[str]], bool],
    timeout_s: float,
) -> bool:
    """True once ``proof`` holds of the output; False when the process ended or time ran out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proof(output.pieces):
            return True
        if process.poll() is not None:
            output.join()
            return proof(output.pieces)
        time.sleep(0.1)
    return False


def stop(process: subprocess.Popen[bytes], sig: int, timeout_s: float = 60.0) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def shell_words(part: str, ws: Workspace) -> list[str]:
    """The command's words, ``~`` expanded to the scratch HOME (as a shell would)."""
    home = str(ws.root / "home")
    return [home + w[1:] if w == "~" or w.startswith("~/") else w for w in shlex.split(part)]


def run_plain(part: str, ws: Workspace, venv: str, timeout_s: float) -> None:
    done = subprocess.run(
        ["bash", "-c", part],
        cwd=ws.repo,
        env=ws.env(venv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
    assert done.returncode == 0, f"exit {done.returncode}:\n{tail}"


def run_train(words: list[str], ws: Workspace, venv: str) -> None:
    process, output = start(words, ws, venv)

    def dqn_stepped(pieces: list[str]) -> bool:
        for piece in pieces:
            m = re.search(r"(?:^|\| )([\d,]+) of [\d,]+ steps|time binds\), ([\d,]+) steps", piece)
            if m and int((m.group(1) or m.group(2)).replace(",", "")) > 0:
                return True
        return False

    proved = wait_until(process, output, dqn_stepped, COMMAND_TIMEOUT_S)
    if process.poll() is not None:  # it ended by itself (a small budget, a finished run)
        assert process.returncode == 0, f"exit {process.returncode}:\n{output.text()}"
        return
    assert proved, f"no DQN steps in {COMMAND_TIMEOUT_S} s:\n{output.text()}"
    code = stop(process, signal.SIGINT)
    output.join()
    assert code == 130, f"Ctrl-C: exit {code}, expected 130:\n{output.text()}"
    assert any("saved at step" in p for p in output.pieces), output.text()


def run_until(words: list[str], ws: Workspace, venv: str, proof, what: str) -> None:  # type: ignore[no-untyped-def]
    process, output = start(words, ws, venv)
    try:
        proved = wait_until(process, output, proof, COMMAND_TIMEOUT_S)
        assert proved, f"{what} not seen (exit {process.poll()}):\n{output.text()}"
    finally:
        stop(process, signal.SIGINT)
        output.join()


def run_sweep(words: list[str], ws: Workspace, venv: str) -> None:
    """Until a trial has written its first checkpoint (it trains), then Ctrl-C."""
    out = ws.repo / (option(words, "--out") or "")
    started_ns = time.time_ns()
    process, output = start(words, ws, venv)
    try:
        proved = wait_until(  # a checkpoint written by this command (--resume: a new one)
            process,
            output,
            lambda _: any(
                p.stat().st_mtime_ns > started_ns for p in out.glob("trials/*/checkpoint.pt")
            ),
            COMMAND_TIMEOUT_S,
        )
        if process.poll() is not None:
            assert process.returncode == 0, f"exit {process.returncode}:\n{output.text()}"
            return
        assert proved, f"no trial checkpoint under {out}:\n{output.text()}"
    finally:
        code = stop(process, signal.SIGINT)
        output.join()
    assert code in (0, 130), f"Ctrl-C: exit {code}:\n{output.text()}"


def run_tensorboard(words: list[str], ws: Workspace, venv: str) -> None:
    process, output = start(words, ws, venv)
    try:
        address = re.compile(r"(http://[^\s]+/)")
        assert wait_until(process, output, lambda p: any(address.search(x) for x in p), 120), (
            output.text()
        )
        url = next(address.search(x).group(1) for x in output.pieces if address.search(x))  # type: ignore[union-attr]
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
    finally:
        stop(process, signal.SIGINT)
        output.join()


def option(words: list[str], name: str) -> str | None:
    if name in words:
        return words[words.index(name) + 1]
    return None


def jack_alive(ws: Workspace) -> bool:
    done = subprocess.run(
        ["jack_lsp"], env={**os.environ, **ws.jack_env}, capture_output=True, timeout=30
    )
    return done.returncode == 0


def run_jam(words: list[str], ws: Workspace, venv: str) -> None:
    """A jam on the JACK server, a call played in, its answer heard; then SIGTERM, exit 0."""
    from exports.midi import NOTE_OFF, NOTE_ON
    from tests.support.jack_probe import JackRecorder

    keyboard = option(words, "--input")
    synth = option(words, "--output")
    player = JackRecorder(keyboard or "readme-player").start()
    target = JackRecorder(synth).start() if synth else None
    process, output = start(words, ws, venv)
    try:
        assert jack_alive(ws), "the session's JACK server is gone"
        ready = wait_until(process, output, lambda p: any("listening on" in x for x in p), 90)
        assert ready, f"jam did not start (exit {process.poll()}):\n{output.text()}"
        ports = player.client.get_ports(is_midi=True)
        for port in ports:
            client = port.name.split(":")[0]
            if client.startswith("deepjam") and port.is_output:
                player.connect_from(port.name)  # hear every output of deepjam
            if client.startswith("deepjam") and port.is_input and not keyboard:
                player.connect_to(port.name)  # --virtual input: play into 'deepjam in'
        time.sleep(0.3)
        for pitch in CALL:
            player.send((NOTE_ON, pitch, 96))
            time.sleep(0.225)
            player.send((NOTE_OFF, pitch, 0))
            time.sleep(0.025)
        heard = player if target is None else target
        # A shipped model plays notes in its answer; one the README trained for seconds
        # (bounded) may rest after the note every answer opens with.
        least = 1 if "--model" in words else 3
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(heard.note_ons()) < least:
            time.sleep(0.1)
        code = stop(process, signal.SIGTERM)
        output.join()
        assert code == 0, f"exit {code} after SIGTERM:\n{output.text()}"
        # It answered: its stop line counts the answer.
        answers = [int(m.group(1)) for x in output.pieces for m in [ANSWERS.search(x)] if m]
        assert answers and answers[-1] >= 1, f"no answer:\n{output.text()}"
        assert len(heard.note_ons()) >= least, f"no notes in the answer:\n{output.text()}"
    finally:
        if process.poll() is None:
            stop(process, signal.SIGTERM)
        player.stop()
        if target is not None:
            target.stop()


def run_part(part: str, comment: str, ws: Workspace, venv: str) -> None:
    words = shell_words(part, ws)
    if is_pip(part):
        if part in ws.installed.setdefault(venv, set()):
            return
        run_plain(part, ws, venv, PIP_TIMEOUT_S)
        ws.installed[venv].add(part)
    elif comment.startswith("= .ci/run"):
        ci = CI_RUN.read_text().splitlines()
        assert part in ci, f"{part!r} is not a line of .ci/run"
    elif words[:2] == ["deepjam", "jam"]:
        run_jam(words, ws, venv)
    elif words[:2] == ["deepjam", "train"]:
        run_train(words, ws, venv)
    elif words[:3] == ["deepjam", "corpus", "build"] and "--from" not in words:
        run_plain(shlex.join([*words, "--limit", "5"]), ws, venv, COMMAND_TIMEOUT_S)
    elif words[:2] == ["deepjam", "sweep"]:
        run_sweep(words, ws, venv)
    elif words[:1] == ["tensorboard"]:
        run_tensorboard(words, ws, venv)
    elif words[:1] == ["python3"] and words[1:2] and words[1].startswith("benchmarks/"):
        run_until(words, ws, venv, lambda p: any(re.search(r"\d", x) for x in p), "a figure")
    else:
        run_plain(part, ws, venv, COMMAND_TIMEOUT_S)


def ordered(sections: list[Section]) -> Iterator[tuple[Section, str]]:
    """(section, venv): base venv first, then train; in each, fewer extras first (stable)."""
    keyed = [(s, extras_of(s, sections)) for s in sections]
    for venv in ("base", "train"):
        mine = [(s, e) for s, e in keyed if venv_name(e) == venv]
        for s, _ in sorted(mine, key=lambda se: len(se[1] - {"torch", "train"})):
            yield s, venv


@pytest.fixture(scope="module")
def workspace(jack_server) -> Iterator[Workspace]:  # type: ignore[no-untyped-def]
    # Its own folder, not pytest's tmp_path: pytest keeps only the last 3 sessions' folders,
    # so a second pytest on the machine would delete the venvs while this test runs.
    root = Path(tempfile.mkdtemp(prefix="deepjam-readme-"))
    ws = Workspace(root, root / "deepjam")
    copy_repository(ws.repo)
    text = README.read_text(encoding="utf-8")
    (root / "home").mkdir()
    for name in sorted(set(re.findall(r"~/midi/([\w.-]+)", text))):
        fill_midi_folder(root / "home" / "midi" / name)
    ws.jack_env = {"JACK_DEFAULT_SERVER": jack_server.name}
    for venv in ("base", "train"):
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "venv", str(root / f"venv-{venv}")],
            check=True,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
        ws.venvs[venv] = root / f"venv-{venv}"
        ws.timings.append((f"python3 -m venv {venv}", time.monotonic() - started))
    try:
        yield ws
    finally:
        print("\nREADME commands, seconds each:")
        for what, seconds in ws.timings:
            print(f"  {seconds:6.1f}  {what}")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.jack
@pytest.mark.timeout(1500)  # two venvs and every command: minutes (the suite's default is 300 s)
def test_every_readme_command_runs_after_its_sections_install(workspace: Workspace) -> None:
    sections = parse_readme(README.read_text(encoding="utf-8"))
    ran = 0
    for section, venv in ordered(sections):
        for command in section.commands:
            for part in split_chain(command.text):
                started = time.monotonic()
                try:
                    run_part(part, command.comment, workspace, venv)
                except (AssertionError, subprocess.TimeoutExpired) as err:
                    raise AssertionError(
                        f"README.md line {command.line} ({section.heading!r}, {venv} venv): "
                        f"{part}\n{err}"
                    ) from err
                workspace.timings.append((f"[{venv}] {part}", time.monotonic() - started))
                ran += 1
    assert ran >= 10
