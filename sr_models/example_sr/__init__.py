"""Example-based ("traditional") SR trained by the platform: Zeyde et al. 2010, ANR and GR (Timofte et al.
ICCV 2013), A+ (Timofte et al. ACCV 2014). numpy/scipy only, no Django, no torch.

The authors publish MATLAB models; the platform trains its own from a folder of HR images (the Yang et al.
91-image set when a lab has it) — see ``model.py`` for the recipe and where each constant comes from,
``features.py`` for the patch features, ``ksvd.py`` for the dictionary learning, ``storage.py`` for files.
"""

from sr_models.example_sr.model import (
    ALL_METHODS,
    METHOD_LABELS,
    METHODS,
    SCALES,
    SHORT_LABELS,
    ExampleSRConfig,
    ExampleSRError,
    ExampleSRModel,
    check_config,
    check_images,
    held_out_psnr,
    train_model,
    train_models,
)
from sr_models.example_sr.storage import CODE_VERSION, MODELS_FOLDER, load_model, model_path, save_model

__all__ = [
    "ALL_METHODS",
    "CODE_VERSION",
    "METHODS",
    "METHOD_LABELS",
    "MODELS_FOLDER",
    "SCALES",
    "SHORT_LABELS",
    "ExampleSRConfig",
    "ExampleSRError",
    "ExampleSRModel",
    "check_config",
    "check_images",
    "held_out_psnr",
    "load_model",
    "model_path",
    "save_model",
    "train_model",
    "train_models",
]
