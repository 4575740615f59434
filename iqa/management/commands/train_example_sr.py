import contextlib
import hashlib
import io
import time
from pathlib import Path

import numpy as np
from django.core.management.base import CommandError
from django.utils import timezone
from PIL import Image

from iqa.training_command import StudyTrainingCommand, TrainingOptions
from sr_models import example_sr, runtime, training
from sr_models.evaluation import IMAGE_SUFFIXES

PSNR_CONVENTION = (
    "mean over held-out images of PSNR on Y (BT.601, MATLAB rgb2ycbcr) of 8-bit outputs, {scale} pixels "
    "cropped at each border, peak 255; LR by MATLAB-bicubic imresize of the 8-bit image"
)


def label_for(method: str, scale: int, source: str) -> str:
    return (
        f"{example_sr.SHORT_LABELS[method]} x{scale} trained by the platform on {source} "
        "— not the authors' MATLAB model"
    )


class Command(StudyTrainingCommand):
    help = (
        "Train example-based SR methods (Zeyde et al. 2010, ANR, A+; GR too) on HR images: a study's references "
        "(--study) or a folder (--hr-folder, e.g. Yang et al.'s 91 training images). Methods given together share "
        "one K-SVD dictionary. Images are split by image into training and held-out sets; PSNR-Y on the held-out "
        "ones is printed for bicubic and each method. Writes PIPAL_WEIGHTS_DIR/example_sr/<name>.npz, labelled "
        "as trained by the platform — never the authors' MATLAB models."
    )

    def add_arguments(self, parser):
        # Not super().add_arguments: StudyCommand's positional slug becomes --study, one of two sources.
        defaults = example_sr.ExampleSRConfig(method="aplus", scale=4)
        parser.add_argument(
            "methods",
            nargs="+",
            choices=example_sr.ALL_METHODS,
            metavar="METHOD",
            help=f"one or more of {', '.join(example_sr.ALL_METHODS)}",
        )
        parser.add_argument("--scale", type=int, required=True, choices=example_sr.SCALES, help="upscaling factor")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--study", metavar="SLUG", help="train on this study's references")
        source.add_argument("--hr-folder", type=Path, metavar="DIR", help="train on the images of this folder")
        self.add_shared_options(parser, name="output file stem, with one method only (default <method>_x<scale>)")
        parser.add_argument("--atoms", type=int, default=defaults.atoms, help="dictionary size (1024, as published)")
        parser.add_argument("--sparsity", type=int, default=defaults.sparsity, help="OMP atoms per patch (3)")
        parser.add_argument(
            "--ksvd-iterations", type=int, default=defaults.ksvd_iterations, help="K-SVD iterations (20)"
        )
        parser.add_argument(
            "--max-patches",
            type=int,
            default=defaults.max_patches,
            help=f"K-SVD training patches, a seeded random subset ({defaults.max_patches})",
        )
        parser.add_argument(
            "--anr-neighbours", type=int, default=defaults.anr_neighbours, help="ANR neighbourhood in atoms (40)"
        )
        parser.add_argument(
            "--aplus-samples", type=int, default=defaults.aplus_samples, help="A+ neighbourhood in samples (2048)"
        )
        parser.add_argument(
            "--aplus-pool",
            type=int,
            default=defaults.aplus_pool,
            help=f"A+ sample pool, a seeded random subset ({defaults.aplus_pool}; the authors: up to 5 million)",
        )
        parser.add_argument(
            "--aplus-scales",
            type=int,
            default=defaults.aplus_scales,
            help="image scales the A+ pool is taken from, each 0.98 times the previous (12)",
        )
        self.add_shared_options(parser, seed={"default": defaults.seed, "help": "split, patches, K-SVD (0)"})
        parser.add_argument("--holdout", type=float, default=0.25, help="share of images held out (0.25)")
        parser.add_argument("--replace", action="store_true", help="overwrite an existing model file of that name")

    def handle(self, *args, methods, scale, study, hr_folder, name, replace, holdout, **options):
        methods = list(dict.fromkeys(methods))
        if name and len(methods) > 1:
            raise CommandError("--name names one file: give it with one method only")
        keys = (
            "atoms",
            "sparsity",
            "ksvd_iterations",
            "max_patches",
            "anr_neighbours",
            "aplus_samples",
            "aplus_pool",
            "aplus_scales",
            "seed",
        )
        configs = [
            example_sr.ExampleSRConfig(method=method, scale=scale, **{key: options[key] for key in keys})
            for method in methods
        ]
        with self.training_errors(example_sr.ExampleSRError):
            for config in configs:
                example_sr.check_config(config)
        if not 0 < holdout < 1:
            raise CommandError(f"--holdout must be between 0 and 1, not {holdout}")
        weights_dir = runtime.current().weights_dir
        targets = {}
        with self.training_errors(example_sr.ExampleSRError):
            for method in methods:
                targets[method] = example_sr.model_path(weights_dir, name or f"{method}_x{scale}")
        for target in targets.values():
            if target.exists() and not replace:
                raise CommandError(
                    f"{target} already exists (study images generated with it depend on it): choose another "
                    "--name, or pass --replace to overwrite it"
                )

        if study:
            references = self.study(study)
            source, source_info = f"study {references.slug}", {"kind": "study", "study": references.slug}
            names, images, hashes = self._study_images(references)
        else:
            source, source_info = f"folder {hr_folder.name}", {"kind": "folder", "path": str(hr_folder)}
            names, images, hashes = self._folder_images(hr_folder)
        if len(images) < 2:
            raise CommandError(
                f"{source} has {len(images)} image(s); training needs at least 2 (one to train on, one to hold out)"
            )
        with self.training_errors(example_sr.ExampleSRError):
            example_sr.check_images(images, scale, names)
        train_idx, held_idx = training.split_by_image(len(images), holdout, options["seed"])
        self.stdout.write(
            f"training {', '.join(methods)} x{scale} on {len(train_idx)} image(s) of {source}, holding out "
            f"{', '.join(names[i] for i in held_idx)}: {options['atoms']} atoms, {options['ksvd_iterations']} K-SVD "
            f"iterations, up to {options['max_patches']} patches, seed {options['seed']}"
        )

        started = time.perf_counter()
        with self._stage_bars() as progress, self.training_errors(example_sr.ExampleSRError):
            models = example_sr.train_models(
                [images[i] for i in train_idx], configs, progress, names=[names[i] for i in train_idx]
            )
        wall = time.perf_counter() - started
        scores = example_sr.held_out_psnr(models, [images[i] for i in held_idx])
        mean = {key: float(np.mean(values)) for key, values in scores.items()}

        now = timezone.now()
        held_names = [names[i] for i in held_idx]
        self.stdout.write(f"PSNR-Y on held-out images ({', '.join(held_names)}), {scale}-pixel border cropped:")
        self.stdout.write(f"  {'bicubic (MATLAB imresize)':33} {mean['bicubic']:7.2f} dB")
        for model in models:
            gain = mean[model.method] - mean["bicubic"]
            self.stdout.write(f"  {model.label:33} {mean[model.method]:7.2f} dB  (gain over bicubic {gain:+.2f} dB)")
        for model in models:
            label = label_for(model.method, scale, source)
            provenance = {
                "trained_by": "train_example_sr",
                "label": label,
                "official": False,
                "method": model.method,
                "method_label": model.label,
                "scale": scale,
                "config": model.config.as_dict(),
                "pca_dimension": int(model.pca.shape[1]),
                "source": source_info,
                "training_images": [{"name": names[i], "sha256": hashes[i]} for i in train_idx],
                "held_out_images": [{"name": names[i], "sha256": hashes[i]} for i in held_idx],
                "psnr_y_held_out": {
                    "bicubic": round(mean["bicubic"], 4),
                    "method": round(mean[model.method], 4),
                    "gain_over_bicubic": round(mean[model.method] - mean["bicubic"], 4),
                    "per_image": {
                        held_names[k]: {
                            "bicubic": round(scores["bicubic"][k], 4),
                            "method": round(scores[model.method][k], 4),
                        }
                        for k in range(len(held_names))
                    },
                    "convention": PSNR_CONVENTION.format(scale=scale),
                },
                "trained_with": [config.method for config in configs],
                "wall_seconds": round(wall, 1),
                "code_version": example_sr.CODE_VERSION,
                "date": now.isoformat(),
            }
            with self.training_errors(example_sr.ExampleSRError):
                digest = example_sr.save_model(model, targets[model.method], provenance)
            self.stdout.write(f"wrote {targets[model.method]} (sha256 {digest[:12]}…): {label}")
        self.stdout.write(f"trained in {wall:.1f} s")

    @contextlib.contextmanager
    def _stage_bars(self):
        """``progress(stage, done, total)`` drawing one bar per training stage, all closed at the end."""
        bars = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                for bar in bars.values():
                    bar.close()
                bars[stage] = self.progress_bar(total, stage)
            bars[stage].update(done - bars[stage].n)

        try:
            yield progress
        finally:
            for bar in bars.values():
                bar.close()

    @staticmethod
    def _study_images(study) -> tuple[list[str], list[np.ndarray], list[str]]:
        names, images, hashes = [], [], []
        for reference in study.references.order_by("name"):
            pixels, data = TrainingOptions.reference_pixels(reference)
            images.append(pixels)
            names.append(reference.name)
            hashes.append(hashlib.sha256(data).hexdigest())
        return names, images, hashes

    @staticmethod
    def _folder_images(folder: Path) -> tuple[list[str], list[np.ndarray], list[str]]:
        if not folder.is_dir():
            raise CommandError(f"--hr-folder {folder}: no such folder")
        try:
            files = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
        except OSError as error:
            raise CommandError(f"--hr-folder {folder}: cannot be listed ({error})") from None
        names, images, hashes = [], [], []
        for path in files:
            try:
                data = path.read_bytes()
                with Image.open(io.BytesIO(data)) as image:
                    images.append(np.asarray(image.convert("RGB")).copy())
            except (OSError, ValueError) as error:
                raise CommandError(f"{path}: cannot be read as an image ({error})") from None
            names.append(path.name)
            hashes.append(hashlib.sha256(data).hexdigest())
        return names, images, hashes
