"""The registry of distortion generator families, filled from the family modules' ``FAMILIES``
(pure Python, no Django). ``SrModelsConfig.ready()`` loads it at start; code used without Django
gets it on first read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from core.registry import Registry, UnknownName
from sr_models.distortions import (
    deep_denoising,
    denoising,
    example_based,
    mixture,
    sr_networks,
    super_resolution,
    traditional,
)
from sr_models.distortions.base import DistortionError, DistortionFamily

# PIPAL Table 2's sub-types, in the paper's order: the catalogue and the admin list them so.
FAMILY_MODULES = (traditional, super_resolution, example_based, denoising, deep_denoising, mixture, sr_networks)


def _declared_families(registry: Registry[DistortionFamily]) -> None:
    for module in FAMILY_MODULES:
        for declared in module.FAMILIES:
            registry.add(declared.name, declared)


FAMILIES: Registry[DistortionFamily] = Registry("distortion family", loader=_declared_families)


def get_family(name: str) -> DistortionFamily:
    try:
        return FAMILIES.get(name)
    except UnknownName as error:
        raise DistortionError(str(error)) from None


def family_names() -> list[str]:
    return FAMILIES.names()


def apply(name: str, image: np.ndarray, params: Mapping[str, Any], seed: int) -> np.ndarray:
    return get_family(name).apply(image, params, seed)


def describe() -> list[dict[str, Any]]:
    """Metadata of every registered family, for admin pages and provenance."""
    return [get_family(name).describe() for name in family_names()]
