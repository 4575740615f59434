"""Where metric weights come from, and a checksum of the ones a metric used (no Django here).

pyiqa fetches a weight file the first time a metric needs it (into its cache
under torch's hub dir), and torchvision does the same for backbones. Offline
labs put those files, under their published names, in one weights directory
(PIPAL_WEIGHTS_DIR). ``weight_sources`` makes the two download functions look
there first, and turns a failed download into an error that names the file,
where it comes from and where to put it. ``opened_files`` records which files
a metric read while it was built, so a score can carry a checksum of the
weights it came from.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from core.weights import WEIGHTS, WeightsError, WeightsRecord, file_sha256

# Weight files are what metrics open while they are built; these suffixes
# leave out source files and images.
WEIGHT_SUFFIXES = (".pth", ".pt", ".pkl", ".mat", ".npz", ".npy", ".ckpt", ".bin", ".safetensors", ".onnx", ".pb")


class WeightsMissing(WeightsError):
    """A file pyiqa or torchvision downloads is neither in the weights directory nor downloadable."""

    def __init__(self, file_name: str, url: str, weights_dir: Path, cause: BaseException | None = None):
        self.file_name, self.url, self.weights_dir = file_name, url, weights_dir
        reason = f" ({type(cause).__name__}: {cause})" if cause else ""
        super().__init__(
            f"weight file {file_name} is missing and could not be downloaded{reason}. "
            f"Get it from {url} and put it in {weights_dir} (PIPAL_WEIGHTS_DIR), "
            f"or run: python manage.py import_weights /path/to/{file_name}"
            + "".join(f", or: {hint}" for hint in _other_sources(file_name))
        )


def _other_sources(file_name: str) -> list[str]:
    """The commands that make a file pyiqa would download, from its weight record (NIQE's parameters)."""
    return [
        f"python manage.py fetch_weights {record.name} ({record.notes})"
        for record in weight_records()
        if record.file == file_name and record.make is not None
    ]


def _hash_prefix_ok(path: Path, hash_prefix: str | None) -> bool:
    return not hash_prefix or file_sha256(path).startswith(hash_prefix)


def _offline_aware(original, weights_dir: Path):
    """Wrap a ``download_url_to_file(url, dst, hash_prefix=None, progress=True)``."""

    def download(url, dst, hash_prefix=None, progress=True):
        name = os.path.basename(urlparse(url).path) or os.path.basename(dst)
        for candidate in (weights_dir / name, weights_dir / os.path.basename(dst)):
            if candidate.is_file():
                if not _hash_prefix_ok(candidate, hash_prefix):
                    raise WeightsMissing(name, url, weights_dir, ValueError(f"{candidate} fails its checksum"))
                Path(dst).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(candidate, dst)
                return
        try:
            original(url, dst, hash_prefix=hash_prefix, progress=progress)
        except Exception as error:  # URLError, HTTPError, timeouts, a bad hash: all mean "not here"
            with contextlib.suppress(OSError):
                os.remove(dst)
            raise WeightsMissing(name, url, weights_dir, error) from error

    return download


@contextlib.contextmanager
def weight_sources(weights_dir: Path) -> Iterator[None]:
    """While building a metric: look in ``weights_dir`` before downloading, and fail clearly.

    pyiqa and torchvision have no hook for this, so the download function of
    each is wrapped for the duration (pyiqa's ``load_file_from_url`` calls the
    name bound in its module; torchvision goes through ``torch.hub``)."""
    import torch.hub
    from pyiqa.utils import download_util

    saved = (torch.hub.download_url_to_file, download_util.download_url_to_file)
    torch.hub.download_url_to_file = _offline_aware(saved[0], weights_dir)
    download_util.download_url_to_file = _offline_aware(saved[1], weights_dir)
    try:
        yield
    finally:
        torch.hub.download_url_to_file, download_util.download_url_to_file = saved


_opened: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("pipal_opened_files", default=None)
_hook_installed = False


def _audit(event: str, args: tuple) -> None:
    if event == "open":
        opened = _opened.get()
        if opened is not None and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(os.fsdecode(args[0]))


@contextlib.contextmanager
def opened_files() -> Iterator[list[str]]:
    """Collect the weight files opened inside the block (Python's ``open`` audit event,
    which torch.load, scipy.io.loadmat and numpy.load all go through)."""
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)  # audit hooks cannot be removed: install one, gate it per context
        _hook_installed = True
    found: list[str] = []
    token = _opened.set(found)
    try:
        yield found
    finally:
        _opened.reset(token)
        kept = sorted({path for path in found if path.lower().endswith(WEIGHT_SUFFIXES) and os.path.isfile(path)})
        found[:] = kept


def weights_checksum(paths: list[str]) -> str:
    """One short checksum over (file name, content hash) of every weight file; '' when none."""
    if not paths:
        return ""
    # A file copied in from the weights directory is opened twice (source and cache copy): count names once.
    entries = sorted({f"{os.path.basename(path)}:{file_sha256(Path(path))}" for path in paths})
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry}\n".encode())
    return digest.hexdigest()[:12]


def import_weight_file(source: Path, weights_dir: Path) -> Path:
    """Copy one weight file into the weights directory under its own name.

    torchvision's names end in the first 8 hex digits of the file's SHA-256
    (``alexnet-owt-7be5be79.pth``): those are checked."""
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file")
    stem = source.stem
    prefix = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    if len(prefix) == 8 and all(c in "0123456789abcdef" for c in prefix) and not _hash_prefix_ok(source, prefix):
        raise ValueError(f"{source.name}: its SHA-256 does not start with {prefix} as its name says; a corrupt copy?")
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / source.name
    if target.resolve() != source.resolve():
        shutil.copyfile(source, target)
    return target


# NIQE's pristine model (Mittal et al. 2013, the MATLAB release's mu_prisparam and
# cov_prisparam, 36 features) ships in basicsr's source distribution on PyPI, so
# NIQE can work offline wherever the package registry is reachable.
NIQE_FILE = "niqe_modelparameters.mat"
BASICSR_SDIST = ("basicsr", "basicsr-1.4.2.tar.gz", "basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz")


def download_from_pypi(project: str, file_name: str, folder: Path, index: str = "https://pypi.org/simple") -> Path:
    """One release file from a PEP 691 (JSON) simple index, checked against the index's SHA-256."""
    import json
    import urllib.request

    request = urllib.request.Request(f"{index}/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    entry = next((entry for entry in files if entry["filename"] == file_name), None)
    if entry is None:
        raise FileNotFoundError(f"{file_name} is not on {index}/{project}/")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file_name
    with urllib.request.urlopen(entry["url"], timeout=120) as response:
        target.write_bytes(response.read())
    expected = entry["hashes"].get("sha256")
    if expected and file_sha256(target) != expected:
        target.unlink()
        raise ValueError(f"{file_name} from {index} does not match the index's SHA-256")
    return target


def niqe_parameters_from_sdist(sdist: Path, weights_dir: Path) -> Path:
    """Write pyiqa's ``niqe_modelparameters.mat`` (keys mu_prisparam, cov_prisparam)
    from the pristine parameters in basicsr's sdist."""
    import io
    import tarfile

    import numpy as np
    import scipy.io

    with tarfile.open(sdist) as archive:
        member = archive.extractfile(BASICSR_SDIST[2])
        if member is None:
            raise FileNotFoundError(f"{sdist.name} holds no {BASICSR_SDIST[2]}")
        params = np.load(io.BytesIO(member.read()))
        mu, cov = params["mu_pris_param"].reshape(1, -1), params["cov_pris_param"]
    if mu.shape != (1, 36) or cov.shape != (36, 36):
        raise ValueError(f"unexpected NIQE parameter shapes {mu.shape} and {cov.shape} in {sdist.name}")
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / NIQE_FILE
    scipy.io.savemat(target, {"mu_prisparam": mu, "cov_prisparam": cov})
    return target


def fetch_niqe_parameters(weights_dir: Path, download_dir: Path | None = None) -> Path:
    weights_dir = Path(weights_dir)
    download_dir = Path(download_dir) if download_dir is not None else weights_dir / "downloads"
    project, file_name, _ = BASICSR_SDIST
    sdist = download_dir / file_name
    if not sdist.is_file():
        sdist = download_from_pypi(project, file_name, download_dir)
    return niqe_parameters_from_sdist(sdist, weights_dir)


NIQE_PARAMETERS = WeightsRecord(
    name="niqe_parameters",
    label="NIQE's pristine model (niqe and pi)",
    file=NIQE_FILE,
    source="https://live.ece.utexas.edu/research/quality/niqe_release.zip (Mittal et al. 2013, MATLAB release); "
    "basicsr's PyPI sdist ships the same parameters",
    licence="as released by LIVE (UT Austin) for research; basicsr: Apache-2.0",
    layout="MATLAB .mat with mu_prisparam (1, 36) and cov_prisparam (36, 36)",
    normalisation="pyiqa's NIQE: Y channel of RGB in [0, 1], 96-pixel blocks",
    notes="built from basicsr's sdist",
    make=fetch_niqe_parameters,
)


def weight_records() -> list[WeightsRecord]:
    """Every weight file of the iqa app: NIQE's parameters and the learned metrics' published files."""
    from iqa.learned import official

    return [NIQE_PARAMETERS, *official.RECORDS]


def add_weight_records(registry=WEIGHTS) -> None:
    """Add iqa's records to the weights registry (``IqaConfig.ready()``; again is harmless)."""
    for record in weight_records():
        if record.name not in registry:
            registry.add(record.name, record)
