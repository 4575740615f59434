"""Loading the published SR checkpoints strictly (no Django here).

Every file goes through ``core.weights``' one loader: tensors only (``weights_only=True``), the
stated checksum checked, the usual containers unwrapped, the file's key layout mapped onto ours
with the family's ``convert_state_dict``, then a strict load. A missing, truncated, foreign or
altered file is refused with a message that names it and how to get the right one; random
weights never stand in for real ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core import weights as core_weights
from core.weights import WEIGHTS, WeightsError, WeightsMissing
from sr_models import archs
from sr_models.checkpoints import CHECKPOINTS, TRAINED_PREFIX, Checkpoint, trained_checkpoint

__all__ = [
    "Checkpoint",
    "LoadedModel",
    "WeightsError",
    "WeightsMissing",
    "checkpoint_names",
    "get_checkpoint",
    "load_checkpoint",
    "load_interpolated",
    "missing_files",
    "register_weights",
]


@dataclass
class LoadedModel:
    checkpoint: Checkpoint
    model: object  # torch.nn.Module in eval mode
    spec: archs.ArchSpec
    provenance: dict = field(default_factory=dict)


def checkpoint_names() -> list[str]:
    return CHECKPOINTS.names()


def get_checkpoint(name: str, weights_dir: Path | None = None) -> Checkpoint:
    """A registered checkpoint, or ``trained:<name>``: a generator train_sr or train_sr_gan wrote
    into ``weights_dir`` (which such a name needs)."""
    if name.startswith(TRAINED_PREFIX):
        if weights_dir is None:
            raise KeyError(f"{name}: a trained checkpoint is looked up in a weights directory; none was given")
        return trained_checkpoint(name, weights_dir)
    return CHECKPOINTS.get(name)


def register_weights() -> None:
    """Add every SR checkpoint to the platform's weights records (SrModelsConfig.ready())."""
    for checkpoint in CHECKPOINTS.values():
        if checkpoint.name not in WEIGHTS:
            WEIGHTS.add(checkpoint.name, checkpoint)


def missing_files(checkpoint: Checkpoint, weights_dir: Path) -> list[Checkpoint]:
    """The checkpoints (this one, or both ends of an interpolation) whose file is absent."""
    parts = [get_checkpoint(name) for name in checkpoint.parts] if checkpoint.parts else [checkpoint]
    return [part for part in parts if not (Path(weights_dir) / part.file).is_file()]


def load_checkpoint(name: str, *, weights_dir: Path, device: str = "cpu") -> LoadedModel:
    """Build the checkpoint's network and load its weights strictly."""
    checkpoint = get_checkpoint(name, weights_dir)
    if checkpoint.parts:
        raise WeightsError(f"{name} is an interpolation: load it with load_interpolated({name!r}, alpha)")
    model = checkpoint.build()
    files = checkpoint.load_into(core_weights.locate(checkpoint, weights_dir), model)
    provenance = {"checkpoint": name, "arch": checkpoint.arch, "scale": checkpoint.scale, **files}
    return LoadedModel(checkpoint, model.to(device).eval(), archs.arch(checkpoint.arch), provenance)


def load_interpolated(name: str, alpha: float, *, weights_dir: Path, device: str = "cpu") -> LoadedModel:
    """Blend two checkpoints' weights (ESRGAN §3.4: θ = (1 − α)·θ_PSNR + α·θ_GAN) and load the blend."""
    from sr_models.archs.interpolation import interpolate_state_dicts

    checkpoint = get_checkpoint(name)
    if not checkpoint.parts:
        raise WeightsError(f"{name} is not an interpolation checkpoint")
    if not 0.0 <= alpha <= 1.0:
        raise WeightsError(f"alpha must be within [0, 1], not {alpha}")
    convert = archs.arch(checkpoint.arch).convert
    ends = []
    for part in (get_checkpoint(part) for part in checkpoint.parts):
        state, files = core_weights.load_state(part, core_weights.locate(part, weights_dir), convert=convert)
        ends.append((part, state, files))
    (psnr, psnr_state, psnr_files), (gan, gan_state, gan_files) = ends
    model = checkpoint.build()
    core_weights.load_strict(model, interpolate_state_dicts(psnr_state, gan_state, alpha), checkpoint)
    provenance = {
        "checkpoint": name,
        "arch": checkpoint.arch,
        "scale": checkpoint.scale,
        "alpha": alpha,
        "psnr": {"checkpoint": psnr.name, **psnr_files},
        "gan": {"checkpoint": gan.name, **gan_files},
    }
    return LoadedModel(checkpoint, model.to(device).eval(), archs.arch(checkpoint.arch), provenance)
