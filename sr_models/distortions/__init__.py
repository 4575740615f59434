"""Distortion generators for PIPAL-style studies: a registry of named families
(PIPAL Table 2 sub-types) and the default catalogue of types x levels.

Pure numpy/OpenCV/Pillow; no Django or Celery here.

    from sr_models import distortions
    out = distortions.apply("gaussian_blur", image, {"sigma": 1.5}, seed=7)
    for entry in distortions.load_catalogue():
        out = entry.apply(image, seed)
"""

from sr_models.distortions.base import (
    CATEGORIES,
    CODE_VERSION,
    DistortionError,
    DistortionFamily,
    Param,
    library_versions,
)
from sr_models.distortions.catalogue import DEFAULT_CATALOGUE, CatalogueEntry, CatalogueError, load_catalogue
from sr_models.distortions.families import FAMILIES, apply, describe, family_names, get_family

__all__ = [
    "CATEGORIES",
    "CODE_VERSION",
    "DEFAULT_CATALOGUE",
    "CatalogueEntry",
    "CatalogueError",
    "DistortionError",
    "DistortionFamily",
    "FAMILIES",
    "Param",
    "apply",
    "describe",
    "family_names",
    "get_family",
    "library_versions",
    "load_catalogue",
]
