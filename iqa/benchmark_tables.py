"""Metric-vs-MOS tables in PIPAL's layouts (no Django here).

Input is one table with a row per distorted image: ``image``, ``reference``,
``type_code``, ``type_name``, ``category``, ``subtype``, ``mos`` and one
column per metric. Output: the whole-study agreement of each metric (SRCC
with a bootstrap interval, KRCC, PLCC and RMSE after the VQEG logistic fit,
the per-reference SRCC), the Table 3 grid (PIPAL, Section 4.1: rows metrics,
columns distortion groups), the Table 4 list of SR methods (mean of each
metric with its rank beside the mean MOS and its rank) and paired tests
between metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from iqa import stats
from iqa.metrics import MetricInfo
from sr_models.distortions.subtypes import CATEGORY_SUBTYPES

SR_CATEGORY = "super_resolution"
NONE_IN_STUDY = "none in this study"

# PIPAL Table 3's columns (Sec. 4.1: traditional distortions, denoising, all SR outputs, traditional SR,
# PSNR-oriented SR, GAN-based SR), widened to every sub-type of Table 2 and the mixture category the
# table leaves out. Each is (label, category, sub-type or None for the whole category). A category's
# column shows when the study has images in it; its sub-types' columns show with it, an empty one as
# "none in this study" (a study without example-based SR has no "Traditional SR" number to report).
_CATEGORY_COLUMNS = (
    ("Traditional", "traditional"),
    ("Denoising", "denoising"),
    ("Mixture", "mixture"),
    ("SR full", SR_CATEGORY),
)
GROUPS = tuple(
    column
    for label, category in _CATEGORY_COLUMNS
    for column in (
        (label, category, None),
        *((sub_label, category, subtype) for subtype, sub_label in CATEGORY_SUBTYPES.get(category, ())),
    )
)


# PIPAL Table 3's IQA methods (Sec. 4.1) and what the platform computes for each: (label, the
# platform's metric or None, note). pyiqa 0.1.16 has no NQM, UQI, IFC, VSNR, RFSIM, GSM, SR-SIM,
# SFF or SCQI. PIPAL ran the authors' own implementations; pyiqa's are ports, calibrated on its images.
PIPAL_TABLE3 = (
    ("PSNR", "psnr", "RGB (pyiqa default)"),
    ("NQM", None, ""),
    ("UQI", None, ""),
    ("SSIM", "ssim", "pyiqa: Y channel of YIQ"),
    ("MS-SSIM", "ms_ssim", ""),
    ("IFC", None, ""),
    ("VIF", "vif", ""),
    ("VSNR-FR", None, ""),
    ("RFSIM", None, ""),
    ("GSM", None, ""),
    ("SRSIM", None, ""),
    ("FSIM", "fsim_gray", "FSIM on luminance (pyiqa fsim, chromatic=False)"),
    ("FSIM_c", "fsim", "pyiqa's fsim is the chromatic FSIM_c"),
    ("SFF", None, ""),
    ("VSI", "vsi", ""),
    ("SCQI", None, ""),
    ("LPIPS-Alex", "lpips", "needs torchvision AlexNet + LPIPS lin weights"),
    ("LPIPS-VGG", "lpips-vgg", "needs torchvision VGG16 + LPIPS lin weights"),
    ("PieAPP", "pieapp", "needs its weight file"),
    ("WaDIQaM", "wadiqam_fr", "needs its weight file"),
    ("DISTS", "dists", "needs its weight file"),
    ("NIQE", "niqe", "fetch_weights niqe builds its parameters"),
    ("Ma", "nrqm", "needs its weight file"),
    ("PI", "pi", "= ((10 - Ma) + NIQE) / 2"),
)


def table3_metrics() -> list[str]:
    """The platform names of PIPAL Table 3's methods it can compute, in the table's order."""
    return [name for _, name, _ in PIPAL_TABLE3 if name]


@dataclass(frozen=True)
class Cell:
    """One correlation cell; ``agreement`` is None when the group has too few images."""

    group: str
    n: int
    agreement: stats.Agreement | None
    interval: stats.Interval | None = None

    def text(self, field_name: str = "srcc") -> str:
        if self.agreement is None:
            return NONE_IN_STUDY if self.n == 0 else f"n={self.n} (too few)"
        value = getattr(self.agreement, field_name)
        return "nan" if math.isnan(value) else f"{value:.4f}"


@dataclass(frozen=True)
class SignificanceTest:
    metric_a: str
    metric_b: str
    difference: float
    p_value: float


@dataclass
class BenchmarkResult:
    metrics: list[MetricInfo]
    images: int
    references: int
    overall: dict[str, Cell]
    groups: list[str]
    table3: dict[str, dict[str, Cell]]  # metric -> group label -> cell
    sr_methods: pd.DataFrame  # Table 4: one row per SR method
    significance: list[SignificanceTest] = field(default_factory=list)
    min_images: int = stats.MIN_IMAGES
    types: list[str] = field(default_factory=list)  # "<code> <name>" of every distortion type
    by_type: dict[str, dict[str, Cell]] = field(default_factory=dict)  # metric -> type label -> cell


def _cell(
    frame: pd.DataFrame, info: MetricInfo, group: str, *, min_images: int, resamples: int, seed: int, logistic: int
) -> Cell:
    n = len(frame)
    if stats.too_few(n, min_images) or frame[info.name].nunique() < 2 or frame["mos"].nunique() < 2:
        return Cell(group, n, None)
    values, mos = frame[info.name].to_numpy(float), frame["mos"].to_numpy(float)
    agreement = stats.agreement(values, mos, higher_is_better=info.higher_is_better, groups=frame["reference"].tolist())
    interval = stats.bootstrap_srcc(values, mos, higher_is_better=info.higher_is_better, resamples=resamples, seed=seed)
    return Cell(group, n, agreement, interval)


def group_labels(frame: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """Table 3's columns for the study's categories, then one column per remaining subtype."""
    columns = []
    for label, category, subtype in GROUPS:
        in_category = frame["category"] == category
        if in_category.any():
            columns.append((label, in_category if subtype is None else in_category & (frame["subtype"] == subtype)))
    covered = {subtype for _, _, subtype in GROUPS if subtype}
    for subtype in sorted(set(frame["subtype"]) - covered - {""}):
        columns.append((f"subtype: {subtype}", frame["subtype"] == subtype))
    return columns


def sr_method_table(frame: pd.DataFrame, metrics: list[MetricInfo]) -> pd.DataFrame:
    """PIPAL Table 4: each SR method (distortion type of the SR category), the mean of
    each metric with its rank (1 = best for that metric's direction), the mean MOS and its rank."""
    sr = frame[frame["category"] == SR_CATEGORY]
    if sr.empty:
        return pd.DataFrame()
    grouped = sr.groupby(["type_code", "type_name"], sort=True)
    table = grouped.agg(images=("image", "count"), mos=("mos", "mean")).reset_index()
    table["mos_rank"] = stats.rank_desc(table["mos"].tolist(), higher_is_better=True)
    for info in metrics:
        table[info.name] = grouped[info.name].mean().to_numpy()
        table[f"{info.name}_rank"] = stats.rank_desc(table[info.name].tolist(), higher_is_better=info.higher_is_better)
    return table.sort_values(["mos_rank", "type_code"]).reset_index(drop=True)


def run(
    frame: pd.DataFrame,
    metrics: list[MetricInfo],
    *,
    min_images: int = stats.MIN_IMAGES,
    resamples: int = 1000,
    seed: int = 0,
    logistic: int = 5,
    progress=None,
) -> BenchmarkResult:
    """All tables for the metrics (columns of ``frame``) over the rows that have every metric."""
    missing = [info.name for info in metrics if info.name not in frame.columns]
    if missing:
        raise ValueError(f"no scores for {', '.join(missing)}")
    frame = frame.dropna(subset=[info.name for info in metrics]).reset_index(drop=True)
    if len(frame) < 3:
        raise ValueError(f"only {len(frame)} image(s) have a MOS and every metric's score: nothing to correlate")
    columns = group_labels(frame)
    type_masks = [
        (f"{code} {name}".strip(), frame["type_code"] == code)
        for code, name in frame[["type_code", "type_name"]].drop_duplicates().sort_values("type_code").to_numpy()
    ]
    overall, table3, by_type = {}, {}, {}
    for info in metrics:
        overall[info.name] = _cell(
            frame, info, "All", min_images=min_images, resamples=resamples, seed=seed, logistic=logistic
        )
        table3[info.name] = {
            label: _cell(
                frame[mask], info, label, min_images=min_images, resamples=resamples, seed=seed, logistic=logistic
            )
            for label, mask in columns
        }
        by_type[info.name] = {
            label: _cell(frame[mask], info, label, min_images=min_images, resamples=resamples, seed=seed,
                         logistic=logistic)
            for label, mask in type_masks
        }
        if progress:
            progress(info.name)
    significance = []
    mos = frame["mos"].to_numpy(float)
    for i, first in enumerate(metrics):
        for second in metrics[i + 1 :]:
            if overall[first.name].agreement is None or overall[second.name].agreement is None:
                continue
            difference, p_value = stats.paired_srcc_test(
                frame[first.name].to_numpy(float),
                frame[second.name].to_numpy(float),
                mos,
                a_higher_is_better=first.higher_is_better,
                b_higher_is_better=second.higher_is_better,
                resamples=resamples,
                seed=seed,
            )
            significance.append(SignificanceTest(first.name, second.name, difference, p_value))
    return BenchmarkResult(
        metrics=metrics,
        images=len(frame),
        references=int(frame["reference"].nunique()),
        overall=overall,
        groups=[label for label, _ in columns],
        table3=table3,
        sr_methods=sr_method_table(frame, metrics),
        significance=significance,
        min_images=min_images,
        types=[label for label, _ in type_masks],
        by_type=by_type,
    )
