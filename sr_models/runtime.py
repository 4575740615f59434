"""Where SR networks run in this process: weights folder, device, precision, tiling (no Django here).

The Django app fills this in from settings at start-up (``sr_models.apps``);
scripts and tests may call ``configure`` themselves. Loaded networks are kept
per (checkpoint, alpha, device) so a worker builds each once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from sr_models import weights


@dataclass(frozen=True)
class Runtime:
    weights_dir: Path = Path("var/weights")
    device: str = ""  # "" = CUDA when torch sees a GPU, else CPU
    dtype: str = "fp32"
    tile: int | None = None
    overlap: int = 16


_current = Runtime(
    weights_dir=Path(os.environ.get("PIPAL_WEIGHTS_DIR", "var/weights")),
    device=os.environ.get("PIPAL_SR_DEVICE", ""),
    dtype=os.environ.get("PIPAL_SR_DTYPE", "fp32"),
)
_models: dict[tuple, weights.LoadedModel] = {}
_lock = threading.Lock()


def configure(**changes) -> Runtime:
    global _current
    with _lock:
        _current = replace(_current, **{k: (Path(v) if k == "weights_dir" else v) for k, v in changes.items()})
        _models.clear()
    return _current


def current() -> Runtime:
    return _current


def device() -> str:
    from sr_models.inference import default_device

    return _current.device or default_device()


def model(checkpoint: str, alpha: float | None = None) -> weights.LoadedModel:
    key = (checkpoint, alpha, device(), str(_current.weights_dir))
    with _lock:
        if key not in _models:
            if alpha is None:
                _models[key] = weights.load_checkpoint(checkpoint, weights_dir=_current.weights_dir, device=key[2])
            else:
                _models[key] = weights.load_interpolated(
                    checkpoint, alpha, weights_dir=_current.weights_dir, device=key[2]
                )
        return _models[key]
