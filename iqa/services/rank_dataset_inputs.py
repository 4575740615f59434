"""What ``build_rank_dataset`` needs from the rest of the platform: HR folders, SR checkpoints, metrics
and a study's MOS, in the shapes ``iqa.learned.rank_dataset`` takes (the builders themselves are pure).

Every failure becomes a ``RankDatasetError`` that names the file, model, metric or study."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings

from annotation.models import Study
from core.dataset_paths import dataset_files
from iqa.learned.rank_dataset import PatchMetric, RankDatasetError, StudyImage, Upscaler
from iqa.learned.training import read_rgb

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".ppm")


def hr_folder_images(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(file stem, pixels) of every image file directly in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RankDatasetError(f"--hr-dir {folder} is not a folder")
    paths, outside = dataset_files(folder, suffixes=IMAGE_SUFFIXES)
    if outside:
        raise RankDatasetError(f"--hr-dir {folder}: " + "; ".join(outside))
    if not paths:
        raise RankDatasetError(f"--hr-dir {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    stems = [p.stem for p in paths]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise RankDatasetError(f"--hr-dir {folder}: several files share the name(s) {', '.join(repeated[:5])}")
    return [(path.stem, read_rgb(path)) for path in paths]


def sr_upscaler(name: str) -> Upscaler:
    """A bundled SR checkpoint as ``LR uint8 -> SR uint8``, loaded now (so a missing file stops the build
    before any work), run with the SR runtime's device, precision and tiling."""
    from sr_models import inference, runtime, weights

    try:
        checkpoint = weights.get_checkpoint(name)
    except KeyError:
        known = ", ".join(weights.checkpoint_names())
        raise RankDatasetError(f"unknown SR model {name!r}; known: {known}") from None
    if checkpoint.scale != 4:
        raise RankDatasetError(f"{name} is x{checkpoint.scale}; rank datasets use x4 models (the paper's)")
    try:
        loaded = runtime.model(name)
    except weights.WeightsError as error:
        raise RankDatasetError(str(error)) from None
    current = runtime.current()
    device = runtime.device()

    def upscale(lr: np.ndarray) -> np.ndarray:
        return inference.upscale(
            loaded, [lr], device=device, dtype=current.dtype, tile=current.tile, overlap=current.overlap
        )[0]

    return upscale


def patch_metric(name: str, device: str | None = None) -> PatchMetric:
    """A metric of ``iqa.metrics`` as a patch scorer (uint8 patches -> floats; the HR patch as reference)."""
    import torch

    from core.weights import WeightsError
    from iqa import metrics

    try:
        loaded = metrics.load_metric(
            name, device=metrics.check_device(device), weights_dir=Path(settings.PIPAL_WEIGHTS_DIR)
        )
    except (metrics.UnknownMetric, WeightsError, ValueError) as error:
        raise RankDatasetError(f"metric {name}: {error}") from None

    def tensor(images: list[np.ndarray]) -> torch.Tensor:
        stacked = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32)
        return torch.from_numpy(stacked / np.float32(255.0))

    def score(patches: list[np.ndarray], reference: np.ndarray | None) -> list[float]:
        return loaded.score(tensor(patches), None if reference is None else tensor([reference]))

    return PatchMetric(
        name=name,
        higher_is_better=loaded.info.higher_is_better,
        full_reference=loaded.info.full_reference,
        score=score,
        version=loaded.version,
    )


def study_by_slug(slug: str) -> Study:
    try:
        return Study.objects.get(slug=slug)
    except Study.DoesNotExist:
        known = ", ".join(Study.objects.order_by("slug").values_list("slug", flat=True)[:20]) or "none"
        raise RankDatasetError(f"no study with slug {slug!r} (known: {known})") from None


def study_references(study: Study, *, min_judgments: int = 1) -> list[tuple[str, list[StudyImage]]]:
    """Per reference, its images with at least ``min_judgments`` judgments and their MOS (read on demand)."""
    from iqa.learned_data import study_mos_images

    by_reference: dict[str, list[StudyImage]] = {}
    for image in study_mos_images(study, min_judgments=min_judgments):
        path = Path(image.path)
        by_reference.setdefault(image.reference, []).append(
            StudyImage(name=image.name.rsplit(".", 1)[0], load=lambda path=path: read_rgb(path), mos=image.mos)
        )
    if not by_reference:
        raise RankDatasetError(
            f"study {study.slug} has no image with {min_judgments} judgment(s) or more: there is no MOS to rank by"
        )
    return sorted(by_reference.items())
