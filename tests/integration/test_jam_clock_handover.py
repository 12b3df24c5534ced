"""`deepjam jam --clock auto` (the default) on real JACK, played by a separate JACK client: a
lone clock byte changes nothing; a DAW's Start, ticks and Stop hand the grid to the clock (notes
on its 16ths) and back (notes go on at once, on the clock's last tempo, then the player's)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from tests.support.jack_probe import NOTE_ON, jack_recorder, run_jam

DEEPJAM_IN = "deepjam-in:deepjam in"
DEEPJAM_OUT = "deepjam-out:deepjam out"
CLOCK, START, STOP = 0xF8, 0xFA, 0xFC
CLOCK_BPM = 100.0  # not --bpm: while the clock runs, the notes must follow it
JAM_BPM = 140.0


@pytest.mark.jack
@pytest.mark.slow
def test_auto_follows_a_running_clock_and_hands_back_when_it_stops(
    jack_server, scale_model_path: Path
) -> None:  # type: ignore[no-untyped-def]
    tick_s = 60.0 / CLOCK_BPM / 24
    args = ["--model", str(scale_model_path), "--temperature", "0", "--virtual", "--api", "jack"]
    args += ["--mode", "duet", "--bpm", str(JAM_BPM), "--duet-wait-notes", "0"]
    with jack_recorder("clock-daw") as recorder, run_jam(args, env=jack_server.env) as jam:
        recorder.wait_for_port(DEEPJAM_OUT)
        recorder.connect_from(DEEPJAM_OUT)
        recorder.connect_to(DEEPJAM_IN)
        time.sleep(0.5)
        recorder.send((CLOCK,))  # a lone tick, then a lone Start: nothing changes
        time.sleep(0.4)
        recorder.send((START,))
        time.sleep(0.6)
        lone_end = recorder.client.frame_time
        recorder.send((START,))
        start_frame = recorder.client.frame_time
        deadline = time.perf_counter()
        for _ in range(24 * 8):  # two bars of the DAW's clock
            recorder.send((CLOCK,))
            deadline += tick_s
            time.sleep(max(0.0, deadline - time.perf_counter()))
        recorder.send((STOP,))
        stop_frame = recorder.client.frame_time
        time.sleep(1.2)
        onsets = [e.frame for e in recorder.note_ons() if e.data[0] & 0xF0 == NOTE_ON]
        lines = list(jam.lines)
    log = "\n".join(lines)
    rate = recorder.sample_rate
    frames = np.array(onsets, dtype=np.float64)
    jam_step = 60.0 / JAM_BPM / 4
    clock_step = 6 * tick_s
    before = np.diff(frames[frames < lone_end]) / rate
    # Before the DAW's Start (a lone tick and a lone Start heard): --bpm's 16ths, no gap.
    assert len(before) >= 8 and np.median(before) == pytest.approx(jam_step, abs=0.004), before
    assert sum("MIDI clock running" in line for line in lines) == 1, log
    # While the clock runs (from its second 16th, until Stop): the clock's 16ths.
    during = frames[(frames > start_frame + 2 * clock_step * rate) & (frames < stop_frame)]
    gaps = np.diff(during) / rate
    assert len(gaps) >= 10 and np.median(gaps) == pytest.approx(clock_step, abs=0.004), gaps
    assert np.all(np.abs(gaps - clock_step) < 0.015), gaps
    # After Stop: handed back at once, the notes go on at the clock's tempo (no silent beat).
    assert any("MIDI clock stopped" in line for line in lines), log
    after = frames[frames > stop_frame]
    assert len(after) >= 5, log
    across = np.diff(np.concatenate([during[-1:], after[:5]])) / rate
    assert np.all(across < 1.5 * clock_step), across
