"""train_ranker as a service: a rank dataset folder -> a trained RankSRGAN Ranker that is a metric.

The dataset is one ``build_rank_dataset`` wrote (``iqa.learned.rank_dataset``); the settings are the
ones given, the rest from the earlier run on resume, else ``RankerSettings``' defaults; training runs
in ``iqa.learned.ranker_training``; the run folder (``iqa.learned.store``) becomes a no-reference
metric named after it, with model.pt's SHA-256 as its version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from iqa import metrics
from iqa.learned import rank_dataset, ranker_arch, ranker_training, store
from iqa.learned.training import TrainingError, TrainingRun, torch_threads

# RankerSettings fields a caller may give; a field not given is the default, or the earlier run's on resume.
SETTING_FIELDS = ("iterations", "batch", "crop", "lr", "weight_decay", "lr_steps", "lr_gamma", "seed", "nf")


@dataclass
class Outcome:
    name: str
    folder: Path
    dataset: rank_dataset.RankDataset
    device: str
    settings: ranker_training.RankerSettings  # resolved: the schedule filled in
    result: ranker_training.TrainResult

    @property
    def higher_is_better(self) -> bool:
        """A Ranker scores higher-label images higher: with higher-is-worse labels, lower is better."""
        return not self.dataset.higher_is_worse


def ranker_settings(
    given: Mapping, *, name: str, weights_dir: Path, resume: bool = False
) -> ranker_training.RankerSettings:
    """The settings of a run: ``given`` (SETTING_FIELDS, None = not given), the rest from the earlier run
    ``name`` (resume) or the defaults; checked."""
    metrics.check_learned_name(name)
    chosen = {key: given[key] for key in SETTING_FIELDS if given.get(key) is not None}
    if "lr_steps" in chosen:
        chosen["lr_steps"] = tuple(chosen["lr_steps"])
    base: dict = {}
    if resume:
        try:
            base = dict(store.read_manifest(store.learned_root(weights_dir) / name).get("settings", {}))
        except store.LearnedModelError as error:
            raise TrainingError(f"--resume: {error}") from None
        if "lr_steps" in base:
            base["lr_steps"] = tuple(base["lr_steps"])
        fields = ranker_training.RankerSettings.__dataclass_fields__
        base = {key: value for key, value in base.items() if key in fields}
    try:
        settings = ranker_training.RankerSettings(**{**base, **chosen})
    except TypeError as error:
        raise TrainingError(f"settings: {error}") from None
    ranker_training.check_settings(settings)
    return settings


def train_ranker(
    dataset_dir: Path,
    settings: ranker_training.RankerSettings,
    *,
    name: str,
    weights_dir: Path,
    resume: bool = False,
    device: str | None = None,
    checkpoint_every: int = 100,
    validation_groups: int = 0,
    threads: int = 0,
    progress: Callable[[int, float], None] | None = None,
    validation_progress: Callable[[int, int], None] | None = None,
    announce: Callable[[str], None] | None = None,
) -> Outcome:
    """Raises TrainingError (RankDatasetError among them) or LearnedModelError with a message that says why."""
    metrics.check_learned_name(name)
    try:
        device = metrics.check_device(device)
    except ValueError as error:
        raise TrainingError(str(error)) from None
    dataset = rank_dataset.load(dataset_dir)
    folder = store.learned_root(Path(weights_dir)) / name
    counts = rank_dataset.describe(dataset)
    data = {
        "rank_dataset": dataset.fingerprint(),
        "source": dataset.source,
        "label": dataset.manifest["label"],
        "split": {"train": dataset.source_images("train"), "validation": dataset.source_images("validation")},
        "counts": counts,
    }
    run = TrainingRun(folder, kind=ranker_arch.KIND, settings=settings.as_dict(), data=data, resume=resume)
    resolved = settings.resolved()
    if announce:
        announce(
            f"training Ranker {name} (nf {resolved.nf}) on {dataset.folder} ({dataset.source}): "
            f"{counts['train']['pairs']} pairs in {counts['train']['groups_with_pairs']} groups of "
            f"{counts['train']['source_images']} image(s); validating on {counts['validation']['patches']} patches of "
            f"{counts['validation']['source_images']} image(s). {resolved.iterations} iterations, "
            f"batch {resolved.batch}, "
            f"crop {resolved.crop or 'whole patches'}, Adam lr {resolved.lr:g} (x{resolved.lr_gamma:g} at "
            f"{', '.join(map(str, resolved.lr_steps))}), weight decay {resolved.weight_decay:g}, seed {resolved.seed}, "
            f"{device}"
        )
    with torch_threads(threads):
        result = ranker_training.train(
            dataset,
            settings,
            run,
            progress,
            device=device,
            checkpoint_every=checkpoint_every,
            validation_groups=validation_groups,
            validation_progress=validation_progress,
        )
    return Outcome(name, folder, dataset, device, resolved, result)
