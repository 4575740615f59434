from pathlib import Path

from django.conf import settings as django_settings

from iqa.learned import lpips_arch, lpips_training
from iqa.services import train_lpips as lpips_service
from iqa.training_command import StudyTrainingCommand
from iqa.weights import WeightsMissing


def _figure(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


class Command(StudyTrainingCommand):
    help = (
        "Train an LPIPS-Alex variant (max, BlurPool or L2 pooling; PIPAL Sec. 4.3) on the study's own judgments, "
        "which are 2AFC triplets (reference, left, right, choice) like LPIPS's BAPPS data. References are split "
        "into training and validation (none in both); prints the 2AFC score and SRCC/KRCC against the MOS on the "
        "held-out references, before and after. Writes PIPAL_WEIGHTS_DIR/learned/<name>/ (model.pt, manifest.json, "
        "train_state.pt); from then on <name> is a metric for compute_scores and run_benchmark."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        defaults = lpips_training.Settings()
        self.add_shared_option(
            parser, "name", required=True, help="metric name and folder, e.g. lpips_blurpool_mystudy"
        )
        parser.add_argument("--pooling", choices=lpips_arch.POOLINGS, default=defaults.pooling, help="(max)")
        parser.add_argument(
            "--backbone",
            choices=lpips_arch.BACKBONES,
            default=defaults.backbone,
            help="pretrained: torchvision's ImageNet AlexNet (alexnet-owt-7be5be79.pth in PIPAL_WEIGHTS_DIR or "
            "torch's hub cache), lin layers trained; scratch: random AlexNet, everything trained (pretrained)",
        )
        parser.add_argument("--tune", action="store_true", help="also fine-tune the pretrained AlexNet")
        parser.add_argument(
            "--backbone-file", type=Path, help="an AlexNet-layout file to start from instead (recorded as unverified)"
        )
        parser.add_argument("--blur-size", type=int, default=defaults.blur_size, help="BlurPool filter taps (4)")
        self.add_shared_options(
            parser,
            iterations={"default": defaults.iterations, "help": "optimiser steps (1000)"},
            batch={"default": defaults.batch, "help": "triplets per step (50, as LPIPS)"},
        )
        parser.add_argument("--patch", type=int, default=defaults.patch, help="aligned crop side (64, as BAPPS)")
        self.add_shared_options(
            parser,
            lr={"default": defaults.lr, "help": "Adam learning rate (1e-4, as LPIPS)"},
            seed={"default": defaults.seed, "help": "split, batches, initial weights (0)"},
        )
        parser.add_argument(
            "--holdout", type=float, default=defaults.holdout, help="share of references for validation (0.2)"
        )
        self.add_shared_options(
            parser,
            checkpoint_every={"default": defaults.checkpoint_every, "help": "steps between checkpoints (100)"},
            resume="continue the run <name> from its last checkpoint",
            threads={"default": 0, "help": "torch CPU threads (0: torch's default)"},
        )

    def handle(self, *args, slug, name, resume, backbone_file, threads, **options):
        study = self.study(slug)
        keys = ("pooling", "backbone", "tune", "blur_size", "iterations", "batch", "patch", "lr", "seed", "holdout")
        config = lpips_training.Settings(
            **{key: options[key] for key in keys}, checkpoint_every=options["checkpoint_every"]
        )
        self.check_threads(threads)
        weights_dir = Path(django_settings.PIPAL_WEIGHTS_DIR)
        with self.progress_bar(config.iterations, "train_lpips") as bar, self.training_errors(WeightsMissing):
            outcome = lpips_service.train_lpips(
                study,
                config,
                name=name,
                weights_dir=weights_dir,
                resume=resume,
                backbone_file=backbone_file,
                threads=threads,
                progress=self.step_progress(bar),
                announce=self.announce,
            )
        before, after = outcome.result.before, outcome.result.after
        self.stdout.write(
            f"held-out references ({', '.join(outcome.validation_references)}): "
            f"{after.triplets} judged pairs, {after.images} images with a MOS"
        )
        for label, evaluation in (("before training", before), ("after training", after)):
            figures = evaluation.as_dict()
            self.stdout.write(
                f"  {label}: 2AFC {_figure(figures['two_afc'])}, SRCC {_figure(figures['srcc'])}, "
                f"KRCC {_figure(figures['krcc'])}, SRCC within references {_figure(figures['srcc_per_reference'])}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"wrote {outcome.folder} (model.pt sha256 {outcome.sha256[:12]}…); metric {outcome.name} is ready: "
                f"python manage.py compute_scores {study.slug} --metrics {outcome.name}"
            )
        )
