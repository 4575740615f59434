"""train_score_predictor as a service: a study's Elo MOS -> 4PP-EUSR's score predictor as a metric.

Each judged image becomes a Gaussian target over 10 bins (``score_predictor_training.mos_targets``);
references are split so no reference is in both sets; training runs in
``iqa.learned.score_predictor_training``; the run folder (``iqa.learned.store``) becomes a
no-reference metric named after it, with model.pt's SHA-256 as its version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from annotation.models import Study
from iqa import metrics
from iqa.learned import score_predictor_arch as sp_arch
from iqa.learned import score_predictor_training as sp
from iqa.learned import store
from iqa.learned.training import TrainingError, TrainingRun, read_rgb, split_references, torch_threads
from iqa.learned_data import data_fingerprint, study_mos_images

# Settings fields a caller gives (input_norm None: the backbone's usual one)
SETTING_FIELDS = (
    "iterations",
    "head_iterations",
    "batch",
    "head_batch",
    "lr",
    "head_lr",
    "crop",
    "dropout",
    "input_norm",
    "backbone",
    "sigma_floor",
    "holdout",
    "seed",
)


@dataclass
class Outcome:
    name: str
    folder: Path
    result: sp.TrainResult
    train_references: list[str]
    validation_references: list[str]
    skipped_references: list[str]
    steps: int  # steps of this session
    seconds: float  # of the training call


def score_predictor_settings(values: Mapping) -> sp.Settings:
    """Settings from ``values`` (SETTING_FIELDS); input_norm None: imagenet with a pretrained backbone,
    paper from scratch."""
    chosen = {key: values[key] for key in SETTING_FIELDS}
    if chosen["input_norm"] is None:
        chosen["input_norm"] = "imagenet" if chosen["backbone"].startswith("pretrained") else "paper"
    return sp.Settings(**chosen)


def _sample(target: sp.Target, path: str) -> sp.Sample:
    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError as error:
        raise TrainingError(f"{target.name}: cannot read {path} ({error})") from None
    return sp.Sample(
        name=target.name,
        path=path,
        reference=target.reference,
        width=width,
        height=height,
        mos=target.mos,
        mean=target.mean,
        sigma=target.sigma,
    )


def train_score_predictor(
    study: Study,
    settings: sp.Settings,
    *,
    name: str,
    weights_dir: Path,
    resume: bool = False,
    checkpoint_every: int = 100,
    threads: int = 0,
    progress: Callable[[int, int, str, float], None] | None = None,
    announce: Callable[[str], None] | None = None,
) -> Outcome:
    """Raises TrainingError or LearnedModelError with a message that says why."""
    settings.check()
    metrics.check_learned_name(name)
    items = study_mos_images(study)
    if not items:
        raise TrainingError(
            f"study {study.slug} has no judged images: collect judgments first (or simulate_study on a copy)"
        )
    targets, skipped = sp.mos_targets(items, sigma_floor=settings.sigma_floor)
    references = sorted({target.reference for target in targets})
    if len(references) < 2:
        raise TrainingError(
            f"study {study.slug} has {len(references)} reference(s) with at least two judged images of different "
            f"MOS (skipped: {', '.join(skipped) or 'none'}); training needs at least 2 (one to train on, one to "
            "validate on)"
        )
    train_refs, validation_refs = split_references(references, settings.holdout, settings.seed)
    backbone = sp.backbone_state(settings.backbone, Path(weights_dir))
    paths = {item.name: item.path for item in items}
    samples = [_sample(target, paths[target.name]) for target in targets]
    data = {
        "study": study.slug,
        # names, MOS and Elo values, not file paths: a moved media folder still resumes
        "fingerprint": data_fingerprint((i.name, i.reference, i.mos, tuple(i.recent_elo)) for i in items),
        "images": len(samples),
        "train_references": train_refs,
        "validation_references": validation_refs,
        "skipped_references": skipped,
    }
    folder = store.learned_root(Path(weights_dir)) / name
    run = TrainingRun(
        folder, kind=sp_arch.KIND, settings=sp.run_settings(settings, backbone[1]), data=data, resume=resume
    )

    train_set = set(train_refs)
    train_samples = [sample for sample in samples if sample.reference in train_set]
    validation_samples = [sample for sample in samples if sample.reference not in train_set]
    init = backbone[1]["init"]
    if announce:
        announce(
            f"training score predictor {name} (MobileNetV2, backbone {init}) on {len(train_samples)} images of "
            f"{len(train_refs)} reference(s) of {study.slug}, validating on {len(validation_samples)} images of "
            f"{', '.join(validation_refs)}: {settings.head_iterations} head steps (batch {settings.head_batch}, "
            f"lr {settings.head_lr:g}) + {settings.iterations} steps (batch {settings.batch}, lr {settings.lr:g}), "
            f"crop {settings.crop}, seed {settings.seed}" + (" (resumed)" if resume else "")
        )
        if skipped:
            announce(f"skipped (fewer than 2 judged images or one MOS value): {', '.join(skipped)}")
    description = (
        f"4PP-EUSR subjective-score predictor (MobileNetV2, 10-bin softmax, squared EMD; backbone {init}) "
        f"trained by train_score_predictor on study {study.slug}: mean predicted score 1-10 of the centre "
        f"{settings.crop}px crop. Not the paper's weights"
    )
    started = time.perf_counter()
    with torch_threads(threads):
        result = sp.train(
            train_samples=train_samples,
            validation_samples=validation_samples,
            settings=settings,
            run=run,
            read=read_rgb,
            backbone=backbone,
            metric_description=description,
            progress=progress,
            checkpoint_every=checkpoint_every,
        )
    seconds = time.perf_counter() - started
    steps = settings.head_iterations + settings.iterations - result.steps_before
    return Outcome(name, folder, result, train_refs, validation_refs, skipped, steps, seconds)
