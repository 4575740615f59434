from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from iqa.learned import rank_dataset, ranker, store
from iqa.learned.training import TrainingError, TrainingRun, torch_threads

# option -> RankerSettings field; None on the command line means "the default, or the earlier run's on --resume"
SETTING_OPTIONS = ("iterations", "batch", "crop", "lr", "weight_decay", "lr_steps", "lr_gamma", "seed", "nf")


class Command(BaseCommand):
    help = (
        "Train a RankSRGAN Ranker (VGG-12, margin-ranking loss, margin 0.5) on a rank dataset from "
        "build_rank_dataset, validate it (SROCC of its scores against the labels on the validation images) and "
        "register it as a no-reference metric named --name (version: the SHA-256 of its weights; direction from "
        "the labels: a Ranker scores higher-label images higher, so with higher-is-worse labels lower is better). "
        "Writes PIPAL_WEIGHTS_DIR/learned/<name>/ (model.pt, manifest.json, train_state.pt); --resume continues "
        "an interrupted or finished run from its last checkpoint. Defaults follow the released train_Ranker.yml "
        "(Adam lr 1e-4, weight decay 1e-4, batch 16, 128-px crops with flips/rotations, lr x0.5 at 1/4 and 1/2 "
        "of the run)."
    )

    def add_arguments(self, parser):
        defaults = ranker.RankerSettings()
        parser.add_argument("dataset_dir", type=Path, help="a folder written by build_rank_dataset")
        parser.add_argument("--name", required=True, help="metric and folder name (lower-case, e.g. ranker_blur)")
        parser.add_argument("--iterations", type=int, help=f"optimiser steps in all ({defaults.iterations})")
        parser.add_argument("--batch", type=int, help=f"pairs per step ({defaults.batch})")
        parser.add_argument("--crop", type=int, help=f"training crop side, 0 = whole patches ({defaults.crop})")
        parser.add_argument("--lr", type=float, help=f"Adam learning rate ({defaults.lr:g}; the paper says 1e-3)")
        parser.add_argument("--weight-decay", type=float, help=f"Adam weight decay ({defaults.weight_decay:g})")
        parser.add_argument(
            "--lr-steps", help="comma-separated iterations where the rate is halved (default: 1/4 and 1/2 of the run)"
        )
        parser.add_argument("--lr-gamma", type=float, help=f"rate factor at each step ({defaults.lr_gamma:g})")
        parser.add_argument("--seed", type=int, help=f"weights, pairs and crops ({defaults.seed})")
        parser.add_argument("--nf", type=int, help=f"network width ({defaults.nf}: the official Ranker)")
        parser.add_argument("--resume", action="store_true", help="continue the run --name from its last checkpoint")
        parser.add_argument(
            "--checkpoint-every", type=int, default=100, help="write train_state.pt every this many steps (100)"
        )
        parser.add_argument(
            "--validation-groups",
            type=int,
            default=0,
            help="validate on a seeded random subset of this many validation groups (0: all, the default)",
        )
        parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when a GPU is present")
        parser.add_argument(
            "--threads", type=int, default=0, help="CPU threads for torch (0: its default; results depend on it)"
        )

    def handle(
        self, *args, dataset_dir, name, resume, checkpoint_every, validation_groups, device, threads, **options
    ):
        from iqa import metrics

        if min(threads, checkpoint_every, validation_groups) < 0:
            raise CommandError("--threads, --checkpoint-every and --validation-groups must be 0 or more")
        try:
            store.check_name(name)
            device = metrics.check_device(device)
            dataset = rank_dataset.load(dataset_dir)
        except (store.LearnedModelError, rank_dataset.RankDatasetError, ValueError) as error:
            raise CommandError(str(error)) from None
        folder = store.learned_root(Path(settings.PIPAL_WEIGHTS_DIR)) / name
        train_settings = self._settings(options, folder, resume)
        counts = rank_dataset.describe(dataset)
        data = {
            "rank_dataset": dataset.fingerprint(),
            "source": dataset.source,
            "label": dataset.manifest["label"],
            "split": {"train": dataset.source_images("train"), "validation": dataset.source_images("validation")},
            "counts": counts,
        }
        try:
            run = TrainingRun(folder, kind=ranker.KIND, settings=train_settings.as_dict(), data=data, resume=resume)
        except (TrainingError, store.LearnedModelError) as error:
            raise CommandError(str(error)) from None
        resolved = train_settings.resolved()
        self.stdout.write(
            f"training Ranker {name} (nf {resolved.nf}) on {dataset.folder} ({dataset.source}): "
            f"{counts['train']['pairs']} pairs in {counts['train']['groups_with_pairs']} groups of "
            f"{counts['train']['source_images']} image(s); validating on {counts['validation']['patches']} patches of "
            f"{counts['validation']['source_images']} image(s). {resolved.iterations} iterations, "
            f"batch {resolved.batch}, "
            f"crop {resolved.crop or 'whole patches'}, Adam lr {resolved.lr:g} (x{resolved.lr_gamma:g} at "
            f"{', '.join(map(str, resolved.lr_steps))}), weight decay {resolved.weight_decay:g}, seed {resolved.seed}, "
            f"{device}"
        )
        bar = tqdm(total=resolved.iterations, unit="it", desc="train_ranker", disable=None)
        validation_bar = None

        def progress(step: int, loss: float) -> None:
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

        def validation_progress(done: int, total: int) -> None:
            nonlocal validation_bar
            if validation_bar is None:
                validation_bar = tqdm(total=total, unit="group", desc="validation", disable=None)
            validation_bar.update(done - validation_bar.n)

        try:
            with torch_threads(threads):
                result = ranker.train(
                    dataset,
                    train_settings,
                    run,
                    progress,
                    device=device,
                    checkpoint_every=checkpoint_every,
                    validation_groups=validation_groups,
                    validation_progress=validation_progress,
                )
        except (TrainingError, rank_dataset.RankDatasetError, store.LearnedModelError) as error:
            raise CommandError(str(error)) from None
        finally:
            bar.close()
            if validation_bar is not None:
                validation_bar.close()
        figures = result.results
        direction = "higher" if not dataset.higher_is_worse else "lower"
        self.stdout.write(
            f"validation SROCC {_show(figures['srocc'])} (pooled over {figures['validation_patches']} patches, label "
            f"ranks within groups; against the label values {_show(figures['srocc_label_values'])}, mean per group "
            f"{_show(figures['srocc_group_mean'])}); pair accuracy {_show(figures['pair_accuracy'])} over "
            f"{figures['validation_pairs']} pairs"
        )
        if result.steps_before:
            self.stdout.write(f"resumed at step {result.steps_before}")
        self.stdout.write(
            f"wrote {folder} (model.pt SHA-256 {result.sha256[:12]}…, final loss {figures['final_loss']:.4f}): metric "
            f"{name}, no-reference, {direction} is better — use it with compute_scores --metrics {name}"
        )

    @staticmethod
    def _settings(options: dict, folder: Path, resume: bool) -> ranker.RankerSettings:
        """Options given on the command line; the rest from the earlier run (--resume) or the defaults."""
        given = {key: options[key] for key in SETTING_OPTIONS if options.get(key) is not None}
        if "lr_steps" in given:
            try:
                given["lr_steps"] = tuple(int(part) for part in given["lr_steps"].split(",") if part.strip())
            except ValueError:
                raise CommandError(f"--lr-steps {given['lr_steps']!r}: give comma-separated iterations") from None
        base: dict = {}
        if resume:
            try:
                base = dict(store.read_manifest(folder).get("settings", {}))
            except store.LearnedModelError as error:
                raise CommandError(f"--resume: {error}") from None
            if "lr_steps" in base:
                base["lr_steps"] = tuple(base["lr_steps"])
            base = {key: value for key, value in base.items() if key in ranker.RankerSettings.__dataclass_fields__}
        try:
            train_settings = ranker.RankerSettings(**{**base, **given})
            ranker.check_settings(train_settings)
        except TypeError as error:
            raise CommandError(f"settings: {error}") from None
        except TrainingError as error:
            raise CommandError(str(error)) from None
        return train_settings


def _show(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
