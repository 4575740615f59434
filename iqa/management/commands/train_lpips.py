from pathlib import Path

from django.conf import settings as django_settings
from django.core.management.base import CommandError
from tqdm import tqdm

from annotation.commands import StudyCommand
from iqa import lpips_training
from iqa.learned import lpips, store
from iqa.learned.training import TrainingError
from iqa.weights import WeightsMissing


def _figure(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


class Command(StudyCommand):
    help = (
        "Train an LPIPS-Alex variant (max, BlurPool or L2 pooling; PIPAL Sec. 4.3) on the study's own judgments, "
        "which are 2AFC triplets (reference, left, right, choice) like LPIPS's BAPPS data. References are split "
        "into training and validation (none in both); prints the 2AFC score and SRCC/KRCC against the MOS on the "
        "held-out references, before and after. Writes PIPAL_WEIGHTS_DIR/learned/<name>/ (model.pt, manifest.json, "
        "train_state.pt); from then on <name> is a metric for compute_scores and run_benchmark."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        defaults = lpips.Settings()
        parser.add_argument("--name", required=True, help="metric name and folder, e.g. lpips_blurpool_mystudy")
        parser.add_argument("--pooling", choices=lpips.POOLINGS, default=defaults.pooling, help="(max)")
        parser.add_argument(
            "--backbone",
            choices=lpips.BACKBONES,
            default=defaults.backbone,
            help="pretrained: torchvision's ImageNet AlexNet (alexnet-owt-7be5be79.pth in PIPAL_WEIGHTS_DIR or "
            "torch's hub cache), lin layers trained; scratch: random AlexNet, everything trained (pretrained)",
        )
        parser.add_argument("--tune", action="store_true", help="also fine-tune the pretrained AlexNet")
        parser.add_argument(
            "--backbone-file", type=Path, help="an AlexNet-layout file to start from instead (recorded as unverified)"
        )
        parser.add_argument("--blur-size", type=int, default=defaults.blur_size, help="BlurPool filter taps (4)")
        parser.add_argument("--iterations", type=int, default=defaults.iterations, help="optimiser steps (1000)")
        parser.add_argument("--batch", type=int, default=defaults.batch, help="triplets per step (50, as LPIPS)")
        parser.add_argument("--patch", type=int, default=defaults.patch, help="aligned crop side (64, as BAPPS)")
        parser.add_argument("--lr", type=float, default=defaults.lr, help="Adam learning rate (1e-4, as LPIPS)")
        parser.add_argument("--seed", type=int, default=defaults.seed, help="split, batches, initial weights (0)")
        parser.add_argument(
            "--holdout", type=float, default=defaults.holdout, help="share of references for validation (0.2)"
        )
        parser.add_argument(
            "--checkpoint-every", type=int, default=defaults.checkpoint_every, help="steps between checkpoints (100)"
        )
        parser.add_argument("--resume", action="store_true", help="continue the run <name> from its last checkpoint")
        parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")

    def handle(self, *args, slug, name, resume, backbone_file, threads, **options):
        study = self.study(slug)
        keys = ("pooling", "backbone", "tune", "blur_size", "iterations", "batch", "patch", "lr", "seed", "holdout")
        config = lpips.Settings(**{key: options[key] for key in keys}, checkpoint_every=options["checkpoint_every"])
        if threads < 0:
            raise CommandError(f"--threads must be 0 or more, not {threads}")
        weights_dir = Path(django_settings.PIPAL_WEIGHTS_DIR)
        with tqdm(total=config.iterations, unit="it", desc="train_lpips", disable=None) as bar:

            def progress(step: int, loss: float) -> None:
                if bar.n == 0 and step > 1:
                    bar.update(step - 1)  # resumed: the steps done before
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

            try:
                outcome = lpips_training.train_lpips(
                    study,
                    config,
                    name=name,
                    weights_dir=weights_dir,
                    resume=resume,
                    backbone_file=backbone_file,
                    threads=threads,
                    progress=progress,
                    announce=lambda text: tqdm.write(text, file=self.stdout),
                )
            except (TrainingError, store.LearnedModelError, WeightsMissing) as error:
                raise CommandError(str(error)) from None
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
