"""The results of the single-stimulus and ranking protocols (acr, dcr, rank-k) from their logs:
the stored per-image scores, the per-image result table the export writes and the per-rater
screening. The maths is in ``category_ratings`` and ``rankings`` (pure); this module reads the
log, names raters and images, and stores.

What an image's fields hold (the live vote path keeps them the same way):

* acr/dcr: ``judgment_count`` the counted ratings, ``mos`` their mean, ``mos_std`` their sample
  SD (n - 1; none below two ratings);
* rank-k: ``judgment_count`` the counted rankings it appeared in, ``mos`` its mean normalised
  Borda score (k - position) / (k - 1) in [0, 1], position 1 the best, so higher is better as
  with every MOS the benchmark correlates; ``mos_bt`` and ``bt_ci_low/high`` the Plackett–Luce
  score and its bootstrap CI.

Counted: every entry but an excluded rater's (``Rater.excluded``); imported entries have no rater
account and always count. Pairwise studies are left to Elo and Bradley–Terry (``bt_fit``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from itertools import combinations

import numpy as np
import pandas as pd
from django.db import transaction

from annotation.analysis import category_ratings, rankings
from annotation.models import DistortedImage, Ranking, Rating, Study

logger = logging.getLogger(__name__)

RATING_PROTOCOLS = (Study.Protocol.ACR, Study.Protocol.DCR)
# The confidence level of every interval here, as of the Bradley–Terry CIs (bradley_terry.DEFAULT_LEVEL).
LEVEL = 0.95
# The Plackett–Luce bootstrap is seeded, so refitting an unchanged log gives the same CIs.
PL_SEED = 0
# An image without a counted entry has no score: its MOS is parked in the middle of the range
# (judgment_count 0 says it is unmeasured; the benchmark and trainers skip it).
RANK_MIDPOINT = 0.5

IMAGE_COLUMNS = ("reference", "image", "distortion_type", "distortion_name", "category", "subtype", "level")
RATING_COLUMNS = ("mos", "sd", "n", "ci_low", "ci_high", "mle_quality", "mle_ci_low", "mle_ci_high")
RANKING_COLUMNS = ("mean_rank", "n", "pl_score", "pl_ci_low", "pl_ci_high", "borda")


def result_columns(study: Study) -> tuple[str, ...]:
    """The protocol's per-image result columns (after ``IMAGE_COLUMNS``)."""
    return RANKING_COLUMNS if study.protocol == Study.Protocol.RANK_K else RATING_COLUMNS


def counted_ratings(study: Study):
    """The ratings the scores are built from: excluded raters' left out."""
    return Rating.objects.filter(study=study).exclude(rater__excluded=True)


def counted_rankings(study: Study):
    return Ranking.objects.filter(study=study).exclude(rater__excluded=True)


def ratings_frame(study: Study, *, counted_only: bool = True) -> pd.DataFrame:
    """One row per rating: ``rater`` (the rater's external id, or the imported file's rater id),
    ``image`` (its name), ``score``; in log order."""
    ratings = counted_ratings(study) if counted_only else Rating.objects.filter(study=study)
    rows = ratings.order_by("id").values_list("rater__external_id", "external_rater", "image__name", "score")
    return pd.DataFrame(
        [(external_id or external_rater, image, score) for external_id, external_rater, image, score in rows],
        columns=["rater", "image", "score"],
    ).astype({"rater": str, "image": str, "score": float})


def _ranking_rows(study: Study) -> list[tuple[str, list[str]]]:
    """(rater, image names best first) per counted ranking, in log order."""
    names = dict(DistortedImage.objects.filter(study=study).values_list("id", "name"))
    rows = counted_rankings(study).order_by("id").values_list("rater__external_id", "external_rater", "order")
    return [(external_id or external_rater, [names[i] for i in order]) for external_id, external_rater, order in rows]


def rankings_of(study: Study) -> list[list[str]]:
    """The counted rankings, each the image names best first, in log order."""
    return [order for _, order in _ranking_rows(study)]


def borda_scores(orders: list[list[str]]) -> pd.DataFrame:
    """Per image: ``borda``, its mean normalised Borda score (k - position) / (k - 1) over the
    rankings it is in (1 best, 0 worst, whatever each ranking's k), and ``n``, their number."""
    total: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for order in orders:
        k = len(order)
        for position, image in enumerate(order, start=1):
            total[image] += (k - position) / (k - 1)
            count[image] += 1
    return pd.DataFrame(
        {"borda": [total[image] / count[image] for image in count], "n": list(count.values())},
        index=pd.Index(list(count), name="image"),
    )


def _images(study: Study) -> list[DistortedImage]:
    return list(DistortedImage.objects.filter(study=study).only("id", "name", "judgment_count", "mos", "mos_std"))


def study_refresh_scores(study: Study) -> None:
    """Recompute every image's stored scores from the counted log (see the module docstring), in
    one transaction; a pairwise study is left alone."""
    if study.protocol in RATING_PROTOCOLS:
        _refresh_ratings(study)
    elif study.protocol == Study.Protocol.RANK_K:
        _refresh_rankings(study)


@transaction.atomic
def _refresh_ratings(study: Study) -> None:
    scale = study.rating_scale
    frame = ratings_frame(study)
    stats = frame.groupby("image")["score"].agg(["count", "mean", "std"])  # std: the sample SD (n - 1)
    images = _images(study)
    for image in images:
        if image.name in stats.index:
            count, mean, sd = stats.loc[image.name]
            image.judgment_count, image.mos = int(count), float(mean)
            image.mos_std = None if count < 2 else float(sd)
        else:
            image.judgment_count, image.mos, image.mos_std = 0, (scale.low + scale.high) / 2, None
    DistortedImage.objects.bulk_update(images, ["judgment_count", "mos", "mos_std"], batch_size=2000)


@transaction.atomic
def _refresh_rankings(study: Study) -> None:
    orders = rankings_of(study)
    borda = borda_scores(orders)
    fit = _plackett_luce(study, orders)
    images = _images(study)
    for image in images:
        if image.name in borda.index:
            image.judgment_count, image.mos = int(borda.at[image.name, "n"]), float(borda.at[image.name, "borda"])
            score, low, high = fit.loc[image.name, ["score", "ci_low", "ci_high"]]
            image.mos_bt, image.bt_ci_low, image.bt_ci_high = float(score), float(low), float(high)
        else:
            image.judgment_count, image.mos = 0, RANK_MIDPOINT
            image.mos_bt = image.bt_ci_low = image.bt_ci_high = None
    DistortedImage.objects.bulk_update(
        images, ["judgment_count", "mos", "mos_bt", "bt_ci_low", "bt_ci_high"], batch_size=2000
    )


def _plackett_luce(study: Study, orders: list[list[str]]) -> pd.DataFrame:
    """The Plackett–Luce fit of the rankings (index: the ranked images), bootstrapped with the
    study's Bradley–Terry rounds, one fit per reference: a ranking holds versions of one source,
    so scores are identified only within a reference (as the per-reference Bradley–Terry fit), and
    small fits keep the cost linear in the study's size (one fit of 10k images: ~1.7 h, bench/protocols.py)."""
    if not orders:
        return pd.DataFrame(columns=["score", "ci_low", "ci_high", "n"])
    reference_of = _reference_of(study)
    by_reference: dict[str, list[list[str]]] = defaultdict(list)
    for order in orders:
        by_reference[reference_of[order[0]]].append(order)
    fits = [
        rankings.plackett_luce(group, rounds=study.bt_rounds, seed=PL_SEED)
        for _, group in sorted(by_reference.items())
    ]
    return pd.concat(fits)


def _image_table(study: Study) -> pd.DataFrame:
    rows = (
        DistortedImage.objects.filter(study=study)
        .order_by("reference__name", "name")
        .values_list(
            "reference__name", "name", "distortion_type__code", "distortion_type__name", "distortion_type__category",
            "distortion_type__subtype", "level",
        )
    )  # fmt: skip
    return pd.DataFrame(list(rows), columns=list(IMAGE_COLUMNS))


def protocol_results(study: Study, *, subject_model: bool = True) -> pd.DataFrame:
    """One row per image (sorted by reference and image): ``IMAGE_COLUMNS`` then the protocol's
    columns. acr/dcr: the mean score with its t-based CI (``mos, sd, n, ci_low, ci_high``) and the
    subject model's MLE quality with its CI; rank-k: ``mean_rank`` (1 = best, as RankSRGAN reports
    it), ``n`` rankings, the Plackett–Luce score with its bootstrap CI and the mean normalised Borda
    score. An image without counted entries has n = 0 and no values (NaN). ``subject_model=False``
    leaves the MLE columns blank: sureal's fit takes minutes at a few thousand images and about an
    hour at 10k (bench/protocols.py), too long for a web request."""
    table = _image_table(study)
    if study.protocol in RATING_PROTOCOLS:
        results = _rating_results(study, subject_model=subject_model)
    elif study.protocol == Study.Protocol.RANK_K:
        results = _ranking_results(study)
    else:
        raise ValueError(f"protocol_results serves acr, dcr and rank-k studies, not {study.protocol}")
    merged = table.merge(results, how="left", left_on="image", right_index=True)
    merged["n"] = merged["n"].fillna(0).astype(int)
    return merged[[*IMAGE_COLUMNS, *result_columns(study)]].reset_index(drop=True)


def _reference_of(study: Study) -> dict[str, str]:
    return dict(DistortedImage.objects.filter(study=study).values_list("name", "reference__name"))


def _subject_model(study: Study, frame: pd.DataFrame) -> category_ratings.SubjectModelResult | None:
    """sureal's fit of the scores, or None where the data cannot identify it: sureal refuses with a
    ValueError when its likelihood degenerates (a handful of scores, a rater who scored once)."""
    try:
        return category_ratings.subject_model(frame, _reference_of(study), level=LEVEL)
    except ValueError as error:
        logger.warning("study %s: no subject model (%s): its columns are left blank", study.slug, error)
        return None


def _rating_results(study: Study, *, subject_model: bool = True) -> pd.DataFrame:
    frame = ratings_frame(study)
    if frame.empty:
        return pd.DataFrame(columns=list(RATING_COLUMNS), index=pd.Index([], name="image"))
    table = category_ratings.mos_table(frame, level=LEVEL)
    model = _subject_model(study, frame) if subject_model else None
    if model is None:
        return table.assign(mle_quality=np.nan, mle_ci_low=np.nan, mle_ci_high=np.nan)
    quality = model.images.rename(
        columns={"quality": "mle_quality", "quality_ci_low": "mle_ci_low", "quality_ci_high": "mle_ci_high"}
    )
    return table.join(quality[["mle_quality", "mle_ci_low", "mle_ci_high"]], how="left")


def _ranking_results(study: Study) -> pd.DataFrame:
    orders = rankings_of(study)
    if not orders:
        return pd.DataFrame(columns=list(RANKING_COLUMNS), index=pd.Index([], name="image"))
    fit = _plackett_luce(study, orders).rename(
        columns={"score": "pl_score", "ci_low": "pl_ci_low", "ci_high": "pl_ci_high"}
    )
    mean_rank = rankings.mean_rank(orders)
    borda = borda_scores(orders)
    return mean_rank[["mean_rank", "n"]].join(fit[["pl_score", "pl_ci_low", "pl_ci_high"]]).join(borda[["borda"]])


def kendall_tau(order: list[str], scores: dict[str, float]) -> float:
    """Kendall's tau-a (Kendall 1938) between a ranking (best first) and scores over its items:
    (concordant - discordant pairs) / pairs; tied scores count as neither."""
    pairs = list(combinations(order, 2))  # each (better, worse) in the ranking's view
    signs = [np.sign(scores[better] - scores[worse]) for better, worse in pairs]
    return float(sum(signs) / len(pairs))


def rater_screening(study: Study) -> pd.DataFrame:
    """One row per counted rater. acr/dcr: ITU-R BT.500-13's screening (Annex 2 §2.3.1), the
    correlation with the panel's MOS (ITU-T P.808/P.910 practice) and the subject model's bias and
    inconsistency; rank-k: their rankings' mean Kendall tau with the Plackett–Luce order."""
    if study.protocol in RATING_PROTOCOLS:
        return _rating_screening(study)
    if study.protocol == Study.Protocol.RANK_K:
        return _ranking_screening(study)
    raise ValueError(f"rater_screening serves acr, dcr and rank-k studies, not {study.protocol}")


SCREENING_COLUMNS = {
    "acr": (
        "rater", "n", "bt500_p", "bt500_q", "bt500_rejected", "pcc", "pcc_rejected", "bias", "bias_std",
        "inconsistency", "inconsistency_std", "bias_outlier", "inconsistency_outlier", "flagged", "reason",
    ),
    "rank-k": ("rater", "n", "agreement", "min_agreement"),
}  # fmt: skip
# A rater's bias or inconsistency is an outlier of the panel when its modified z-score
# 0.6745 (x - median) / MAD exceeds 3.5 (Iglewicz & Hoaglin, "How to Detect and Handle Outliers",
# ASQC 1993, §2.2). BT.500 keeps a consistently harsher or milder observer (its one-sidedness
# rule); the subject model measures that offset, and this rule points out the one far from the rest.
MAD_SCALE = 0.6745
MAX_MODIFIED_Z = 3.5


def screening_columns(study: Study) -> tuple[str, ...]:
    return SCREENING_COLUMNS["rank-k" if study.protocol == Study.Protocol.RANK_K else "acr"]


def modified_z(values: pd.Series) -> pd.Series:
    """Iglewicz & Hoaglin's modified z-score of each value against the values' median; 0 when the
    values hardly spread (MAD 0)."""
    deviation = values - values.median()
    mad = deviation.abs().median()
    return MAD_SCALE * deviation / mad if mad > 0 else deviation * 0.0


def _rating_screening(study: Study) -> pd.DataFrame:
    frame = ratings_frame(study)
    if frame.empty:
        return pd.DataFrame(columns=list(screening_columns(study)))
    bt500 = category_ratings.bt500_screening(frame).set_index("rater")
    correlation = category_ratings.correlation_screening(frame).set_index("rater")
    model = _subject_model(study, frame)
    raters = (
        model.raters
        if model is not None
        else pd.DataFrame(columns=["bias", "bias_std", "inconsistency", "inconsistency_std"], dtype=float)
    )
    table = pd.DataFrame(
        {
            "n": frame.groupby("rater").size(),
            "bt500_p": bt500["p"],
            "bt500_q": bt500["q"],
            "bt500_rejected": bt500["rejected"],
            "pcc": correlation["pcc"],
            "pcc_rejected": correlation["rejected"],
        }
    ).join(raters[["bias", "bias_std", "inconsistency", "inconsistency_std"]])
    bias_z, inconsistency_z = modified_z(table["bias"]), modified_z(table["inconsistency"])
    table["bias_outlier"] = bias_z.abs() > MAX_MODIFIED_Z
    table["inconsistency_outlier"] = inconsistency_z > MAX_MODIFIED_Z  # only a noisier rater is suspect
    table["flagged"] = table[["bt500_rejected", "pcc_rejected", "bias_outlier", "inconsistency_outlier"]].any(axis=1)
    table["reason"] = [
        "; ".join(
            reason
            for reason in (
                bt500.at[rater, "reason"] if row.bt500_rejected else "",
                correlation.at[rater, "reason"] if row.pcc_rejected else "",
                f"bias {row.bias:+.2f} is an outlier of the panel (modified z {bias_z[rater]:+.1f}, |z| > "
                f"{MAX_MODIFIED_Z}, Iglewicz & Hoaglin 1993)"
                if row.bias_outlier
                else "",
                f"inconsistency {row.inconsistency:.2f} is an outlier of the panel (modified z "
                f"{inconsistency_z[rater]:+.1f} > {MAX_MODIFIED_Z}, Iglewicz & Hoaglin 1993)"
                if row.inconsistency_outlier
                else "",
            )
            if reason
        )
        for rater, row in table.iterrows()
    ]
    return table.rename_axis("rater").reset_index().sort_values("rater")[list(screening_columns(study))]


def _ranking_screening(study: Study) -> pd.DataFrame:
    rows = _ranking_rows(study)
    if not rows:
        return pd.DataFrame(columns=list(screening_columns(study)))
    fit = _plackett_luce(study, [order for _, order in rows])
    scores = fit["score"].to_dict()
    taus: dict[str, list[float]] = defaultdict(list)
    for rater, order in rows:
        taus[rater].append(kendall_tau(order, scores))
    return pd.DataFrame(
        [(rater, len(values), float(np.mean(values)), float(np.min(values))) for rater, values in sorted(taus.items())],
        columns=list(screening_columns(study)),
    )
