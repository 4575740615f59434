"""Known SR checkpoints and loading them strictly (no Django here).

A ``Checkpoint`` is a typed record declared beside its architecture: the file
name as published, where it is published, its SHA-256 when the authors or a
mirror state it (never invented), the licence and how to build the network.
Loading reads only tensors (``weights_only=True``), unwraps the usual
containers, maps the file's key layout onto ours with the family's
``convert_state_dict`` and loads strictly: a missing, truncated, foreign or
altered file is refused with a message that names it; random weights never
stand in for real ones.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from sr_models import archs

# The containers checkpoints come in: BasicSR's "params_ema" (preferred, the EMA
# weights it evaluates with) and "params", and the generic "state_dict"/"model".
CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, unreadable, altered or of a foreign layout."""


class CheckpointMissing(CheckpointError):
    def __init__(self, checkpoint: Checkpoint, weights_dir: Path):
        self.checkpoint, self.weights_dir = checkpoint, weights_dir
        super().__init__(
            f"{checkpoint.label} needs the weight file {checkpoint.file}, which is not in {weights_dir} "
            f"(PIPAL_WEIGHTS_DIR). Published at {checkpoint.source}. "
            f"Run: python manage.py fetch_weights {checkpoint.name} (when online), or "
            f"python manage.py import_weights {checkpoint.name} /path/to/{checkpoint.file}"
        )


@dataclass(frozen=True)
class Checkpoint:
    name: str  # registry name, e.g. "esrgan_x4"
    label: str  # what people call it, e.g. "ESRGAN x4"
    arch: str  # registered architecture, e.g. "rrdbnet"
    scale: int
    file: str  # file name as published
    source: str  # page or URL where it is published
    licence: str
    sha256: str | None = None  # only when stated by the authors or a mirror
    url: str | None = None  # a direct download URL, when one exists (Google Drive pages are not)
    options: tuple[tuple[str, object], ...] = ()  # build options
    notes: str = ""
    interpolate: tuple[str, str] | None = None  # (psnr, gan) checkpoint names: ESRGAN network interpolation

    @property
    def build_options(self) -> dict:
        return dict(self.options)


@dataclass
class LoadedModel:
    checkpoint: Checkpoint
    model: object  # torch.nn.Module in eval mode
    spec: archs.ArchSpec
    provenance: dict = field(default_factory=dict)


CHECKPOINTS: dict[str, Checkpoint] = {}


def register_checkpoint(checkpoint: Checkpoint) -> Checkpoint:
    if checkpoint.name in CHECKPOINTS:
        raise ValueError(f"checkpoint {checkpoint.name!r} is declared twice")
    CHECKPOINTS[checkpoint.name] = checkpoint
    return checkpoint


def checkpoint_names() -> list[str]:
    archs.arch_names()  # importing the families declares their checkpoints
    return sorted(CHECKPOINTS)


def get_checkpoint(name: str) -> Checkpoint:
    names = checkpoint_names()
    if name not in CHECKPOINTS:
        raise KeyError(f"unknown SR checkpoint {name!r}; known: {', '.join(names)}")
    return CHECKPOINTS[name]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unwrap(state: object, file: str) -> dict:
    """The tensor dict inside a checkpoint, without DataParallel's ``module.`` prefix."""
    import torch

    for key in CONTAINER_KEYS:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{file} holds no state dict of tensors")
    return {key.removeprefix("module."): value for key, value in state.items()}


def read_state(path: Path) -> dict:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickle with code in it, not a torch file at all
        raise CheckpointError(
            f"{path.name} cannot be read as a PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from None
    return unwrap(state, path.name)


def missing_files(checkpoint: Checkpoint, weights_dir: Path) -> list[Checkpoint]:
    """The checkpoints (this one, or both ends of an interpolation) whose file is absent."""
    parts = [get_checkpoint(name) for name in checkpoint.interpolate] if checkpoint.interpolate else [checkpoint]
    return [part for part in parts if not (weights_dir / part.file).is_file()]


def _state_for(checkpoint: Checkpoint, weights_dir: Path) -> tuple[dict, dict]:
    path = weights_dir / checkpoint.file
    if not path.is_file():
        raise CheckpointMissing(checkpoint, weights_dir)
    return _checked_state(checkpoint, path)


def _checked_state(checkpoint: Checkpoint, path: Path) -> tuple[dict, dict]:
    """The file's tensors in our layout, after the published checksum (when known) matched."""
    digest = sha256_of(path)
    if checkpoint.sha256 and digest != checkpoint.sha256:
        raise CheckpointError(
            f"{path} has SHA-256 {digest[:16]}…, not the published {checkpoint.sha256[:16]}… "
            f"of {checkpoint.file}: a different or damaged file"
        )
    spec = archs.arch(checkpoint.arch)
    try:
        state = spec.convert(read_state(path))
    except archs.UnknownLayout as error:
        raise CheckpointError(f"{path.name}: not a {checkpoint.arch} checkpoint in a known layout: {error}") from None
    return state, {"file": checkpoint.file, "sha256": digest}


def load_checkpoint(name: str, *, weights_dir: Path, device: str = "cpu") -> LoadedModel:
    """Build the checkpoint's network and load its weights strictly (or blend two, for an
    interpolation checkpoint: ESRGAN §3.4, θ = (1 − α)·θ_PSNR + α·θ_GAN with α set later)."""
    checkpoint = get_checkpoint(name)
    spec = archs.arch(checkpoint.arch)
    model = archs.build(checkpoint.arch, checkpoint.scale, **checkpoint.build_options)
    if checkpoint.interpolate:
        raise CheckpointError(f"{name} is an interpolation: load it with load_interpolated({name!r}, alpha)")
    state, files = _state_for(checkpoint, weights_dir)
    _load_strict(model, state, checkpoint)
    provenance = {"checkpoint": name, "arch": checkpoint.arch, "scale": checkpoint.scale, **files}
    return LoadedModel(checkpoint, model.to(device).eval(), spec, provenance)


def load_interpolated(name: str, alpha: float, *, weights_dir: Path, device: str = "cpu") -> LoadedModel:
    from sr_models.archs.interpolation import interpolate_state_dicts

    checkpoint = get_checkpoint(name)
    if not checkpoint.interpolate:
        raise CheckpointError(f"{name} is not an interpolation checkpoint")
    if not 0.0 <= alpha <= 1.0:
        raise CheckpointError(f"alpha must be within [0, 1], not {alpha}")
    psnr, gan = (get_checkpoint(part) for part in checkpoint.interpolate)
    psnr_state, psnr_files = _state_for(psnr, weights_dir)
    gan_state, gan_files = _state_for(gan, weights_dir)
    model = archs.build(checkpoint.arch, checkpoint.scale, **checkpoint.build_options)
    _load_strict(model, interpolate_state_dicts(psnr_state, gan_state, alpha), checkpoint)
    provenance = {
        "checkpoint": name,
        "arch": checkpoint.arch,
        "scale": checkpoint.scale,
        "alpha": alpha,
        "psnr": {"checkpoint": psnr.name, **psnr_files},
        "gan": {"checkpoint": gan.name, **gan_files},
    }
    return LoadedModel(checkpoint, model.to(device).eval(), archs.arch(checkpoint.arch), provenance)


def _load_strict(model, state: dict, checkpoint: Checkpoint) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(
            f"{checkpoint.file} does not fit {checkpoint.arch} x{checkpoint.scale}: {error}"
        ) from None


def _name_hash_prefix(file: str) -> str:
    """The 8 hex digits torch.hub-style names end with (``edsr_x4-4f62e9ef.pt``), or ''."""
    tail = Path(file).stem.rsplit("-", 1)[-1] if "-" in file else ""
    return tail if len(tail) == 8 and all(c in "0123456789abcdef" for c in tail) else ""


def import_checkpoint_file(name: str, source: Path, weights_dir: Path) -> Path:
    """Install a lab's copy of a checkpoint: checked (readable, the published SHA-256 when
    known, its layout loads strictly) before it is copied in under the published file name."""
    checkpoint = get_checkpoint(name)
    if checkpoint.interpolate:
        raise CheckpointError(f"{name} blends {' and '.join(checkpoint.interpolate)}: import those two instead")
    if not source.is_file():
        raise CheckpointError(f"{source}: no such file")
    prefix = _name_hash_prefix(checkpoint.file)
    if prefix and not sha256_of(source).startswith(prefix):
        raise CheckpointError(
            f"{source.name}: its SHA-256 does not start with {prefix}, as the published name {checkpoint.file} says"
        )
    state, _ = _checked_state(checkpoint, source)
    _load_strict(archs.build(checkpoint.arch, checkpoint.scale, **checkpoint.build_options), state, checkpoint)
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / checkpoint.file
    partial = weights_dir / f".{checkpoint.file}.partial"
    shutil.copyfile(source, partial)
    partial.replace(target)  # atomic: a reader never sees half a file
    return target


def fetch_checkpoint(name: str, weights_dir: Path) -> Path:
    """Download a checkpoint that has a direct URL, then check it like an import."""
    import tempfile
    import urllib.request

    checkpoint = get_checkpoint(name)
    if checkpoint.interpolate:
        return weights_dir / checkpoint.file
    target = weights_dir / checkpoint.file
    if target.is_file():
        return target
    if not checkpoint.url:
        raise CheckpointMissing(checkpoint, weights_dir)
    with tempfile.TemporaryDirectory() as folder:
        download = Path(folder) / checkpoint.file
        try:
            with urllib.request.urlopen(checkpoint.url, timeout=120) as response, open(download, "wb") as handle:
                shutil.copyfileobj(response, handle)
        except OSError as error:
            raise CheckpointError(
                f"{checkpoint.file} could not be downloaded from {checkpoint.url} ({error}); "
                f"get it from {checkpoint.source} and run: python manage.py import_weights {name} /path/to/file"
            ) from error
        return import_checkpoint_file(name, download, weights_dir)
