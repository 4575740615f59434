"""Deep denoisers: DnCNN and FFDNet (Zhang et al., TIP 2017 and TIP 2018), their published weights
(cszn/KAIR), strict loading, inference on RGB images and a small training run (no Django here).

PIPAL (§3.1) splits denoising into model-based and deep-learning-based methods; these are the
deep ones. ``records`` holds the published files (no torch on import: the web processes never
need it); ``arch`` the networks; ``loading`` finding, loading and running one by name;
``training`` the platform's own training run, whose files are labelled as not official.
"""

from core.weights import WeightsError, WeightsMissing
from sr_models.denoisers.loading import (
    DenoisingError,
    LoadedDenoiser,
    cached_denoiser,
    clear_cache,
    denoise,
    load_denoiser,
    save_trained,
    trained_names,
    trained_path,
    unready,
)
from sr_models.denoisers.records import DENOISERS, DenoiserOptions, DenoiserRecord, register_weights

__all__ = [
    "DENOISERS",
    "DenoiserOptions",
    "DenoiserRecord",
    "DenoisingError",
    "LoadedDenoiser",
    "WeightsError",
    "WeightsMissing",
    "clear_cache",
    "denoise",
    "cached_denoiser",
    "load_denoiser",
    "register_weights",
    "save_trained",
    "trained_names",
    "trained_path",
    "unready",
]
