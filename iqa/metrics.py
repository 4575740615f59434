"""The metric registry: every pyiqa metric by name, plus the project's own (no Django here).

A metric has a direction (is a higher value better?), a mode (full-reference
or no-reference) and, once loaded, a version: the pyiqa version plus a
checksum of the weight files it read, so a cached score is never mixed with
one from other weights. Images are read exactly as pyiqa reads them (RGB,
[0, 1], no resizing) so a score here equals calling pyiqa on the same files.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iqa.metric_info import MetricInfo, ProjectMetric, UnknownMetric
from iqa.metric_registry import ALIASES as _ALIASES
from iqa.metric_registry import PROJECT_METRICS, PYIQA_WEIGHTS

__all__ = ["MetricInfo", "ProjectMetric", "UnknownMetric", "PROJECT_METRICS"]  # what other modules use from here

# Dataset-level scores (FID, IS) and pyiqa's pairwise-only compare2score are not per-image metrics.
NOT_PER_IMAGE = {"fid", "sfid", "fid_dinov2", "inception_score", "compare2score"}


# Where trained metric folders live (iqa.learned.store); set from PIPAL_WEIGHTS_DIR by the app.
_learned_root: Path | None = None


def _pyiqa_configs() -> dict:
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    return DEFAULT_CONFIGS


def configure_learned_root(root: Path | None) -> None:
    """Trained metrics (train_lpips, train_ranker, train_score_predictor) are the finished folders here."""
    global _learned_root
    _learned_root = Path(root) if root is not None else None


def _learned() -> dict[str, ProjectMetric]:
    if _learned_root is None:
        return {}
    from iqa.learned import store

    found = {}
    for name, manifest in store.discover(_learned_root).items():
        if name in PROJECT_METRICS or name in _ALIASES or name in _pyiqa_configs():
            continue  # a folder may not shadow a built-in metric (training refuses such names)
        metric = manifest["metric"]
        info = MetricInfo(
            name=name,
            higher_is_better=bool(metric.get("higher_is_better")),
            full_reference=bool(metric.get("full_reference")),
            source="learned",
            description=str(metric.get("description", "")),
            score_range=metric.get("score_range") or store.LEARNED_KINDS.get(manifest["kind"]).score_range,
        )
        found[name] = ProjectMetric(info, store.metric_factory(_learned_root / name))
    return found


def weights_stamp(name: str) -> tuple:
    """Changes when a trained metric's ``model.pt`` is rewritten (retrained or resumed under the same
    name), so a process that keeps loaded metrics knows to load it again; () for other metrics."""
    if _learned_root is None or name not in _learned():
        return ()
    from iqa.learned import store

    stat = (_learned_root / name / store.MODEL_FILE).stat()
    return (stat.st_mtime_ns, stat.st_size)


def builtin_names() -> set[str]:
    """Names no trained folder may take: pyiqa's, the aliases and the platform's own."""
    return {*_pyiqa_configs(), *_ALIASES, *PROJECT_METRICS.names()}


def check_learned_name(name: str) -> str:
    """A name a training run may give its metric (``iqa.learned.store.check_name`` against the built-in names)."""
    from iqa.learned import store

    return store.check_name(name, builtin_names())


def _project(name: str) -> ProjectMetric | None:
    if name in PROJECT_METRICS:
        return PROJECT_METRICS.get(name)
    return _learned().get(name)


def pyiqa_version() -> str:
    import pyiqa

    return pyiqa.__version__


def metric_names() -> list[str]:
    pyiqa_names = [name for name in _pyiqa_configs() if name not in NOT_PER_IMAGE]
    return sorted([*pyiqa_names, *_ALIASES, *PROJECT_METRICS.names(), *_learned()])


def metric_info(name: str) -> MetricInfo:
    project = _project(name)
    if project is not None:
        return project.info
    configs = _pyiqa_configs()
    pyiqa_name, options, description = _ALIASES.get(name, (name, {}, ""))
    if pyiqa_name in configs and name not in NOT_PER_IMAGE:
        config = configs[pyiqa_name]
        return MetricInfo(
            name=name,
            higher_is_better=not config.get("lower_better", False),
            full_reference=config.get("metric_mode") == "FR",
            source="pyiqa",
            pyiqa_name=pyiqa_name,
            options=options,
            description=description,
            score_range=config.get("score_range") or None,
            weights=PYIQA_WEIGHTS.get(pyiqa_name, ()),
        )
    close = difflib.get_close_matches(name, metric_names(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; list them with: python manage.py list_metrics"
    raise UnknownMetric(f"unknown metric {name!r}{hint}")


def parse_metric_list(text: str) -> list[MetricInfo]:
    """'psnr, ssim,lpips' -> infos, refusing unknown names (all of them named at once)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UnknownMetric("no metric named")
    infos, errors = [], []
    for name in dict.fromkeys(names):
        try:
            infos.append(metric_info(name))
        except UnknownMetric as error:
            errors.append(str(error))
    if errors:
        raise UnknownMetric("; ".join(errors))
    return infos


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str | None) -> str:
    import torch

    device = device or default_device()
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, not {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda was asked for but torch sees no CUDA GPU here; use --device cpu")
    return device


@dataclass
class LoadedMetric:
    info: MetricInfo
    version: str
    device: str
    model: Any

    def score(self, images, reference=None) -> list[float]:
        """Scores of a batch (N, 3, H, W) in [0, 1]; full-reference metrics get one
        reference (1, 3, H, W) shared by the whole batch."""
        import torch

        with torch.inference_mode():
            images = images.to(self.device)
            if self.info.full_reference:
                if reference is None:
                    raise ValueError(f"{self.info.name} is full-reference: it needs the reference image")
                reference = reference.to(self.device).expand(images.shape[0], -1, -1, -1)
                output = self.model(images, reference)
            else:
                output = self.model(images)
        return [float(value) for value in output.reshape(images.shape[0], -1)[:, 0].cpu()]


def load_metric(name: str, *, device: str, weights_dir: Path) -> LoadedMetric:
    """Build a metric on a device, with weights from ``weights_dir`` or pyiqa's cache
    (downloaded when online); a missing file raises weights.WeightsMissing."""
    from iqa import weights

    info = metric_info(name)
    with weights.weight_sources(weights_dir), weights.opened_files() as opened:
        if info.source in ("project", "learned"):
            model, checksum = _project(name).factory(device, weights_dir)
        else:
            import pyiqa

            model = pyiqa.create_metric(info.pyiqa_name, device=device, **info.options)
            checksum = ""
    checksum = checksum or weights.weights_checksum(opened)
    base = f"{info.source}-{pyiqa_version()}" if info.source == "pyiqa" else info.source
    if info.options:  # an alias: its options are part of what the score means
        base += "-o" + hashlib.sha256(json.dumps(info.options, sort_keys=True).encode()).hexdigest()[:8]
    version = f"{base}+{checksum}" if checksum else base
    return LoadedMetric(info=info, version=version, device=device, model=model)


def read_image(path: str | Path):
    """(3, H, W) float tensor in [0, 1], RGB: pyiqa's own reader, so scores match pyiqa's."""
    from pyiqa.utils.img_util import imread2tensor

    return imread2tensor(str(path), rgb=True)


def stack(images: Sequence) -> Any:
    import torch

    return torch.stack(list(images))

