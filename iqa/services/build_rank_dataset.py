"""build_rank_dataset as a service: which source kind reads which inputs and goes to which builder.

Inputs come from ``iqa.services.rank_dataset_inputs`` (HR folders, SR checkpoints, metrics, a study's
MOS); the builders are ``iqa.learned.rank_dataset``'s (pure). Every refusal is a ``TrainingError``
(``RankDatasetError`` among them) that names the file, model, metric or study.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from iqa.learned import rank_dataset as rd
from iqa.learned.training import TrainingError
from iqa.services import rank_dataset_inputs

SOURCES = ("distortion", "interpolation", "sr", "study")


@dataclass
class Inputs:
    """What a build reads: HR images (distortion, interpolation, sr) or a study's references (study)."""

    source: str
    items: list
    study: str  # the study's slug, '' for the HR sources
    description: str  # e.g. "study s1 (3 references)", "4 HR image(s) of /data/hr"


def rank_dataset_inputs_for(
    source: str, *, hr_dir: Path | None = None, study: str | None = None, min_judgments: int = 1
) -> Inputs:
    if source == "study":
        the_study = rank_dataset_inputs.study_by_slug(study)
        items = rank_dataset_inputs.study_references(the_study, min_judgments=min_judgments)
        return Inputs(source, items, the_study.slug, f"study {the_study.slug} ({len(items)} references)")
    items = rank_dataset_inputs.hr_folder_images(hr_dir)
    return Inputs(source, items, "", f"{len(items)} HR image(s) of {hr_dir}")


def build_rank_dataset(
    inputs: Inputs,
    out_dir: Path,
    *,
    options: rd.PatchOptions,
    progress: Callable[[int, int, str], None] | None = None,
    announce: Callable[[str], None] | None = None,
    kind: str = "blur",
    sigmas: Sequence[float] | None = None,
    model: str = rd.INTERPOLATION_MODEL,
    lambdas: Sequence[float] = (0.25, 0.5, 0.75),
    include_ends: bool = False,
    models: Sequence[str] = rd.SR_MODELS,
    metric: str = "niqe",
    min_gap: float = rd.SR_MIN_GAP,
    device: str | None = None,
):
    """The dataset's summary (``rank_dataset``'s builders). ``kind``/``sigmas``: distortion; ``model``,
    ``lambdas``, ``include_ends``: interpolation; ``models``, ``metric``, ``min_gap``, ``device``: sr."""
    source, images = inputs.source, inputs.items
    if source == "study":
        return rd.build_study(out_dir, images, study=inputs.study, options=options, progress=progress)
    if source == "distortion":
        return rd.build_distortion(out_dir, images, kind=kind, sigmas=sigmas, options=options, progress=progress)
    if source == "interpolation":
        return rd.build_interpolation(
            out_dir,
            images,
            upscale=rank_dataset_inputs.sr_upscaler(model),
            model=model,
            lambdas=list(lambdas),
            include_ends=include_ends,
            options=options,
            progress=progress,
        )
    if source != "sr":
        raise TrainingError(f"unknown rank dataset source {source!r} (known: {', '.join(SOURCES)})")
    models = list(models)
    if len(set(models)) != len(models):
        raise TrainingError(f"--models {','.join(models)}: a model is listed twice")
    upscalers = {name: rank_dataset_inputs.sr_upscaler(name) for name in models}
    patch_metric = rank_dataset_inputs.patch_metric(metric, device)
    if announce:
        announce(
            f"labels: {patch_metric.name} ({patch_metric.version}, "
            f"{'higher' if patch_metric.higher_is_better else 'lower'} is better"
            f"{', full-reference: HR patch as reference' if patch_metric.full_reference else ''}) of each patch of "
            f"{', '.join(models)}; positions kept when every two labels differ by more than {min_gap:g}"
        )
    return rd.build_sr(
        out_dir, images, upscalers=upscalers, metric=patch_metric, min_gap=min_gap, options=options, progress=progress
    )
