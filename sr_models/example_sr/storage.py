"""Example-SR model files: ``<weights_dir>/example_sr/<name>.npz``, plain arrays (``allow_pickle=False``)
and one JSON metadata string (format, method, scale, config, provenance). Written to a ``.partial`` file
and renamed, so a reader never sees half a file; loading checks every array's shape and values and
names the file in each refusal."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from core.weights import TRAINED_NAME_PATTERN
from sr_models.example_sr import features as feat
from sr_models.example_sr.model import (
    CONFIG_FIELDS,
    ExampleSRConfig,
    ExampleSRError,
    ExampleSRModel,
    check_config,
)

MODELS_FOLDER = "example_sr"
FORMAT = "pipal-example-sr"
FORMAT_VERSION = 1
CODE_VERSION = "example-sr-1.0.0"  # bump when training or upscaling changes what a model computes
_ARRAYS = ("pca", "anchors", "dict_hires", "projections")


def model_path(weights_dir: Path, name: str) -> Path:
    """``<weights_dir>/example_sr/<name>.npz``; the name is a file stem, never a path."""
    if not TRAINED_NAME_PATTERN.fullmatch(name):
        raise ExampleSRError(f"model name {name!r}: use letters, digits, '.', '_' and '-' only (a file name, no path)")
    return Path(weights_dir) / MODELS_FOLDER / f"{name}.npz"


def save_model(model: ExampleSRModel, path: Path, provenance: dict) -> str:
    """Write the model atomically; returns the file's SHA-256 (hex)."""
    path = Path(path)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "code_version": CODE_VERSION,
        "method": model.method,
        "scale": model.scale,
        "config": model.config.as_dict(),
        "provenance": provenance,
    }
    try:
        text = json.dumps(metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ExampleSRError(f"provenance of {path.name} is not plain JSON data ({error})") from None
    arrays = {name: getattr(model, name) for name in _ARRAYS if getattr(model, name) is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as handle:
        np.savez(handle, metadata=np.array(text), **arrays)
    partial.replace(path)  # atomic on one file system
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_model(path: Path) -> tuple[ExampleSRModel, dict]:
    """(model, provenance) of a file written by ``save_model``; anything else is refused, naming the file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise ExampleSRError(f"{path}: no such example-SR model file") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
        raise ExampleSRError(f"{path}: not a readable example-SR model file ({error})") from None
    return _model_from(path, contents)


def _model_from(path: Path, contents: dict[str, np.ndarray]) -> tuple[ExampleSRModel, dict]:
    def refuse(why: str) -> ExampleSRError:
        return ExampleSRError(f"{path}: not a valid example-SR model file ({why})")

    if "metadata" not in contents or contents["metadata"].dtype.kind != "U" or contents["metadata"].ndim:
        raise refuse("no metadata string")
    try:
        metadata = json.loads(str(contents["metadata"][()]))
    except ValueError as error:
        raise refuse(f"metadata is not JSON: {error}") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise refuse(f"format is not {FORMAT!r}")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise refuse(f"format version {metadata.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    settings = metadata.get("config")
    if not isinstance(settings, dict) or set(settings) != set(CONFIG_FIELDS):
        raise refuse("its config does not list the expected settings")
    config = ExampleSRConfig(**settings)
    try:
        check_config(config)
    except ExampleSRError as error:
        raise refuse(str(error)) from None
    if metadata.get("method") != config.method or metadata.get("scale") != config.scale:
        raise refuse("method or scale disagree with its config")

    scale, atoms = config.scale, config.atoms
    expected = {"pca": 2, "anchors": 2}
    if config.method == "zeyde":
        expected["dict_hires"] = 2
    else:
        expected["projections"] = 3
    if set(contents) - {"metadata"} != set(expected):
        raise refuse(f"arrays {sorted(set(contents) - {'metadata'})}, expected {sorted(expected)}")
    for name, ndim in expected.items():
        array = contents[name]
        if array.ndim != ndim or array.dtype.kind != "f" or not np.all(np.isfinite(array)):
            raise refuse(f"{name} must be a finite {ndim}-D float array, got {array.dtype} {array.shape}")
    pca, anchors = contents["pca"], contents["anchors"]
    dimension = pca.shape[1]
    if pca.shape[0] != feat.feature_size(scale) or not 1 <= dimension <= pca.shape[0]:
        raise refuse(f"pca has shape {pca.shape}, expected ({feat.feature_size(scale)}, d)")
    if anchors.shape != (atoms, dimension):
        raise refuse(f"anchors have shape {anchors.shape}, expected {(atoms, dimension)}")
    patch = feat.patch_size(scale)
    if "dict_hires" in expected and contents["dict_hires"].shape != (atoms, patch):
        raise refuse(f"dict_hires has shape {contents['dict_hires'].shape}, expected {(atoms, patch)}")
    if "projections" in expected:
        count = 1 if config.method == "gr" else atoms
        shape = (count, patch, dimension)
        if contents["projections"].shape != shape:
            raise refuse(f"projections have shape {contents['projections'].shape}, expected {shape}")
    model = ExampleSRModel(config=config, **{name: contents[name] for name in expected})
    provenance = metadata.get("provenance")
    return model, provenance if isinstance(provenance, dict) else {}
