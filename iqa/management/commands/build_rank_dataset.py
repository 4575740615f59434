from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from iqa.learned import rank_dataset as rd
from iqa.learned.training import TrainingError
from iqa.services.build_rank_dataset import SOURCES, build_rank_dataset, rank_dataset_inputs_for


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"{option} {text!r}: give comma-separated numbers") from None


class Command(BaseCommand):
    help = (
        "Build a rank dataset for train_ranker (RankSRGAN journal Sec. 4): patches of one content at several "
        "levels, a label per patch, split by source image into training and validation. Sources: "
        "'distortion' (Gaussian blur sigma 0.1/2/4 or Gaussian noise sigma 1/15/30 on 0-255, of --hr-dir images; "
        "label = sigma, higher is worse), 'interpolation' (lambda*SR + (1-lambda)*HR, lambda 0.25/0.5/0.75, SR = "
        "--model on MATLAB-bicubic LR; label = lambda, higher is worse), 'sr' (outputs of --models on "
        "MATLAB-bicubic LR, labelled per patch with --metric, e.g. niqe; direction from the metric), 'study' "
        "(a study's images per reference; label = MOS, higher is better). Writes OUT_DIR/patches/, labels.csv "
        "(patch, group, source_image, label, split) and manifest.json."
    )

    def add_arguments(self, parser):
        add = parser.add_argument
        add("out_dir", type=Path, help="new (or empty) folder to write the dataset to")
        add("--source", required=True, choices=SOURCES, help="how the levels are made")
        add("--hr-dir", type=Path, help="folder of HR images (distortion, interpolation, sr)")
        add("--study", help="study slug (source study)")
        add("--min-judgments", type=int, default=1, help="study: images need this many judgments (1)")
        add("--kind", choices=["blur", "noise"], default="blur", help="distortion: blur or noise (blur)")
        add("--sigmas", help="distortion: comma-separated sigmas (default blur 0.1,2,4 pixels; noise 1,15,30 on 0-255)")
        add(
            "--models",
            default=",".join(rd.SR_MODELS),
            help=f"sr: comma-separated SR checkpoints ({','.join(rd.SR_MODELS)}; sr_infer --list); the sharpness "
            "test looks at the first one's output (the official script's level 1, ESRGAN)",
        )
        add(
            "--model",
            default=rd.INTERPOLATION_MODEL,
            help=f"interpolation: the SR checkpoint ({rd.INTERPOLATION_MODEL}; the paper: SRGAN)",
        )
        add("--lambdas", default="0.25,0.5,0.75", help="interpolation: weights of the SR output (0.25,0.5,0.75)")
        add("--include-ends", action="store_true", help="interpolation: add lambda 0 (the HR image) and 1 (SR)")
        add("--metric", default="niqe", help="sr: metric that labels each patch (niqe)")
        add(
            "--min-gap",
            type=float,
            default=rd.SR_MIN_GAP,
            help="sr: keep a position only if every two models' labels differ by more than this, in the metric's "
            f"units ({rd.SR_MIN_GAP:g}: the official script's NIQE gap between SRGAN and ESRGAN; 0 keeps all)",
        )
        add("--device", choices=["cpu", "cuda"], help="sr: device of the metric (default: cuda if any)")
        add("--patch", type=int, default=rd.PATCH_SIZE, help=f"patch side in pixels ({rd.PATCH_SIZE})")
        add("--stride", type=int, default=rd.STRIDE, help=f"patch stride ({rd.STRIDE}, the code; the paper: 200)")
        add("--max-patches", type=int, default=rd.MAX_PATCHES, help=f"patches per image at most ({rd.MAX_PATCHES})")
        add(
            "--min-sharpness",
            type=float,
            help=f"drop flatter positions (the script's compute_sharpness; default {rd.SR_MIN_SHARPNESS:g} for sr, "
            "0 = keep all for the others)",
        )
        add(
            "--validation",
            type=float,
            default=rd.VALIDATION_SHARE,
            help=f"share of the source images kept for validation ({rd.VALIDATION_SHARE:g}; at least one)",
        )
        add("--seed", type=int, default=0, help="split, patch subsets and noise (0)")

    def handle(self, *args, out_dir, source, hr_dir, study, **options):
        needs_hr = source in ("distortion", "interpolation", "sr")
        if needs_hr and not hr_dir:
            raise CommandError(f"--source {source} needs --hr-dir (a folder of HR images)")
        if source == "study" and not study:
            raise CommandError("--source study needs --study SLUG")
        if (source == "study" and hr_dir) or (needs_hr and study):
            raise CommandError(f"--source {source} takes {'--study' if source == 'study' else '--hr-dir'} only")
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise CommandError(f"{out_dir} exists and is not an empty folder: choose a new output folder")
        min_sharpness = options["min_sharpness"]
        if min_sharpness is None:
            min_sharpness = rd.SR_MIN_SHARPNESS if source == "sr" else 0.0
        patch_options = rd.PatchOptions(
            size=options["patch"],
            stride=options["stride"],
            max_per_image=options["max_patches"],
            min_sharpness=min_sharpness,
            validation=options["validation"],
            seed=options["seed"],
        )
        builder_options = {"kind": options["kind"], "min_gap": options["min_gap"], "device": options["device"]}
        if source == "distortion":
            builder_options["sigmas"] = _floats(options["sigmas"], "--sigmas") if options["sigmas"] else None
        elif source == "interpolation":
            builder_options.update(
                model=options["model"],
                lambdas=_floats(options["lambdas"], "--lambdas"),
                include_ends=options["include_ends"],
            )
        elif source == "sr":
            models = [name.strip() for name in options["models"].split(",") if name.strip()]
            if len(set(models)) != len(models):
                raise CommandError(f"--models {options['models']}: a model is listed twice")
            builder_options.update(models=models, metric=options["metric"])
        try:
            patch_options.check()
            inputs = rank_dataset_inputs_for(source, hr_dir=hr_dir, study=study, min_judgments=options["min_judgments"])
            self.stdout.write(
                f"building a {source} rank dataset from {inputs.description}: patches {patch_options.size} px, "
                f"stride {patch_options.stride}, at most {patch_options.max_per_image} per image, sharpness >= "
                f"{patch_options.min_sharpness:g}, {patch_options.validation:.0%} of the images to validation"
            )
            with tqdm(total=len(inputs.items), unit="image", desc="build_rank_dataset", disable=None) as bar:

                def progress(done: int, count: int, name: str) -> None:
                    bar.update(done - bar.n)
                    bar.set_postfix_str(name, refresh=False)

                def announce(text: str) -> None:
                    with tqdm.external_write_mode():
                        self.stdout.write(text)

                summary = build_rank_dataset(
                    inputs, out_dir, options=patch_options, progress=progress, announce=announce, **builder_options
                )
        except TrainingError as error:  # RankDatasetError and unreadable images
            raise CommandError(str(error)) from None
        counts = summary.counts
        self.stdout.write(
            f"wrote {out_dir}: {counts['patches']} patches in {counts['groups']} groups from "
            f"{counts['source_images_with_patches']} of {counts['source_images']} images "
            f"({counts['train_patches']} train, {counts['validation_patches']} validation; validation images: "
            f"{', '.join(summary.split['validation'])}); dropped positions: {counts['dropped_flat_positions']} flat, "
            f"{counts['dropped_close_label_positions']} with too-close labels, "
            f"{counts['dropped_over_limit_positions']} over the per-image limit"
        )
