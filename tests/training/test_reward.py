"""Each reward rule on hand-made melodies (key-relative: 60 is the tonic), a case that fires and
a case that must not."""

from __future__ import annotations

import numpy as np
import pytest

from exports.errors import ConfigError
from exports.spec import HOLD_EVENT, REST_EVENT
from training.env import reward as rw
from training.env.reward import RewardWeights, compute_reward, melody_inputs, score_melody


def mel(text: str) -> np.ndarray:
    """'60 . r 62' -> grid events: a number starts a note, '.' holds, 'r' rests."""
    table = {".": HOLD_EVENT, "r": REST_EVENT}
    return np.array([table[tok] if tok in table else int(tok) for tok in text.split()])


def bar(text: str) -> np.ndarray:
    """A melody padded with holds to a whole bar (16 steps)."""
    events = mel(text)
    return np.concatenate([events, np.full(16 - len(events), HOLD_EVENT)])


def test_in_key_penalises_only_out_of_key_onsets() -> None:
    # C D E F# . . (major): F# is out of key; in minor, E-flat (63) is in key, E (64) is not.
    values = score_melody(rw.in_key, mel("60 62 64 66 . r"))
    assert values.tolist() == [0, 0, 0, rw.OUT_OF_KEY_PENALTY, 0, 0]
    minor = score_melody(rw.in_key, mel("63 64"), minor=True)
    assert minor.tolist() == [0, rw.OUT_OF_KEY_PENALTY]


def test_tonic_start_rewards_a_first_note_on_the_tonic_only() -> None:
    assert score_melody(rw.tonic_start, mel("r 72 . 60")).tolist() == [
        0, rw.TONIC_START_REWARD, 0, 0,
    ]  # fmt: skip
    assert score_melody(rw.tonic_start, mel("62 60")).sum() == 0


def test_tonic_end_needs_the_last_note_on_the_tonic_in_the_last_bar() -> None:
    good = np.concatenate([bar("64 . 62 ."), bar("67 . . . 60 . . .")])
    values = score_melody(rw.tonic_end, good)
    assert values[-1] == rw.TONIC_END_REWARD and values[:-1].sum() == 0
    ends_on_fifth = np.concatenate([bar("64"), bar("60 . 67")])
    assert score_melody(rw.tonic_end, ends_on_fifth).sum() == 0
    tonic_too_early = np.concatenate([bar("64 . 60"), bar("")])  # silent last bar
    assert score_melody(rw.tonic_end, tonic_too_early).sum() == 0


def test_repetition_fires_on_the_fifth_repeated_onset_not_on_long_holds() -> None:
    values = score_melody(rw.repetition, mel("60 60 . 60 r 60 60 62"))
    assert values.tolist() == [0, 0, 0, 0, 0, 0, rw.REPETITION_PENALTY, 0]
    # One note held for 16 steps is not a repetition (RL Tuner's bug).
    assert score_melody(rw.repetition, bar("60 " + ". " * 15)).sum() == 0


def test_leap_over_a_fifth_must_resolve_by_step_in_the_opposite_direction() -> None:
    resolved = score_melody(rw.leap_resolution, mel("60 69 . 67"))  # up a sixth, down a step
    assert resolved.tolist() == [0, 0, 0, rw.LEAP_RESOLVED_REWARD]
    same_way = score_melody(rw.leap_resolution, mel("60 69 71"))
    assert same_way.tolist() == [0, 0, rw.LEAP_UNRESOLVED_PENALTY]
    jumps_back = score_melody(rw.leap_resolution, mel("60 69 60"))
    assert jumps_back[-1] == rw.LEAP_UNRESOLVED_PENALTY
    fifth_is_no_leap = score_melody(rw.leap_resolution, mel("60 67 72"))
    assert fifth_is_no_leap.sum() == 0


def test_preferred_intervals_values() -> None:
    values = score_melody(rw.preferred_intervals, mel("60 62 . 65 72 61 85"))
    # A step, a hold, D->F a diatonic minor third, F->C a diatonic fifth, C->C# down a major
    # seventh (11), C#->C# two octaves up (beyond an octave).
    scale = rw.PREFERRED_INTERVALS_SCALE
    assert values == pytest.approx(
        [
            0, 0.4 * scale, 0, rw.DIATONIC_THIRD_REWARD * scale,
            rw.DIATONIC_FIFTH_REWARD * scale, -1.5 * scale, rw.BEYOND_OCTAVE_PENALTY * scale,
        ]
    )  # fmt: skip
    # A chromatic third (E-flat to G in major: E-flat is out of key) gets the plain value.
    assert score_melody(rw.preferred_intervals, mel("63 67"))[-1] == pytest.approx(0.45 * scale)
    minor_third = score_melody(rw.preferred_intervals, mel("63 67"), minor=True)[-1]
    assert minor_third == pytest.approx(0.75 * scale)


def test_motif_needs_three_distinct_pitches_in_a_bar_scored_at_the_bar_end() -> None:
    values = score_melody(rw.motif, bar("60 . 62 . 64 . 60"))
    assert values[-1] == rw.MOTIF_REWARD and values[:-1].sum() == 0
    four = score_melody(rw.motif, bar("60 62 64 65"))
    assert four[-1] == pytest.approx(rw.MOTIF_REWARD + rw.MOTIF_EXTRA_PITCH_BONUS)
    assert score_melody(rw.motif, bar("60 . 62 . 60 . 62")).sum() == 0


def test_repeated_motif_rewards_an_exact_or_transposed_repeat_of_an_earlier_bar() -> None:
    motif = bar("60 . 62 64 . . 67")
    transposed = bar("62 . 64 66 . . 69")
    values = score_melody(rw.repeated_motif, np.concatenate([motif, transposed]))
    assert values[31] == rw.REPEATED_MOTIF_REWARD and values[:31].sum() == 0
    other_rhythm = bar("60 62 . 64 . . 67")
    assert score_melody(rw.repeated_motif, np.concatenate([motif, other_rhythm])).sum() == 0
    other_intervals = bar("60 . 62 65 . . 67")
    assert score_melody(rw.repeated_motif, np.concatenate([motif, other_intervals])).sum() == 0


def test_high_low_unique_at_the_last_step() -> None:
    both = score_melody(rw.high_low_unique, mel("60 64 67 72 67 64 62"))
    assert both[-1] == 2 * rw.HIGH_LOW_UNIQUE_REWARD and both[:-1].sum() == 0
    high_twice = score_melody(rw.high_low_unique, mel("60 72 67 72 64"))
    assert high_twice[-1] == rw.HIGH_LOW_UNIQUE_REWARD  # only the lowest is unique
    neither = score_melody(rw.high_low_unique, mel("60 72 60 72"))
    assert neither.sum() == 0


CALL = np.concatenate([bar("60 . 64 . 67 . . . 64"), bar("65 . 64 . 62 . . . 60")])


def test_held_too_long_as_table1_counts_excessive_holds_and_rests() -> None:
    # A note then 7 holds: the 6th hold follows 5 holds (more than 4) and fires, so does the 7th.
    values = score_melody(rw.held_too_long, mel("60 . . . . . . ."))
    assert values.tolist() == [0] * 6 + [rw.HELD_TOO_LONG_PENALTY] * 2
    # With a rest among them the limit is 6 holds; a rest after one rest is fine, after two not.
    assert score_melody(rw.held_too_long, mel("60 r . . . . . . ."))[-1] == 0
    assert score_melody(rw.held_too_long, mel("60 r . . . . . . . ."))[-1] != 0
    assert score_melody(rw.held_too_long, mel("60 r r r")).tolist() == [0, 0, 0, -1]
    assert score_melody(rw.held_too_long, mel("60 . . . . . . ."), answering=False).sum() == 0


def test_unique_extremes_now_tells_the_note_that_ties_an_extreme() -> None:
    values = score_melody(rw.unique_extremes_now, mel("60 . 64 62 64 59"))
    # First note: unique high and low (+2); 64 ties the high (-1); 59 a new unique low (0).
    assert (values / rw.UNIQUE_EXTREMES_SHAPING).tolist() == [2, 0, 0, 0, -1, 0]
    # Summed over the turn: the final count of unique extremes.
    final = score_melody(rw.high_low_unique, mel("60 . 64 62 64 59"))[-1]
    assert values.sum() / rw.UNIQUE_EXTREMES_SHAPING == final / rw.HIGH_LOW_UNIQUE_REWARD


def test_half_bar_motif_counts_steps_with_three_pitches_in_the_last_eight() -> None:
    values = score_melody(rw.half_bar_motif, mel("60 . 62 . 64 . . . 65 67"))
    assert values[:7].sum() == 0  # no full window of 8 steps yet
    assert values[7] == rw.HALF_BAR_MOTIF_REWARD  # steps 0..7: C D E
    assert values[8] == rw.HALF_BAR_MOTIF_REWARD  # steps 1..8: D E F
    assert values[9] == rw.HALF_BAR_MOTIF_REWARD  # steps 2..9: D E F G
    assert score_melody(rw.half_bar_motif, mel("60 . 62 . 60 . 62 . 60")).sum() == 0


def test_new_rules_agree_with_the_table1_detectors_on_random_melodies() -> None:
    from training.eval.rl_tuner_metrics import LeapTracker, is_excessively_repeated, last_motif

    rng = np.random.default_rng(0)
    tokens = [HOLD_EVENT, REST_EVENT, 48, 55, 60, 62, 64, 67, 72, 79]
    p = [0.35, 0.05] + [0.075] * 8
    for _ in range(40):
        events = rng.choice(tokens, size=32, p=p)
        leap = score_melody(rw.leap_return, events)
        held = score_melody(rw.held_too_long, events)
        motif = score_melody(rw.half_bar_motif, events)
        tracker, previous = LeapTracker(), list[int]()
        for t, e in enumerate(events.tolist()):
            outcome = tracker.step(previous, e)
            expected = {1: rw.LEAP_RETURN_REWARD, -1: rw.LEAP_DOUBLED_PENALTY}.get(outcome, 0.0)
            assert leap[t] == expected
            assert (held[t] != 0) == (e < 0 and is_excessively_repeated(previous, e))
            assert (motif[t] != 0) == (last_motif(previous + [e]) is not None)
            previous.append(e)


def test_echo_contour_rewards_the_same_melodic_direction() -> None:
    # Call bar 1: first, up, up, down. The same shape transposed gets full marks.
    same_shape = bar("62 . 65 . 69 . . . 65")
    full = rw.ECHO_CONTOUR_REWARD
    assert score_melody(rw.echo_contour, same_shape, call_events=CALL)[-1] == pytest.approx(full)
    # First, down, down, up: against the call's second bar (up, down, down, down) 2 of 4 agree.
    inverted = bar("62 . 60 . 57 . . . 60")
    assert score_melody(rw.echo_contour, inverted, call_events=CALL)[-1] == pytest.approx(full / 2)
    other_rhythm = bar(". 62 60 . . 57 . . . . 60")
    assert score_melody(rw.echo_contour, other_rhythm, call_events=CALL)[-1] < 0.2 * full


def test_call_pitch_classes_rewards_notes_the_call_used() -> None:
    values = score_melody(rw.call_pitch_classes, mel("72 69"), call_events=CALL)
    assert values.tolist() == [rw.CALL_PITCH_CLASS_REWARD, 0]  # C is in the call, A is not


def test_silent_while_player_plays() -> None:
    player = mel("64 . . r")
    values = score_melody(rw.silent_while_player_plays, mel("r 60 . ."), player_events=player)
    assert values.tolist() == [0, rw.OVERLAP_PENALTY, rw.OVERLAP_PENALTY, 0]


def test_plays_at_all_penalises_each_missing_note_below_one_per_bar() -> None:
    silent = np.concatenate([bar("r"), bar("")])
    values = score_melody(rw.plays_at_all, silent)
    assert values[-1] == 2 * rw.MISSING_NOTE_PENALTY and values[:-1].sum() == 0
    one_note = np.concatenate([bar("60"), bar("")])
    assert score_melody(rw.plays_at_all, one_note, answering=False)[-1] == rw.MISSING_NOTE_PENALTY
    two_notes = np.concatenate([bar("60 . . 62"), bar("")])
    assert score_melody(rw.plays_at_all, two_notes).sum() == 0


def test_consonance_with_the_sounding_player_note() -> None:
    player = mel("60 . . . 60")
    # Agent: a third above (consonant), a second above (dissonant), a fourth (neither), held
    # sixth (no attack by either part: not scored), then the player's new C under the sixth.
    agent = mel("64 62 65 69 .")
    values = score_melody(rw.consonance, agent, player_events=player, answering=False)
    assert values.tolist() == [
        rw.CONSONANT_REWARD, rw.DISSONANT_PENALTY, 0, rw.CONSONANT_REWARD, rw.CONSONANT_REWARD,
    ]  # fmt: skip
    assert score_melody(rw.consonance, agent, player_events=player).sum() == 0  # answer mode


def test_parallel_fifths_and_octaves_are_penalised_contrary_motion_is_not() -> None:
    player = mel("60 62")
    parallel_fifths = score_melody(
        rw.parallel_perfects, mel("67 69"), player_events=player, answering=False
    )
    assert parallel_fifths.tolist() == [0, rw.PARALLEL_PERFECT_PENALTY]
    parallel_octaves = score_melody(
        rw.parallel_perfects, mel("72 74"), player_events=player, answering=False
    )
    assert parallel_octaves[-1] == rw.PARALLEL_PERFECT_PENALTY
    contrary = score_melody(
        rw.parallel_perfects, mel("72 71"), player_events=player, answering=False
    )
    assert contrary.sum() == 0
    fifth_to_sixth = score_melody(
        rw.parallel_perfects, mel("67 71"), player_events=player, answering=False
    )
    assert fifth_to_sixth.sum() == 0


def test_room_for_player_penalises_notes_over_a_busy_player() -> None:
    player = mel("60 62 64 65 67 . . . . . . .")
    agent = mel(". . . 72 . . . . . . . 72")
    values = score_melody(rw.room_for_player, agent, player_events=player, answering=False)
    assert values[3] == 3 * rw.BUSY_PLAYER_PENALTY_PER_ONSET  # 4 player onsets in the beat
    assert values[11] == 0  # the player holds its note: room to play
    quarter_notes = mel("60 . . . 62 . . . 64")
    under_quarters = score_melody(
        rw.room_for_player, mel("64 . . . 65"), player_events=quarter_notes, answering=False
    )
    assert under_quarters.sum() == 0  # one player note per beat leaves room


def test_compute_reward_weights_terms_and_style() -> None:
    x = melody_inputs(mel("60 66"), 1)  # an out-of-key tritone leap
    weights = RewardWeights(w_style=0.5, w_theory=2.0, w_play=3.0)
    total, terms = compute_reward(x, weights, style_log_prob=np.array([-2.0]))
    assert terms["theory/in_key"][0] == rw.OUT_OF_KEY_PENALTY
    assert terms["theory/preferred_intervals"][0] == -0.5 * rw.PREFERRED_INTERVALS_SCALE
    theory = np.sum([v for k, v in terms.items() if k.startswith("theory/")], axis=0)
    play = np.sum([v for k, v in terms.items() if k.startswith("play/")], axis=0)
    assert terms["theory"][0] == pytest.approx(theory[0])
    assert total[0] == pytest.approx(0.5 * -2.0 + 2.0 * theory[0] + 3.0 * play[0])
    no_style, terms = compute_reward(x, weights)
    assert terms["style"][0] == 0 and no_style[0] == pytest.approx(total[0] + 1.0)


def test_reward_weights_from_dict() -> None:
    assert RewardWeights.from_dict({"style": 0.1, "w_play": 2}) == RewardWeights(0.1, 1.0, 2.0)
    with pytest.raises(ConfigError, match="unknown reward weight 'melody'"):
        RewardWeights.from_dict({"melody": 1.0})


# --- phrases, not echoes ---------------------------------------------------------------------
EIGHTHS_CALL = np.concatenate([bar("60 . 62 . 64 . 65 . 67 . 65 . 64 . 62 ."), bar("60 . . .")])
"""Two bars of a call in straight 8ths (then a held tonic)."""


def phrase_total(rules: list, melody: np.ndarray, call: np.ndarray) -> float:
    return float(sum(score_melody(rule, melody, call_events=call).sum() for rule in rules))


def test_a_two_note_oscillation_is_penalised_a_turning_line_is_not() -> None:
    trill = score_melody(rw.oscillation, mel("65 67 65 67 65 67 65"))
    assert trill.tolist() == [0, 0, 0, 0] + [rw.OSCILLATION_PENALTY] * 3
    assert score_melody(rw.oscillation, mel("65 . 67 . 65 67 . 65 . 67")).min() < 0  # holds too
    assert score_melody(rw.oscillation, mel("65 67 69 67 65 67 69 67")).sum() == 0
    assert score_melody(rw.oscillation, mel("65 67 65 67")).sum() == 0  # a neighbour figure
    # Whole-reward view: the trill's theory return is below the turning line's.
    x_trill = melody_inputs(mel("65 67 65 67 65 67"), 5)
    x_line = melody_inputs(mel("65 67 69 67 65 64"), 5)
    trill_theory = compute_reward(x_trill, RewardWeights())[1]["theory"][0]
    line_theory = compute_reward(x_line, RewardWeights())[1]["theory"][0]
    assert trill_theory < line_theory


def test_long_same_pitch_runs_cost_from_the_fourth_note() -> None:
    values = score_melody(rw.same_pitch_run, mel("67 67 67 67 67 67 64"))
    assert values.tolist() == [0, 0, 0] + [rw.SAME_PITCH_RUN_PENALTY] * 3 + [0]
    assert score_melody(rw.same_pitch_run, mel("67 . . . . . . . . 65")).sum() == 0  # a hold


def test_a_transposed_call_motif_earns_more_than_random_notes() -> None:
    # Call figure C E D G (degree steps +2, -1, +3), 8th notes. The answer plays it a step up
    # (D F E A: a diatonic sequence), inverted (C A B F), and re-rhythmed (C E . D G).
    call = bar("60 . 64 . 62 . 67 . . . . . . . . .")
    transposed = bar("62 . 65 . 64 . 69 . . . . .")
    inverted = bar("72 . 69 . 71 . 65 . . . . .")
    rerhythmed = bar("60 64 . . 62 . 67 . . . . .")
    exact = bar("60 . 64 . 62 . 67 . . . . .")
    score = lambda m: score_melody(rw.motif_development, m, call_events=call).sum()  # noqa: E731
    assert score(transposed) == rw.MOTIF_DEVELOPED_REWARD
    assert score(inverted) == rw.MOTIF_DEVELOPED_REWARD
    assert score(rerhythmed) == rw.MOTIF_DEVELOPED_REWARD
    assert score(exact) == rw.MOTIF_COPY_REWARD < rw.MOTIF_DEVELOPED_REWARD
    rng = np.random.default_rng(0)
    random_scores = []
    for _ in range(30):
        events = np.full(16, HOLD_EVENT)
        events[::2] = rng.integers(55, 80, size=8)
        random_scores.append(score(events))
    assert np.mean(random_scores) < 0.1 * rw.MOTIF_DEVELOPED_REWARD
    # A plain scale run or a trill is no motif, even when the call has one.
    assert (
        score_melody(rw.motif_development, mel("60 62 64 65"), call_events=mel("62 64 65 67")).sum()
        == 0
    )


def test_an_exact_rhythm_copy_earns_less_than_a_related_rhythm() -> None:
    rules = [rw.rhythm_near_call, rw.rhythm_copy]
    copy = np.concatenate(
        [
            bar("64 . 65 . 67 . 69 . 67 . 65 . 64 . 62 ."),
            bar("60 . 62 . 64 . 62 . 60 . 59 . 60 . 62 ."),
        ]
    )
    related = np.concatenate(
        [
            bar("64 . 65 67 69 . . . 67 . 65 . 64 62 60 ."),
            bar("62 . . . 64 65 67 . 65 . 64 . 60 . . ."),
        ]
    )
    assert phrase_total(rules, related, EIGHTHS_CALL) > phrase_total(rules, copy, EIGHTHS_CALL)
    assert (
        score_melody(rw.rhythm_copy, copy, call_events=EIGHTHS_CALL).min() == rw.RHYTHM_COPY_PENALTY
    )
    assert score_melody(rw.rhythm_copy, related, call_events=EIGHTHS_CALL).sum() == 0
    # Far from the call's pace (whole notes against 8ths) earns less than either.
    slow = np.concatenate(
        [bar("64 . . . . . . . . . . . . . . ."), bar("62 . . . . . . . . . . . . . . .")]
    )
    slow_related = phrase_total([rw.rhythm_near_call], slow, EIGHTHS_CALL)
    assert slow_related < phrase_total([rw.rhythm_near_call], related, EIGHTHS_CALL)
    assert (
        score_melody(rw.rhythm_near_call, related, call_events=EIGHTHS_CALL, answering=False).sum()
        == 0
    )


def test_a_resolved_leap_beats_an_unresolved_one() -> None:
    def theory_at_last(text: str) -> float:
        events = mel(text)
        return float(
            compute_reward(melody_inputs(events, len(events) - 1), RewardWeights())[1]["theory"][0]
        )

    assert theory_at_last("60 . 69 . 67") > theory_at_last("60 . 69 . 71")  # back by step vs on


def test_leaps_and_repeats_near_the_corpus_rate_beat_none_and_too_many() -> None:
    # 15 intervals each: stepwise only; with two repeats and one leap (the corpus's ~14% / ~4%);
    # every interval a repeat.
    steps_only = mel("60 62 64 65 67 65 64 62 60 62 64 65 67 65 64 62")
    corpus_like = mel("60 62 64 64 65 67 67 65 64 62 60 69 67 65 64 62")
    repeats = mel(" ".join(["64"] * 16))
    total = lambda m: score_melody(rw.interval_rates, m).sum()  # noqa: E731
    assert total(corpus_like) > total(steps_only) > total(repeats)
    # The shaping telescopes to the potential of the whole answer.
    assert total(corpus_like) == pytest.approx(
        rw._rate_potential(np.array(1), np.array(2), np.array(15))
    )


def test_a_stable_close_on_a_strong_beat_is_rewarded() -> None:
    def close(last_note: str, at_step: int) -> float:
        events = np.full(32, HOLD_EVENT)
        events[:8:2] = [60, 62, 64, 65]
        events[at_step] = int(last_note)
        return float(score_melody(rw.stable_close, events)[-1])

    assert close("67", 24) == rw.STABLE_CLOSE_REWARD  # the fifth on beat 3 of the last bar
    assert close("64", 16) == rw.STABLE_CLOSE_REWARD  # the third on beat 1
    assert close("60", 20) == rw.STABLE_CLOSE_REWARD / 2  # the tonic on beat 2
    assert close("60", 26) == 0  # off the beat
    assert close("62", 24) == 0  # the second is not stable
    assert close("67", 6) == 0  # not in the last bar
    assert score_melody(rw.stable_close, mel("60 . . 63"), minor=True)[-1] == 0  # offbeat
    minor_third = np.full(16, HOLD_EVENT)
    minor_third[8] = 63
    assert score_melody(rw.stable_close, minor_third, minor=True)[-1] == rw.STABLE_CLOSE_REWARD


def test_every_rule_scores_a_batch_as_it_scores_each_row_alone() -> None:
    # Random answers and calls, major and minor, answering and duet: the vectorized rules must
    # not mix rows (a batch of one hides broadcasting mistakes).
    rng = np.random.default_rng(3)
    n, steps = 24, 32
    events = np.where(rng.random((n, steps)) < 0.5, rng.integers(55, 80, (n, steps)), HOLD_EVENT)
    calls = np.where(rng.random((n, steps)) < 0.5, rng.integers(55, 80, (n, steps)), HOLD_EVENT)
    events[:4, :12:2] = [65, 67, 65, 67, 65, 67]  # trills
    calls[4:8, :8:2] = [60, 64, 62, 67]  # a motif ...
    events[4:8, :8:2] = [62, 65, 64, 69]  # ... developed
    t = rng.integers(0, steps, n)
    minor = rng.random(n) < 0.5
    answering = rng.random(n) < 0.7
    rows = [
        melody_inputs(
            events[i],
            int(t[i]),
            minor=bool(minor[i]),
            answering=bool(answering[i]),
            call_events=calls[i],
        )
        for i in range(n)
    ]

    def stacked(field: str) -> np.ndarray:
        return np.concatenate([getattr(r, field) for r in rows])

    batch = rw.RewardInputs(
        agent_events=stacked("agent_events"),
        agent_sounding=stacked("agent_sounding"),
        player_sounding=stacked("player_sounding"),
        player_onset=stacked("player_onset"),
        call_events=stacked("call_events"),
        t=stacked("t"),
        turn_steps=stacked("turn_steps"),
        minor=stacked("minor"),
        answering=stacked("answering"),
    )
    for name, rule in {**rw.THEORY_RULES, **rw.PLAY_RULES}.items():
        together = rule(batch)
        alone = np.array([rule(r)[0] for r in rows])
        np.testing.assert_allclose(together, alone, err_msg=name)
