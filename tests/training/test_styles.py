"""The shipped styles' corpora: two-voice chorales, reels, folk; the duet
figures; the style figures of the model cards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exports.errors import CorpusError
from exports.grid import sounding_pitches
from exports.spec import DEFAULT_SPEC, HOLD_EVENT, REST_EVENT
from training.data.chorales import build_chorale_corpus, pad_to
from training.data.corpus import resolve_corpus
from training.data.corpus_data import Corpus
from training.data.styles import build_style_corpus, folk_corpus, reels_corpus
from training.env.environment import CorpusEpisodes, EnvConfig
from training.eval.card import style_figures
from training.eval.duet import dissonance, duet_figures
from training.style_model import PairStream

SPEC = DEFAULT_SPEC


@pytest.fixture(scope="module")
def chorales() -> Corpus:
    return build_chorale_corpus(limit=4, workers=1, log=None)


def test_chorales_pair_the_soprano_with_each_inner_voice_step_for_step(
    chorales: Corpus, tmp_path: Path
) -> None:
    assert chorales.n_tunes == 8 and chorales.second is not None
    assert [t.rsplit(" ", 1)[1] for t in chorales.titles[:2]] == ["alto", "tenor"]
    for i in range(0, chorales.n_tunes, 2):
        assert np.array_equal(chorales.tune(i), chorales.tune(i + 1))  # one soprano, twice
        assert chorales.validation[i] == chorales.validation[i + 1]  # held out whole
        for j in (i, i + 1):
            soprano = sounding_pitches(chorales.tune(j))
            inner = sounding_pitches(chorales.second_voice(j))  # type: ignore[arg-type]
            both = (soprano >= 0) & (inner >= 0)
            assert both.mean() > 0.8  # the voices sound together most of the time
            assert (inner[both] <= soprano[both]).mean() > 0.95  # an inner voice, below
    chorales.save(tmp_path / "c.npz")
    loaded = Corpus.load(tmp_path / "c.npz")
    assert np.array_equal(loaded.second, chorales.second)  # type: ignore[arg-type]
    assert loaded.summary()["voices"] == 2
    picked = loaded.select(np.array([3, 0]), "two")
    assert np.array_equal(picked.second_voice(0), chorales.second_voice(3))  # type: ignore[arg-type]


def test_pad_to_releases_the_last_note_then_holds() -> None:
    assert pad_to(np.array([60, HOLD_EVENT], np.int16), 5).tolist() == [
        60,
        HOLD_EVENT,
        REST_EVENT,
        HOLD_EVENT,
        HOLD_EVENT,
    ]


def test_duet_rows_of_a_two_voice_corpus_learn_the_inner_voice(chorales: Corpus) -> None:
    config = EnvConfig(answer_fraction=0.0, transpose_semitones=0)
    episodes = CorpusEpisodes(SPEC, chorales, config)
    ep = episodes.sample(64, np.random.default_rng(0))
    assert ep.continuation is not None
    lead, turn = episodes.lead_steps, episodes.duet_steps
    line = ep.segments[:, lead : lead + turn]
    inner = ep.continuation[:, :turn]
    # The target is the tune's own second voice: below the line, sounding with it, consonant.
    s_line, s_inner = sounding_pitches(line), sounding_pitches(inner)
    both = (s_line >= 0) & (s_inner >= 0)
    assert both.mean() > 0.8 and (s_inner[both] <= s_line[both]).mean() > 0.95
    assert (inner[:, 0] != HOLD_EVENT).mean() > 0.9  # a note held into the turn is attacked
    _, share = dissonance(inner, line)
    assert share < 0.1
    # The style model's pair stream now includes those duet rows (answer_fraction kept).
    stream = PairStream(SPEC, chorales, EnvConfig(answer_fraction=0.5), seed=0, n_envs=32)
    assert 0 < stream.env.answering.mean() < 1
    states, actions = stream.batch(128)
    assert states.shape == (128, SPEC.state_dim) and len(actions) == 128


def test_duet_figures_score_bach_far_more_consonant_than_random_notes(chorales: Corpus) -> None:
    rng = np.random.default_rng(0)

    def random_q(states: np.ndarray) -> np.ndarray:
        return rng.normal(size=(len(states), SPEC.n_actions)).astype(np.float32)

    figures = duet_figures(SPEC, chorales, {"random": random_q}, 1.0, n=64)
    bach = figures["corpus second voice"]
    assert bach.shared_onsets > 50 and figures["random"].shared_onsets > 50
    assert bach.dissonant_share < 0.1 < figures["random"].dissonant_share
    assert 0 < figures["corpus line"].onsets_per_bar < 16


def test_reels_are_the_tunes_their_abc_header_calls_reels() -> None:
    tune = np.array([62, HOLD_EVENT, 64, HOLD_EVENT, 66, 67, 69, REST_EVENT] * 4, np.int16)
    titles = [
        "ryans/Abitha Muggins' Favorite -- Reel",
        "ryans/42d Highland Regiment -- Strathspey",
        "bach/bwv1.6",
    ]
    n = len(titles)
    default = Corpus(
        name="default",
        events=np.concatenate([tune] * n),
        offsets=np.arange(n + 1) * len(tune),
        titles=titles,
        tonic=np.full(n, 2),
        minor=np.zeros(n, bool),
        validation=np.zeros(n, bool),
    )
    reels = reels_corpus(default)
    assert reels.titles == titles[:1] and reels.name == "reels"
    folk = folk_corpus(default)
    assert folk.titles == titles[:2] and folk.second is None
    with pytest.raises(CorpusError, match="run `deepjam corpus build` first"):
        build_style_corpus("reels", None, log=None)
    with pytest.raises(CorpusError, match="holds no reels tunes"):
        build_style_corpus("reels", default.select(np.array([1, 2]), "default"), log=None)


def test_a_style_corpus_is_found_by_name_in_the_cache(
    chorales: Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPJAM_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    chorales.save(tmp_path / "cache" / "corpus" / "chorale.npz")
    assert resolve_corpus("chorale").titles == chorales.titles
    with pytest.raises(CorpusError, match="or the name of a corpus in"):
        resolve_corpus("nothing-here")


def test_style_figures_count_density_iois_and_register() -> None:
    eighths = np.array([60, HOLD_EVENT] * 8, np.int64)  # one bar of 8th notes
    quarters = np.array([72, HOLD_EVENT, HOLD_EVENT, HOLD_EVENT] * 4, np.int64)
    fast, slow = style_figures([eighths], 16), style_figures([quarters], 16)
    assert fast.onsets_per_bar == 8 and slow.onsets_per_bar == 4
    assert fast.ioi_shares[1] == 1.0 and slow.ioi_shares[3] == 1.0  # bins 2 and 4 steps
    assert fast.mean_pitch == 60 and slow.low_pitch == slow.high_pitch == 72
