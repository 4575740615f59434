"""The kinds of learned metric a training command writes (no Django, no torch at import).

A ``model.pt`` names its kind; the kind's architecture module (``*_arch.py``) rebuilds the network
from the file's config (``build(config) -> nn.Module``) and turns it into a metric
(``as_metric(network) -> scorer``). The registry holds module names, so listing trained metrics
reads manifests only and never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from core.registry import Registry


@dataclass(frozen=True)
class LearnedKind:
    name: str
    arch: str  # the module with build(config) and as_metric(network)
    description: str
    score_range: str | None = None

    def module(self):
        return importlib.import_module(self.arch)


def _load(registry: Registry[LearnedKind]) -> None:
    for kind in (
        LearnedKind("lpips", "iqa.learned.lpips_arch", "LPIPS-Alex with max, BlurPool or L2 pooling", "0, ~1"),
        LearnedKind("ranker", "iqa.learned.ranker_arch", "RankSRGAN's VGG Ranker", "unbounded"),
        LearnedKind("score_predictor", "iqa.learned.score_predictor_arch", "4PP-EUSR's MobileNetV2 predictor", "1, 10"),
    ):
        registry.add(kind.name, kind)


LEARNED_KINDS: Registry[LearnedKind] = Registry("learned-metric kind", loader=_load)
