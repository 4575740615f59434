"""Rating scales as data (no Django here): a study's scale is a list of labelled categories, in
order from worst to best, each with the keyboard key that picks it; optionally a continuous
slider between the two ends, whose anchors are the end categories' labels.

The built-in scales, with their sources:

* ``acr-5``: ITU-T P.800 Annex B / P.910 §6.1 absolute category rating, "Excellent" 5 … "Bad" 1
  (KonIQ-10k and SPAQ were collected on it);
* ``dcr-5``: ITU-T P.800 Annex D / P.910 §6.2 degradation category rating, "Degradation is
  imperceptible" 5 … "very annoying" 1 (ITU-R BT.500's impairment scale; KADID-10k);
* ``real-fake-4``: 4PP-EUSR's subjective test (Choi et al. 2019, §4): 1 "definitely fake",
  2 "probably fake", 3 "probably real", 4 "definitely real".

A study stores its scale as JSON (``Scale.to_json``), so an owner can word one of their own;
``scale_from_json`` checks it and says what is wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KEYS = tuple("123456789")
MAX_CATEGORIES = len(KEYS)


class ScaleError(ValueError):
    """A scale that cannot be used, with the reason."""


@dataclass(frozen=True)
class Category:
    value: int
    label: str
    key: str  # the keyboard key that picks it: 1-9


@dataclass(frozen=True)
class Scale:
    name: str
    question: str
    categories: tuple[Category, ...]  # worst first
    continuous: bool = False  # a slider from the lowest to the highest value, anchored by the end labels

    @property
    def low(self) -> float:
        return float(self.categories[0].value)

    @property
    def high(self) -> float:
        return float(self.categories[-1].value)

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(category.value for category in self.categories)

    def accepts(self, score: float) -> bool:
        """A category's value, or with a slider any finite value between the ends."""
        if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
            return False
        if self.continuous:
            return self.low <= score <= self.high
        return float(score).is_integer() and int(score) in self.values

    def describe(self) -> str:
        if self.continuous:
            low, high = self.categories[0], self.categories[-1]
            return f"a value from {self.low:g} ({low.label}) to {self.high:g} ({high.label})"
        return "one of " + ", ".join(f"{category.value} ({category.label})" for category in self.categories)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "question": self.question,
            "continuous": self.continuous,
            "categories": [
                {"value": category.value, "label": category.label, "key": category.key} for category in self.categories
            ],
        }


def _scale(name: str, question: str, labels: list[str], first_value: int = 1) -> Scale:
    categories = tuple(
        Category(value=first_value + index, label=label, key=KEYS[index]) for index, label in enumerate(labels)
    )
    return Scale(name=name, question=question, categories=categories)


BUILT_IN = {
    scale.name: scale
    for scale in (
        _scale(
            "acr-5",
            "How would you rate the quality of this image?",
            ["Bad", "Poor", "Fair", "Good", "Excellent"],
        ),
        _scale(
            "dcr-5",
            "How annoying is the degradation of the image on the right, compared with the reference on the left?",
            [
                "Degradation is very annoying",
                "Degradation is annoying",
                "Degradation is slightly annoying",
                "Degradation is perceptible but not annoying",
                "Degradation is imperceptible",
            ],
        ),
        _scale(
            "real-fake-4",
            "Does this image look real or fake?",
            ["Definitely fake", "Probably fake", "Probably real", "Definitely real"],
        ),
    )
}
# The scale a new study of each rating protocol gets unless its owner picks another.
DEFAULT_SCALE = {"acr": "acr-5", "dcr": "dcr-5"}


def built_in(name: str, *, continuous: bool = False) -> Scale:
    try:
        scale = BUILT_IN[name]
    except KeyError:
        raise ScaleError(f"unknown scale {name!r}; built-in scales: {', '.join(sorted(BUILT_IN))}") from None
    return Scale(name=scale.name, question=scale.question, categories=scale.categories, continuous=continuous)


def scale_from_json(data: object) -> Scale:
    """The scale a study stores, checked: 2-9 categories with distinct integer values in rising order,
    non-blank labels and distinct keys 1-9."""
    if not isinstance(data, dict):
        raise ScaleError("a scale is an object with name, question, continuous and categories")
    name, question = data.get("name", "custom"), data.get("question", "")
    continuous = data.get("continuous", False)
    items = data.get("categories")
    if not isinstance(name, str) or not name.strip():
        raise ScaleError("name: a scale needs a name")
    if not isinstance(question, str) or not question.strip():
        raise ScaleError("question: a scale needs the question raters are asked")
    if not isinstance(continuous, bool):
        raise ScaleError("continuous: true or false")
    if not isinstance(items, list) or not 2 <= len(items) <= MAX_CATEGORIES:
        raise ScaleError(f"categories: a list of 2 to {MAX_CATEGORIES} categories, worst first")
    categories = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise ScaleError(f"categories[{index}]: an object with value, label and key")
        value, label, key = item.get("value"), item.get("label"), item.get("key", KEYS[index - 1])
        if not isinstance(value, int) or isinstance(value, bool):
            raise ScaleError(f"categories[{index}].value: an integer")
        if not isinstance(label, str) or not label.strip():
            raise ScaleError(f"categories[{index}].label: a non-blank label")
        if key not in KEYS:
            raise ScaleError(f"categories[{index}].key: one of the keys 1-9")
        categories.append(Category(value=value, label=label.strip(), key=key))
    values = [category.value for category in categories]
    if values != sorted(set(values)):
        raise ScaleError("categories: distinct values in rising order (worst first)")
    if len({category.key for category in categories}) != len(categories):
        raise ScaleError("categories: each category needs its own key")
    return Scale(name=name.strip(), question=question.strip(), categories=tuple(categories), continuous=continuous)
