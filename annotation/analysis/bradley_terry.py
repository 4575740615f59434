"""Bradley–Terry maximum-likelihood scores on the Elo scale, with bootstrap
confidence intervals and a ranking-stability estimate (no Django here).

The model is PIPAL Eq. 1 read as a likelihood: P(i beats j) = 1 / (1 +
10 ** ((s_j - s_i) / M)), the Bradley–Terry model with scores on the Elo
scale. Where Elo updates ratings online (and its MOS depends on the order of
the votes), the fit takes the whole judgment log at once, as LMSYS's Chatbot
Arena does (Chiang et al. 2024, "Chatbot Arena", Sec. 5).

The scores are the maximum a posteriori fit under a weak Gaussian prior
N(center, PRIOR_SD²) on every score. Without it the likelihood has no
maximum for an image that won (or lost) all its comparisons, and the scores
of images never compared with each other have no common origin. Because the
likelihood depends only on differences, the prior makes every connected
group of images (a reference, when pairs never cross references) average
exactly ``center``, as Elo's zero-sum updates do.

The fit is Newton's method on the log posterior; its Hessian is a weighted
graph Laplacian of the compared pairs plus the prior's diagonal, solved as a
sparse system, so a PIPAL-scale log (1.13M judgments, 29k images) fits in
seconds (bench/bradley_terry.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

DEFAULT_M = 400.0  # PIPAL Eq. 1
DEFAULT_CENTER = 1400.0  # PIPAL's starting rating: each reference's mean stays here
# The prior's SD in Elo points. Its precision 1/400² equals the Fisher information of
# about 0.75 comparisons between close images (c² / 4 with c = ln 10 / 400), so with
# PIPAL's ~78 comparisons per image it moves a score by about 1% of its distance from
# the mean; it matters only for images that won or lost nearly everything.
PRIOR_SD = 400.0
DEFAULT_ROUNDS = 100  # the minimum; LMSYS's arena notebook also uses 100
DEFAULT_LEVEL = 0.95
# Newton stops when no score moves by more than this many Elo points (CIs are read to ~0.1).
TOLERANCE = 1e-4
MAX_ITERATIONS = 100
# Pairs of images per group used for the Kendall distance; larger groups are sampled.
KENDALL_PAIRS = 20_000


def logistic_scale(m: float) -> float:
    """c in P(i>j) = σ(c (s_i − s_j)): Eq. 1 in natural-log units."""
    return math.log(10.0) / m


@dataclass(frozen=True)
class PairTable:
    """Judgments aggregated per unordered pair (first < second)."""

    n_items: int
    first: np.ndarray  # (P,) item index
    second: np.ndarray  # (P,) item index
    judgment_pair: np.ndarray  # (J,) the pair of each judgment
    judgment_first_score: np.ndarray  # (J,) the first item's share of the win: 1, 0, or 0.5 for a tie

    @classmethod
    def from_judgments(
        cls, winners: np.ndarray, losers: np.ndarray, n_items: int, ties: np.ndarray | None = None
    ) -> PairTable:
        """``ties`` (bool, one per judgment) marks ties: half a win for each image (the order
        of winner and loser then does not matter)."""
        winners = np.asarray(winners, dtype=np.int64)
        losers = np.asarray(losers, dtype=np.int64)
        if winners.shape != losers.shape or winners.ndim != 1:
            raise ValueError("winners and losers must be 1-d arrays of the same length")
        if winners.size and (min(winners.min(), losers.min()) < 0 or max(winners.max(), losers.max()) >= n_items):
            raise ValueError(f"item indices must lie in [0, {n_items})")
        if np.any(winners == losers):
            raise ValueError("a judgment compares an image with itself")
        low, high = np.minimum(winners, losers), np.maximum(winners, losers)
        keys, judgment_pair = np.unique(low * n_items + high, return_inverse=True)
        return cls(
            n_items=n_items,
            first=keys // n_items,
            second=keys % n_items,
            judgment_pair=judgment_pair.reshape(-1),
            judgment_first_score=np.where(
                np.zeros(winners.shape, bool) if ties is None else np.asarray(ties, bool), 0.5, winners == low
            ),
        )

    @property
    def judgments(self) -> int:
        return int(self.judgment_pair.size)

    def wins(self, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Wins of each pair's first and second item (a tie half a win each), each judgment counted
        ``weights`` times."""
        pairs = self.first.size
        w = np.ones(self.judgments) if weights is None else weights
        first = np.bincount(self.judgment_pair, weights=w * self.judgment_first_score, minlength=pairs)
        total = np.bincount(self.judgment_pair, weights=w, minlength=pairs)
        return first, total - first


def fit(
    table: PairTable,
    *,
    m: float = DEFAULT_M,
    center: float = DEFAULT_CENTER,
    prior_sd: float = PRIOR_SD,
    weights: np.ndarray | None = None,
    start: np.ndarray | None = None,
) -> np.ndarray:
    """MAP Bradley–Terry scores on the Elo scale, one per item."""
    wins_first, wins_second = table.wins(weights)
    return _newton(table, wins_first, wins_second, m=m, center=center, prior_sd=prior_sd, start=start)


def _log_posterior(scores, table, wins_first, wins_second, c, center, prior_sd) -> float:
    z = c * (scores[table.first] - scores[table.second])
    # log σ(z) = −log(1 + e^−z), computed stably.
    loglik = -(wins_first @ np.logaddexp(0.0, -z)) - (wins_second @ np.logaddexp(0.0, z))
    return float(loglik - 0.5 * np.sum((scores - center) ** 2) / prior_sd**2)


def _newton(table, wins_first, wins_second, *, m, center, prior_sd, start) -> np.ndarray:
    c = logistic_scale(m)
    n = table.n_items
    precision = 1.0 / prior_sd**2
    scores = np.full(n, center, dtype=float) if start is None else np.array(start, dtype=float)
    total = wins_first + wins_second
    objective = _log_posterior(scores, table, wins_first, wins_second, c, center, prior_sd)
    for _ in range(MAX_ITERATIONS):
        p = 1.0 / (1.0 + np.exp(-c * (scores[table.first] - scores[table.second])))
        flow = c * (wins_first - total * p)  # ∂ log L / ∂ s_first per pair
        # (bincount of an empty log returns integers: the float cast keeps the prior's gradient)
        gradient = (np.bincount(table.first, flow, n) - np.bincount(table.second, flow, n)).astype(float)
        gradient -= precision * (scores - center)
        # The negative Hessian: a Laplacian weighted by each pair's Fisher information, plus the prior.
        information = c * c * total * p * (1.0 - p)
        diagonal = np.bincount(table.first, information, n) + np.bincount(table.second, information, n) + precision
        hessian = sparse.coo_matrix(
            (
                np.concatenate([diagonal, -information, -information]),
                (
                    np.concatenate([np.arange(n), table.first, table.second]),
                    np.concatenate([np.arange(n), table.second, table.first]),
                ),
            ),
            shape=(n, n),
        ).tocsc()
        step = np.atleast_1d(spsolve(hessian, gradient))
        # Newton on a concave objective; halve the step in the rare case it overshoots.
        for _ in range(30):
            candidate = scores + step
            value = _log_posterior(candidate, table, wins_first, wins_second, c, center, prior_sd)
            if value >= objective - 1e-9 * abs(objective):
                break
            step = step / 2
        scores, objective = candidate, value
        if np.max(np.abs(step)) < TOLERANCE:
            break
    return scores


@dataclass(frozen=True)
class BootstrapFit:
    scores: np.ndarray  # (n,) the fit on all judgments
    replicates: np.ndarray  # (rounds, n) fits on resampled judgments
    level: float

    @property
    def interval(self) -> tuple[np.ndarray, np.ndarray]:
        """Percentile bootstrap interval per item."""
        tail = (1.0 - self.level) / 2 * 100
        low, high = np.percentile(self.replicates, [tail, 100 - tail], axis=0)
        return low, high


def bootstrap(
    table: PairTable,
    *,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    m: float = DEFAULT_M,
    center: float = DEFAULT_CENTER,
    prior_sd: float = PRIOR_SD,
    progress=None,
) -> BootstrapFit:
    """The fit plus ``rounds`` refits on judgments resampled with replacement
    (seeded), each started from the full fit so it takes a few Newton steps."""
    if rounds < 1:
        raise ValueError(f"bootstrap rounds must be at least 1, got {rounds}")
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    options = {"m": m, "center": center, "prior_sd": prior_sd}
    scores = fit(table, **options)
    rng = np.random.default_rng(seed)
    replicates = np.empty((rounds, table.n_items))
    for b in range(rounds):
        weights = np.bincount(rng.integers(0, table.judgments, table.judgments), minlength=table.judgments)
        replicates[b] = fit(table, weights=weights.astype(float), start=scores, **options)
        if progress:
            progress(1)
    return BootstrapFit(scores=scores, replicates=replicates, level=level)


def kendall_distance(replicates: np.ndarray, groups: Sequence[int] | np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Per group: the expected normalised Kendall distance between two bootstrap
    replicates' rankings (the share of the group's image pairs that two
    replicates order differently), estimated over consecutive replicates.

    0 means every replicate ranks the group alike; 0.5 means the order is noise.
    Groups with fewer than two items get NaN.
    """
    replicates = np.asarray(replicates)
    groups = np.asarray(groups)
    rounds = replicates.shape[0]
    labels, inverse = np.unique(groups, return_inverse=True)
    rng = np.random.default_rng(seed)
    distances = np.full(labels.size, np.nan)
    if rounds < 2:
        return distances
    for g in range(labels.size):
        members = np.flatnonzero(inverse == g)
        k = members.size
        if k < 2:
            continue
        if k * (k - 1) // 2 <= KENDALL_PAIRS:
            i, j = np.triu_indices(k, 1)
        else:
            i = rng.integers(0, k, KENDALL_PAIRS)
            j = (i + rng.integers(1, k, KENDALL_PAIRS)) % k
        values = replicates[:, members]
        signs = np.sign(values[:, i] - values[:, j])
        distances[g] = float(np.mean(signs != np.roll(signs, 1, axis=0)))
    return distances


@dataclass(frozen=True)
class Convergence:
    """Whether a fit is precise enough: every image's CI no wider than
    ``target_ci_width`` and the mean Kendall distance at most ``target_kendall``."""

    widest_ci: float
    median_ci: float
    images_too_wide: int
    kendall: float
    target_ci_width: float
    target_kendall: float

    @property
    def done(self) -> bool:
        return self.images_too_wide == 0 and not (self.kendall > self.target_kendall)


def convergence(
    width: np.ndarray, kendall: np.ndarray, *, target_ci_width: float, target_kendall: float
) -> Convergence:
    """``width``: each image's CI width, infinite for an image not measured yet."""
    width = np.asarray(width, dtype=float)
    measured = width[np.isfinite(width)]
    finite = kendall[~np.isnan(kendall)] if np.size(kendall) else np.array([])
    return Convergence(
        widest_ci=float(width.max()) if width.size else 0.0,
        median_ci=float(np.median(measured)) if measured.size else 0.0,
        images_too_wide=int(np.sum(width > target_ci_width)),
        kendall=float(finite.mean()) if finite.size else 0.0,
        target_ci_width=target_ci_width,
        target_kendall=target_kendall,
    )


def information(
    table: PairTable, scores: np.ndarray, *, m: float = DEFAULT_M, prior_sd: float = PRIOR_SD
) -> np.ndarray:
    """The negative Hessian of the log posterior at ``scores`` as a dense matrix
    (small groups only): its inverse is the Laplace approximation of the
    scores' posterior covariance."""
    c = logistic_scale(m)
    n = table.n_items
    total = sum(table.wins())
    p = 1.0 / (1.0 + np.exp(-c * (scores[table.first] - scores[table.second])))
    weight = c * c * total * p * (1.0 - p)
    matrix = np.diag(np.full(n, 1.0 / prior_sd**2))
    np.add.at(matrix, (table.first, table.first), weight)
    np.add.at(matrix, (table.second, table.second), weight)
    np.add.at(matrix, (table.first, table.second), -weight)
    np.add.at(matrix, (table.second, table.first), -weight)
    return matrix
