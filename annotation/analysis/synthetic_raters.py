"""Synthetic raters with a known truth, for simulation tests and ``simulate_study`` (no Django here).

Category scores follow the generative model of Li & Bampis, "Recover subjective quality scores
from noisy measurements" (DCC 2017), the model Netflix's ``sureal`` fits: rater s scores image e as
X_es = x_e + B_s with B_s ~ N(b_s, v_s²), the rater's bias b_s and inconsistency v_s; the score is
then clipped to the scale and snapped to its nearest category, as a rater clicking a category does.
Rankings follow Plackett–Luce, drawn by the Gumbel-max construction.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SyntheticRater:
    """A rater of the Li & Bampis model: scores are quality + N(bias, inconsistency²)."""

    name: str
    bias: float
    inconsistency: float


def _snap(values: np.ndarray, scale_values: Sequence[float]) -> np.ndarray:
    """Each value to the nearest category of the scale (the scale's ends clip it)."""
    categories = np.sort(np.asarray(scale_values, dtype=float))
    return categories[np.abs(values[:, None] - categories[None, :]).argmin(axis=1)]


def category_scores(
    true_quality: Mapping[Hashable, float],
    raters: Sequence[SyntheticRater],
    scale_values: Sequence[float],
    rng: np.random.Generator,
    per_rater_images: Mapping[str, Sequence[Hashable]] | None = None,
    *,
    continuous: bool = False,
) -> pd.DataFrame:
    """One row per rater and image rated: columns ``rater, image, score``.

    ``per_rater_images`` names the images each rater sees (an incomplete design); by default every
    rater scores every image. ``continuous`` keeps the clipped score instead of snapping it to a
    category (the slider variant of a scale).
    """
    low, high = min(scale_values), max(scale_values)
    rows = []
    for rater in raters:
        images = list(true_quality) if per_rater_images is None else list(per_rater_images[rater.name])
        quality = np.array([true_quality[image] for image in images], dtype=float)
        clipped = np.clip(quality + rater.bias + rater.inconsistency * rng.standard_normal(len(images)), low, high)
        scores = clipped if continuous else _snap(clipped, scale_values)
        rows.extend(zip([rater.name] * len(images), images, scores.tolist(), strict=True))
    return pd.DataFrame(rows, columns=["rater", "image", "score"])


def random_rater(
    name: str, images: Sequence[Hashable], scale_values: Sequence[float], rng: np.random.Generator
) -> pd.DataFrame:
    """A spammer: every score drawn uniformly from the scale's categories, whatever the image."""
    scores = rng.choice(np.asarray(scale_values), size=len(images))
    return pd.DataFrame({"rater": name, "image": list(images), "score": scores.tolist()})


def ranking(true_scores: Mapping[Hashable, float], rng: np.random.Generator, noise: float = 1.0) -> list[Hashable]:
    """The items best first, drawn from Plackett–Luce with log-strengths ``score / noise``.

    Sorting log-strengths plus independent standard Gumbel noise yields a Plackett–Luce ranking
    (Yellott 1977, J. Math. Psych. 15: "The relationship between Luce's choice axiom, Thurstone's
    theory of comparative judgment, and the double exponential distribution"); a larger ``noise``
    makes the ranking more random.
    """
    items = list(true_scores)
    utility = np.array([true_scores[item] for item in items], dtype=float) / noise + rng.gumbel(size=len(items))
    return [items[i] for i in np.argsort(-utility, kind="stable")]
