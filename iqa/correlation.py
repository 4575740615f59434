"""Rank correlations between two score vectors (no Django here).

SRCC and KRCC are scipy's (tie-corrected Spearman, Kendall tau-b). MOS from
pairwise judgments is identified only within a reference (PIPAL compares
distortions of one reference; Elo is zero-sum from the same start), so next
to the pooled figure we report the mean of per-group correlations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_GROUP_SIZE = 3


@dataclass(frozen=True)
class RankAgreement:
    srcc: float
    krcc: float
    srcc_per_group: float
    krcc_per_group: float
    groups: int
    n: int


def srcc(x: Sequence[float], y: Sequence[float]) -> float:
    return float(stats.spearmanr(x, y).statistic)


def krcc(x: Sequence[float], y: Sequence[float]) -> float:
    return float(stats.kendalltau(x, y).statistic)


def rank_agreement(x: Sequence[float], y: Sequence[float], groups: Sequence[Hashable]) -> RankAgreement:
    """Pooled SRCC/KRCC and their means over groups with at least
    MIN_GROUP_SIZE items (groups where either side is constant are skipped)."""
    if not (len(x) == len(y) == len(groups)):
        raise ValueError("x, y and groups must have the same length")
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        members[group].append(index)
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    per_srcc, per_krcc = [], []
    for indices in members.values():
        gx, gy = xa[indices], ya[indices]
        if len(indices) < MIN_GROUP_SIZE or np.ptp(gx) == 0 or np.ptp(gy) == 0:
            continue
        per_srcc.append(srcc(gx, gy))
        per_krcc.append(krcc(gx, gy))
    nan = float("nan")
    return RankAgreement(
        srcc=srcc(xa, ya),
        krcc=krcc(xa, ya),
        srcc_per_group=float(np.mean(per_srcc)) if per_srcc else nan,
        krcc_per_group=float(np.mean(per_krcc)) if per_krcc else nan,
        groups=len(per_srcc),
        n=len(xa),
    )
