"""Analysis of rank-k data: Plackett–Luce scores through ``choix``, mean ranks as RankSRGAN's user
study reports them, and rank breaking into pairs for the Bradley–Terry fit (no Django here).

A ranking is a list of item keys, best first: the k versions of one source a rater put in order.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import choix
import numpy as np
import pandas as pd

DEFAULT_ROUNDS = 200
DEFAULT_LEVEL = 0.95
# choix's regularisation: every pair of items starts the Luce-spectral-ranking Markov chain with this
# transition rate (choix docs, "Regularization"), a fraction of one comparison (each ranking adds
# rates of about 1/k per pair it orders). Without it the maximum-likelihood strength of an item never
# beaten (or never winning) is infinite and the iterations do not converge; with it such an item
# gets a large but finite score, and scores of well-observed items move by a negligible amount.
ALPHA = 0.01


def _item_index(rankings: Sequence[Sequence[Hashable]], items: Sequence[Hashable] | None) -> dict[Hashable, int]:
    seen = list(dict.fromkeys(item for ranking in rankings for item in ranking))
    if items is None:
        return {item: i for i, item in enumerate(seen)}
    index = {item: i for i, item in enumerate(dict.fromkeys(items))}
    unknown = [item for item in seen if item not in index]
    if unknown:
        raise ValueError(f"rankings name items outside `items`: {unknown[:10]}")
    absent = [item for item in index if item not in set(seen)]
    if absent:
        raise ValueError(f"items never ranked, so they have no score: {absent[:10]}")
    return index


def _checked(rankings: Iterable[Sequence[Hashable]]) -> list[list[Hashable]]:
    checked = [list(ranking) for ranking in rankings]
    for ranking in checked:
        if len(ranking) < 2:
            raise ValueError(f"a ranking orders at least two items, got {ranking}")
        if len(set(ranking)) != len(ranking):
            raise ValueError(f"a ranking names each item once, got {ranking}")
    if not checked:
        raise ValueError("no rankings")
    return checked


def plackett_luce(
    rankings: Iterable[Sequence[Hashable]],
    items: Sequence[Hashable] | None = None,
    rounds: int = DEFAULT_ROUNDS,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """Per item: ``score`` (the Plackett–Luce log-strength, ``choix.ilsr_rankings``; scores average
    zero, and exp(s_i − s_j) is the odds that i is put before j), ``ci_low, ci_high`` (percentile
    bootstrap over rankings, ``rounds`` resamples, seeded) and ``n`` (the rankings it appears in).

    ``items`` fixes the order of the rows; an item of ``items`` that no ranking names is refused
    (ValueError naming it), as is a ranked item missing from ``items``. By default the items are
    those ranked, in order of first appearance.
    """
    if rounds < 1:
        raise ValueError(f"bootstrap rounds must be at least 1, got {rounds}")
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")
    rankings = _checked(rankings)
    index = _item_index(rankings, items)
    data = [[index[item] for item in ranking] for ranking in rankings]
    n_items = len(index)
    scores = choix.ilsr_rankings(n_items, data, alpha=ALPHA)
    rng = np.random.default_rng(seed)
    replicates = np.empty((rounds, n_items))
    for b in range(rounds):
        resample = [data[i] for i in rng.integers(0, len(data), len(data))]
        replicates[b] = choix.ilsr_rankings(n_items, resample, alpha=ALPHA, initial_params=scores)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail], axis=0)
    appearances = np.bincount([i for ranking in data for i in ranking], minlength=n_items)
    return pd.DataFrame(
        {"score": scores, "ci_low": low, "ci_high": high, "n": appearances},
        index=pd.Index(list(index), name="item"),
    )


def mean_rank(rankings: Iterable[Sequence[Hashable]]) -> pd.DataFrame:
    """Per item: ``mean_rank`` (1 = best) over the rankings it appears in, ``n`` those rankings,
    and ``rank_1 … rank_K``, the share of them that put it at each position (K the longest
    ranking): RankSRGAN's user study (its §5.5 and Fig. 19) reports the ranks' distribution per
    method. Items in order of first appearance."""
    rankings = _checked(rankings)
    positions = pd.DataFrame(
        [(item, position) for ranking in rankings for position, item in enumerate(ranking, start=1)],
        columns=["item", "position"],
    )
    by_item = positions.groupby("item", sort=False)["position"]
    table = pd.DataFrame({"mean_rank": by_item.mean(), "n": by_item.count()})
    shares = pd.crosstab(positions["item"], positions["position"], normalize="index")
    shares = shares.reindex(columns=range(1, positions["position"].max() + 1), fill_value=0.0)
    shares.columns = [f"rank_{position}" for position in shares.columns]
    return table.join(shares).rename_axis("item")


def pairwise_from_rankings(rankings: Iterable[Sequence[Hashable]]) -> list[tuple[Hashable, Hashable]]:
    """Full rank breaking: every item beats every item ranked below it, (winner, loser) pairs.

    Under Plackett–Luce the Bradley–Terry fit of fully broken rankings is consistent (Azari
    Soufiani, Parkes & Xia, "Computing parametric ranking models via rank-breaking", ICML 2014), but
    the pairs of one ranking are not independent: confidence intervals from a pairwise bootstrap
    are too narrow, so resample rankings, not pairs.
    """
    return [
        (winner, loser)
        for ranking in _checked(rankings)
        for i, winner in enumerate(ranking)
        for loser in ranking[i + 1 :]
    ]
