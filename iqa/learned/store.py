"""Trained metric folders, and each one as a metric (no Django here).

A training command writes one folder per trained model under
``<PIPAL_WEIGHTS_DIR>/learned/<name>/``:

* ``model.pt`` — ``{"kind", "config", "state_dict"}``: the weights the metric uses;
* ``manifest.json`` — what it was trained on and how (data, split, seed,
  hyper-parameters), its held-out results, the metric's direction and mode, and
  the SHA-256 of ``model.pt``;
* ``train_state.pt`` — the last training checkpoint (step, optimiser, RNG), for ``--resume``.

Every folder with a ``model.pt`` and a manifest is a metric named after the
folder; its version is the SHA-256 of ``model.pt``, so scores of retrained
weights never mix with older ones. Listing reads only the manifests (no torch).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

from core.weights import atomic_write_bytes, file_sha256
from iqa.learned.errors import LearnedModelError
from iqa.learned.kinds import LEARNED_KINDS

MODEL_FILE = "model.pt"
MANIFEST_FILE = "manifest.json"
STATE_FILE = "train_state.pt"
LEARNED_FOLDER = "learned"  # under PIPAL_WEIGHTS_DIR
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")

__all__ = ["LEARNED_KINDS", "LearnedModelError"]  # also the names other modules use from here


def learned_root(weights_dir: Path) -> Path:
    return Path(weights_dir) / LEARNED_FOLDER


def kind_module(kind: str):
    """The architecture module of a kind (build(config), as_metric(network))."""
    if kind not in LEARNED_KINDS:
        raise LearnedModelError(f"unknown learned-metric kind {kind!r} (known: {', '.join(LEARNED_KINDS.names())})")
    return LEARNED_KINDS.get(kind).module()


def check_name(name: str, taken: Collection[str] = ()) -> str:
    """A metric name a training run may take: lower-case file-name characters, none of ``taken``
    (``iqa.metrics.builtin_names()``: pyiqa's and the platform's; ``metrics.check_learned_name`` passes them)."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise LearnedModelError(
            f"name {name!r}: use lower-case letters, digits, '.', '_' and '-' (it becomes a folder and a metric name)"
        )
    if name in taken:
        raise LearnedModelError(f"name {name!r} is a metric already (pyiqa's or the platform's): choose another")
    return name


def write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, lambda stream: stream.write(json.dumps(data, indent=2, sort_keys=True).encode()))


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise LearnedModelError(f"{path} is missing") from None
    except (OSError, ValueError) as error:
        raise LearnedModelError(f"{path} is not a readable JSON manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") not in LEARNED_KINDS:
        raise LearnedModelError(f"{path} names no known kind (expected one of {', '.join(LEARNED_KINDS.names())})")
    return manifest


def save_model(folder: Path, *, kind: str, config: dict, state_dict: dict) -> str:
    """Write ``model.pt`` atomically; return its SHA-256."""
    import torch

    payload = {"kind": kind, "config": config, "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}}
    target = Path(folder) / MODEL_FILE
    atomic_write_bytes(target, lambda stream: torch.save(payload, stream))
    return file_sha256(target)


def read_model(path: Path) -> tuple[str, dict, dict]:
    """(kind, config, state_dict) of a ``model.pt``, tensors only (``weights_only``)."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise LearnedModelError(f"{path} is missing") from None
    except Exception as error:  # noqa: BLE001 - torch raises many types for a damaged file
        raise LearnedModelError(f"{path} is not a readable model file: {error}") from None
    if not isinstance(payload, dict) or payload.get("kind") not in LEARNED_KINDS or "state_dict" not in payload:
        raise LearnedModelError(f"{path} is not a model.pt written by a training command")
    return payload["kind"], dict(payload.get("config") or {}), payload["state_dict"]


def build_trained(path: Path, device: str = "cpu"):
    """The network of a ``model.pt``, weights loaded strictly, in eval mode."""
    kind, config, state_dict = read_model(path)
    try:
        network = kind_module(kind).build(config)
    except ValueError as error:  # a config its own architecture refuses
        raise LearnedModelError(f"{path}: {error}") from None
    try:
        network.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise LearnedModelError(f"{path} does not fit a {kind} network built from its own config: {error}") from None
    return kind, network.to(device).eval()


def discover(root: Path) -> dict[str, dict]:
    """name -> manifest of every finished folder under ``root`` (folders still training are left out)."""
    root = Path(root)
    found: dict[str, dict] = {}
    if not root.is_dir():
        return found
    for folder in sorted(root.iterdir()):
        if not (folder / MODEL_FILE).is_file() or not NAME_PATTERN.fullmatch(folder.name):
            continue
        try:
            manifest = read_manifest(folder)
        except LearnedModelError:
            continue
        if "metric" in manifest:
            found[folder.name] = manifest
    return found


def metric_factory(folder: Path):
    """A project-metric factory for a trained folder: the version is model.pt's SHA-256."""

    def factory(device: str, weights_dir: Path) -> tuple[Any, str]:
        path = Path(folder) / MODEL_FILE
        sha256 = file_sha256(path)
        recorded = read_manifest(folder).get("model_sha256")
        if recorded and recorded != sha256:
            raise LearnedModelError(
                f"{path} has SHA-256 {sha256[:12]}…, but its manifest records {recorded[:12]}…: the file was "
                "replaced or damaged after training; retrain or restore it"
            )
        kind, network = build_trained(path, device)
        return kind_module(kind).as_metric(network), sha256

    return factory
