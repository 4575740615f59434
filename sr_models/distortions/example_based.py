"""Traditional (example-based) SR outputs (PIPAL Table 2's "traditional methods" of SR; Table 4's
A+ has the lowest MOS): Zeyde et al.'s sparse-coding SR, ANR and A+ (sr_models.example_sr).

Their published models are MATLAB files, so the platform trains them (``train_example_sr``) and
keeps each model as ``<weights_dir>/example_sr/<name>.npz`` with its provenance. The reference is
downscaled with MATLAB's antialiased bicubic by the model's scale, as every SR type here, and
super-resolved back; a level whose model is not trained yet is refused before any job is planned,
with the command that trains it.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from core.weights import file_sha256
from sr_models.distortions import ops
from sr_models.distortions.base import DistortionError, Param, family

# The default catalogue's model names: <method>_x<scale>, as train_example_sr names them.
_DEFAULT_NAME = re.compile(r"^(?P<method>[a-z+]+)_x(?P<scale>\d)$")
_models: dict[tuple[str, int, int], tuple[Any, dict]] = {}
_lock = threading.Lock()


def _model_file(name: str) -> Path:
    from sr_models import example_sr, runtime

    return example_sr.model_path(runtime.current().weights_dir, name)


def _how_to_train(name: str) -> str:
    match = _DEFAULT_NAME.match(name)
    method, scale = (match["method"], match["scale"]) if match else ("aplus", "4")
    return (
        f"train it with: python manage.py train_example_sr {method} --scale {scale} --name {name} "
        "--hr-folder <HR images, e.g. Yang et al.'s 91-image training set> (or --study <slug>)"
    )


def _load(name: str) -> tuple[Any, dict]:
    """The trained model and its provenance, read once per file version (path, size, mtime)."""
    from sr_models import example_sr

    path = _model_file(name)
    if not path.is_file():
        raise DistortionError(f"example-based SR model {name!r} is not trained here (no {path}): {_how_to_train(name)}")
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key not in _models:
            try:
                model, provenance = example_sr.load_model(path)
            except example_sr.ExampleSRError as error:
                raise DistortionError(f"{error}; {_how_to_train(name)}") from None
            _models[key] = (model, {**provenance, "sha256": file_sha256(path), "file": str(path.name)})
        return _models[key]


def _preflight(params: dict[str, Any]) -> None:
    _load(params["model"])


def _provenance(params: dict[str, Any]) -> dict[str, Any]:
    model, provenance = _load(params["model"])
    return {
        "example_sr_model": params["model"],
        "method": model.method,
        "scale": model.scale,
        "file": provenance["file"],
        "sha256": provenance["sha256"],
        "label": provenance.get("label", ""),
        "official": False,
    }


@family(
    "example_based_sr",
    category="super_resolution",
    subtype="traditional_sr",
    summary=(
        "An example-based SR model trained by the platform (A+, ANR or Zeyde et al.'s sparse coding; "
        "train_example_sr) on the MATLAB-bicubic LR image; the model sets the scale."
    ),
    params={
        "model": Param(str, "a model trained by train_example_sr (PIPAL_WEIGHTS_DIR/example_sr/<model>.npz)"),
    },
    preflight=_preflight,
    provenance=_provenance,
    needs="a trained model",
)
def example_based_sr(image, params, rng):
    model, _ = _load(params["model"])
    output = model.upscale(ops.downscale(image, model.scale))
    if output.shape != image.shape:  # sizes not divisible by the scale: back to the reference's size
        output = ops.upscale(output, image.shape, "bicubic")
    return output


FAMILIES = (example_based_sr,)
