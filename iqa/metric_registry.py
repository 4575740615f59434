"""The platform's own metrics and its names for pyiqa metrics with other options (no Django, no torch).

``PROJECT_METRICS`` is filled by one loader that lists the declarations: RankSRGAN's official
Rankers (``iqa.learned.official``). ``IqaConfig.ready()`` runs it at start; code without Django gets
the same entries on first read. pyiqa's metrics are read from pyiqa's own table
(``pyiqa.default_model_configs``) by ``iqa.metrics``; trained metrics are found in their folders.
"""

from __future__ import annotations

from core.registry import Registry
from iqa.metric_info import ProjectMetric

# Project aliases of pyiqa metrics with other options: name -> (pyiqa name, options, description).
# PIPAL Table 3 lists FSIM and FSIMc; pyiqa's "fsim" is the chromatic one (chromatic=True by default).
ALIASES: dict[str, tuple[str, dict, str]] = {
    "fsim_gray": ("fsim", {"chromatic": False}, "FSIM on luminance only (PIPAL's FSIM; pyiqa's fsim is FSIMc)"),
}
# The SR papers' convention (4PP-EUSR Sec. 5, ESRGAN Sec. 4.2; SPEC §6): PSNR and SSIM on the Y channel
# of YCbCr with `scale` pixels cropped at each border. For SR tables; IQA-vs-MOS keeps pyiqa's defaults.
# pyiqa's test_y_channel takes the Y of YIQ unless color_space says "ycbcr" (then MATLAB's rgb2ycbcr).
_Y_OF_YCBCR = {"test_y_channel": True, "color_space": "ycbcr"}
for _scale in (2, 3, 4, 8):
    ALIASES[f"psnr_sr_x{_scale}"] = (
        "psnr", {**_Y_OF_YCBCR, "crop_border": _scale}, f"PSNR on Y, {_scale} border pixels cropped"
    )
    ALIASES[f"ssim_sr_x{_scale}"] = (
        "ssim", {**_Y_OF_YCBCR, "crop_border": _scale}, f"SSIM on Y, {_scale} border pixels cropped"
    )

# Weight records (core.weights.WEIGHTS) pyiqa metrics need that pyiqa cannot download itself:
# NIQE's pristine parameters are built from basicsr's PyPI sdist (iqa.weights.NIQE_PARAMETERS).
PYIQA_WEIGHTS: dict[str, tuple[str, ...]] = {
    "niqe": ("niqe_parameters",),
    "pi": ("niqe_parameters",),
}


def load_project_metrics(registry: Registry[ProjectMetric]) -> None:
    """Every project metric, declared where its weights are declared."""
    from iqa.learned import official

    # Not checked against pyiqa's names here: that would import pyiqa (and torch) at start-up;
    # tests/iqa/test_iqa.py checks that no project name shadows a pyiqa metric.
    for metric in official.ranker_metrics():
        if metric.info.name in ALIASES:
            raise ValueError(f"metric name {metric.info.name!r} is taken")
        registry.add(metric.info.name, metric)


PROJECT_METRICS: Registry[ProjectMetric] = Registry("project metric", loader=load_project_metrics)
