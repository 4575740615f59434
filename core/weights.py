"""One record for every weight file the platform loads or fetches, and one loader (no Django here).

A ``WeightsRecord`` is declared beside the network that uses it (timm's pretrained config is the
model): the file name as published, the page that publishes it, a direct URL when one exists,
its SHA-256 only when the authors or a mirror state it (never invented), the licence, the key
layout the file holds and the input normalisation the network expects. SR checkpoints,
RankSRGAN's Rankers, LPIPS' AlexNet and linear layers, torchvision backbones and NIQE's
parameters are all such records, in one registry (``WEIGHTS``), so ``fetch_weights`` and
``import_weights`` loop over records and never branch on a name.

The loader reads tensors only (``torch.load(weights_only=True)``: a pickle that carries code is
refused), checks the stated checksum, unwraps the usual containers, maps the file's key layout
onto the network's with the caller's ``convert`` and loads strictly: a missing, truncated,
foreign or altered file is refused with a message that names it and how to get the right one;
random weights never stand in for real ones.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.registry import Registry

# The containers checkpoints come in: BasicSR's "params_ema" (preferred, the EMA weights it
# evaluates with) and "params", and the generic "state_dict"/"model".
# The stem of a file a trainer writes (trained/<name>.pth, example_sr/<name>.npz): a file name, never a path.
TRAINED_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}")
CONTAINER_KEYS = ("params_ema", "params", "state_dict", "model")


class WeightsError(RuntimeError):
    """A weight file that cannot be used: missing, unreadable, altered or of a foreign layout."""


class WeightsMissing(WeightsError):
    """The record's file is not in the weights directory."""

    def __init__(self, record: WeightsRecord, weights_dir: Path, cause: BaseException | None = None):
        self.record, self.weights_dir = record, Path(weights_dir)
        reason = f" ({type(cause).__name__}: {cause})" if cause else ""
        super().__init__(
            f"{record.label} needs the weight file {record.file}, which is not in {weights_dir} "
            f"(PIPAL_WEIGHTS_DIR){reason}. {record.how_to_get()}"
        )


@dataclass(frozen=True, kw_only=True)
class WeightsRecord:
    name: str  # what fetch_weights / import_weights take, e.g. "esrgan_x4", "ranker_niqe"
    label: str  # what people call it, e.g. "ESRGAN x4"
    file: str  # the file name as published
    source: str  # the page that publishes it
    licence: str
    layout: str = ""  # the key layout the file holds, in words
    normalisation: str = ""  # the input the network expects, in words
    url: str | None = None  # a direct download, when one exists (a Google Drive folder is not one)
    sha256: str | None = None  # only when the authors or a mirror state it
    notes: str = ""
    # A record made of other records (ESRGAN's network interpolation): fetch and import those.
    parts: tuple[str, ...] = ()
    # A file that is made rather than downloaded (NIQE's parameters, from basicsr's PyPI sdist):
    # make(weights_dir) -> the path it wrote.
    make: Callable[[Path], Path] | None = field(default=None, compare=False, repr=False)
    # Checks a candidate file beyond its checksum (e.g. that its layout loads strictly into the
    # network) before import or download installs it; raises WeightsError.
    check: Callable[[Path], None] | None = field(default=None, compare=False, repr=False)

    @property
    def hash_prefix(self) -> str:
        """The hex digits torch.hub-style names end with (``alexnet-owt-7be5be79.pth``), or ''."""
        stem = Path(self.file).stem
        tail = stem.rsplit("-", 1)[-1] if "-" in stem else ""
        return tail if 8 <= len(tail) <= 12 and all(c in "0123456789abcdef" for c in tail) else ""

    def how_to_get(self) -> str:
        if self.parts:
            return f"It is made of {', '.join(self.parts)}: fetch or import those."
        import_command = f"python manage.py import_weights {self.name} /path/to/{self.file}"
        if self.url or self.make:
            return (
                f"Published at {self.source}. Run: python manage.py fetch_weights {self.name} (when online), "
                f"or {import_command}"
            )
        # A Google Drive or Baidu folder is no direct download: running fetch_weights again cannot help.
        return (
            f"There is no direct download: download {self.file} by hand from {self.source}, then run: {import_command}"
        )


# Filled at start by the apps that declare records (sr_models' and iqa's AppConfig.ready()).
WEIGHTS: Registry[WeightsRecord] = Registry("weight file")


_digests: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime): big checkpoints are hashed once."""
    path = Path(path)
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _digests[key] = digest.hexdigest()
    return _digests[key]


def verify(record: WeightsRecord, path: Path) -> str:
    """The file's SHA-256, after it matched the digest the record states, if any."""
    digest = file_sha256(path)
    if record.sha256 and digest != record.sha256:
        raise WeightsError(
            f"{path} has SHA-256 {digest[:16]}…, not the published {record.sha256[:16]}… "
            f"of {record.file}: a different or damaged file"
        )
    return digest


def locate(record: WeightsRecord, weights_dir: Path) -> Path:
    path = Path(weights_dir) / record.file
    if not path.is_file():
        raise WeightsMissing(record, weights_dir)
    return path


def unwrap(state: object, file: str) -> dict:
    """The tensor dict inside a checkpoint, without DataParallel's ``module.`` prefix."""
    import torch

    for key in CONTAINER_KEYS:
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{file} holds no state dict of tensors")
    return {key.removeprefix("module."): value for key, value in state.items()}


def read_checkpoint(path: Path):
    """What a PyTorch file holds (tensors, dicts, plain values), read weights-only: a pickle that
    carries code is refused."""
    import torch

    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, pickle with code in it, not a torch file at all
        raise WeightsError(
            f"{path.name} cannot be read as a PyTorch checkpoint ({type(error).__name__}: {error})"
        ) from None


def atomic_write_bytes(path: Path, write: Callable) -> None:
    """``write(stream)`` into a temporary file in ``path``'s folder, then rename it onto ``path``: a reader
    never sees half a file, and a crash leaves none behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_checkpoint(path: Path, params: Mapping, provenance: dict) -> None:
    """A network this platform made (trained or converted) as ``{"params", "provenance"}``, written atomically;
    ``read_state`` unwraps ``params``, ``read_checkpoint(path)["provenance"]`` says where it came from."""
    import torch

    payload = {"params": dict(params), "provenance": provenance}
    atomic_write_bytes(Path(path), lambda stream: torch.save(payload, stream))


def read_state(path: Path) -> dict:
    """The tensors of a PyTorch file, read weights-only and unwrapped."""
    return unwrap(read_checkpoint(path), Path(path).name)


def load_state(
    record: WeightsRecord, path: Path, *, convert: Callable[[Mapping], dict] | None = None
) -> tuple[dict, dict]:
    """(the file's tensors in the network's layout, provenance) after the stated checksum matched.
    ``convert`` maps the published key layout onto the network's and raises on a foreign one."""
    digest = verify(record, path)
    state = read_state(path)
    if convert is not None:
        try:
            state = convert(state)
        except (KeyError, ValueError) as error:
            raise WeightsError(f"{Path(path).name}: not {record.layout or record.label} ({error})") from None
    return state, {"file": record.file, "sha256": digest}


def load_strict(model, state: Mapping, record: WeightsRecord) -> None:
    """Every parameter and buffer from the file, none left over (torch's strict load)."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise WeightsError(f"{record.file} does not fit {record.label}: {error}") from None


def install(record: WeightsRecord, source: Path, weights_dir: Path) -> Path:
    """Install a lab's copy of a record's file: checked (its stated checksum, the record's own
    check) before it is copied in under the published name, atomically."""
    if record.parts:
        raise WeightsError(f"{record.name} is made of {' and '.join(record.parts)}: import those instead")
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"{source}: no such file")
    digest = verify(record, source)
    # A torch.hub-style name carries the first digits of the published file's SHA-256: checked
    # when a lab's copy comes in (a file made here under that name, e.g. in tests, still loads).
    if record.hash_prefix and not digest.startswith(record.hash_prefix):
        raise WeightsError(
            f"{source.name}: its SHA-256 does not start with {record.hash_prefix}, "
            f"as the published name {record.file} says: a different or damaged file"
        )
    if record.check is not None:
        record.check(source)
    weights_dir = Path(weights_dir)
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / record.file
    partial = weights_dir / f".{record.file}.partial"
    shutil.copyfile(source, partial)
    partial.replace(target)  # a reader never sees half a file
    return target


def fetch(record: WeightsRecord, weights_dir: Path) -> list[Path]:
    """Make the record's file(s) available in ``weights_dir``: already there, made (``make``) or
    downloaded from the direct URL and checked like an import. Raises WeightsMissing naming the
    source page when none of those can be done."""
    weights_dir = Path(weights_dir)
    if record.parts:
        return [path for part in record.parts for path in fetch(WEIGHTS.get(part), weights_dir)]
    target = weights_dir / record.file
    if target.is_file():
        return [target]
    if record.make is not None:
        try:
            return [record.make(weights_dir)]
        except (OSError, ValueError) as error:
            raise WeightsMissing(record, weights_dir, error) from error
    if not record.url:
        raise WeightsMissing(record, weights_dir)
    with tempfile.TemporaryDirectory() as folder:
        download = Path(folder) / record.file
        try:
            with urllib.request.urlopen(record.url, timeout=120) as response, open(download, "wb") as handle:
                shutil.copyfileobj(response, handle)
        except OSError as error:
            raise WeightsMissing(record, weights_dir, error) from error
        return [install(record, download, weights_dir)]
