from pathlib import Path

from django.conf import settings as django_settings
from django.core.management.base import CommandError

from iqa.learned import score_predictor_arch as sp_arch
from iqa.learned import score_predictor_training as sp
from iqa.services import train_score_predictor as sp_service
from iqa.training_command import StudyTrainingCommand


class Command(StudyTrainingCommand):
    help = (
        "Train 4PP-EUSR's subjective-score predictor (MobileNetV2 with a 10-bin softmax, squared earth mover's "
        "distance; 003 Sec. 3.4/4.2) on a study's Elo MOS: each reference's MOS range mapped onto 1..10, Gaussian "
        "targets with sigma from the MOS's Elo variability; first the new layer (lr 1e-3, batch 128), then "
        "everything (lr 1e-5, batch 32); references split into training and validation. Writes "
        "PIPAL_WEIGHTS_DIR/learned/<name>/, which becomes the no-reference metric <name> (the predicted mean score) "
        "for compute_scores and run_benchmark."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        d = sp.Settings()
        self.add_shared_option(parser, "name", required=True, help="metric and folder name (lower-case, e.g. sp_pipal)")
        parser.add_argument(
            "--backbone",
            choices=sp.BACKBONE_CHOICES,
            default="pretrained",
            help="initial weights: torchvision's ImageNet MobileNetV2 read from PIPAL_WEIGHTS_DIR (pretrained: "
            "IMAGENET1K_V1, mobilenet_v2-b0353104.pth; pretrained-v2: IMAGENET1K_V2, mobilenet_v2-7ebf99e0.pth; the "
            "paper fine-tuned TensorFlow's ImageNet MobileNetV2), or random (scratch: then phase 1 fits the new "
            "layer on random features, so few --head-iterations suit it). Default pretrained",
        )
        parser.add_argument(
            "--head-iterations", type=int, default=d.head_iterations, help="phase 1 steps, new layer only (2000)"
        )
        self.add_shared_option(parser, "iterations", default=d.iterations, help="phase 2 steps, all layers (8000)")
        parser.add_argument("--head-batch", type=int, default=d.head_batch, help="phase 1 batch (128, as published)")
        self.add_shared_option(parser, "batch", default=d.batch, help="phase 2 batch (32, as published)")
        parser.add_argument("--head-lr", type=float, default=d.head_lr, help="phase 1 Adam learning rate (1e-3)")
        self.add_shared_option(parser, "lr", default=d.lr, help="phase 2 Adam learning rate (1e-5)")
        parser.add_argument("--crop", type=int, default=d.crop, help="square crop side, never rescaled (192)")
        parser.add_argument("--dropout", type=float, default=d.dropout, help="dropout before the new layer (0.75)")
        parser.add_argument(
            "--input-norm",
            choices=sp_arch.INPUT_NORMS,
            help="paper: (255x - 127.5) / 127.5, the 4PP-EUSR paper's (with Keras's ImageNet MobileNetV2); imagenet: "
            "torchvision's mean/std, what torchvision's ImageNet weights expect. Default: imagenet with a pretrained "
            "backbone, paper from scratch",
        )
        parser.add_argument(
            "--sigma-floor", type=float, default=d.sigma_floor, help="smallest target sigma, in bins (0.5)"
        )
        parser.add_argument(
            "--holdout", type=float, default=d.holdout, help="share of references kept for validation (0.2)"
        )
        self.add_shared_options(
            parser,
            seed={"default": d.seed, "help": "split, initial weights, batches, crops (0)"},
            resume="continue the run <name> from its checkpoint",
            checkpoint_every={"default": 100, "help": "steps between checkpoints (100)"},
            threads={"default": 0, "help": "CPU threads for torch (0: its default; 1 is often faster)"},
        )

    def handle(self, *args, slug, name, resume, threads, checkpoint_every, **options):
        study = self.study(slug)
        settings = sp_service.score_predictor_settings(options)
        if threads < 0 or checkpoint_every < 1:
            raise CommandError("--threads must be 0 or more and --checkpoint-every at least 1")
        total = settings.head_iterations + settings.iterations
        with self.progress_bar(total, name) as bar, self.training_errors():

            def progress(step: int, total: int, phase: str, loss: float) -> None:
                bar.update(step - bar.n)
                bar.set_postfix(phase=phase, emd2=f"{loss:.4f}", refresh=False)

            outcome = sp_service.train_score_predictor(
                study,
                settings,
                name=name,
                weights_dir=Path(django_settings.PIPAL_WEIGHTS_DIR),
                resume=resume,
                checkpoint_every=checkpoint_every,
                threads=threads,
                progress=progress,
                announce=self.announce,
            )

        v = outcome.result.results["validation"]
        self.stdout.write(
            f"held-out ({v['images']} images, {v['references']} reference(s), centre crop): "
            f"SRCC {_figure(v['srcc'])}, KRCC {_figure(v['krcc'])} pooled; per reference SRCC "
            f"{_figure(v['srcc_per_reference'])}, KRCC {_figure(v['krcc_per_reference'])} "
            f"(mean over {v['references_in_per_reference_mean']}); squared EMD {v['squared_emd']:.4f}"
        )
        self.stdout.write(
            f"{outcome.steps} steps in {outcome.seconds:.1f} s; wrote {outcome.folder}; metric {name} "
            f"(version learned+{outcome.result.sha256})"
        )


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
