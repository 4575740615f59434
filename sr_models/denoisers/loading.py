"""Loading a denoiser by name and running it on an RGB image (no Django here).

A name is either a published record (``DENOISERS``: KAIR's DnCNN and FFDNet files, loaded through
``core.weights``: tensors only, stated checksum, strict load) or the stem of a file that
``train_denoiser`` wrote, ``<weights_dir>/trained/<name>.pth``: ``{"params": state dict,
"provenance": {..., "official": False, "arch_options": {...}}}``, loaded as strictly. A missing
official file raises ``WeightsMissing``, whose message says how to get it; random weights never
stand in for real ones.

``denoise`` runs a loaded network on an 8-bit RGB image, deterministically (no_grad, fp32 on the
CPU by default): a colour network on RGB; a grey network on each RGB channel in turn for Gaussian
noise (independent per channel, as the platform adds it) and on the Y channel (BT.601, as MATLAB's
``rgb2ycbcr``; Cb/Cr kept) for JPEG, since DnCNN-3 was trained on Y (DnCNN paper §IV-A). FFDNet gets
the noise level map σ/255; a blind DnCNN ignores ``sigma``. The image goes through the network in
one pass, without tiles: the platform's references are at most about 1000 px on a side, where a
64-channel DnCNN holds about two 64-channel float maps at a time under no_grad (~0.5 GB; a grey
network runs the RGB channels one after another).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import weights as core_weights
from core.registry import UnknownName
from core.weights import TRAINED_NAME_PATTERN, WeightsError, WeightsMissing
from sr_models.denoisers.records import DENOISERS, DenoiserOptions, DenoiserRecord
from sr_models.inference import rgb_to_ycbcr, ycbcr_to_rgb
from sr_models.training import quantize

TRAINED_FOLDER = "trained"  # under the weights directory, shared with train_sr
TRAINED_BY = "train_denoiser"


class DenoisingError(ValueError):
    """An image or a setting ``denoise`` refuses, with a message that says why."""


@dataclass
class LoadedDenoiser:
    name: str
    options: DenoiserOptions
    model: object  # torch.nn.Module in eval mode
    provenance: dict = field(default_factory=dict)  # file, sha256, official, label (+ the training's)
    record: DenoiserRecord | None = None  # None for a platform-trained file

    @property
    def official(self) -> bool:
        return self.record is not None

    @property
    def label(self) -> str:
        return self.provenance.get("label", self.name)


# --- names ----------------------------------------------------------------------------------------


def trained_path(name: str, weights_dir: Path) -> Path:
    return Path(weights_dir) / TRAINED_FOLDER / f"{name}.pth"


def trained_names(weights_dir: Path) -> list[str]:
    """The stems of the .pth files under ``<weights_dir>/trained`` (train_sr's too: which are
    denoisers shows only when one is loaded)."""
    folder = Path(weights_dir) / TRAINED_FOLDER
    return sorted(path.stem for path in folder.glob("*.pth")) if folder.is_dir() else []


def _unknown(name: str, weights_dir: Path) -> UnknownName:
    trained = trained_names(weights_dir)
    found = f"; trained files in {Path(weights_dir) / TRAINED_FOLDER}: {', '.join(trained)}" if trained else ""
    return UnknownName(
        f"unknown denoiser {name!r}: neither a published one ({', '.join(DENOISERS.names())}) nor a file "
        f"{TRAINED_FOLDER}/{name}.pth written by train_denoiser in {weights_dir}{found}"
    )


def unready(name: str, weights_dir: Path) -> str:
    """'' when ``name`` looks loadable (its official file or its trained file is there), else why not:
    the WeightsMissing message (how to get the file) or the unknown-name message (what is known)."""
    if name in DENOISERS:
        record = DENOISERS.get(name)
        path = Path(weights_dir) / record.file
        return "" if path.is_file() else str(WeightsMissing(record, weights_dir))
    if TRAINED_NAME_PATTERN.fullmatch(name) and trained_path(name, weights_dir).is_file():
        return ""
    return str(_unknown(name, weights_dir))


# --- loading --------------------------------------------------------------------------------------


def load_denoiser(name: str, *, weights_dir: Path, device: str = "cpu") -> LoadedDenoiser:
    """The named network with its weights loaded strictly, in eval mode on ``device``."""
    if name in DENOISERS:
        record = DENOISERS.get(name)
        model = record.build()
        files = record.load_into(core_weights.locate(record, weights_dir), model)
        provenance = {
            "denoiser": name,
            **files,
            "official": True,
            "label": record.label,
            "source": record.source,
            "licence": record.licence,
        }
        return LoadedDenoiser(name, record.options, model.to(device).eval(), provenance, record)
    if not TRAINED_NAME_PATTERN.fullmatch(name) or not trained_path(name, weights_dir).is_file():
        raise _unknown(name, weights_dir)
    return _load_trained(name, trained_path(name, weights_dir), device)


def _load_trained(name: str, path: Path, device: str) -> LoadedDenoiser:
    saved = core_weights.read_checkpoint(path)
    provenance = saved.get("provenance") if isinstance(saved, dict) else None
    if not isinstance(provenance, dict) or provenance.get("trained_by") != TRAINED_BY:
        raise WeightsError(f"{path} was not written by {TRAINED_BY} (no denoiser provenance in it)")
    try:
        options = DenoiserOptions.from_dict(provenance["arch_options"])
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsError(f"{path}: its provenance names no usable architecture ({error})") from None
    state = core_weights.unwrap(saved, path.name)
    model = options.build()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WeightsError(f"{path.name} does not fit {options.arch} ({options.as_dict()}): {error}") from None
    details = {
        "denoiser": name,
        "file": f"{TRAINED_FOLDER}/{path.name}",
        "sha256": core_weights.file_sha256(path),
        "official": False,
        "label": provenance.get("label", f"{name} (trained by the platform — not official weights)"),
        "training": provenance,
    }
    return LoadedDenoiser(name, options, model.to(device).eval(), details, None)


def save_trained(path: Path, state_dict: dict, options: DenoiserOptions, provenance: dict) -> None:
    """Write a network the platform trained as ``load_denoiser`` reads it back by name: its tensors and
    its provenance, marked as train_denoiser's and never official, atomically (a reader never sees half)."""
    provenance = {**provenance, "trained_by": TRAINED_BY, "official": False, "arch_options": options.as_dict()}
    core_weights.write_checkpoint(Path(path), state_dict, provenance)


_cache: dict[tuple, LoadedDenoiser] = {}
_lock = threading.Lock()


def cached_denoiser(name: str, *, weights_dir: Path, device: str = "cpu") -> LoadedDenoiser:
    """``load_denoiser`` once per process for each (name, device, weights folder) — and file
    version: a file replaced on disk (import_weights) is read again."""
    path = Path(weights_dir) / DENOISERS.get(name).file if name in DENOISERS else trained_path(name, weights_dir)
    try:
        stat = path.stat()
        version = (stat.st_size, stat.st_mtime_ns)
    except (OSError, ValueError):
        version = None  # load_denoiser raises the right error below
    key = (name, device, str(Path(weights_dir)), version)
    with _lock:
        if key not in _cache:
            _cache[key] = load_denoiser(name, weights_dir=weights_dir, device=device)
        return _cache[key]


def clear_cache() -> None:
    with _lock:
        _cache.clear()


# --- inference ------------------------------------------------------------------------------------


def _run(loaded: LoadedDenoiser, planes: np.ndarray, sigma: float | None) -> np.ndarray:
    """N×C×H×W float32 in [0, 1] through the network; the output on the CPU as float32."""
    import torch

    model = loaded.model
    device = next(model.parameters()).device
    batch = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32)).to(device)
    with torch.no_grad():
        if loaded.options.takes_sigma:
            level = torch.full((batch.shape[0],), sigma / 255.0, dtype=batch.dtype, device=device)
            output = model(batch, level)
        else:
            output = model(batch)
    return output.float().cpu().numpy()


def check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise DenoisingError(f"expected an HxWx3 uint8 RGB image, got {getattr(image, 'dtype', type(image))} {shape}")


def denoise(loaded: LoadedDenoiser, image: np.ndarray, *, sigma: float | None, task: str | None = None) -> np.ndarray:
    """The denoised 8-bit RGB image (same shape). ``sigma``: the noise level on 0-255 (FFDNet needs
    it; a DnCNN ignores it). ``task``: "gaussian" or "jpeg" (default: the network's main use); it
    decides how a grey network sees a colour image (each RGB channel, or Y)."""
    options = loaded.options
    task = task or options.tasks[0]
    if task not in options.tasks:
        raise DenoisingError(f"{loaded.name} removes {' and '.join(options.tasks)}, not {task}")
    if options.takes_sigma and (sigma is None or not 0 <= sigma <= 255):
        raise DenoisingError(f"{loaded.name} is non-blind: give the noise level sigma on 0-255, not {sigma!r}")
    check_image(image)
    if options.channels == 3:
        rgb = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        out = _run(loaded, rgb, sigma)[0].transpose(1, 2, 0)
    elif task == "jpeg":
        ycbcr = rgb_to_ycbcr(image.astype(np.float64) / 255.0)
        ycbcr[..., 0] = _run(loaded, ycbcr[None, None, :, :, 0], sigma)[0, 0]
        out = ycbcr_to_rgb(ycbcr)
    else:
        planes = image.astype(np.float32).transpose(2, 0, 1)[:, None] / 255.0
        # one channel at a time: the same result as a batch of three, a third of the peak memory
        out = np.concatenate([_run(loaded, planes[c : c + 1], sigma) for c in range(3)])[:, 0].transpose(1, 2, 0)
    return quantize(np.clip(out, 0.0, 1.0))
