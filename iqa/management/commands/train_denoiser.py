from django.core.management.base import CommandError
from django.utils import timezone

from iqa.training_command import StudyTrainingCommand
from sr_models import runtime
from sr_models.denoisers import DENOISERS, loading
from sr_models.denoisers import training as denoiser_training

ARCH_NAMES = {"dncnn": "DnCNN", "ffdnet": "FFDNet"}


def describe_levels(task: str, levels) -> str:
    values = ", ".join(f"{level:g}" for level in levels)
    return f"Gaussian noise σ {values}" if task == "gaussian" else f"JPEG quality {values}"


def label_for(arch: str, slug: str, task: str, levels) -> str:
    return (
        f"{ARCH_NAMES[arch]} trained by the platform on study {slug} with {describe_levels(task, levels)} "
        "— not the official weights"
    )


def parse_levels(text: str | None, task: str) -> tuple:
    if not text:
        return ()
    try:
        kind = int if task == "jpeg" else float
        return tuple(kind(part) for part in text.replace(" ", "").split(",") if part)
    except ValueError:
        what = "integer JPEG qualities" if task == "jpeg" else "noise σ values"
        raise CommandError(f"--levels {text!r}: give comma-separated {what}, e.g. 15,25,35,50 or 30,20,10,5") from None


class Command(StudyTrainingCommand):
    help = (
        "Train a DnCNN (Zhang et al. 2017) or FFDNet (Zhang et al. 2018) on a study's references, with Gaussian noise "
        "or JPEG at the catalogue's levels: residual learning, DnCNN's loss, Adam 1e-3 then 1e-4; references split "
        "by image; PSNR of the noisy and of the denoised held-out images. Writes PIPAL_WEIGHTS_DIR/trained/<name>.pth "
        "in KAIR's layout, labelled as trained by the platform — never the official weights. The deep_denoising and "
        "deep_jpeg_removal distortions take <name> as their network."
    )

    def add_arguments(self, parser):
        parser.add_argument("arch", choices=sorted(ARCH_NAMES), help="dncnn or ffdnet")
        super().add_arguments(parser)
        defaults = denoiser_training.DenoiserTrainConfig()
        parser.add_argument(
            "--task", choices=["gaussian", "jpeg"], default=defaults.task, help="what to remove (gaussian)"
        )
        parser.add_argument(
            "--levels",
            default=None,
            help="comma-separated σ (0-255) or JPEG qualities, drawn uniformly per patch "
            "(default: the catalogue's, 15,25,35,50 for gaussian, 30,20,10,5 for jpeg)",
        )
        parser.add_argument(
            "--channels",
            type=int,
            choices=[1, 3],
            default=defaults.channels,
            help="3: an RGB network (default); 1: a grey one (each RGB channel, or Y for jpeg)",
        )
        parser.add_argument("--nb", type=int, default=None, help="convolutions (default: the published depth)")
        parser.add_argument("--nc", type=int, default=None, help="features (default: the published width)")
        self.add_shared_options(
            parser,
            iterations={"default": defaults.iterations, "help": "optimiser steps (300)"},
            batch={"default": defaults.batch, "help": "patches per step (16; papers: 128)"},
        )
        parser.add_argument("--patch", type=int, default=defaults.patch, help="patch side (40, DnCNN's)")
        self.add_shared_options(
            parser,
            lr={"default": defaults.lr, "help": "Adam learning rate (1e-3, a tenth of it after 60%% of the run)"},
            seed={"default": defaults.seed, "help": "split, patches, noise and initial weights (0)"},
        )
        parser.add_argument(
            "--holdout", type=float, default=defaults.holdout, help="share of references kept for validation (0.25)"
        )
        self.add_shared_options(
            parser,
            threads={
                "default": 0,
                "help": "CPU threads for torch (0: its default; 1 is often faster on a busy machine)",
            },
            name="output file stem (default <arch>_<task>_<slug>_<timestamp>)",
        )

    def handle(self, *args, arch, slug, name, threads, task, levels, **options):
        study = self.study(slug)
        keys = ("channels", "nb", "nc", "iterations", "batch", "patch", "lr", "seed", "holdout")
        config = denoiser_training.DenoiserTrainConfig(
            arch=arch, task=task, levels=parse_levels(levels, task), **{key: options[key] for key in keys}
        )
        with self.training_errors(denoiser_training.TrainingError):
            denoiser_training.check_config(config)
        config = config.resolved()
        self.check_threads(threads)
        now = timezone.now()
        name = name or f"{arch}_{task}_{study.slug}_{now.strftime('%Y%m%d-%H%M%S')}"
        self.output_name(name)
        if name in DENOISERS:
            raise CommandError(f"--name {name!r} is an official denoiser's name: choose another")
        weights_dir = runtime.current().weights_dir
        target = loading.trained_path(name, weights_dir)
        if target.exists():
            raise CommandError(f"{target} already exists: choose another --name")

        names, images = self.study_training_images(study)
        with self.training_errors(denoiser_training.TrainingError):
            denoiser_training.check_images(images, config, names)
        train_idx, val_idx = denoiser_training.split_by_image(len(images), config.holdout, config.seed)
        label = label_for(arch, study.slug, task, config.levels)
        batch_norm = ", with batch norm, merged into the convolutions when saved" if config.batch_norm else ""
        self.stdout.write(
            f"training {ARCH_NAMES[arch]} ({config.channels} channel(s), nb {config.nb}, nc {config.nc}"
            f"{batch_norm}) on {len(train_idx)} reference(s) "
            f"of {study.slug} with {describe_levels(task, config.levels)}, validating on "
            f"{', '.join(names[i] for i in val_idx)}: {config.iterations} iterations, batch {config.batch}, "
            f"patch {config.patch}, Adam lr {config.lr:g}, seed {config.seed}"
        )

        result, wall = self.run_timed(
            lambda progress: denoiser_training.train_denoiser(images, config, progress, names=names),
            steps=config.iterations,
            desc="train_denoiser",
            threads=threads,
            errors=(denoiser_training.TrainingError,),
        )

        psnr = {
            "degraded": round(result.psnr_degraded, 4),
            "denoised": round(result.psnr_denoised, 4),
            "gain": round(result.gain, 4),
            "per_level": [
                {key: (round(value, 4) if key != "level" else value) for key, value in entry.items()}
                for entry in result.per_level
            ],
            "images": [names[i] for i in result.validation_indices],
            "convention": (
                "mean over validation references and levels of PSNR on RGB (every pixel and channel, 8-bit, peak "
                "255, whole image); each reference degraded as the platform does (8-bit Gaussian noise or Pillow "
                "JPEG 4:2:0), seeded, then denoised as the deep_denoising / deep_jpeg_removal distortions do"
            ),
        }
        provenance = {
            "label": label,
            "arch": arch,
            "study": study.slug,
            "references": names,
            "config": result.config.as_dict(),
            "optimizer": {
                "type": "Adam",
                "lr": config.lr,
                "decay": f"x{denoiser_training.DECAY_FACTOR:g} after {denoiser_training.DECAY_AT:.0%} of the run",
            },
            "loss": "DnCNN Eq. (1): 1/(2N) sum ||R(y) - (y - x)||^2",
            "final_loss": result.losses[-1] if result.losses else None,
            "psnr_validation": psnr,
            **self.run_facts(names, result.train_indices, result.validation_indices, wall=wall, threads=threads,
                             when=now),
        }
        loading.save_trained(target, result.state_dict, result.options, provenance)

        self.stdout.write(f"PSNR (RGB) on validation ({', '.join(psnr['images'])}):")
        for entry in result.per_level:
            self.stdout.write(
                f"  {describe_levels(task, [entry['level']]):24} degraded {entry['degraded']:6.2f} dB  "
                f"denoised {entry['denoised']:6.2f} dB  ({entry['denoised'] - entry['degraded']:+.2f} dB)"
            )
        self.stdout.write(
            f"  {'mean':24} degraded {result.psnr_degraded:6.2f} dB  denoised {result.psnr_denoised:6.2f} dB  "
            f"({result.gain:+.2f} dB)"
        )
        self.stdout.write(f"{config.iterations} iterations in {wall:.1f} s; wrote {target} ({label})")
        self.stdout.write(f"use it as a network of deep_denoising / deep_jpeg_removal: network={name}")
