from django.core.management.base import CommandError
from django.utils import timezone

from core.weights import write_checkpoint
from iqa.training_command import StudyTrainingCommand
from sr_models import runtime, training


def label_for(slug: str) -> str:
    return f"SRResNet trained by train_sr on study {slug} — not an official checkpoint"


class Command(StudyTrainingCommand):
    help = (
        "Train a small SRResNet (RankSRGAN's, no BN) with L1 on a study's references: MATLAB-bicubic LR inputs, "
        "references split by image into training and validation, PSNR (Y, border cropped) against bicubic before "
        "and after. Writes PIPAL_WEIGHTS_DIR/trained/<name>.pth, labelled as a local training run — never one of "
        "the published checkpoints. Load it with core.weights.read_state and archs.build('srresnet', scale, "
        "nf=..., nb=...)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        defaults = training.TrainConfig()
        self.add_shared_options(
            parser,
            iterations={"default": defaults.iterations, "help": "optimiser steps (300)"},
            batch={"default": defaults.batch, "help": "crops per step (8; configs: 16)"},
        )
        parser.add_argument("--patch", type=int, default=defaults.patch, help="HR crop side (48; configs: 128)")
        self.add_shared_options(
            parser,
            lr={"default": defaults.lr, "help": "Adam learning rate (2e-4, as published)"},
            seed={"default": defaults.seed, "help": "split, crops and initial weights (0)"},
        )
        parser.add_argument("--scale", type=int, default=defaults.scale, help="upscaling factor (4)")
        parser.add_argument("--nf", type=int, default=defaults.nf, help="feature channels (64, the real network)")
        parser.add_argument("--nb", type=int, default=defaults.nb, help="residual blocks (16, the real network)")
        parser.add_argument(
            "--holdout", type=float, default=defaults.holdout, help="share of references kept for validation (0.25)"
        )
        self.add_shared_options(
            parser,
            threads={
                "default": 0,
                "help": "CPU threads for torch (0: its default; 1 is often faster on a busy machine)",
            },
            name="output file stem (default srresnet_x<scale>_<slug>_<timestamp>)",
        )

    def handle(self, *args, slug, name, threads, **options):
        study = self.study(slug)
        keys = ("iterations", "batch", "patch", "lr", "seed", "scale", "nf", "nb", "holdout")
        config = training.TrainConfig(**{key: options[key] for key in keys})
        with self.training_errors(training.TrainingError):
            training.check_config(config)
        self.check_threads(threads)
        now = timezone.now()
        name = name or f"srresnet_x{config.scale}_{study.slug}_{now.strftime('%Y%m%d-%H%M%S')}"
        self.output_name(name)
        folder = runtime.current().weights_dir / "trained"
        target = folder / f"{name}.pth"
        if target.exists():
            raise CommandError(f"{target} already exists: choose another --name")

        names, images = self.study_training_images(study)
        with self.training_errors(training.TrainingError):
            training.check_images(images, config, names)
        train_idx, val_idx = training.split_by_image(len(images), config.holdout, config.seed)
        self.stdout.write(
            f"training srresnet x{config.scale} (nf {config.nf}, nb {config.nb}) on {len(train_idx)} reference(s) "
            f"of {study.slug}, validating on {', '.join(names[i] for i in val_idx)}: {config.iterations} iterations, "
            f"batch {config.batch}, patch {config.patch}, Adam lr {config.lr:g}, seed {config.seed}"
        )

        result, wall = self.run_timed(
            lambda progress: training.train_srresnet(images, config, progress, names=names),
            steps=config.iterations,
            desc="train_sr",
            threads=threads,
            errors=(training.TrainingError,),
        )

        psnr = {
            "bicubic": round(result.psnr_bicubic, 4),
            "start": round(result.psnr_start, 4),
            "end": round(result.psnr_end, 4),
            "gain_over_bicubic_start": round(result.gain_start, 4),
            "gain_over_bicubic_end": round(result.gain_end, 4),
            "images": [names[i] for i in result.validation_indices],
            "convention": (
                f"mean over validation references of PSNR on Y (BT.601, MATLAB rgb2ycbcr) of 8-bit outputs, "
                f"{config.scale} pixels cropped at each border, peak 255; LR by MATLAB-bicubic imresize"
            ),
        }
        provenance = {
            "trained_by": "train_sr",
            "label": label_for(study.slug),
            "official": False,
            "arch": training.ARCH,
            "scale": config.scale,
            "build_options": {"nf": config.nf, "nb": config.nb},
            "study": study.slug,
            "references": names,
            "config": config.as_dict(),
            "optimizer": {
                "type": "Adam",
                "betas": list(training.BETAS),
                "schedule": "cosine",
                "eta_min": training.ETA_MIN,
            },
            "loss": "L1",
            "final_loss": result.losses[-1] if result.losses else None,
            "psnr_y_validation": psnr,
            **self.run_facts(names, result.train_indices, result.validation_indices, wall=wall, threads=threads,
                             when=now),
        }
        write_checkpoint(target, result.state_dict, provenance)

        self.stdout.write(f"PSNR-Y on validation ({', '.join(psnr['images'])}), {config.scale}-pixel border cropped:")
        self.stdout.write(f"  bicubic (MATLAB imresize)   {result.psnr_bicubic:7.2f} dB")
        for when, value, gain in (
            ("before", result.psnr_start, result.gain_start),
            ("after", result.psnr_end, result.gain_end),
        ):
            self.stdout.write(f"  SRResNet {when + ' training':18} {value:7.2f} dB  (gain over bicubic {gain:+.2f} dB)")
        self.stdout.write(f"{config.iterations} iterations in {wall:.1f} s; wrote {target} ({label_for(study.slug)})")
