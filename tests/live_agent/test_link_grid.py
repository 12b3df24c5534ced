"""LinkGrid against a real second Ableton Link peer in this process: it takes the session's
tempo, puts step 0 on the session's next bar, keeps every 16th on the peer's timeline, and
follows a tempo change by the peer. No JACK here (tests/integration/test_link_clock.py plays
through JACK)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exports.errors import ConfigError
from exports.model_file import load_model
from live_agent.cli import main
from live_agent.clock import RealClock
from live_agent.engine import Session
from live_agent.link_clock import LinkGrid
from live_agent.options import JamOptions
from live_agent.view.snapshot import take_snapshot
from tests.fakes import RecordingNoteSink, inbox_of
from tests.support.link_peer import LinkPeer, Timeline, require_aalink

require_aalink()

SHIPPED = Path(__file__).resolve().parents[2] / "live_agent" / "models" / "default.onnx"
BEATS_PER_BAR = 4
STEPS_PER_BEAT = 4
STEPS_PER_BAR = BEATS_PER_BAR * STEPS_PER_BEAT


def sixteenth_errors_ms(
    grid: LinkGrid, peer: Timeline, steps: list[tuple[int, int]]
) -> list[float]:
    """For each (step, boundary ns): how far the boundary is from the peer's 16th at the same
    place in its bar (the step's bar position), in ms."""
    errors = []
    for step, boundary_ns in steps:
        sixteenth = peer.beat_at(boundary_ns) * STEPS_PER_BEAT  # the peer's 16th count there
        # The nearest of the peer's 16ths with this bar position (Link aligns bars, not counts).
        wanted = (
            sixteenth + ((step - sixteenth + STEPS_PER_BAR / 2) % STEPS_PER_BAR) - STEPS_PER_BAR / 2
        )
        errors.append((sixteenth - wanted) / STEPS_PER_BEAT * 60e3 / peer.tempo_bpm)
    return errors


@pytest.fixture(scope="module")
def joined() -> Iterator[tuple[LinkPeer, LinkGrid]]:
    """A fresh peer at 100 bpm and a LinkGrid (--bpm 120) that joined its session, for the
    module. One join only: a client that joins within a second of another one leaving often
    founds the winning session itself (its --bpm became the peer's: from the 3rd of 10 quick
    rejoins on; 0 of 10 with a second between), so the tests do not join, leave and rejoin."""
    with LinkPeer(100.0, BEATS_PER_BAR) as peer, LinkGrid(120.0, BEATS_PER_BAR) as grid:
        yield peer, grid


def wait_for_tempo(grid: LinkGrid, bpm: float, timeout_s: float = 2.0) -> float:
    """Seconds until the grid's tempo is ``bpm`` (or the timeout)."""
    started_s = time.monotonic()
    while (
        grid.tempo_bpm != pytest.approx(bpm, abs=0.01) and time.monotonic() - started_s < timeout_s
    ):
        time.sleep(0.001)
    return time.monotonic() - started_s


def boundaries(grid: LinkGrid, after_ns: int, count: int) -> list[tuple[int, int]]:
    out = []
    for _ in range(count):
        step, boundary_ns = grid.next_boundary(after_ns)
        out.append((step, boundary_ns))
        after_ns = boundary_ns
    return out


def test_link_grid_alone_plays_at_its_own_bpm() -> None:
    with LinkGrid(90.0, 3).start(peer_wait_s=0.2) as grid:
        if grid.peers:
            pytest.fail(f"another Link session is on this network: {grid.describe()}")
        assert grid.tempo_bpm == pytest.approx(90.0, abs=0.01)
        assert "alone" in grid.describe()
        step, first_ns = grid.next_boundary(time.perf_counter_ns())
        step2, second_ns = grid.next_boundary(first_ns)
        assert (step, step2) == (0, 1)
        assert second_ns - first_ns == pytest.approx(60e9 / 90.0 / STEPS_PER_BEAT, abs=1000)


def test_link_grid_takes_the_session_tempo_and_starts_on_its_next_bar(
    joined: tuple[LinkPeer, LinkGrid],
) -> None:
    peer, grid = joined
    assert grid.peers >= 1, grid.describe()
    assert grid.tempo_bpm == pytest.approx(100.0, abs=0.01), grid.describe()
    assert grid.step_ns == pytest.approx(60e9 / 100.0 / STEPS_PER_BEAT, rel=1e-4)
    now_ns = time.perf_counter_ns()
    steps = boundaries(grid, now_ns, 3 * STEPS_PER_BAR)
    timeline = peer.timeline()
    first_step, first_ns = steps[0]
    assert first_step == 0
    # Step 0 is the peer's next bar line: within one bar ahead, and on beat 0 of its bar.
    assert 0 < first_ns - now_ns <= 60e9 / 100.0 * BEATS_PER_BAR + 1e6
    bar_phase = timeline.beat_at(first_ns) % BEATS_PER_BAR
    assert min(bar_phase, BEATS_PER_BAR - bar_phase) * 600.0 < 0.5, bar_phase  # < 0.5 ms
    assert [s for s, _ in steps] == list(range(3 * STEPS_PER_BAR))
    errors = sixteenth_errors_ms(grid, timeline, steps)
    assert max(abs(e) for e in errors) < 0.5, errors
    assert "100.0 bpm, 1 other peer" in grid.describe()


def test_link_grid_follows_a_tempo_change_by_the_peer(joined: tuple[LinkPeer, LinkGrid]) -> None:
    peer, grid = joined
    try:
        peer.set_tempo(140.0)
        followed_s = wait_for_tempo(grid, 140.0)
        assert grid.tempo_bpm == pytest.approx(140.0, abs=0.01), grid.describe()
        assert followed_s < 0.5, followed_s  # a few snapshots (10 ms each) on a busy machine
        assert grid.step_ns == pytest.approx(60e9 / 140.0 / STEPS_PER_BEAT, rel=1e-4)
        steps = boundaries(grid, time.perf_counter_ns(), 2 * STEPS_PER_BAR)
        errors = sixteenth_errors_ms(grid, peer.timeline(), steps)
        assert max(abs(e) for e in errors) < 0.5, errors
        # Consecutive, on the same bar lines as before (the errors compare bar positions).
        assert [s for s, _ in steps] == list(range(steps[0][0], steps[0][0] + 2 * STEPS_PER_BAR))
    finally:
        peer.set_tempo(100.0)
        wait_for_tempo(grid, 100.0)


def test_a_session_on_link_plays_its_grid_and_the_view_names_the_session(
    joined: tuple[LinkPeer, LinkGrid],
) -> None:
    _, grid = joined
    clock = RealClock()
    options = JamOptions(clock="link", bpm=120.0, temperature=0.0, seed=0, velocity=90)
    model = load_model(SHIPPED)
    with pytest.raises(ConfigError, match="--clock link"):
        Session(model, options, RecordingNoteSink(clock), clock, inbox_of([]))  # type: ignore[arg-type]
    session = Session(
        model,
        options,
        RecordingNoteSink(clock),
        clock,
        inbox_of([], close=False),
        grid=grid,  # type: ignore[arg-type]
    )
    snapshot = take_snapshot(session, [], "default")
    assert snapshot.tempo_source == "Ableton Link (1 peer)", snapshot.tempo_source
    assert snapshot.tempo_bpm == pytest.approx(100.0, abs=0.01)
    session.run(threading.Event(), until_step=4)
    assert session.grid is grid and session.stats.timing.steps == 4


def test_clock_link_without_aalink_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "aalink", None)  # not importable, as without the extra
    assert main(["jam", "--clock", "link", "--virtual"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "--clock link" in err and 'pip install "deepjam[link]"' in err, err
