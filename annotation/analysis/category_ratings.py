"""Analysis of category ratings (ACR, DCR): MOS with t-based confidence intervals, observer
screening, and the subject model that separates each rater's bias and inconsistency from the
images' quality (no Django here).

The input everywhere is a frame with one row per rater, image and score: columns ``rater, image,
score``. A rater may have scored only some of the images (an incomplete design); a rater scores an
image at most once.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ["rater", "image", "score"]
DEFAULT_LEVEL = 0.95

# ITU-R BT.500-13 (01/2012) Annex 2 §2.3.1, observer screening.
# A presentation's scores count as normally distributed when their kurtosis coefficient β2 lies in [2, 4].
BT500_NORMAL_KURTOSIS = (2.0, 4.0)
# An observer's score is an outlier beyond 2 standard deviations of the presentation's mean when the
# scores are normal, beyond √20 standard deviations otherwise.
BT500_NORMAL_SPREAD = 2.0
BT500_OTHER_SPREAD = math.sqrt(20.0)
# Reject an observer with more than 5% outlying scores, when these are not mostly on one side
# (|P − Q| / (P + Q) < 0.3: an observer who is consistently harsher or milder is kept).
BT500_MAX_OUTLIER_SHARE = 0.05
BT500_MAX_ONE_SIDEDNESS = 0.3

# The correlation screening of the VQEG multimedia test plan (Annex VI), taken into ITU-T P.913 as
# its subject screening (clause 11.4 in the 01/2014 edition) and into P.910's data analysis: a
# subject whose scores correlate with the MOS of the same stimuli below 0.75 (Pearson) is discarded.
# The standard pairs it with a second test, the correlation per test condition (HRC) below 0.8;
# rejection needs both. Without condition labels only the first test runs here, which rejects at
# least as often.
P913_MIN_PCC = 0.75

# sureal's models of rater bias and inconsistency. The full one (Li & Bampis 2017) also has each
# reference's ambiguity; its Newton updates can break down on sparse designs (a variance driven to
# zero, then NaN), and the alternating projection of ITU-T P.910 (11/2021) Annex E (sureal's
# P910AnnexEModel: bias and inconsistency, no ambiguity) takes over there.
FULL_MODEL = "MaximumLikelihoodEstimationModel"
FALLBACK_MODEL = "P910AnnexEModel"


def _checked(frame: pd.DataFrame) -> pd.DataFrame:
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"the scores need columns {COLUMNS}; missing {missing}")
    scores = frame[COLUMNS].reset_index(drop=True)
    values = pd.to_numeric(scores["score"], errors="coerce")
    if values.isna().any() or not np.isfinite(values.to_numpy(dtype=float)).all():
        bad = scores.loc[values.isna() | ~np.isfinite(values.fillna(0).to_numpy(dtype=float)), "score"].tolist()
        raise ValueError(f"scores must be finite numbers; got {bad[:5]}")
    repeated = scores.duplicated(["rater", "image"], keep=False)
    if repeated.any():
        pairs = scores.loc[repeated, ["rater", "image"]].drop_duplicates().head(5).to_records(index=False).tolist()
        raise ValueError(f"a rater scores an image at most once; repeated (rater, image): {pairs}")
    return scores.assign(score=values.astype(float))


def screened(frame: pd.DataFrame, rejected_raters: Iterable[Hashable]) -> pd.DataFrame:
    """The scores without those of ``rejected_raters``."""
    return frame[~frame["rater"].isin(set(rejected_raters))]


def mos_table(frame: pd.DataFrame, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Per image: ``mos, sd, n, ci_low, ci_high``.

    The interval is Student's t: mos ± t_{(1+level)/2, n−1} · sd / √n, with sd the sample standard
    deviation (n − 1 in the denominator), as ITU-R BT.500-13 Annex 2 §2.2.1 and ITU-T P.1401 §7.2
    compute it; an image with a single score has no sd and no interval (NaN).
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    by_image = _checked(frame).groupby("image")["score"]
    table = pd.DataFrame({"mos": by_image.mean(), "sd": by_image.std(ddof=1), "n": by_image.count()})
    spread = table["n"] > 1
    dof = table["n"].where(spread, 2) - 1  # any valid dof where the interval is undefined: masked below
    half = stats.t.ppf((1 + level) / 2, dof) * table["sd"] / np.sqrt(table["n"])
    table["ci_low"] = (table["mos"] - half).where(spread)
    table["ci_high"] = (table["mos"] + half).where(spread)
    return table


def bt500_screening(frame: pd.DataFrame) -> pd.DataFrame:
    """Observer screening of ITU-R BT.500-13 Annex 2 §2.3.1, one row per rater:
    ``rater, n, p, q, rejected, reason``.

    Per image (a "presentation"): the mean ū, the standard deviation S (n − 1 in the denominator,
    §2.2.1) and the kurtosis coefficient β2 = m4 / m2² with m_x = Σ (u − ū)^x / N. A score u ≥ ū + k·S
    adds one to the rater's P, a score u ≤ ū − k·S one to Q, with k = 2 when 2 ≤ β2 ≤ 4 and √20
    otherwise. A rater is rejected when (P + Q) / n > 0.05 and |(P − Q) / (P + Q)| < 0.3, n being the
    number of the rater's scores; only images scored by at least two raters count, as S needs two.
    An image whose scores all agree (S = 0) has no outliers.
    """
    scores = _checked(frame)
    by_image = scores.groupby("image")["score"]
    count = by_image.transform("count")
    deviation = scores["score"] - by_image.transform("mean")
    m2 = (deviation**2).groupby(scores["image"]).transform("mean")
    m4 = (deviation**4).groupby(scores["image"]).transform("mean")
    spread = np.sqrt(m2 * count / (count - 1).clip(lower=1))
    varied = (count > 1) & (m2 > 0)
    kurtosis = (m4 / m2.where(varied) ** 2).fillna(0.0)
    low, high = BT500_NORMAL_KURTOSIS
    normal = (kurtosis >= low) & (kurtosis <= high)
    threshold = np.where(normal, BT500_NORMAL_SPREAD, BT500_OTHER_SPREAD) * spread
    counted = scores.assign(
        n=count > 1,
        p=varied & (deviation >= threshold),
        q=varied & (deviation <= -threshold),
    )
    table = counted.groupby("rater")[["n", "p", "q"]].sum().astype(int).reset_index()
    rows = [_bt500_verdict(*row) for row in table[["n", "p", "q"]].itertuples(index=False)]
    table["rejected"] = [rejected for rejected, _ in rows]
    table["reason"] = [reason for _, reason in rows]
    return table


def _bt500_verdict(n: int, p: int, q: int) -> tuple[bool, str]:
    if n == 0 or p + q == 0:
        return False, ""
    share, sidedness = (p + q) / n, abs(p - q) / (p + q)
    if share > BT500_MAX_OUTLIER_SHARE and sidedness < BT500_MAX_ONE_SIDEDNESS:
        return True, (
            f"BT.500-13 Annex 2 §2.3.1: {p + q} of {n} scores outside the panel's spread "
            f"({share:.0%} > {BT500_MAX_OUTLIER_SHARE:.0%}), on both sides (|P−Q|/(P+Q) = {sidedness:.2f} "
            f"< {BT500_MAX_ONE_SIDEDNESS})"
        )
    return False, ""


def correlation_screening(frame: pd.DataFrame, min_pcc: float = P913_MIN_PCC) -> pd.DataFrame:
    """Per rater: ``rater, n, pcc, rejected, reason``; ``pcc`` is the Pearson correlation of the
    rater's scores with the MOS of the same images, and a rater below ``min_pcc`` is rejected
    (the VQEG / ITU-T P.913 subject screening, see ``P913_MIN_PCC``).

    The MOS leaves the rater out (the mean of the other raters' scores), so that a rater does not
    correlate with their own share of a small panel; the standard averages over all subjects. Only
    images that another rater also scored count (``n``). With fewer than three such images, or with
    constant scores on either side, the correlation is undefined (NaN) and the rater is kept.
    """
    scores = _checked(frame)
    by_image = scores.groupby("image")["score"]
    others = by_image.transform("count") - 1
    others_mean = (by_image.transform("sum") - scores["score"]) / others.where(others > 0)
    shared = scores.assign(others_mean=others_mean)[others > 0]
    rows = []
    for rater in scores["rater"].drop_duplicates():
        mine = shared[shared["rater"] == rater]
        pcc = _pearson(mine["score"].to_numpy(), mine["others_mean"].to_numpy())
        rejected = bool(pcc < min_pcc)  # False for NaN
        if rejected:
            reason = f"Pearson correlation with the other raters' MOS {pcc:.2f} < {min_pcc} (ITU-T P.913 screening)"
        elif math.isnan(pcc):
            reason = "correlation undefined: fewer than 3 shared images or constant scores"
        else:
            reason = ""
        rows.append((rater, len(mine), pcc, rejected, reason))
    return pd.DataFrame(rows, columns=["rater", "n", "pcc", "rejected", "reason"])


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    norm = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / norm if norm > 0 else math.nan


@dataclass(frozen=True)
class SubjectModelResult:
    """The fit of the subject model.

    images: per image, ``quality`` (the recovered true score, on the rating scale), ``quality_std``,
        ``quality_ci_low``, ``quality_ci_high``;
    raters: per rater, ``bias`` (mean offset from the true score; the biases average zero),
        ``bias_std``, ``inconsistency`` (the standard deviation of the rater's noise) and
        ``inconsistency_std``;
    references: per reference (content), ``ambiguity`` (the standard deviation its content adds to
        every score) and ``ambiguity_std``; NaN under the fallback model, which has no ambiguity;
    model: the sureal model that made the fit, ``FULL_MODEL`` or ``FALLBACK_MODEL``.
    """

    images: pd.DataFrame
    raters: pd.DataFrame
    references: pd.DataFrame
    iterations: int
    model: str


def subject_model(
    frame: pd.DataFrame, reference_of: Mapping[Hashable, Hashable], level: float = DEFAULT_LEVEL
) -> SubjectModelResult:
    """Netflix sureal's ``MaximumLikelihoodEstimationModel`` on the scores: the model of Li & Bampis,
    "Recover subjective quality scores from noisy measurements" (DCC 2017), where rater s scores
    image e as x_e + N(b_s, v_s²) + N(0, a_c²), c being the image's reference (content); solved by
    maximum likelihood. The intervals are quality ± z_{(1+level)/2} · std, the std from the
    likelihood's curvature (at 0.95 sureal's own ``quality_scores_ci95``).

    ``reference_of`` gives each image's reference; a missing score is simply absent (sureal reads a
    rater missing from an image's opinion-score dict as NaN and its sums skip NaN). Where the full
    model breaks down, the fit is sureal's P.910 Annex E model (see ``FALLBACK_MODEL``).
    """
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    scores = _checked(frame)
    images = list(scores["image"].drop_duplicates())
    unknown = [image for image in images if image not in reference_of]
    if unknown:
        raise ValueError(f"no reference given for images {unknown[:10]}")
    raters = list(scores["rater"].drop_duplicates())
    references = list(dict.fromkeys(reference_of[image] for image in images))
    # sureal wants content ids 0..C−1 and sorts observer keys: both become positions here.
    content_id = {reference: i for i, reference in enumerate(references)}
    observer = {rater: i for i, rater in enumerate(raters)}
    opinions: dict[Hashable, dict[int, float]] = {image: {} for image in images}
    for rater, image, score in scores.itertuples(index=False):
        opinions[image][observer[rater]] = score
    dataset = SimpleNamespace(
        dataset_name="category_ratings",
        ref_videos=[{"content_id": i, "content_name": str(r), "path": f"ref/{i}"} for r, i in content_id.items()],
        dis_videos=[
            {
                "content_id": content_id[reference_of[image]],
                "asset_id": e,
                "path": f"dis/{e}",
                "os": opinions[image],
            }
            for e, image in enumerate(images)
        ],
    )
    model, result = _run_sureal(dataset)
    ambiguity = result.get("content_ambiguity", [math.nan] * len(references))
    ambiguity_std = result.get("content_ambiguity_std", [math.nan] * len(references))
    z = stats.norm.ppf((1 + level) / 2)
    quality = np.asarray(result["quality_scores"], dtype=float)
    quality_std = np.asarray(result["quality_scores_std"], dtype=float)
    return SubjectModelResult(
        images=pd.DataFrame(
            {
                "quality": quality,
                "quality_std": quality_std,
                "quality_ci_low": quality - z * quality_std,
                "quality_ci_high": quality + z * quality_std,
            },
            index=pd.Index(images, name="image"),
        ),
        raters=pd.DataFrame(
            {
                "bias": result["observer_bias"],
                "bias_std": result["observer_bias_std"],
                "inconsistency": result["observer_inconsistency"],
                "inconsistency_std": result["observer_inconsistency_std"],
            },
            index=pd.Index(raters, name="rater"),
        ),
        references=pd.DataFrame(
            {"ambiguity": ambiguity, "ambiguity_std": ambiguity_std},
            index=pd.Index(references, name="reference"),
        ),
        iterations=int(result["num_iter"]),
        model=model,
    )


def _run_sureal(dataset: SimpleNamespace) -> tuple[str, dict]:
    """The full model's fit, or P.910 Annex E's where the full model's iterations break down."""
    # Imported here: sureal imports matplotlib.pyplot at import time (seconds), which the web
    # processes that only need MOS tables should not pay.
    from sureal import P910AnnexEModel
    from sureal.dataset_reader import RawDatasetReader
    from sureal.subjective_model import MaximumLikelihoodEstimationModel

    # Both models write a progress line per iteration to stdout; their numpy warnings (a division
    # by a vanishing variance) are the breakdown handled below.
    with contextlib.redirect_stdout(io.StringIO()), np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        try:
            result = MaximumLikelihoodEstimationModel(RawDatasetReader(dataset)).run_modeling()
            if np.all(np.isfinite(result["quality_scores"])):
                return FULL_MODEL, result
        except ValueError:  # sureal's own norm check on a NaN update
            pass
        return FALLBACK_MODEL, P910AnnexEModel(RawDatasetReader(dataset)).run_modeling()
