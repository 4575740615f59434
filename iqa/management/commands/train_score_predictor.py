import time
from pathlib import Path

from django.conf import settings as django_settings
from django.core.management.base import CommandError
from PIL import Image
from tqdm import tqdm

from annotation.commands import StudyCommand
from iqa.learned import score_predictor as sp
from iqa.learned import store
from iqa.learned.training import TrainingError, TrainingRun, read_rgb, split_references, torch_threads
from iqa.learned_data import data_fingerprint, study_mos_images

SETTINGS = (
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


class Command(StudyCommand):
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
        parser.add_argument("--name", required=True, help="metric and folder name (lower-case, e.g. sp_pipal)")
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
        parser.add_argument("--iterations", type=int, default=d.iterations, help="phase 2 steps, all layers (8000)")
        parser.add_argument("--head-batch", type=int, default=d.head_batch, help="phase 1 batch (128, as published)")
        parser.add_argument("--batch", type=int, default=d.batch, help="phase 2 batch (32, as published)")
        parser.add_argument("--head-lr", type=float, default=d.head_lr, help="phase 1 Adam learning rate (1e-3)")
        parser.add_argument("--lr", type=float, default=d.lr, help="phase 2 Adam learning rate (1e-5)")
        parser.add_argument("--crop", type=int, default=d.crop, help="square crop side, never rescaled (192)")
        parser.add_argument("--dropout", type=float, default=d.dropout, help="dropout before the new layer (0.75)")
        parser.add_argument(
            "--input-norm",
            choices=sp.INPUT_NORMS,
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
        parser.add_argument("--seed", type=int, default=d.seed, help="split, initial weights, batches, crops (0)")
        parser.add_argument("--resume", action="store_true", help="continue the run <name> from its checkpoint")
        parser.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints (100)")
        parser.add_argument(
            "--threads", type=int, default=0, help="CPU threads for torch (0: its default; 1 is often faster)"
        )

    def handle(self, *args, slug, name, resume, threads, checkpoint_every, **options):
        study = self.study(slug)
        if options["input_norm"] is None:
            options["input_norm"] = "imagenet" if options["backbone"].startswith("pretrained") else "paper"
        settings = sp.Settings(**{key: options[key] for key in SETTINGS})
        if threads < 0 or checkpoint_every < 1:
            raise CommandError("--threads must be 0 or more and --checkpoint-every at least 1")
        weights_dir = Path(django_settings.PIPAL_WEIGHTS_DIR)
        try:
            settings.check()
            store.check_name(name)
        except (TrainingError, store.LearnedModelError) as error:
            raise CommandError(str(error)) from None

        items = study_mos_images(study)
        if not items:
            raise CommandError(
                f"study {study.slug} has no judged images: collect judgments first (or simulate_study on a copy)"
            )
        targets, skipped = sp.mos_targets(items, sigma_floor=settings.sigma_floor)
        references = sorted({target.reference for target in targets})
        if len(references) < 2:
            raise CommandError(
                f"study {study.slug} has {len(references)} reference(s) with at least two judged images of different "
                f"MOS (skipped: {', '.join(skipped) or 'none'}); training needs at least 2 (one to train on, one to "
                "validate on)"
            )
        try:
            train_refs, validation_refs = split_references(references, settings.holdout, settings.seed)
            backbone = sp.backbone_state(settings.backbone, weights_dir)
        except TrainingError as error:
            raise CommandError(str(error)) from None
        paths = {item.name: item.path for item in items}
        samples = [self._sample(target, paths[target.name]) for target in targets]
        data = {
            "study": study.slug,
            # names, MOS and Elo values, not file paths: a moved media folder still resumes
            "fingerprint": data_fingerprint((i.name, i.reference, i.mos, tuple(i.recent_elo)) for i in items),
            "images": len(samples),
            "train_references": train_refs,
            "validation_references": validation_refs,
            "skipped_references": skipped,
        }
        folder = store.learned_root(weights_dir) / name
        try:
            run = TrainingRun(
                folder, kind=sp.KIND, settings=sp.run_settings(settings, backbone[1]), data=data, resume=resume
            )
        except (TrainingError, store.LearnedModelError) as error:
            raise CommandError(str(error)) from None

        train_set = set(train_refs)
        train_samples = [sample for sample in samples if sample.reference in train_set]
        validation_samples = [sample for sample in samples if sample.reference not in train_set]
        init = backbone[1]["init"]
        self.stdout.write(
            f"training score predictor {name} (MobileNetV2, backbone {init}) on {len(train_samples)} images of "
            f"{len(train_refs)} reference(s) of {study.slug}, validating on {len(validation_samples)} images of "
            f"{', '.join(validation_refs)}: {settings.head_iterations} head steps (batch {settings.head_batch}, "
            f"lr {settings.head_lr:g}) + {settings.iterations} steps (batch {settings.batch}, lr {settings.lr:g}), "
            f"crop {settings.crop}, seed {settings.seed}" + (" (resumed)" if resume else "")
        )
        if skipped:
            self.stdout.write(f"skipped (fewer than 2 judged images or one MOS value): {', '.join(skipped)}")
        description = (
            f"4PP-EUSR subjective-score predictor (MobileNetV2, 10-bin softmax, squared EMD; backbone {init}) "
            f"trained by train_score_predictor on study {study.slug}: mean predicted score 1-10 of the centre "
            f"{settings.crop}px crop. Not the paper's weights"
        )
        started = time.perf_counter()
        total = settings.head_iterations + settings.iterations
        with tqdm(total=total, unit="it", desc=name, disable=None) as bar:

            def progress(step: int, total: int, phase: str, loss: float) -> None:
                bar.update(step - bar.n)
                bar.set_postfix(phase=phase, emd2=f"{loss:.4f}", refresh=False)

            try:
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
            except TrainingError as error:
                raise CommandError(str(error)) from None
        wall = time.perf_counter() - started

        v = result.results["validation"]
        self.stdout.write(
            f"held-out ({v['images']} images, {v['references']} reference(s), centre crop): "
            f"SRCC {_figure(v['srcc'])}, KRCC {_figure(v['krcc'])} pooled; per reference SRCC "
            f"{_figure(v['srcc_per_reference'])}, KRCC {_figure(v['krcc_per_reference'])} "
            f"(mean over {v['references_in_per_reference_mean']}); squared EMD {v['squared_emd']:.4f}"
        )
        self.stdout.write(
            f"{total - result.steps_before} steps in {wall:.1f} s; wrote {folder}; metric {name} "
            f"(version learned+{result.sha256})"
        )

    @staticmethod
    def _sample(target: sp.Target, path: str) -> sp.Sample:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except OSError as error:
            raise CommandError(f"{target.name}: cannot read {path} ({error})") from None
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


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
