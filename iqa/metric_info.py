"""What every metric is, as data (no Django, no torch): the record the registry, the scoring jobs,
the benchmarks and the learned-metric store share, so none of them imports another for it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class UnknownMetric(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class MetricInfo:
    name: str
    higher_is_better: bool
    full_reference: bool
    source: str  # "pyiqa", "project" (built in) or "learned" (trained here, iqa.learned.store)
    pyiqa_name: str = ""
    options: dict = field(default_factory=dict)
    description: str = ""
    # The range of its scores as its authors state it (pyiqa's ``score_range``, e.g. "~0, ~1"); None: unknown.
    score_range: str | None = None
    # The core.weights.WEIGHTS records it needs that its own loader does not fetch (fetch_weights fetches them).
    weights: tuple[str, ...] = ()

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    @property
    def mode(self) -> str:
        return "FR" if self.full_reference else "NR"


@dataclass(frozen=True)
class ProjectMetric:
    info: MetricInfo
    # factory(device, weights_dir) -> (model, weights_checksum); model(images, references|None) -> (N,) tensor
    factory: Callable[[str, Path], tuple[Any, str]]
