"""Bradley–Terry on the Elo scale and the active policy's information gain (pure math, no database)."""

import math
import random

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import spearmanr

from annotation.analysis import bradley_terry
from annotation.analysis.bradley_terry import PairTable
from annotation.rating import active


def synthetic_log(rng, truth, groups, judgments, m=400.0):
    """Random pairs within each group (groups: equal, contiguous blocks); the winner
    drawn with PIPAL Eq. 1's probability."""
    truth, groups = np.asarray(truth), np.asarray(groups)
    count = np.unique(groups).size
    size = groups.size // count
    start = size * rng.integers(0, count, judgments)
    first = rng.integers(0, size, judgments)
    a, b = start + first, start + (first + rng.integers(1, size, judgments)) % size
    a_wins = rng.random(judgments) < 1 / (1 + 10 ** ((truth[b] - truth[a]) / m))
    return np.where(a_wins, a, b), np.where(a_wins, b, a)


def test_recovers_known_scores_from_a_large_log():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(5), 30)
    truth = 1400 + 150 * rng.standard_normal(groups.size)
    for g in range(5):  # only differences within a reference are identified (SPEC §6)
        truth[groups == g] += 1400 - truth[groups == g].mean()
    winners, losers = synthetic_log(rng, truth, groups, 1000 * groups.size)
    scores = bradley_terry.fit(PairTable.from_judgments(winners, losers, groups.size))
    assert spearmanr(scores, truth)[0] >= 0.99
    for g in range(5):
        within = groups == g
        assert spearmanr(scores[within], truth[within])[0] >= 0.99
        # The prior centres every connected group on 1400, as Elo's zero-sum updates do.
        assert scores[within].mean() == pytest.approx(1400.0, abs=1e-6)
        # Scores sit on the Elo scale: differences match the truth's, not just the order.
        assert np.abs(scores[within] - truth[within]).mean() < 15


def test_the_elo_scale_of_one_pair():
    # 76 wins in 100: 400 log10(76/24) = 200.2 Elo points apart (Eq. 1), less a little prior shrinkage.
    table = PairTable.from_judgments(np.array([0] * 76 + [1] * 24), np.array([1] * 76 + [0] * 24), 2)
    scores = bradley_terry.fit(table)
    assert scores[0] - scores[1] == pytest.approx(400 * math.log10(76 / 24), abs=3)
    assert scores.sum() == pytest.approx(2800)


def test_matches_a_general_purpose_optimiser():
    rng = np.random.default_rng(1)
    groups = np.zeros(12, dtype=int)
    truth = 1400 + 200 * rng.standard_normal(12)
    winners, losers = synthetic_log(rng, truth, groups, 150)
    table = PairTable.from_judgments(winners, losers, 12)
    c = bradley_terry.logistic_scale(400)

    def negative_log_posterior(s):
        return np.sum(np.logaddexp(0, -c * (s[winners] - s[losers]))) + np.sum((s - 1400) ** 2) / (2 * 400**2)

    reference = minimize(negative_log_posterior, np.full(12, 1400.0), method="BFGS", options={"gtol": 1e-10}).x
    assert bradley_terry.fit(table) == pytest.approx(reference, abs=0.05)


def test_an_image_that_won_everything_gets_a_finite_score():
    table = PairTable.from_judgments(np.zeros(30, dtype=int), np.array([1, 2, 3] * 10), 4)
    scores = bradley_terry.fit(table)
    assert np.all(np.isfinite(scores)) and scores[0] == scores.max() and scores[0] < 1400 + 4 * 400


def test_bad_judgments_are_refused():
    with pytest.raises(ValueError, match="itself"):
        PairTable.from_judgments(np.array([1]), np.array([1]), 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        PairTable.from_judgments(np.array([0]), np.array([3]), 3)
    table = PairTable.from_judgments(np.array([0]), np.array([1]), 2)
    with pytest.raises(ValueError, match="at least 1"):
        bradley_terry.bootstrap(table, rounds=0)


def test_bootstrap_is_seeded_and_weights_resample_judgments():
    rng = np.random.default_rng(2)
    truth = 1400 + 150 * rng.standard_normal(10)
    winners, losers = synthetic_log(rng, truth, np.zeros(10, dtype=int), 300)
    table = PairTable.from_judgments(winners, losers, 10)
    first = bradley_terry.bootstrap(table, rounds=20, seed=5)
    again = bradley_terry.bootstrap(table, rounds=20, seed=5)
    other = bradley_terry.bootstrap(table, rounds=20, seed=6)
    assert np.array_equal(first.replicates, again.replicates)
    assert not np.array_equal(first.replicates, other.replicates)
    # Weighting every judgment twice is the same as listing it twice.
    doubled = PairTable.from_judgments(np.tile(winners, 2), np.tile(losers, 2), 10)
    assert bradley_terry.fit(table, weights=np.full(300, 2.0)) == pytest.approx(bradley_terry.fit(doubled))
    low, high = first.interval
    assert np.all(low <= first.scores + 1e-9) or np.mean((low <= first.scores) & (first.scores <= high)) > 0.9


def test_confidence_intervals_cover_the_truth_at_about_the_nominal_rate():
    """Coverage over 6 simulated studies (4 references x 15 images, 39 judgments per
    image, 100 rounds): about 95% of the truths (centred per reference, since only
    differences are identified) lie inside their interval. bench/bradley_terry.py
    reports it on more studies."""
    covered = []
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        groups = np.repeat(np.arange(4), 15)
        truth = 1400 + 150 * rng.standard_normal(groups.size)
        for g in range(4):
            within = groups == g
            truth[within] += 1400 - truth[within].mean()
        winners, losers = synthetic_log(rng, truth, groups, 39 * groups.size)
        result = bradley_terry.bootstrap(PairTable.from_judgments(winners, losers, groups.size), rounds=100, seed=seed)
        low, high = result.interval
        covered.extend((low <= truth) & (truth <= high))
    assert 0.88 <= np.mean(covered) <= 0.99


def test_kendall_distance_between_replicates():
    rng = np.random.default_rng(3)
    steady = np.tile(np.arange(20.0), (50, 1))
    assert bradley_terry.kendall_distance(steady, np.zeros(20)) == pytest.approx([0.0])
    noise = rng.standard_normal((200, 20))
    assert bradley_terry.kendall_distance(noise, np.zeros(20))[0] == pytest.approx(0.5, abs=0.03)
    # Two groups are measured apart; a single-image group has no pairs.
    both = np.hstack([steady[:50], noise[:50], np.zeros((50, 1))])
    distance = bradley_terry.kendall_distance(both, [0] * 20 + [1] * 20 + [2])
    assert distance[0] == 0 and distance[1] > 0.4 and math.isnan(distance[2])


def test_convergence_needs_every_image_measured_and_a_stable_order():
    kendall = np.array([0.01, 0.02])
    done = bradley_terry.convergence(np.array([50.0, 80.0]), kendall, target_ci_width=100, target_kendall=0.05)
    assert done.done and done.widest_ci == 80 and done.median_ci == 65
    wide = bradley_terry.convergence(np.array([50.0, 120.0]), kendall, target_ci_width=100, target_kendall=0.05)
    assert not wide.done and wide.images_too_wide == 1
    unjudged = bradley_terry.convergence(np.array([50.0, np.inf]), kendall, target_ci_width=100, target_kendall=0.05)
    assert not unjudged.done and unjudged.median_ci == 50
    shaky = bradley_terry.convergence(np.array([50.0]), np.array([0.2]), target_ci_width=100, target_kendall=0.05)
    assert not shaky.done


def test_information_gain_prefers_close_and_uncertain_partners():
    mean = np.array([1400.0, 1410.0, 1800.0, 1405.0])
    covariance = np.diag([400.0, 400.0, 400.0, 90000.0])
    gain = active.information_gain(mean, covariance, 0, m=400)
    assert gain[0] == 0
    assert gain[3] > gain[1] > gain[2] >= 0  # uncertain > close and known > far and known


def test_draw_partner_respects_what_is_allowed():
    gain = np.array([0.0, 0.5, 0.3, 0.0])
    rng = random.Random(0)
    allowed = np.array([False, False, True, True])
    drawn = {active.draw_partner(gain, allowed, rng) for _ in range(50)}
    assert drawn == {2}  # a zero-gain partner is never drawn while a positive one is allowed
    assert {active.draw_partner(np.zeros(4), np.array([0, 1, 1, 0], bool), rng) for _ in range(50)} == {1, 2}
    assert active.draw_partner(gain, np.zeros(4, bool), rng) is None


def test_reference_posterior_is_a_proper_gaussian():
    rng = np.random.default_rng(4)
    truth = 1400 + 150 * rng.standard_normal(8)
    winners, losers = synthetic_log(rng, truth, np.zeros(8, dtype=int), 100)
    mean, covariance = active.reference_posterior(winners, losers, 8, m=400, center=1400)
    assert mean.mean() == pytest.approx(1400)
    assert np.allclose(covariance, covariance.T) and np.all(np.linalg.eigvalsh(covariance) > 0)
    # No judgments: the prior alone.
    mean, covariance = active.reference_posterior(np.array([], int), np.array([], int), 3, m=400, center=1400)
    assert np.allclose(mean, 1400) and np.allclose(covariance, np.eye(3) * bradley_terry.PRIOR_SD**2)
