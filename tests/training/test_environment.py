"""The vectorized melody environment, its Gymnasium view and answer_calls, on tiny corpora."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from exports.encoding import StepContext, encode_states, monophonic_window, summarize_call
from exports.errors import ConfigError, CorpusError
from exports.grid import sounding_pitches
from exports.spec import DEFAULT_SPEC, HOLD, HOLD_EVENT, REST, Spec
from training.data.corpus_data import Corpus
from training.env import reward as rw
from training.env.environment import EnvConfig, MelodyEnv, answer_calls
from training.env.gym_env import MelodyGymEnv

SPEC = DEFAULT_SPEC
D_MAJOR = [62, 64, 66, 67, 69, 71, 73, 74]


def corpus_of(*tunes: np.ndarray) -> Corpus:
    lengths = [len(t) for t in tunes]
    n = len(tunes)
    return Corpus(
        name="hand-made",
        events=np.concatenate(tunes).astype(np.int16),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        titles=[f"tune {i}" for i in range(n)],
        tonic=np.zeros(n, np.int64),
        minor=np.zeros(n, bool),
        validation=np.zeros(n, bool),
    )


def d_major_tune(bars: int) -> np.ndarray:
    """Eighth notes up and down the D major scale, ending on D; bars * 16 steps."""
    events = np.full(bars * 16, HOLD_EVENT, np.int64)
    line = D_MAJOR + D_MAJOR[-2:0:-1]
    for i, step in enumerate(range(0, bars * 16, 2)):
        events[step] = line[i % len(line)]
    return events


def random_corpus(n_tunes: int = 12, seed: int = 0) -> Corpus:
    rng = np.random.default_rng(seed)
    tunes = []
    for _ in range(n_tunes):
        events = np.full(16 * 8, HOLD_EVENT, np.int64)
        steps = np.sort(rng.choice(np.arange(16 * 8), size=40, replace=False))
        events[steps] = 60 + rng.choice([0, 2, 4, 5, 7, 9, 11], size=len(steps))
        tunes.append(events)
    return corpus_of(*tunes)


def test_shapes_and_terms() -> None:
    env = MelodyEnv(SPEC, random_corpus(), EnvConfig(n_envs=8, seed=1))
    states = env.reset()
    assert states.shape == (8, SPEC.state_dim) and states.dtype == np.float32
    result = env.step(np.full(8, SPEC.action_for_pitch(60)))
    assert result.states.shape == (8, SPEC.state_dim) and result.states.dtype == np.float32
    assert result.rewards.shape == (8,) and result.dones.shape == (8,)
    assert result.dones.dtype == bool and not result.dones.any()
    assert {"style", "theory", "play", "theory/in_key", "play/consonance"} <= set(result.terms)
    assert all(v.shape == (8,) for v in result.terms.values())
    with pytest.raises(ValueError, match=r"expected actions of shape \(8,\)"):
        env.step(np.zeros(3, np.int64))


def test_mixes_answer_and_duet_episodes_and_auto_resets() -> None:
    config = EnvConfig(n_envs=64, seed=2, answer_bars=2, duet_bars=4)
    env = MelodyEnv(SPEC, random_corpus(), config)
    env.reset()
    answering = env.answering.copy()
    assert 0 < answering.sum() < 64
    rng = np.random.default_rng(0)
    for step in range(32):
        result = env.step(rng.integers(0, SPEC.n_actions, size=64))
        if step < 31:
            assert not result.dones.any()
    # After 32 steps the answers (2 bars) are done, the duets (4 bars) are not.
    assert np.array_equal(result.dones, answering)
    # A done row already holds a new episode: its state is a first state (empty agent part,
    # progress 0) and equals what the env reports now.
    assert np.array_equal(result.states, env.states())
    done_rows = np.flatnonzero(result.dones)
    assert np.all(env.t[done_rows] == 0) and np.all(env.t[~result.dones] == 32)
    agent_part = result.states[:, : SPEC.window_steps * SPEC.features_per_part_step]
    assert not agent_part[done_rows].any()
    assert np.all(result.states[done_rows, -1 - SPEC.call_features] == 0.0)  # progress
    assert np.all(result.states[~result.dones, -1 - SPEC.call_features] == pytest.approx(0.5))


def test_answer_state_equals_the_encoder_on_hand_checked_windows() -> None:
    call = d_major_tune(2)  # the only 2-bar call of a 2-bar tune
    env = MelodyEnv(
        SPEC,
        corpus_of(call),
        EnvConfig(n_envs=1, answer_fraction=1.0, transpose_semitones=0, seed=0),
    )
    env.reset()
    assert (env.tonic[0], env.minor[0]) == (2, False)  # D major; key_shift 2
    # Agent: C (relative: the tonic, sounds as D), hold, rest.
    for action in (SPEC.action_for_pitch(60), HOLD, REST):
        result = env.step(np.array([action]))
    w = SPEC.window_steps
    relative_call = sounding_pitches(call) - 2  # all notes sound, no silence inside
    player_sounding = np.concatenate([relative_call[3:], [-1, -1, -1]])
    player_onset = np.concatenate([call[3:] >= 0, [False] * 3])
    agent_sounding = np.array([-1] * (w - 3) + [60, 60, -1])
    agent_onset = np.array([False] * (w - 3) + [True, False, False])
    # The call summary: the player's part over the call window before the turn.
    cw = SPEC.call_window_steps
    heard_sounding = np.concatenate([[-1] * (cw - len(call)), relative_call])
    heard_onset = np.concatenate([[False] * (cw - len(call)), call >= 0])
    summary = summarize_call(SPEC, monophonic_window(heard_sounding[None], heard_onset[None]))
    assert summary[0, 0] == 1.0  # the call was heard
    expected = encode_states(
        SPEC,
        monophonic_window(agent_sounding[None], agent_onset[None]),
        monophonic_window(player_sounding[None], player_onset[None]),
        StepContext(
            bar_position=np.array([3]),
            minor=np.array([False]),
            answering=np.array([True]),
            progress=np.array([3 / 32]),
            call=summary,
        ),
    )
    np.testing.assert_array_equal(result.states, expected)


def test_duet_player_part_is_the_line_after_the_lead() -> None:
    tune = d_major_tune(3)  # lead bars 0-1, the duet line is bar 2 then silence
    config = EnvConfig(
        n_envs=1, answer_fraction=0.0, duet_lead_bars=2, duet_bars=2, transpose_semitones=0
    )
    env = MelodyEnv(SPEC, corpus_of(tune), config)
    env.reset()
    for _ in range(5):
        result = env.step(np.array([HOLD]))
    relative = np.concatenate([sounding_pitches(tune), np.full(16, -1)]) - 2
    relative[48:] = -1
    onset = np.concatenate([tune >= 0, np.zeros(16, bool)])
    window = monophonic_window(relative[None, 5:37], onset[None, 5:37])
    silent = monophonic_window(np.full((1, 32), -1), np.zeros((1, 32), bool))
    cw = SPEC.call_window_steps  # the call summary: the lead bars heard before the duet turn
    lead = monophonic_window(
        np.concatenate([np.full(cw - 32, -1), relative[:32]])[None],
        np.concatenate([np.zeros(cw - 32, bool), onset[:32]])[None],
    )
    context = StepContext(
        np.array([5]),
        np.array([False]),
        np.array([False]),
        np.array([5 / 32]),
        summarize_call(SPEC, lead),
    )
    np.testing.assert_array_equal(result.states, encode_states(SPEC, silent, window, context))


def test_always_tonic_policy_gets_the_expected_theory_reward() -> None:
    env = MelodyEnv(SPEC, random_corpus(), EnvConfig(n_envs=16, answer_fraction=1.0, seed=3))
    env.reset()
    totals: dict[str, np.ndarray] = {}
    for _ in range(32):
        result = env.step(np.full(16, SPEC.action_for_pitch(60)))
        for name, value in result.terms.items():
            totals[name] = totals.get(name, 0) + value
    assert result.dones.all()
    assert np.all(totals["theory/in_key"] == 0)
    assert np.all(totals["theory/tonic_start"] == rw.TONIC_START_REWARD)
    assert np.all(totals["theory/tonic_end"] == rw.TONIC_END_REWARD)
    # The 5th..32nd onset of one pitch are excessive repetitions.
    assert np.all(totals["theory/repetition"] == (32 - 4) * rw.REPETITION_PENALTY)
    # The 4th..32nd are a long same-pitch run; 31 repeats in 31 intervals, far from the
    # corpus's 14%; the last onset (step 31) is off the beat, so no stable close.
    assert np.all(totals["theory/same_pitch_run"] == 29 * rw.SAME_PITCH_RUN_PENALTY)
    assert np.all(totals["theory/stable_close"] == 0)
    rates = rw._rate_potential(np.array(0), np.array(31), np.array(31))
    np.testing.assert_allclose(totals["theory/interval_rates"], rates)
    expected = 2.0 + 2.0 - 28.0 + 29 * rw.SAME_PITCH_RUN_PENALTY + rates
    np.testing.assert_allclose(totals["theory"], expected)
    # A C-sharp every step (out of key in every major and minor key) is penalised every step.
    env.reset()
    in_key = 0
    for _ in range(32):
        in_key = in_key + env.step(np.full(16, SPEC.action_for_pitch(61))).terms["theory/in_key"]
    assert np.all(in_key == 32 * rw.OUT_OF_KEY_PENALTY)


def test_transposition_moves_the_key_not_the_relative_line() -> None:
    env = MelodyEnv(
        SPEC, corpus_of(d_major_tune(2)), EnvConfig(n_envs=32, answer_fraction=1.0, seed=4)
    )
    env.reset()
    assert len(set(env.transpose.tolist())) > 3 and np.all(np.abs(env.transpose) <= 6)
    np.testing.assert_array_equal(env.tonic, (2 + env.transpose) % 12)
    # In the key-relative frame every call note is on the C-major scale.
    pcs = env.player_sounding[env.player_sounding >= 0] % 12
    assert set(pcs.tolist()) <= {0, 2, 4, 5, 7, 9, 11}


def test_style_term_is_the_log_prob_of_the_chosen_action_in_the_state_it_was_chosen() -> None:
    seen: list[np.ndarray] = []

    def style_log_probs(states: np.ndarray) -> np.ndarray:
        seen.append(states.copy())
        logits = np.tile(np.arange(SPEC.n_actions, dtype=np.float64), (len(states), 1))
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))

    env = MelodyEnv(
        SPEC, random_corpus(), EnvConfig(n_envs=4, seed=5), style_log_probs=style_log_probs
    )
    first = env.reset()
    actions = np.array([0, 1, 2, 3])
    result = env.step(actions)
    np.testing.assert_array_equal(seen[0], first)
    expected = style_log_probs(first)[np.arange(4), actions]
    np.testing.assert_allclose(result.terms["style"], expected)


def test_answer_calls_returns_absolute_answers_in_the_calls_key() -> None:
    tonic_action = SPEC.action_for_pitch(60)

    def always_tonic(states: np.ndarray) -> np.ndarray:
        q = np.zeros((len(states), SPEC.n_actions))
        q[:, tonic_action] = 1.0
        return q

    d_call = d_major_tune(2)
    f_call = d_call[:16] + 3  # F major up to F, one bar: padded with a silent bar before it
    f_call[d_call[:16] < 0] = HOLD_EVENT
    answers = answer_calls(
        SPEC, [d_call, f_call], always_tonic, 0.0, np.random.default_rng(0), answer_bars=1
    )
    assert answers.events.shape == (2, 16)
    assert answers.tonic.tolist() == [2, 5]
    assert np.all(answers.relative_events == 60)
    assert np.all(answers.events[0] == 62) and np.all(answers.events[1] == 65)
    assert answers.rewards.shape == (2, 16) and answers.terms["theory"].shape == (2, 16)


def test_gym_env_passes_the_checker_and_terminates_after_the_turn() -> None:
    env = MelodyGymEnv(SPEC, random_corpus(), EnvConfig(answer_fraction=1.0, seed=6))
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=7)
    assert obs.shape == (SPEC.state_dim,) and info["answering"]
    steps, terminated = 0, False
    while not terminated:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        steps += 1
        assert not truncated and isinstance(reward, float)
    assert steps == 32 and "theory/in_key" in info


def test_other_spec_window() -> None:
    spec = Spec(window_steps=16)
    env = MelodyEnv(spec, random_corpus(), EnvConfig(n_envs=3, seed=8))
    assert env.reset().shape == (3, spec.state_dim)
    assert env.step(np.zeros(3, np.int64)).states.shape == (3, spec.state_dim)


def test_the_envs_onset_history_equals_searching_the_turn() -> None:
    env = MelodyEnv(SPEC, random_corpus(), EnvConfig(n_envs=32, seed=9))
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(70):
        x = env.reward_inputs()
        searched = rw.with_history(x._replace(previous_onsets=None)).previous_onsets
        np.testing.assert_array_equal(x.previous_onsets, searched)
        # Mostly HOLD, so that histories shorter than HISTORY_ONSETS occur too.
        actions = np.where(rng.random(32) < 0.3, rng.integers(0, SPEC.n_actions, 32), HOLD)
        env.step(actions)


def test_bad_config_values_are_refused_with_the_rule() -> None:
    with pytest.raises(ConfigError, match="answer_bars must be >= 1, got 0"):
        MelodyEnv(SPEC, random_corpus(), EnvConfig(answer_bars=0))
    with pytest.raises(ConfigError, match="answer_fraction must be within 0..1, got 1.5"):
        MelodyEnv(SPEC, random_corpus(), EnvConfig(answer_fraction=1.5))


def test_a_corpus_without_usable_calls_is_refused() -> None:
    two_notes = np.full(32, HOLD_EVENT, np.int64)
    two_notes[[0, 16]] = [60, 62]
    with pytest.raises(CorpusError, match="no 2-bar call with at least 3 notes"):
        MelodyEnv(SPEC, corpus_of(two_notes), EnvConfig(answer_fraction=1.0))


def test_answer_gap_starts_the_answer_after_the_calls_silence_at_any_bar_position() -> None:
    """As live: the call's last note ends, ``answer_gap_steps`` silent steps, then the answer;
    the state's bar position follows the call's bars, not the turn's first step."""
    from training.env.environment import CorpusEpisodes

    config = EnvConfig(n_envs=128, answer_fraction=1.0, answer_gap_steps=8, seed=4)
    corpus = random_corpus()
    episodes = CorpusEpisodes(SPEC, corpus, config).sample(128, np.random.default_rng(1))
    lead = CorpusEpisodes(SPEC, corpus, config).lead_steps
    sounding = sounding_pitches(episodes.segments)
    assert np.all(sounding[:, lead - 8 :] < 0)  # eight silent steps, then the (silent) turn
    assert np.all(sounding[:, lead - 9] >= 0)  # the call's last sounding step
    assert len(set(episodes.phase.tolist())) > 8  # the answer starts at many bar positions
    # The first step's bar position is the step after the silence in the call's bar grid.
    env = MelodyEnv(SPEC, corpus, config)
    env.reset()
    assert np.array_equal(env._context().bar_position, env.phase % SPEC.steps_per_bar)
    env.step(np.zeros(128, np.int64))
    assert np.array_equal(env._context().bar_position, (env.phase + 1) % SPEC.steps_per_bar)


def test_answer_calls_with_a_gap_start_after_the_calls_silence() -> None:
    from exports.spec import REST_EVENT
    from training.env.environment import CallEpisodes

    call = np.array([62, HOLD_EVENT, 66, REST_EVENT, 69] + [HOLD_EVENT] * 3 + [REST_EVENT])
    episodes = CallEpisodes(SPEC, [call, call[:5]], answer_steps=32, gap_steps=8)
    lead = episodes.lead_steps
    sounding = sounding_pitches(episodes.segments)
    # The call's last sounding step (69 held to step 7) is 9 steps before the answer.
    assert np.all(sounding[:, lead - 8 :] < 0) and sounding[0, lead - 9] == 69
    # Bar position of the answer's first step: last sounding step + 1 + 8 (7 -> 16 = 0; 4 -> 13).
    assert episodes.phase.tolist() == [0, 13]
    rng = np.random.default_rng(0)
    q = np.zeros(SPEC.n_actions, np.float32)
    q[SPEC.action_for_pitch(60)] = 50.0
    answers = answer_calls(SPEC, [call], lambda s: np.tile(q, (len(s), 1)), 1.0, rng,
                           answer_gap_steps=8)  # fmt: skip
    assert answers.events.shape == (1, 32) and answers.tonic[0] == 2  # D major heard


def test_answer_calls_with_an_opening_note_start_every_answer_with_one() -> None:
    # A policy that would rest for ever: with opening_note its first step is its best note,
    # as the live answer mode's, and then it rests; without, the answers stay silent.
    best_note = SPEC.action_for_pitch(64)

    def rests(states: np.ndarray) -> np.ndarray:
        q = np.zeros((len(states), SPEC.n_actions))
        q[:, REST] = 2.0
        q[:, best_note] = 1.0
        return q

    calls = [d_major_tune(2), d_major_tune(2)[:16]]
    rng = np.random.default_rng(0)
    silent = answer_calls(SPEC, calls, rests, 0.0, rng, answer_bars=1, answer_gap_steps=4)
    assert np.all(silent.events < 0)
    opened = answer_calls(
        SPEC, calls, rests, 0.0, rng, answer_bars=1, answer_gap_steps=4, opening_note=True
    )
    assert np.all(opened.relative_events[:, 0] == 64)
    assert np.all(opened.events[:, 1:] < 0)
