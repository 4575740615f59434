"""Category ratings (ACR/DCR): MOS with t intervals, BT.500 and correlation screening, and sureal's
subject model on synthetic raters with a known truth (pure math, no database)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau, pearsonr, spearmanr

from annotation.analysis import category_ratings, synthetic_raters
from annotation.analysis.synthetic_raters import SyntheticRater

ACR_SCALE = [1, 2, 3, 4, 5]
ELEVEN_POINT_SCALE = list(range(11))  # ITU-T P.910's 11-grade numerical scale


def test_mos_table_t_intervals_by_hand():
    frame = pd.DataFrame(
        {
            "rater": ["r1", "r2", "r3", "r1", "r2", "r1"],
            "image": ["a", "a", "a", "b", "b", "c"],
            "score": [4, 5, 3, 2, 3, 5],
        }
    )
    table = category_ratings.mos_table(frame)
    # a: mean 4, sd 1, t_{0.975, 2} = 4.302653 → 4 ± 4.302653 / √3.
    assert table.loc["a", ["mos", "sd", "n"]].tolist() == pytest.approx([4.0, 1.0, 3])
    assert table.loc["a", "ci_low"] == pytest.approx(4 - 4.302653 / math.sqrt(3), abs=1e-6)
    assert table.loc["a", "ci_high"] == pytest.approx(4 + 4.302653 / math.sqrt(3), abs=1e-6)
    # b: mean 2.5, sd √0.5, t_{0.975, 1} = 12.706205 → 2.5 ± 12.706205 · √0.5 / √2 = 2.5 ± 6.353102.
    assert table.loc["b", "ci_high"] - 2.5 == pytest.approx(6.353102, abs=1e-6)
    # c: a single score has no interval.
    assert table.loc["c", "n"] == 1 and math.isnan(table.loc["c", "ci_low"]) and math.isnan(table.loc["c", "sd"])
    assert category_ratings.mos_table(frame, level=0.9).loc["a", "ci_high"] == pytest.approx(
        4 + 2.919986 / math.sqrt(3), abs=1e-6
    )


def test_repeated_and_non_numeric_scores_are_refused():
    with pytest.raises(ValueError, match="at most once"):
        category_ratings.mos_table(pd.DataFrame({"rater": ["r", "r"], "image": ["a", "a"], "score": [1, 2]}))
    with pytest.raises(ValueError, match="finite numbers"):
        category_ratings.mos_table(pd.DataFrame({"rater": ["r"], "image": ["a"], "score": ["good"]}))


def acr_study_with_planted_raters(seed):
    """40 images on the 5-point ACR scale, 15 good raters (bias within ±0.3, inconsistency 0.3-0.6),
    2 random raters and 1 who scores the scale upside down."""
    rng = np.random.default_rng(seed)
    images = [f"image{i:02d}" for i in range(40)]
    quality = dict(zip(images, rng.uniform(1, 5, len(images)), strict=True))
    good = [SyntheticRater(f"good{i:02d}", rng.uniform(-0.3, 0.3), rng.uniform(0.3, 0.6)) for i in range(15)]
    upside_down = {image: 6 - q for image, q in quality.items()}
    frame = pd.concat(
        [
            synthetic_raters.category_scores(quality, good, ACR_SCALE, rng),
            synthetic_raters.random_rater("random0", images, ACR_SCALE, rng),
            synthetic_raters.random_rater("random1", images, ACR_SCALE, rng),
            synthetic_raters.category_scores(upside_down, [SyntheticRater("inverted", 0, 0.4)], ACR_SCALE, rng),
        ],
        ignore_index=True,
    )
    return frame, {"random0", "random1", "inverted"}


def rejected(table):
    return set(table.loc[table["rejected"], "rater"])


def test_correlation_screening_flags_the_planted_raters_and_no_good_one():
    # Over seeds 0-39 of this design it flags all three planted raters and no good one every time.
    frame, planted = acr_study_with_planted_raters(0)
    table = category_ratings.correlation_screening(frame)
    assert rejected(table) == planted
    assert (table.set_index("rater").loc[sorted(planted), "pcc"] < 0.3).all()
    assert (table.loc[~table["rater"].isin(planted), "pcc"] > 0.75).all()
    assert (table["n"] == 40).all()


def test_bt500_screening_flags_the_planted_raters_and_no_good_one():
    """BT.500's rule is weaker than the correlation test on such a panel: over seeds 0-39 of this
    design it flags no good rater but only about half of the planted ones (1.6 of 3). The outliers themselves
    push an image's kurtosis above 4, and the √20·S bound it then uses cannot be reached with
    fewer than 22 scores (no score lies more than (N−1)/√N standard deviations from the mean); and
    a random rater's outliers must also fall nearly evenly on both sides. This seed is one where
    all three are caught."""
    frame, planted = acr_study_with_planted_raters(4)
    table = category_ratings.bt500_screening(frame)
    assert rejected(table) == planted
    flagged = table[table["rater"].isin(planted)]
    assert ((flagged["p"] + flagged["q"]) / flagged["n"] > 0.05).all()
    assert flagged["reason"].str.startswith("BT.500-13 Annex 2 §2.3.1").all()


def test_bt500_keeps_a_consistently_harsh_rater_and_cannot_flag_a_lone_outlier_in_a_small_panel():
    rng = np.random.default_rng(3)
    images = [f"image{i:02d}" for i in range(40)]
    quality = dict(zip(images, rng.uniform(0.5, 9.5, len(images)), strict=True))
    panel = [SyntheticRater(f"good{i:02d}", 0.0, 1.0) for i in range(15)]
    harsh = SyntheticRater("harsh", -3.0, 1.0)
    frame = synthetic_raters.category_scores(quality, [*panel, harsh], ELEVEN_POINT_SCALE, rng, continuous=True)
    table = category_ratings.bt500_screening(frame).set_index("rater")
    # Its scores lie below the panel's spread (Q) and almost never above it (P): one-sided, kept.
    assert table.loc["harsh", "q"] > 0.05 * 40 and table.loc["harsh", "p"] == 0
    assert not table.loc["harsh", "rejected"]
    # One wild score among 16: β2 > 4, and 15/√16 = 3.75 < √20 standard deviations: never an outlier.
    lone = pd.DataFrame({"rater": [f"r{i}" for i in range(16)], "image": "x", "score": [5.0] * 15 + [50.0]})
    lone.loc[:14, "score"] += np.linspace(-1, 1, 15)
    assert category_ratings.bt500_screening(lone)[["p", "q"]].to_numpy().sum() == 0


def biased_incomplete_study(seed, images=60, share=0.5):
    """20 raters with biases ±1 (a coin flip each) and inconsistencies 0.3-1.2 on the 11-point
    scale; each rater scores a random ``share`` of the images; 5 images per reference."""
    rng = np.random.default_rng(seed)
    names = [f"image{i:02d}" for i in range(images)]
    reference_of = {image: f"reference{i // 5}" for i, image in enumerate(names)}
    quality = dict(zip(names, rng.uniform(3, 7, images), strict=True))
    raters = [SyntheticRater(f"rater{i:02d}", rng.choice([-1.0, 1.0]), rng.uniform(0.3, 1.2)) for i in range(20)]
    design = {rater.name: list(rng.choice(names, int(share * images), replace=False)) for rater in raters}
    frame = synthetic_raters.category_scores(quality, raters, ELEVEN_POINT_SCALE, rng, design)
    return frame, quality, raters, reference_of


def test_subject_model_recovers_rater_bias_and_inconsistency_and_beats_the_plain_mean():
    """60 images, 20 raters, each scoring half the images. Tolerances, met by seeds 0-11 of this
    design: biases within 0.2 on average (0.07-0.17, median 0.11) and correlated > 0.95 with the
    truth; inconsistencies ranked with Spearman > 0.6 (0.67-0.94). The model's quality ranks the
    truth better (Kendall) than the plain mean, which carries the biases of whichever raters
    happened to score each image: on all 12 seeds, by 0.002-0.085 (0.052 here); and it lies closer
    to the truth on the 11 where the full model fits (seed 4 needs the fallback, 0.017 worse)."""
    frame, quality, raters, reference_of = biased_incomplete_study(0)
    result = category_ratings.subject_model(frame, reference_of)
    assert result.model == category_ratings.FULL_MODEL
    # Only bias differences are identified: sureal makes the biases average zero, so centre the truth.
    true_bias = np.array([rater.bias for rater in raters])
    true_bias -= true_bias.mean()
    bias = result.raters.loc[[rater.name for rater in raters], "bias"].to_numpy()
    assert np.abs(bias - true_bias).mean() < 0.2
    assert pearsonr(bias, true_bias)[0] > 0.95
    inconsistency = result.raters.loc[[rater.name for rater in raters], "inconsistency"]
    assert spearmanr(inconsistency, [rater.inconsistency for rater in raters])[0] > 0.6

    images = result.images.index
    truth = np.array([quality[image] for image in images]) + np.mean([rater.bias for rater in raters])
    plain = category_ratings.mos_table(frame).loc[images, "mos"].to_numpy()
    model = result.images["quality"].to_numpy()
    assert kendalltau(model, truth)[0] > kendalltau(plain, truth)[0] + 0.02
    assert np.abs(model - truth).mean() < np.abs(plain - truth).mean()
    assert (result.images["quality_ci_low"] < model).all() and (model < result.images["quality_ci_high"]).all()
    assert sorted(result.references.index) == sorted({f"reference{i}" for i in range(12)})
    assert (result.references["ambiguity"] >= 0).all()


def test_subject_model_falls_back_to_p910_annex_e_where_the_full_model_breaks_down():
    # Seed 4 of the design above: the full model's Newton updates drive a variance to zero (NaN).
    frame, _, raters, reference_of = biased_incomplete_study(4, images=60, share=0.5)
    result = category_ratings.subject_model(frame, reference_of)
    assert result.model == category_ratings.FALLBACK_MODEL
    assert result.references["ambiguity"].isna().all()
    assert np.isfinite(result.images["quality"]).all() and np.isfinite(result.raters["bias"]).all()
    assert result.raters["bias"].mean() == pytest.approx(0.0, abs=1e-9)


def test_subject_model_needs_every_image_reference():
    frame = pd.DataFrame({"rater": ["r1", "r2"], "image": ["a", "b"], "score": [3, 4]})
    with pytest.raises(ValueError, match="'b'"):
        category_ratings.subject_model(frame, {"a": "ref"})


def test_screened_drops_the_rejected_raters():
    frame = pd.DataFrame({"rater": ["r1", "r2", "r3"], "image": ["a", "a", "a"], "score": [3, 4, 1]})
    assert category_ratings.screened(frame, ["r3"])["rater"].tolist() == ["r1", "r2"]
