"""LinkGrid against a real second Ableton Link peer in this process: it takes the session's
tempo, puts step 0 on the session's next bar, keeps every 16th on the peer's timeline, and
follows a tempo change by the peer. No JACK here (tests/integration/test_link_clock.py plays
through JACK)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import pytest
from link_peer import LinkPeer, Timeline, require_aalink

from live_agent.cli import main
from live_agent.link_clock import LinkGrid

require_aalink()

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
def peer() -> Iterator[LinkPeer]:
    """One peer for the module (a fresh one waits SESSION_AGE_S); each test sets its tempo."""
    with LinkPeer(100.0, BEATS_PER_BAR) as peer:
        yield peer


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


def test_link_grid_takes_the_session_tempo_and_starts_on_its_next_bar(peer: LinkPeer) -> None:
    peer.set_tempo(100.0)
    with LinkGrid(120.0, BEATS_PER_BAR) as grid:
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


def test_link_grid_follows_a_tempo_change_by_the_peer(peer: LinkPeer) -> None:
    peer.set_tempo(100.0)
    with LinkGrid(120.0, BEATS_PER_BAR) as grid:
        assert grid.tempo_bpm == pytest.approx(100.0, abs=0.01), grid.describe()
        grid.next_boundary(time.perf_counter_ns())  # step 0 fixed on a bar at 100 bpm
        changed_s = time.monotonic()
        peer.set_tempo(140.0)
        while grid.tempo_bpm != pytest.approx(140.0, abs=0.01) and time.monotonic() - changed_s < 2:
            time.sleep(0.001)
        followed_s = time.monotonic() - changed_s
        assert grid.tempo_bpm == pytest.approx(140.0, abs=0.01), grid.describe()
        assert followed_s < 0.5, followed_s  # a few snapshots (5 ms each) on a busy machine
        assert grid.step_ns == pytest.approx(60e9 / 140.0 / STEPS_PER_BEAT, rel=1e-4)
        steps = boundaries(grid, time.perf_counter_ns(), 2 * STEPS_PER_BAR)
        errors = sixteenth_errors_ms(grid, peer.timeline(), steps)
        assert max(abs(e) for e in errors) < 0.5, errors
        # Consecutive, on the same bar lines as before (the errors compare bar positions).
        assert [s for s, _ in steps] == list(range(steps[0][0], steps[0][0] + 2 * STEPS_PER_BAR))


def test_clock_link_without_aalink_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "aalink", None)  # not importable, as without the extra
    assert main(["jam", "--clock", "link", "--virtual"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "--clock link" in err and 'pip install "deepjam[link]"' in err, err
