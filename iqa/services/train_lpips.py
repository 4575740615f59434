"""train_lpips as a service: a study's judgments -> a trained LPIPS variant that is a metric.

The study's judgments are 2AFC triplets (``learned_data.study_triplets``); the
references are split so no reference is in both sets; training runs in
``iqa.learned.lpips_training``; the run folder (``iqa.learned.store``) becomes a metric
named after it, with model.pt's SHA-256 as its version.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from annotation.models import Study
from iqa import learned_data, metrics
from iqa.learned import lpips_arch, lpips_training, store
from iqa.learned.training import TrainingError, TrainingRun, read_rgb, split_references, torch_threads
from iqa.weights import WeightsMissing, file_sha256


@dataclass
class Outcome:
    name: str
    folder: Path
    sha256: str
    result: lpips_training.Result
    train_references: list[str]
    validation_references: list[str]
    train_triplets: int
    validation_triplets: int


def alexnet_file(weights_dir: Path) -> Path:
    """torchvision's ImageNet AlexNet: in PIPAL_WEIGHTS_DIR or torch's hub cache, checked by its hash prefix."""
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    file = lpips_arch.ALEXNET_FILE
    for candidate in (Path(weights_dir) / file, torch_home / "hub" / "checkpoints" / file):
        if candidate.is_file():
            prefix = lpips_arch.ALEXNET_FILE.rsplit("-", 1)[1].split(".")[0]
            if not file_sha256(candidate).startswith(prefix):
                raise TrainingError(
                    f"{candidate} does not have the SHA-256 prefix {prefix} its name promises: not torchvision's "
                    "ImageNet AlexNet (a corrupt copy?). Replace it, or pass another file with --backbone-file"
                )
            return candidate
    raise WeightsMissing(lpips_arch.ALEXNET_FILE, lpips_arch.ALEXNET_URL, Path(weights_dir))


def train_lpips(
    study: Study,
    settings: lpips_training.Settings,
    *,
    name: str,
    weights_dir: Path,
    resume: bool = False,
    backbone_file: Path | None = None,
    threads: int = 0,
    progress: Callable[[int, float], None] | None = None,
    announce: Callable[[str], None] | None = None,
) -> Outcome:
    lpips_training.check_settings(settings)
    metrics.check_learned_name(name)
    triplets = learned_data.study_triplets(study)
    if not triplets:
        raise TrainingError(f"study {study.slug} has no judgments (excluded raters left out): nothing to train on")
    mos_images = learned_data.study_mos_images(study)
    train_refs, validation_refs = split_references([t.reference for t in triplets], settings.holdout, settings.seed)
    validation_set = set(validation_refs)

    trunk, backbone = None, {"kind": settings.backbone}
    if settings.backbone == "pretrained":
        path = Path(backbone_file) if backbone_file else alexnet_file(weights_dir)
        trunk = lpips_arch.alexnet_trunk_state(path)
        backbone.update(
            file=path.name,
            sha256=file_sha256(path),
            verified=backbone_file is None,
            note="torchvision ImageNet AlexNet (hash prefix checked)" if backbone_file is None
            else "a user-supplied AlexNet-layout file, not checked against torchvision's",
        )
    elif backbone_file:
        raise TrainingError("--backbone-file applies to --backbone pretrained")

    index: dict[str, int] = {}
    paths: list[str] = []

    def position(path: str) -> int:
        if path not in index:
            index[path] = len(paths)
            paths.append(path)
        return index[path]

    reference_of: dict[int, int] = {}
    train, validation = [], []
    for t in triplets:
        ref, p0, p1 = position(t.reference_path), position(t.p0_path), position(t.p1_path)
        reference_of[p0] = reference_of[p1] = ref
        item = lpips_training.TrainTriplet(ref, p0, p1, t.judge, t.votes)
        (validation if t.reference in validation_set else train).append(item)
    validation_mos = {}
    for image in mos_images:
        if image.reference in validation_set:
            i = position(image.path)
            reference_of[i] = position(image.reference_path)
            validation_mos[i] = image.mos
    if not train:
        raise TrainingError("no judged pair among the training references")

    data = {
        "study": study.slug,
        "judgments_fingerprint": learned_data.data_fingerprint(triplets),
        "pairs": len(triplets),
        "votes": sum(t.votes for t in triplets),
        "train_references": train_refs,
        "validation_references": validation_refs,
        "backbone": backbone,
    }
    folder = store.learned_root(weights_dir) / name
    run = TrainingRun(folder, kind=lpips_arch.KIND, settings=settings.as_dict(), data=data, resume=resume)
    if announce:
        announce(
            f"training LPIPS-Alex ({settings.pooling} pooling, backbone {settings.backbone}"
            f"{', tuned' if settings.tune else ''}) on {len(train)} judged pairs of {len(train_refs)} reference(s); "
            f"validating on {len(validation)} pairs and {len(validation_mos)} images of {len(validation_refs)} "
            f"reference(s): {settings.iterations} iterations, batch {settings.batch}, patch {settings.patch}"
        )
    images = [read_rgb(path) for path in paths]
    with torch_threads(threads):
        result = lpips_training.train(
            images, train, validation, validation_mos, reference_of, settings, run, trunk=trunk, progress=progress
        )
    description = (
        f"LPIPS-Alex with {settings.pooling} pooling, trained by train_lpips on study {study.slug} "
        f"(backbone {settings.backbone}{', tuned' if settings.tune else ''}); lower is more similar"
    )
    sha256 = run.finish(
        config=settings.network_config(),
        state_dict=result.state_dict,
        results={
            "validation_before": result.before.as_dict(),
            "validation_after": result.after.as_dict(),
            "final_loss": result.losses[-1] if result.losses else None,
            "seconds": round(result.seconds, 2),
            "steps_this_run": result.steps,
            "convention": "2AFC score as BAPPS; SRCC/KRCC of -distance vs Elo MOS on held-out references "
            "(pooled, and the mean within references)",
        },
        metric={"higher_is_better": False, "full_reference": True, "description": description},
    )
    return Outcome(name, folder, sha256, result, train_refs, validation_refs, len(train), len(validation))
