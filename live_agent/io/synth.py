"""``deepjam jam --synth``: a FluidSynth of deepjam's own, so a laptop user hears it unpatched.

It starts ``fluidsynth`` on JACK with the General MIDI soundfont, its audio connected to the
system's playback (``-j``), waits until its MIDI input shows, and hands back that port's name
for deepjam to play on. FluidSynth reads its command shell from a pipe that deepjam holds open:
in the background it keeps running (with stdin at EOF it would exit at once, which is why
``fluidsynth ... &`` from a shell falls silent), and if deepjam dies the pipe closes and the
synth ends too. ``stop()`` closes the pipe, then terminates it, and waits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from exports.errors import ConfigError, PortError

SYNTH_CLIENT_NAME = "fluidsynth-deepjam"
SOUNDFONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),  # Debian/Ubuntu: fluid-soundfont-gm
    Path("/usr/share/soundfonts/FluidR3_GM.sf2"),  # Fedora, Arch
    Path("/usr/share/soundfonts/default.sf2"),
    Path("/opt/homebrew/share/soundfonts/default.sf2"),
)
INSTALL_HINT = (
    "install it (Debian/Ubuntu: sudo apt-get install fluidsynth fluid-soundfont-gm; macOS: "
    "brew install fluid-synth) or leave out --synth and name a synth with --output"
)
GAIN = 1.0
"""FluidSynth's master gain (its default, 0.2, is quiet beside other programs)."""
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 3.0


def find_soundfont() -> Path | None:
    """The first General MIDI soundfont found in the usual places, or None."""
    override = os.environ.get("DEEPJAM_SOUNDFONT")
    if override:
        return Path(override)
    return next((path for path in SOUNDFONTS if path.is_file()), None)


def check_synth() -> tuple[str, Path]:
    """(fluidsynth executable, soundfont); ConfigError in one line, with the install command,
    when either is missing."""
    executable = shutil.which("fluidsynth")
    if executable is None:
        raise ConfigError(f"--synth needs FluidSynth, which is not installed; {INSTALL_HINT}")
    soundfont = find_soundfont()
    if soundfont is None or not soundfont.is_file():
        raise ConfigError(
            f"--synth needs a General MIDI soundfont (looked for {SOUNDFONTS[0]}); {INSTALL_HINT}"
        )
    return executable, soundfont


@dataclass
class Synth:
    """A running FluidSynth: its process and the MIDI port to play on."""

    process: subprocess.Popen[bytes]
    midi_port: str
    """rtmidi's name of its MIDI input, e.g. ``fluidsynth-deepjam:midi_00``."""
    soundfont: Path

    def stop(self) -> None:
        """End the synth: close its shell's pipe, then SIGTERM, then wait (kill if it hangs)."""
        if self.process.poll() is None:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        elif self.process.stdin is not None:
            self.process.stdin.close()


def start_synth(api: int, timeout_s: float = START_TIMEOUT_S) -> Synth:
    """Start FluidSynth on JACK, audio to the system's playback; returns once its MIDI input
    is listed. Raises ConfigError when it is not installed, PortError when it does not come up."""
    from live_agent.io.ports import api_ids, list_ports

    if api != api_ids()["jack"]:
        raise ConfigError(
            "--synth runs FluidSynth on JACK, and no JACK server answers; start one "
            "(`jackd -R -d alsa &`) and run again"
        )
    executable, soundfont = check_synth()
    before = set(list_ports(api).outputs)
    command = [
        executable,
        "-a",
        "jack",
        "-m",
        "jack",
        "-j",  # connect its audio outputs to the system's playback ports
        "-g",
        f"{GAIN:g}",
        "-o",
        f"midi.jack.id={SYNTH_CLIENT_NAME}",
        "-o",
        f"audio.jack.id={SYNTH_CLIENT_NAME}",
        str(soundfont),
    ]
    env = dict(os.environ, JACK_NO_START_SERVER="1")
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,  # held open: FluidSynth's shell waits on it instead of exiting
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            reason = (process.stderr.read() if process.stderr else b"").decode(errors="replace")
            last = reason.strip().splitlines()[-1] if reason.strip() else "no output"
            raise PortError(f"FluidSynth exited at start (exit {process.returncode}: {last})")
        new = [
            name
            for name in list_ports(api).outputs
            if name not in before and SYNTH_CLIENT_NAME in name
        ]
        if new:
            if process.stderr is not None:
                process.stderr.close()  # nothing reads it from here on: never let it block
            return Synth(process, new[0], soundfont)
        time.sleep(0.1)
    Synth(process, "", soundfont).stop()
    raise PortError(
        f"FluidSynth did not show its MIDI port within {timeout_s:g} s; run it by hand to see "
        f"why: {' '.join(command)}"
    )
