"""iqa.stats: agreement of an IQA metric with MOS (pure numpy/scipy, no DB)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from iqa.stats import (
    MIN_IMAGES,
    Agreement,
    Interval,
    LogisticFit,
    _rowwise_srcc,
    agreement,
    bootstrap_srcc,
    logistic_fit,
    paired_srcc_test,
    rank_desc,
    too_few,
)


def vqeg5(x, b1, b2, b3, b4, b5):
    """The VQEG FR-TV Phase II 5-parameter logistic, written out independently of the module."""
    return b1 * (0.5 - 1 / (1 + np.exp(b2 * (x - b3)))) + b4 * x + b5


def vqeg4(x, b1, b2, b3, b4):
    return (b1 - b2) / (1 + np.exp(-(x - b3) / abs(b4))) + b2


@pytest.fixture
def study():
    """300 images: Elo-like MOS and an LPIPS-like (lower is better) noisy, nonlinear metric."""
    rng = np.random.default_rng(7)
    mos = 1200 + 400 * rng.random(300)
    lpips = np.exp(-(mos - 1200) / 150) + rng.normal(0, 0.15, 300)
    return mos, lpips


# --- rank correlations --------------------------------------------------------


def test_srcc_krcc_equal_scipy_on_random_vectors():
    rng = np.random.default_rng(0)
    values, mos = rng.normal(size=50), rng.normal(size=50)
    result = agreement(values, mos, higher_is_better=True)
    assert result.srcc == float(stats.spearmanr(values, mos).statistic)
    assert result.krcc == float(stats.kendalltau(values, mos).statistic)
    assert result.n == 50


def test_srcc_krcc_equal_scipy_with_ties():
    rng = np.random.default_rng(1)
    values = rng.integers(0, 5, size=40).astype(float)  # many ties, as in a rounded metric
    mos = np.round(rng.normal(1400, 50, size=40), -1)  # ties on the MOS side too
    result = agreement(values, mos, higher_is_better=True)
    assert len(np.unique(values)) < 40 and len(np.unique(mos)) < 40
    assert result.srcc == float(stats.spearmanr(values, mos).statistic)
    assert result.krcc == float(stats.kendalltau(values, mos).statistic)  # tau-b


def test_lower_is_better_metric_is_sign_flipped(study):
    mos, lpips = study
    result = agreement(lpips, mos, higher_is_better=False)
    assert result.srcc == float(stats.spearmanr(-lpips, mos).statistic)
    assert result.krcc == float(stats.kendalltau(-lpips, mos).statistic)
    assert result.srcc == pytest.approx(-stats.spearmanr(lpips, mos).statistic, abs=1e-12)
    assert result.srcc > 0.5 and result.krcc > 0.3 and result.plcc > 0.5
    # The wrong direction gives the mirror image.
    wrong = agreement(lpips, mos, higher_is_better=True)
    assert wrong.srcc == pytest.approx(-result.srcc, abs=1e-12)


# --- logistic mapping ---------------------------------------------------------


@pytest.mark.parametrize("scale", [1.0, 1e-3, 1e3])
def test_logistic5_recovers_known_relation_on_raw_x(scale):
    rng = np.random.default_rng(2)
    psnr = rng.uniform(20, 40, 200)
    mos = vqeg5(psnr, 300, 0.4, 30, 2, 1350)
    x = psnr * scale  # the fit normalises internally, whatever the metric's scale
    fit = logistic_fit(x, mos)
    assert fit.kind == "logistic5"
    assert np.abs(fit.predict(x) - mos).max() < 1e-6
    expected = (300, 0.4 / scale, 30 * scale, 2 / scale, 1350)
    assert fit.params == pytest.approx(expected, rel=1e-6)
    assert stats.pearsonr(mos, fit.predict(x)).statistic > 0.99
    # predict takes raw values, including ones the fit never saw
    unseen = np.array([18.0, 25.0, 35.0, 42.0])
    assert fit.predict(unseen * scale) == pytest.approx(vqeg5(unseen, 300, 0.4, 30, 2, 1350), rel=1e-9)


def test_logistic4_recovers_known_relation_both_directions():
    x = np.linspace(0, 1, 60)  # SSIM-like scale
    mos = vqeg4(x, 1600, 1250, 0.55, 0.08)
    fit = logistic_fit(x, mos, parameters=4)
    assert fit.kind == "logistic4"
    assert fit.params == pytest.approx((1600, 1250, 0.55, 0.08), rel=1e-6)
    falling = logistic_fit(-x, mos, parameters=4)
    assert np.abs(falling.predict(-x) - mos).max() < 1e-6


def test_logistic_plcc_at_least_linear_pearson_on_monotone_nonlinear_relation(study):
    mos, lpips = study
    linear = abs(stats.pearsonr(lpips, mos).statistic)
    for parameters in (5, 4):
        result = agreement(lpips, mos, higher_is_better=False, parameters=parameters)
        assert result.fit == f"logistic{parameters}"
        assert result.plcc >= linear
    # noiseless convex relation: the logistic gains clearly over the line
    x = np.linspace(0, 1, 100)
    y = 1200 + 400 * x**4
    assert agreement(x, y, higher_is_better=True).plcc > stats.pearsonr(x, y).statistic + 0.02


def test_fit_is_deterministic(study):
    mos, lpips = study
    assert logistic_fit(-lpips, mos) == logistic_fit(-lpips, mos)
    groups = [i % 30 for i in range(len(mos))]  # with groups, so no nan field spoils ==
    first = agreement(lpips, mos, higher_is_better=False, groups=groups)
    assert first.groups == 30
    assert first == agreement(lpips, mos, higher_is_better=False, groups=groups)


def test_fit_falls_back_when_there_are_fewer_points_than_parameters():
    x = np.array([20.0, 25.0, 30.0, 38.0])
    y = np.array([1250.0, 1300.0, 1420.0, 1480.0])
    assert logistic_fit(x, y).kind == "logistic4"  # 5 parameters on 4 points: curve_fit refuses
    three = logistic_fit(x[:3], y[:3])
    assert three.kind == "linear"
    slope, intercept = np.polyfit(x[:3], y[:3], 1)
    assert three.params == pytest.approx((slope, intercept), rel=1e-9)
    assert agreement(x[:3], y[:3], higher_is_better=True).fit == "linear"


def test_constant_x_fit_is_the_mean_and_agreement_refuses_it():
    fit = logistic_fit([5.0] * 6, [1200.0, 1300.0, 1400.0, 1500.0, 1250.0, 1350.0])
    assert fit == LogisticFit("linear", (0.0, 1333.3333333333333))
    assert np.allclose(fit.predict(np.array([1.0, 9.0])), 4000 / 3)
    with pytest.raises(ValueError, match="metric is constant"):
        agreement([5.0] * 6, [1200.0, 1300.0, 1400.0, 1500.0, 1250.0, 1350.0], higher_is_better=True)
    with pytest.raises(ValueError, match="mos is constant"):
        agreement([1.0, 2.0, 3.0], [1400.0] * 3, higher_is_better=True)
    with pytest.raises(ValueError, match="parameters must be 4 or 5"):
        logistic_fit([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], parameters=3)


def test_plcc_and_rmse_equal_manual_computation_from_the_fit(study):
    mos, lpips = study
    result = agreement(lpips, mos, higher_is_better=False)
    fit = logistic_fit(-lpips, mos)
    predicted = fit.predict(-lpips)
    assert result.fit == fit.kind
    assert result.rmse == pytest.approx(math.sqrt(np.mean((mos - predicted) ** 2)), rel=1e-12)
    assert result.plcc == pytest.approx(stats.pearsonr(mos, predicted).statistic, rel=1e-12)
    # the fit is least squares, so it beats predicting the mean MOS
    assert 0 < result.rmse < np.std(mos)


# --- per-group SRCC -----------------------------------------------------------


def test_per_group_srcc_averages_groups_and_skips_small_or_constant_ones():
    values = [1, 2, 3, 4] + [1, 3, 2, 5, 4] + [1, 2] + [1, 2, 3]
    mos = [10, 20, 30, 40] + [10, 20, 30, 40, 50] + [20, 10] + [7, 7, 7]
    groups = ["a"] * 4 + ["b"] * 5 + ["c"] * 2 + ["d"] * 3  # c: 2 items, d: constant MOS
    result = agreement(values, mos, higher_is_better=True, groups=groups)
    srcc_b = stats.spearmanr([1, 3, 2, 5, 4], [10, 20, 30, 40, 50]).statistic  # 0.8
    assert result.groups == 2
    assert result.srcc_per_group == pytest.approx((1.0 + srcc_b) / 2)
    assert result.srcc_per_group == pytest.approx(0.9)
    # direction is applied before grouping
    flipped = agreement([-v for v in values], mos, higher_is_better=False, groups=groups)
    assert flipped.srcc_per_group == pytest.approx(0.9)


def test_no_groups_gives_nan_and_zero():
    result = agreement([1.0, 2.0, 3.0, 5.0], [1.0, 3.0, 2.0, 4.0], higher_is_better=True)
    assert math.isnan(result.srcc_per_group) and result.groups == 0
    only_small = agreement([1.0, 2.0, 3.0, 5.0], [1.0, 3.0, 2.0, 4.0], higher_is_better=True, groups="aabb")
    assert math.isnan(only_small.srcc_per_group) and only_small.groups == 0


# --- bootstrap ----------------------------------------------------------------


def test_rowwise_srcc_matches_scipy_on_resamples_with_ties():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 6, size=25).astype(float)
    y = rng.normal(size=25)
    rows = rng.integers(0, 25, size=(200, 25))
    rows[0] = 4  # one resample of a single image: constant on both sides
    got = _rowwise_srcc(x[rows], y[rows])
    assert math.isnan(got[0])
    expected = [stats.spearmanr(x[r], y[r]).statistic for r in rows[1:]]
    assert np.allclose(got[1:], expected, rtol=0, atol=1e-12, equal_nan=True)


def test_bootstrap_interval_contains_point_srcc_and_is_deterministic(study):
    mos, lpips = study
    point = agreement(lpips, mos, higher_is_better=False).srcc
    interval = bootstrap_srcc(lpips, mos, higher_is_better=False, resamples=500, seed=11)
    assert isinstance(interval, Interval)
    assert interval.low < point < interval.high
    assert 0.02 < interval.high - interval.low < 0.3
    assert interval == bootstrap_srcc(lpips, mos, higher_is_better=False, resamples=500, seed=11)
    assert interval != bootstrap_srcc(lpips, mos, higher_is_better=False, resamples=500, seed=12)
    narrower = bootstrap_srcc(lpips, mos, higher_is_better=False, resamples=500, seed=11, level=0.5)
    assert interval.low < narrower.low < narrower.high < interval.high


def test_bootstrap_interval_narrows_with_more_images():
    rng = np.random.default_rng(4)
    mos = rng.normal(1400, 80, 1000)
    metric = mos + rng.normal(0, 80, 1000)
    small = bootstrap_srcc(metric[:40], mos[:40], higher_is_better=True, resamples=400)
    large = bootstrap_srcc(metric, mos, higher_is_better=True, resamples=400)
    width_small, width_large = small.high - small.low, large.high - large.low
    # the width shrinks roughly like 1/sqrt(n): sqrt(1000/40) = 5
    assert width_large < width_small / 3


# --- paired test --------------------------------------------------------------


def test_paired_test_separates_a_good_metric_from_noise():
    rng = np.random.default_rng(5)
    mos = rng.normal(1400, 80, 60)
    good = mos + rng.normal(0, 10, 60)
    noise = rng.normal(size=60)
    difference, p = paired_srcc_test(good, noise, mos, a_higher_is_better=True, b_higher_is_better=True)
    expected = stats.spearmanr(good, mos).statistic - stats.spearmanr(noise, mos).statistic
    assert difference == pytest.approx(expected, abs=1e-12)
    assert difference > 0.5
    assert p < 0.05
    # swapping the metrics flips the sign, not the verdict
    back, p_back = paired_srcc_test(noise, good, mos, a_higher_is_better=True, b_higher_is_better=True)
    assert back == pytest.approx(-difference) and p_back == p


def test_paired_test_of_a_metric_with_itself_is_difference_zero_p_one(study):
    mos, lpips = study
    assert paired_srcc_test(lpips, lpips, mos, a_higher_is_better=False, b_higher_is_better=False) == (0.0, 1.0)
    # the same metric in the other direction on one side is the same ranking
    difference, p = paired_srcc_test(lpips, -lpips, mos, a_higher_is_better=False, b_higher_is_better=True)
    assert difference == 0.0 and p == 1.0


def test_paired_test_is_deterministic_and_large_p_for_similar_metrics():
    rng = np.random.default_rng(6)
    mos = rng.normal(1400, 80, 80)
    a = mos + rng.normal(0, 60, 80)
    b = mos + rng.normal(0, 60, 80)
    first = paired_srcc_test(a, b, mos, a_higher_is_better=True, b_higher_is_better=True, seed=3)
    assert first == paired_srcc_test(a, b, mos, a_higher_is_better=True, b_higher_is_better=True, seed=3)
    assert abs(first[0]) < 0.15 and first[1] > 0.2


# --- ranks and small helpers --------------------------------------------------


def test_rank_desc_competition_ranks_both_directions():
    psnr = [28.1, 30.5, 28.1, 26.0, 30.5]
    assert rank_desc(psnr, higher_is_better=True) == [3, 1, 3, 5, 1]
    assert rank_desc(psnr, higher_is_better=False) == [2, 4, 2, 1, 4]
    assert rank_desc([0.2, 0.1, 0.3, 0.1], higher_is_better=False) == [3, 1, 4, 1]  # "1134"
    assert rank_desc([], higher_is_better=True) == []
    with pytest.raises(ValueError, match="1 non-finite"):
        rank_desc([1.0, float("nan")], higher_is_better=True)


def test_too_few_and_default_minimum():
    assert MIN_IMAGES == 10
    assert too_few(9, MIN_IMAGES) and not too_few(10, MIN_IMAGES)


# --- validation ---------------------------------------------------------------


def test_clear_errors_for_bad_input():
    with pytest.raises(ValueError, match=r"lengths differ: values=4, mos=3"):
        agreement([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0], higher_is_better=True)
    with pytest.raises(ValueError, match=r"lengths differ: values=3, groups=2"):
        agreement([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], higher_is_better=True, groups=["a", "b"])
    with pytest.raises(ValueError, match="at least 3 images, got 2"):
        agreement([1.0, 2.0], [1.0, 2.0], higher_is_better=True)
    with pytest.raises(ValueError, match=r"values contains 2 non-finite value\(s\) \(nan or inf\) out of 5"):
        agreement([1.0, float("nan"), 3.0, float("inf"), 5.0], [1.0, 2.0, 3.0, 4.0, 5.0], higher_is_better=True)
    with pytest.raises(ValueError, match="mos contains 1 non-finite"):
        bootstrap_srcc([1.0, 2.0, 3.0], [1.0, float("nan"), 3.0], higher_is_better=True)
    with pytest.raises(ValueError, match="lengths differ: values_a=3, values_b=4, mos=3"):
        paired_srcc_test(
            [1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0], a_higher_is_better=True, b_higher_is_better=True
        )
    with pytest.raises(ValueError, match="level"):
        bootstrap_srcc([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], higher_is_better=True, level=95)


def test_agreement_is_a_frozen_dataclass(study):
    mos, lpips = study
    result = agreement(lpips, mos, higher_is_better=False)
    assert isinstance(result, Agreement)
    with pytest.raises(AttributeError):
        result.srcc = 1.0
