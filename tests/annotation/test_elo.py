"""The pure Elo engine against PIPAL Eq. 1-2 and the paper's worked example."""

import random

import pytest

from annotation.analysis import elo


@pytest.mark.published
def test_paper_example_a_wins():
    # PIPAL Sec. 3.3: R_A = 1500, R_B = 1600, M = 400, K = 16.
    assert elo.win_probability(1500, 1600) == pytest.approx(0.3599, abs=1e-4)
    new_a, new_b = elo.update(1500, 1600, a_score=True)
    assert new_a == pytest.approx(1510.24, abs=0.01)
    # The paper's prose says ~1594; Eq. 2 (and zero-sum) give 1589.76.
    assert new_b == pytest.approx(1589.76, abs=0.01)


@pytest.mark.published
def test_paper_example_b_wins():
    new_a, new_b = elo.update(1500, 1600, a_score=False)
    assert new_a == pytest.approx(1494.24, abs=0.01)
    assert new_b == pytest.approx(1605.76, abs=0.01)


@pytest.mark.published
def test_gaps_match_the_papers_preferences():
    assert elo.win_probability(1600, 1400) == pytest.approx(0.76, abs=0.01)
    assert elo.win_probability(1800, 1400) == pytest.approx(0.91, abs=0.01)
    assert elo.win_probability(1400, 1400) == 0.5


def test_update_is_zero_sum_and_bounded_by_k():
    rng = random.Random(1)
    for _ in range(1000):
        r_a, r_b = rng.uniform(800, 2000), rng.uniform(800, 2000)
        new_a, new_b = elo.update(r_a, r_b, rng.random() < 0.5, k=16, m=400)
        assert new_a + new_b == pytest.approx(r_a + r_b, abs=1e-9)
        assert abs(new_a - r_a) <= 16


def test_mos_is_mean_of_last_window_values():
    recent = []
    for value in [1401, 1402, 1403, 1404]:
        recent = elo.push_recent(recent, value, window=3)
    assert recent == [1402, 1403, 1404]
    assert elo.mos(recent) == pytest.approx(1403)
    assert elo.mos([], initial=1400) == 1400


def test_replay_equals_sequential_updates():
    params = elo.EloParams(mos_window=2)
    judgments = [("a", "b", True), ("b", "c", False), ("a", "c", True)]
    states = elo.replay(judgments, ["a", "b", "c"], params)
    ra, rb = elo.update(1400, 1400, True)
    rb2, rc = elo.update(rb, 1400, False)
    ra2, rc2 = elo.update(ra, rc, True)
    assert (states["a"].elo, states["b"].elo, states["c"].elo) == (ra2, rb2, rc2)
    assert states["a"].recent == [ra, ra2] and states["a"].judgments == 2
    assert states["c"].mos(1400) == pytest.approx((rc + rc2) / 2)


def test_apply_yields_before_and_after():
    states = elo.initial_states(["x", "y"], elo.EloParams())
    (step,) = elo.apply(states, [("x", "y", False)], elo.EloParams())
    assert (step.a_before, step.b_before) == (1400, 1400)
    assert step.a_after == pytest.approx(1392) and step.b_after == pytest.approx(1408)


@pytest.mark.parametrize("bad", [{"m": 0}, {"k": -1}, {"mos_window": 0}])
def test_params_are_validated(bad):
    with pytest.raises(ValueError):
        elo.EloParams(**bad)
