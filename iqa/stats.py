"""How well an IQA metric agrees with human MOS (no Django here).

The figures follow VQEG practice as used in the PIPAL paper: SRCC and KRCC
measure prediction monotonicity, PLCC and RMSE prediction accuracy after a
monotone logistic mapping of the metric onto the MOS scale (VQEG, "Final
report on the validation of objective models of video quality assessment,
Phase II", 2003). Every correlation is computed on the metric signed so that
higher means better, so agreeing with people always gives a positive figure,
whichever the metric's own direction (PSNR up, LPIPS down).

Bootstrap intervals and the paired test say whether a difference between two
metrics on the same images is more than resampling noise.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from iqa.correlation import krcc, rank_agreement, srcc

MIN_IMAGES = 10  # default minimum images for a correlation cell in a table
MIN_POINTS = 3  # fewer points cannot give a meaningful rank correlation
MAXFEV = 20000
# Upper bound on resamples x images held in memory at once by the bootstrap.
_CHUNK_CELLS = 2_000_000


def too_few(n: int, minimum: int) -> bool:
    """True when a cell has too few images to report a correlation."""
    return n < minimum


# --------------------------------------------------------------------------
# Logistic mapping (VQEG FR-TV Phase II, 2003)
# --------------------------------------------------------------------------


def _logistic5(x, b1, b2, b3, b4, b5):
    # VQEG 5-parameter: b1 * (0.5 - 1 / (1 + exp(b2 (x - b3)))) + b4 x + b5.
    # 1 / (1 + exp(t)) == expit(-t); expit does not overflow for large |t|.
    return b1 * (0.5 - special.expit(-b2 * (x - b3))) + b4 * x + b5


def _logistic4(x, b1, b2, b3, b4):
    # VQEG 4-parameter: (b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2.
    return (b1 - b2) * special.expit((x - b3) / np.abs(b4)) + b2


# Analytic Jacobians: MINPACK's forward differences use a step proportional to
# the parameter, which is useless for a parameter that starts at ~1e-16 (the
# mean of z-scored MOS), and the fit then stalls short of the optimum.
def _logistic5_jac(x, b1, b2, b3, b4, b5):
    s = special.expit(b2 * (x - b3))
    slope = b1 * s * (1 - s)
    return np.column_stack([s - 0.5, slope * (x - b3), -slope * b2, x, np.ones_like(x)])


def _logistic4_jac(x, b1, b2, b3, b4):
    scale = np.abs(b4)
    u = (x - b3) / scale
    s = special.expit(u)
    slope = (b1 - b2) * s * (1 - s) / scale
    return np.column_stack([s, 1 - s, -slope, -slope * u * np.sign(b4)])


@dataclass(frozen=True)
class LogisticFit:
    """A fitted VQEG logistic (or fallback line) from raw metric values to MOS.

    params are on the raw scales of x and y: for "logistic5" (b1..b5), for
    "logistic4" (b1..b4) as in the VQEG formulas, for "linear" (slope,
    intercept).
    """

    kind: str  # "logistic5", "logistic4" or "linear" (fallback when the logistic fit fails)
    params: tuple[float, ...]

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if self.kind == "logistic5":
            return _logistic5(x, *self.params)
        if self.kind == "logistic4":
            return _logistic4(x, *self.params)
        if self.kind == "linear":
            slope, intercept = self.params
            return slope * x + intercept
        raise ValueError(f"unknown fit kind {self.kind!r}")


def _fit_normalised(kind: str, z: np.ndarray, v: np.ndarray) -> tuple[float, ...] | None:
    """curve_fit on z-scored x and y; None when the fit fails.

    Working on z-scores makes one set of starting values suit every metric
    scale (PSNR ~30, SSIM ~0.9, NIQE ~5) against Elo MOS (~1400).
    """
    direction = 1.0 if np.corrcoef(z, v)[0, 1] >= 0 else -1.0
    if kind == "logistic5":
        func, jac = _logistic5, _logistic5_jac
        # b1: MOS range, b2: unit slope on the z scale in the data's direction,
        # b3: middle of x, b4: no linear part yet, b5: MOS mean.
        p0 = [np.ptp(v), direction, np.median(z), 0.0, np.mean(v)]
    else:
        func, jac = _logistic4, _logistic4_jac
        # b1/b2: upper/lower asymptote (swapped for a falling relation), b3: middle, b4: unit scale.
        high, low = np.max(v), np.min(v)
        p0 = [high, low, np.median(z), 1.0] if direction > 0 else [low, high, np.median(z), 1.0]
    try:
        with warnings.catch_warnings():
            # OptimizeWarning (covariance not estimable) and overflow are not failures of the fit itself.
            warnings.simplefilter("ignore")
            params, _ = optimize.curve_fit(func, z, v, p0=p0, jac=jac, maxfev=MAXFEV)
    except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError):
        return None
    if not np.all(np.isfinite(params)) or not np.all(np.isfinite(func(z, *params))):
        return None
    return tuple(float(p) for p in params)


def _denormalise(kind: str, p: tuple[float, ...], mx: float, sx: float, my: float, sy: float) -> tuple[float, ...]:
    """Rewrite parameters fitted on z = (x - mx)/sx, v = (y - my)/sy for raw x and y."""
    if kind == "logistic5":
        b1, b2, b3, b4, b5 = p
        return (sy * b1, b2 / sx, mx + sx * b3, sy * b4 / sx, my + sy * (b5 - b4 * mx / sx))
    if kind == "logistic4":
        b1, b2, b3, b4 = p
        return (my + sy * b1, my + sy * b2, mx + sx * b3, sx * abs(b4))
    slope, intercept = p
    return (sy * slope / sx, my + sy * (intercept - slope * mx / sx))


def logistic_fit(x: ArrayLike, y: ArrayLike, parameters: int = 5) -> LogisticFit:
    """Fit the VQEG logistic with `parameters` (5 or 4) parameters from x to y.

    When curve_fit fails (raises, e.g. fewer points than parameters, or gives
    non-finite values) the other logistic is tried, then a least-squares line.
    A 5-parameter result that fits worse than a straight line (which it
    contains, b1 = 0) is a local minimum and counts as a failure too.
    Deterministic: fixed starting values, no randomness.
    """
    if parameters not in (4, 5):
        raise ValueError(f"parameters must be 4 or 5, not {parameters}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {x.shape} and {y.shape}")
    mx, sx = float(np.mean(x)), float(np.std(x))
    my, sy = float(np.mean(y)), float(np.std(y))
    if sx == 0:  # constant x: no relation to fit, the best constant is the mean
        return LogisticFit("linear", (0.0, my))
    sy = sy or 1.0
    z, v = (x - mx) / sx, (y - my) / sy

    slope, intercept = np.polyfit(z, v, 1)
    line_sse = float(np.sum((v - (slope * z + intercept)) ** 2))
    order = ["logistic5", "logistic4"] if parameters == 5 else ["logistic4", "logistic5"]
    for kind in order:
        params = _fit_normalised(kind, z, v)
        if params is None:
            continue
        if kind == "logistic5":
            sse = float(np.sum((v - _logistic5(z, *params)) ** 2))
            if sse > line_sse * (1 + 1e-9) + 1e-12:
                continue
        return LogisticFit(kind, _denormalise(kind, params, mx, sx, my, sy))
    return LogisticFit("linear", _denormalise("linear", (float(slope), float(intercept)), mx, sx, my, sy))


# --------------------------------------------------------------------------
# Agreement with MOS
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    n: int
    srcc: float
    krcc: float
    plcc: float
    rmse: float
    srcc_per_group: float  # mean SRCC over groups (references) with >= 3 items and non-constant x and y; nan if none
    groups: int  # how many groups went into srcc_per_group
    fit: str  # LogisticFit.kind used for plcc/rmse
    krcc_per_group: float = float("nan")  # mean KRCC over the same groups


def _checked(name: str, values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ValueError(f"{name} contains {bad} non-finite value(s) (nan or inf) out of {array.size}")
    return array


def _prepare(named: dict[str, ArrayLike]) -> list[np.ndarray]:
    """Validate vectors that pair up image by image; reject what would give a silent nan."""
    arrays = [_checked(name, values) for name, values in named.items()]
    lengths = {name: len(a) for name, a in zip(named, arrays, strict=True)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"lengths differ: {', '.join(f'{k}={v}' for k, v in lengths.items())}")
    n = len(arrays[0])
    if n < MIN_POINTS:
        raise ValueError(f"need at least {MIN_POINTS} images, got {n}")
    for name, array in zip(named, arrays, strict=True):
        if np.ptp(array) == 0:
            what = "metric" if name != "mos" else "mos"
            raise ValueError(f"{what} is constant ({name}); a correlation is undefined")
    return arrays


def _signed(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    return values if higher_is_better else -values


def agreement(
    values: ArrayLike,
    mos: ArrayLike,
    *,
    higher_is_better: bool,
    groups: Sequence[Hashable] | None = None,
    parameters: int = 5,
) -> Agreement:
    """SRCC, KRCC (scipy, tau-b), PLCC and RMSE after the VQEG logistic, and
    the mean per-reference SRCC (MOS from pairwise comparisons is only
    identified within a reference, see iqa.correlation)."""
    values, mos = _prepare({"values": values, "mos": mos})
    if groups is not None and len(groups) != len(values):
        raise ValueError(f"lengths differ: values={len(values)}, groups={len(groups)}")
    signed = _signed(values, higher_is_better)
    fit = logistic_fit(signed, mos, parameters)
    predicted = fit.predict(signed)
    plcc = float(stats.pearsonr(mos, predicted).statistic) if np.ptp(predicted) > 0 else float("nan")
    rmse = float(np.sqrt(np.mean((mos - predicted) ** 2)))
    per_group, per_group_krcc, used = float("nan"), float("nan"), 0
    if groups is not None:
        by_group = rank_agreement(signed, mos, groups)
        per_group, per_group_krcc, used = by_group.srcc_per_group, by_group.krcc_per_group, by_group.groups
    return Agreement(
        n=len(values),
        srcc=srcc(signed, mos),
        krcc=krcc(signed, mos),
        plcc=plcc,
        rmse=rmse,
        srcc_per_group=per_group,
        groups=used,
        fit=fit.kind,
        krcc_per_group=per_group_krcc,
    )


# --------------------------------------------------------------------------
# Bootstrap (Efron & Tibshirani, An Introduction to the Bootstrap, 1993)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def _resampled_indices(n: int, resamples: int, seed: int):
    """Yield blocks of bootstrap index rows (images drawn with replacement),
    a fixed stream for a given seed, in chunks that bound memory."""
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    rng = np.random.default_rng(seed)
    step = max(1, _CHUNK_CELLS // n)
    for start in range(0, resamples, step):
        yield rng.integers(0, n, size=(min(step, resamples - start), n))


def _rowwise_srcc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman per row: Pearson of average ranks, as scipy.stats.spearmanr
    does (ties included); nan for a row where either side is constant."""
    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denominator = np.sqrt(np.sum(rx * rx, axis=1) * np.sum(ry * ry, axis=1))
    numerator = np.sum(rx * ry, axis=1)
    out = np.full(len(x), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return np.clip(out, -1.0, 1.0)


def bootstrap_srcc(
    values: ArrayLike,
    mos: ArrayLike,
    *,
    higher_is_better: bool,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile bootstrap interval of the SRCC of the signed metric with MOS.

    Images are resampled with replacement; resamples where a side comes out
    constant have no SRCC and are dropped. nan bounds if none is left.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    values, mos = _prepare({"values": values, "mos": mos})
    signed = _signed(values, higher_is_better)
    draws = np.concatenate(
        [_rowwise_srcc(signed[rows], mos[rows]) for rows in _resampled_indices(len(mos), resamples, seed)]
    )
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Interval(float("nan"), float("nan"))
    tail = (1 - level) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return Interval(float(low), float(high))


def paired_srcc_test(
    values_a: ArrayLike,
    values_b: ArrayLike,
    mos: ArrayLike,
    *,
    a_higher_is_better: bool,
    b_higher_is_better: bool,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Paired bootstrap test of SRCC(a, MOS) - SRCC(b, MOS) on the same images.

    The two correlations share the images and the MOS, so they are dependent
    and cannot be compared as independent estimates; resampling the images
    once for both metrics keeps that dependence (paired bootstrap, Efron &
    Tibshirani 1993). Returns the difference on the full data and the
    two-sided p-value min(1, 2 * min(P*(d <= 0), P*(d >= 0))) over the
    resampled differences d (resamples where either SRCC is undefined are
    dropped; nan p if none is left).
    """
    values_a, values_b, mos = _prepare({"values_a": values_a, "values_b": values_b, "mos": mos})
    signed_a = _signed(values_a, a_higher_is_better)
    signed_b = _signed(values_b, b_higher_is_better)
    difference = srcc(signed_a, mos) - srcc(signed_b, mos)
    blocks = []
    for rows in _resampled_indices(len(mos), resamples, seed):
        resampled_mos = mos[rows]
        blocks.append(_rowwise_srcc(signed_a[rows], resampled_mos) - _rowwise_srcc(signed_b[rows], resampled_mos))
    draws = np.concatenate(blocks)
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return float(difference), float("nan")
    share = min(np.mean(draws <= 0), np.mean(draws >= 0))
    return float(difference), float(min(1.0, 2 * share))


# --------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------


def rank_desc(values: Sequence[float], *, higher_is_better: bool) -> list[int]:
    """1-based competition ranks ("1224": ties share the best rank, the next
    rank skips), rank 1 for the best value given the metric's direction."""
    array = _checked("values", values)
    key = -array if higher_is_better else array
    return [int(r) for r in stats.rankdata(key, method="min")]
