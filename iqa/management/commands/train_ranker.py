from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

from iqa.learned import ranker_training
from iqa.services import train_ranker as ranker_service
from iqa.training_command import TrainingCommand


class Command(TrainingCommand):
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
        defaults = ranker_training.RankerSettings()
        parser.add_argument("dataset_dir", type=Path, help="a folder written by build_rank_dataset")
        # None on the command line: the default, or the earlier run's on --resume
        self.add_shared_options(
            parser,
            name={"required": True, "help": "metric and folder name (lower-case, e.g. ranker_blur)"},
            iterations=f"optimiser steps in all ({defaults.iterations})",
            batch=f"pairs per step ({defaults.batch})",
        )
        parser.add_argument("--crop", type=int, help=f"training crop side, 0 = whole patches ({defaults.crop})")
        self.add_shared_option(parser, "lr", help=f"Adam learning rate ({defaults.lr:g}; the paper says 1e-3)")
        parser.add_argument("--weight-decay", type=float, help=f"Adam weight decay ({defaults.weight_decay:g})")
        parser.add_argument(
            "--lr-steps", help="comma-separated iterations where the rate is halved (default: 1/4 and 1/2 of the run)"
        )
        parser.add_argument("--lr-gamma", type=float, help=f"rate factor at each step ({defaults.lr_gamma:g})")
        self.add_shared_option(parser, "seed", help=f"weights, pairs and crops ({defaults.seed})")
        parser.add_argument("--nf", type=int, help=f"network width ({defaults.nf}: the official Ranker)")
        self.add_shared_options(
            parser,
            resume="continue the run --name from its last checkpoint",
            checkpoint_every={"default": 100, "help": "write train_state.pt every this many steps (100)"},
        )
        parser.add_argument(
            "--validation-groups",
            type=int,
            default=0,
            help="validate on a seeded random subset of this many validation groups (0: all, the default)",
        )
        self.add_shared_options(
            parser,
            device="default: cuda when a GPU is present",
            threads={"default": 0, "help": "CPU threads for torch (0: its default; results depend on it)"},
        )

    def handle(self, *args, dataset_dir, name, resume, checkpoint_every, validation_groups, device, threads, **options):
        if min(threads, checkpoint_every, validation_groups) < 0:
            raise CommandError("--threads, --checkpoint-every and --validation-groups must be 0 or more")
        if options.get("lr_steps") is not None:
            try:
                options["lr_steps"] = tuple(int(part) for part in options["lr_steps"].split(",") if part.strip())
            except ValueError:
                raise CommandError(f"--lr-steps {options['lr_steps']!r}: give comma-separated iterations") from None
        weights_dir = Path(settings.PIPAL_WEIGHTS_DIR)
        with self.training_errors():
            train_settings = ranker_service.ranker_settings(options, name=name, weights_dir=weights_dir, resume=resume)
        bar = self.progress_bar(train_settings.resolved().iterations, "train_ranker")
        validation_bar = None

        def validation_progress(done: int, total: int) -> None:
            nonlocal validation_bar
            if validation_bar is None:
                validation_bar = self.progress_bar(total, "validation", unit="group")
            validation_bar.update(done - validation_bar.n)

        try:
            with self.training_errors():
                outcome = ranker_service.train_ranker(
                    dataset_dir,
                    train_settings,
                    name=name,
                    weights_dir=weights_dir,
                    resume=resume,
                    device=device,
                    checkpoint_every=checkpoint_every,
                    validation_groups=validation_groups,
                    threads=threads,
                    progress=self.step_progress(bar),
                    validation_progress=validation_progress,
                    announce=self.announce,
                )
        finally:
            bar.close()
            if validation_bar is not None:
                validation_bar.close()
        result = outcome.result
        figures = result.results
        direction = "higher" if outcome.higher_is_better else "lower"
        self.stdout.write(
            f"validation SROCC {_show(figures['srocc'])} (pooled over {figures['validation_patches']} patches, label "
            f"ranks within groups; against the label values {_show(figures['srocc_label_values'])}, mean per group "
            f"{_show(figures['srocc_group_mean'])}); pair accuracy {_show(figures['pair_accuracy'])} over "
            f"{figures['validation_pairs']} pairs"
        )
        if result.steps_before:
            self.stdout.write(f"resumed at step {result.steps_before}")
        self.stdout.write(
            f"wrote {outcome.folder} (model.pt SHA-256 {result.sha256[:12]}…, final loss {figures['final_loss']:.4f}): "
            f"metric {name}, no-reference, {direction} is better — use it with compute_scores --metrics {name}"
        )


def _show(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
