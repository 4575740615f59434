"""Rank-k analysis: Plackett–Luce through choix, mean ranks, rank breaking, and the project's
Bradley–Terry checked against choix on the same pairs (pure math, no database)."""

import math

import choix
import numpy as np
import pytest
from scipy.stats import kendalltau

from annotation.analysis import bradley_terry, rankings, synthetic_raters
from annotation.analysis.bradley_terry import PairTable


def simulated_rankings(seed, truth, k, count):
    rng = np.random.default_rng(seed)
    items = list(truth)
    return [
        synthetic_raters.ranking({item: truth[item] for item in rng.choice(items, k, replace=False)}, rng)
        for _ in range(count)
    ]


def test_plackett_luce_recovers_a_known_order_from_rank_4_data():
    # 12 items, 600 rankings of 4: Kendall tau ≥ 0.9 with the true order (seeds 0-4 give 0.94-1.0).
    truth = {f"method{i}": s for i, s in enumerate(np.linspace(-1.5, 1.5, 12))}
    table = rankings.plackett_luce(simulated_rankings(0, truth, 4, 600), items=list(truth), rounds=100)
    # choix's scores are log-strengths averaging zero: centre the truth the same way.
    true = np.array([truth[item] for item in table.index])
    true -= true.mean()
    assert kendalltau(table["score"], true)[0] >= 0.9
    assert table["score"].mean() == pytest.approx(0.0, abs=1e-9)
    assert np.abs(table["score"] - true).max() < 0.35
    inside = (table["ci_low"] <= true) & (true <= table["ci_high"])
    assert inside.sum() >= 9  # 95% intervals: most of the 12 (seeds 0-4 give 10-12)
    assert (table["ci_low"] <= table["score"]).all() and (table["score"] <= table["ci_high"]).all()
    assert table["n"].sum() == 600 * 4


def test_an_item_never_beaten_gets_a_finite_score():
    table = rankings.plackett_luce([["a", "b", "c"], ["a", "c", "b"], ["b", "c"]], rounds=20)
    assert np.isfinite(table[["score", "ci_low", "ci_high"]].to_numpy()).all()
    assert list(table.sort_values("score", ascending=False).index) == ["a", "b", "c"]


def test_items_never_ranked_are_refused_by_name():
    with pytest.raises(ValueError, match="'d'"):
        rankings.plackett_luce([["a", "b"], ["b", "c"]], items=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="'c'"):
        rankings.plackett_luce([["a", "b"], ["b", "c"]], items=["a", "b"])
    with pytest.raises(ValueError, match="each item once"):
        rankings.mean_rank([["a", "a"]])


def test_mean_rank_by_hand():
    table = rankings.mean_rank([["a", "b", "c"], ["b", "a", "c"], ["a", "c", "b"], ["c", "a"]])
    # a: ranks 1, 2, 1, 2; b: 2, 1, 3; c: 3, 3, 2, 1.
    assert table.loc["a", "mean_rank"] == pytest.approx(1.5)
    assert table.loc["b", "mean_rank"] == pytest.approx(2.0)
    assert table.loc["c", "mean_rank"] == pytest.approx(2.25)
    assert table["n"].to_dict() == {"a": 4, "b": 3, "c": 4}
    assert table.loc["b", ["rank_1", "rank_2", "rank_3"]].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert table.loc["a", ["rank_1", "rank_2", "rank_3"]].tolist() == pytest.approx([0.5, 0.5, 0.0])


def test_rank_breaking_gives_every_ordered_pair():
    assert rankings.pairwise_from_rankings([["a", "b", "c"], ["c", "a"]]) == [
        ("a", "b"),
        ("a", "c"),
        ("b", "c"),
        ("c", "a"),
    ]


ELO_PER_NAT = 400 / math.log(10)  # PIPAL Eq. 1: 10^(Δ/400) = e^(Δ·ln10/400)


def broken_pairs(seed):
    truth = {i: s for i, s in enumerate(np.linspace(-1.2, 1.2, 10))}
    pairs = rankings.pairwise_from_rankings(simulated_rankings(seed, truth, 4, 150))
    winners, losers = (np.array(column) for column in zip(*pairs, strict=True))
    return pairs, winners, losers


def test_project_bradley_terry_matches_choix_maximum_likelihood():
    """With a negligible prior the project's fit is the ML estimate that choix's I-LSR computes:
    equal after converting Elo points to natural-log units (400/ln 10 per unit) and removing the
    means (1400 there, 0 in choix), to 0.001 Elo points (they agree to 1e-6)."""
    pairs, winners, losers = broken_pairs(0)
    ours = bradley_terry.fit(PairTable.from_judgments(winners, losers, 10), prior_sd=1e6)
    theirs = choix.ilsr_pairwise(10, pairs, alpha=0.0, tol=1e-12, max_iter=1000)
    assert np.argsort(ours).tolist() == np.argsort(theirs).tolist()
    assert ours - ours.mean() == pytest.approx(ELO_PER_NAT * theirs, abs=1e-3)


def test_project_bradley_terry_matches_choix_map_with_the_same_prior():
    """The project's prior N(1400, 400²) in Elo points is N(0, ln(10)²) in natural-log units.
    choix's opt_pairwise adds alpha·Σθ² to the negative log-likelihood (choix/opt.py), a Gaussian
    prior of variance 1/(2·alpha), so alpha = 1/(2·ln(10)²) is the same posterior: equal to 0.001 Elo."""
    pairs, winners, losers = broken_pairs(1)
    ours = bradley_terry.fit(PairTable.from_judgments(winners, losers, 10))
    theirs = choix.opt_pairwise(10, pairs, alpha=1 / (2 * math.log(10) ** 2), method="Newton-CG", tol=1e-10)
    assert np.argsort(ours).tolist() == np.argsort(theirs).tolist()
    assert ours == pytest.approx(bradley_terry.DEFAULT_CENTER + ELO_PER_NAT * theirs, abs=1e-3)
