"""Live against training: the states the live ``Session`` decides on equal ``MelodyEnv``'s.

The same player's line goes to both: to the live session as timestamped MIDI on a fake clock, to
the training environment as grid events (an episode whose lead-in is everything the player
played before the agent's turn). The actions live played (the network's, as the mode let them
through: an answer's first step is a note) are played in training too. Every state of every
turn must be equal, bit for bit: first and later answers (the agent's previous answer and the
earlier calls are in the live history), minor and major keys, and a duet's first phrase.
"""

from __future__ import annotations

import threading

import numpy as np

from exports.spec import DEFAULT_SPEC, FIRST_NOTE_ACTION, HOLD, HOLD_EVENT, REST, REST_EVENT
from live_agent.clock import FakeClock
from live_agent.controls import ControlMap
from live_agent.engine import Session
from live_agent.options import JamOptions
from tests.fakes import MS, RecordingNoteSink, ScriptedPolicy, inbox_of
from training.env.environment import EnvConfig, Episodes, MelodyEnv

SPEC = DEFAULT_SPEC
STEP_NS = 125 * MS  # 120 bpm
VELOCITY = 90
NOTE_ON_AFTER_BOUNDARY_NS = 2 * MS
NOTE_OFF_BEFORE_BOUNDARY_NS = 3 * MS  # before the decision of the next step (margin 1 ms)
# The agent's actions, cycled: notes across its range (key-relative), holds and rests.
SCRIPT = [FIRST_NOTE_ACTION + p for p in (12, 14, 16, 19, 21, 24, 23, 19)]
ANSWERS = 18  # 18 answers of 32 steps and a duet phrase of 64: 640 states
SCRIPT = [a for p in SCRIPT for a in (p, HOLD)] + [REST, HOLD, FIRST_NOTE_ACTION + 17, REST]


def _phrase(rng: np.random.Generator, tonic: int, minor: bool, steps: int) -> list[int]:
    """A random monophonic line of ``steps`` grid events in a key, ending on a held note."""
    scale = (0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11)
    events: list[int] = []
    while len(events) < steps:
        length = int(rng.choice([1, 2, 2, 4]))
        pitch = 60 + tonic + int(rng.choice(scale)) + 12 * int(rng.integers(-1, 1))
        events += [pitch] + [HOLD_EVENT] * (length - 1)
        if rng.random() < 0.15:
            events.append(REST_EVENT)
    return events[:steps]


def _midi_of(grid: list[int], origin_step: int) -> list[tuple[int, tuple[int, int, int]]]:
    """Timestamped note-on / note-off messages that the live listener folds into ``grid``."""
    events: list[tuple[int, tuple[int, int, int]]] = []
    sounding: int | None = None
    for k, e in enumerate(grid + [REST_EVENT]):
        boundary = (origin_step + k) * STEP_NS
        if e != HOLD_EVENT and sounding is not None:
            events.append((boundary - NOTE_OFF_BEFORE_BOUNDARY_NS, (0x80, sounding, 0)))
            sounding = None
        if e >= 0:
            events.append((boundary + NOTE_ON_AFTER_BOUNDARY_NS, (0x90, e, VELOCITY)))
            sounding = e
    return events


def _live_turns(
    options: JamOptions, line: list[int], steps: int
) -> tuple[list[np.ndarray], list[tuple[int, int]], list[int]]:
    """Run the live session on the player's ``line`` (grid events from step 0); returns the
    states it decided on, each turn as (first grid step, length), and the action it played on
    each of those states."""
    policy = ScriptedPolicy(SCRIPT)
    clock = FakeClock()
    session = Session(
        policy,
        options,
        RecordingNoteSink(clock),
        clock,
        inbox_of(_midi_of(line, 0), close=False),
        controls=ControlMap(),
    )
    decided: list[int] = []
    played: list[int] = []
    decide = session.decide

    def recording_decide(step: int, boundary_ns: int | None = None) -> None:
        before = policy.calls
        decide(step, boundary_ns)
        if policy.calls > before:
            decided.append(step)
            assert session._pending_action is not None
            played.append(session._pending_action)

    session.decide = recording_decide  # type: ignore[method-assign]
    session.run(threading.Event(), until_step=steps, start_ns=0)
    turns: list[tuple[int, int]] = []
    for step in decided:
        if turns and turns[-1][0] + turns[-1][1] == step:
            turns[-1] = (turns[-1][0], turns[-1][1] + 1)
        else:
            turns.append((step, 1))
    return policy.states, turns, played


def _training_states(
    line: list[int],
    turns: list[tuple[int, int]],
    answering: bool,
    turn_steps: int,
    first_calls: list[int],
    played: list[int],
) -> list[np.ndarray]:
    """The environment's states for the same turns: each turn is an episode whose lead-in is the
    player's line from step 0 up to the turn (front-padded with silence to a common length),
    playing the actions live played (``played[first_calls[i] + t]``: turn i's step t)."""
    lead = max(max(start for start, _ in turns), SPEC.window_steps)
    lead = -(-lead // SPEC.steps_per_bar) * SPEC.steps_per_bar
    width = lead + turn_steps
    segments = np.full((len(turns), width), HOLD_EVENT, np.int64)
    padded = line + [HOLD_EVENT] * width
    for i, (start, _) in enumerate(turns):
        row = padded[: start + turn_steps]
        segments[i, width - len(row) :] = row
    episodes = Episodes(
        segments,
        np.full(len(turns), answering),
        np.full(len(turns), turn_steps),
        np.array([start % SPEC.steps_per_bar for start, _ in turns]),
    )

    class Given:
        lead_steps = lead
        max_turn_steps = turn_steps

        def sample(self, n: int, rng: np.random.Generator) -> Episodes:
            return episodes

    config = EnvConfig(n_envs=len(turns), transpose_semitones=0, auto_reset=False)
    env = MelodyEnv(SPEC, None, config, episodes=Given())
    states = [env.reset()]
    for t in range(turn_steps - 1):
        actions = np.array([played[c + t] for c in first_calls])
        states.append(env.step(actions).states)
    return [states[t][i] for i in range(len(turns)) for t in range(turn_steps)]


def test_answers_live_equal_training_states_first_and_later_answers() -> None:
    rng = np.random.default_rng(11)
    # The grid is the session's own (the player's beat would renumber it where the random
    # line's accents put the downbeat: the states are compared step for step).
    options = JamOptions(mode="answer", clock="internal", temperature=0.0, seed=0, answer_bars=2)
    answer_steps = 2 * SPEC.steps_per_bar
    line: list[int] = []
    keys = [(0, False), (9, True), (7, False), (2, True), (5, False), (4, True), (10, False)]
    for i in range(ANSWERS):
        tonic, minor = keys[i % len(keys)]
        line += _phrase(rng, tonic, minor, 2 * SPEC.steps_per_bar)
        # The call ends; the silence before the answer, the answer and some rest after it,
        # to a bar line (each call starts on one, so its bars are the grid's).
        line += [REST_EVENT] + [HOLD_EVENT] * (2 * answer_steps + 15)
    live, turns, played = _live_turns(options, line, len(line))
    assert len(turns) == ANSWERS and all(length >= answer_steps for _, length in turns), turns
    # An answer's last note may ring on past its length (decisions with progress held at its
    # end): training's turn has no such tail, so each turn's first answer_steps are compared.
    first_calls = list(np.cumsum([0] + [length for _, length in turns[:-1]]))
    training = _training_states(line, turns, True, answer_steps, first_calls, played)
    # Each answer opened with a note, whatever the script said there.
    assert all(played[c] >= FIRST_NOTE_ACTION for c in first_calls), [
        played[c] for c in first_calls
    ]
    compared = [live[c + t] for c in first_calls for t in range(answer_steps)]
    assert len(compared) == len(training) == ANSWERS * answer_steps
    _assert_equal_per_turn(compared, training, turns, answer_steps)


def _assert_equal_per_turn(
    live: list[np.ndarray],
    training: list[np.ndarray],
    turns: list[tuple[int, int]],
    steps: int,
    compare: tuple[str, ...] = ("agent", "player", "context"),
) -> None:
    """The ``compare`` parts of every state equal; on failure, name the turn, its step and the
    parts that differ."""
    f, w = SPEC.features_per_part_step, SPEC.window_steps
    cuts = {
        "agent": slice(0, w * f),
        "player": slice(w * f, 2 * w * f),
        "context": slice(2 * w * f, None),
    }
    for i, (start, _) in enumerate(turns):
        for t in range(steps):
            got, want = live[i * steps + t].reshape(-1), training[i * steps + t]
            differ = [n for n in compare if not np.array_equal(got[cuts[n]], want[cuts[n]])]
            if differ:
                raise AssertionError(
                    f"turn {i} (grid step {start}), step {t}: live and training differ in {differ}"
                )


def test_duet_live_equals_training_first_phrase_whole_state_later_phrases_player_and_key() -> None:
    """A duet plays in phrases of ``duet_bars`` (training's duet turns). The first phrase equals
    training's whole state. Later phrases equal it in the player's part and the context (the key
    frame moves at each phrase start, to the key of everything the player played before it);
    the agent's part differs by design: training's duet turn starts with the agent silent."""
    rng = np.random.default_rng(5)
    options = JamOptions(
        mode="duet", clock="internal", temperature=0.0, seed=0, duet_bars=4, duet_wait_notes=0
    )
    phrase_steps = options.duet_bars * SPEC.steps_per_bar
    line: list[int] = []
    for tonic, minor in [(7, False), (2, True), (10, False)]:
        line += _phrase(rng, tonic, minor, phrase_steps)
    live, turns, played = _live_turns(options, line, len(line))
    assert turns == [(0, len(line))]
    phrases = [(start, phrase_steps) for start in range(0, len(line), phrase_steps)]
    first_calls = [start for start, _ in phrases]
    training = _training_states(line, phrases, False, phrase_steps, first_calls, played)
    _assert_equal_per_turn(live[:phrase_steps], training[:phrase_steps], phrases[:1], phrase_steps)
    _assert_equal_per_turn(
        live[phrase_steps:],
        training[phrase_steps:],
        phrases[1:],
        phrase_steps,
        compare=("player", "context"),
    )
