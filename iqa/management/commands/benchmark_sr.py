from pathlib import Path

import torch
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from core.weights import WeightsError
from iqa import metrics
from sr_models import evaluation, inference, runtime, weights

DEFAULT_METRICS = "psnr,ssim,niqe,nrqm,pi,lpips"


def _tensor(image, device: str):
    return torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float().div(255).to(device)


class Command(BaseCommand):
    help = (
        "The SR papers' evaluation: for every HR folder (Set5, Set14, BSD100, ...), MATLAB-bicubic LR inputs at "
        "--scale, every named bundled model plus bicubic, and PSNR/SSIM on the Y channel with --crop-border pixels "
        "cut at each border (ESRGAN Sec. 4.2, 4PP-EUSR Sec. 5), NIQE, Ma, PI and LPIPS where their weights are "
        "present, as tables with ranks (RankSRGAN Table 3, 4PP-EUSR Table 2): benchmark_sr.csv (means and ranks), "
        "per_image.csv and benchmark_sr.md. Models whose weights are missing are named and left out."
    )

    def add_arguments(self, parser):
        parser.add_argument("models", help="comma-separated checkpoints (sr_infer --list), or 'all' at --scale")
        parser.add_argument("hr_dirs", nargs="+", type=Path, help="folders of HR images, one dataset each")
        parser.add_argument("--scale", type=int, default=4, help="upscaling factor (4)")
        channel = parser.add_mutually_exclusive_group()
        channel.add_argument(
            "--y-channel", dest="y_channel", action="store_true", default=True, help="PSNR/SSIM on Y (default)"
        )
        channel.add_argument("--rgb", dest="y_channel", action="store_false", help="PSNR/SSIM on RGB instead")
        parser.add_argument("--crop-border", type=int, help="pixels cut at each border (default: --scale)")
        parser.add_argument("--metrics", default=DEFAULT_METRICS, help=f"columns ({DEFAULT_METRICS})")
        parser.add_argument("--no-bicubic", action="store_true", help="leave out the bicubic baseline row")
        parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when a GPU is present")
        parser.add_argument("--out", type=Path, help="report folder (default var/sr_benchmarks/<time>)")

    def handle(self, *args, models, hr_dirs, scale, y_channel, crop_border, metrics: str, no_bicubic, device, out,
               **options):
        crop = scale if crop_border is None else crop_border
        if scale < 2 or crop < 0:
            raise CommandError("--scale must be at least 2 and --crop-border 0 or more")
        try:
            device = metrics_device = inference.default_device() if device is None else device
            inference.check_device_dtype(device, "fp32")
        except inference.InferenceError as error:
            raise CommandError(str(error)) from None
        weights_dir = runtime.current().weights_dir
        methods, missing = self._methods(models, scale, weights_dir, device)
        for line in missing:
            self.stderr.write(f"left out: {line}")
        if not no_bicubic:
            methods.insert(0, evaluation.bicubic(scale))
        if not methods:
            raise CommandError("nothing to evaluate: every model's weights are missing and --no-bicubic was given")
        scorers, unavailable = self._scorers(metrics, y_channel, metrics_device)
        for line in unavailable:
            self.stderr.write(f"metric left out: {line}")
        if not scorers:
            raise CommandError("no metric can be computed here (see the lines above)")
        try:
            datasets = {folder.name or str(folder): evaluation.read_hr_folder(folder) for folder in hr_dirs}
        except evaluation.EvaluationError as error:
            raise CommandError(str(error)) from None
        if len(datasets) != len(hr_dirs):
            raise CommandError("two HR folders have the same name: give folders with distinct names")
        total = sum(len(images) for images in datasets.values()) * len(methods)
        with tqdm(total=total, unit="output", desc="benchmark_sr", disable=None) as bar:
            try:
                per_image = evaluation.evaluate(
                    datasets, methods, scorers, scale=scale, crop=crop, progress=lambda: bar.update(1)
                )
            except (evaluation.EvaluationError, inference.InferenceError) as error:
                raise CommandError(str(error)) from None
        table = evaluation.summary(per_image, scorers)
        notes = [
            f"x{scale}; LR by MATLAB-bicubic imresize of the modcropped HR image, rounded to 8 bits",
            f"{crop} pixels cut at each border before every metric; PSNR/SSIM on "
            + ("the Y channel (BT.601, MATLAB rgb2ycbcr)" if y_channel else "RGB"),
            "superscripts: rank among the methods (1 = best by the metric's direction)",
            *[f"left out (weights missing): {line}" for line in missing],
            *[f"metric left out: {line}" for line in unavailable],
        ]
        text = evaluation.markdown(table, scorers, title=f"SR benchmark x{scale}", notes=notes)
        out = out or Path(settings.VAR_DIR) / "sr_benchmarks" / timezone.now().strftime("%Y%m%d-%H%M%S")
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / "benchmark_sr.csv", index=False)
        per_image.to_csv(out / "per_image.csv", index=False)
        (out / "benchmark_sr.md").write_text(text, encoding="utf-8")
        self.stdout.write(text)
        self.stdout.write(f"report: {out}")

    def _methods(self, models: str, scale: int, weights_dir: Path, device: str):
        known = weights.checkpoint_names()
        if models.strip() == "all":
            names = [n for n in known if weights.get_checkpoint(n).scale == scale
                     and not weights.get_checkpoint(n).parts]
        else:
            names = [name.strip() for name in models.split(",") if name.strip()]
        unknown = [name for name in names if name not in known]
        if unknown:
            raise CommandError(f"unknown checkpoint(s) {', '.join(unknown)}; list them with: manage.py sr_infer --list")
        methods, missing = [], []
        for name in names:
            checkpoint = weights.get_checkpoint(name)
            if checkpoint.parts:
                ends = ", ".join(checkpoint.parts)
                raise CommandError(f"{name} blends two networks by alpha; benchmark its ends ({ends})")
            if checkpoint.scale != scale:
                raise CommandError(f"{name} upscales x{checkpoint.scale}, not x{scale} (--scale)")
            absent = weights.missing_files(checkpoint, weights_dir)
            if absent:
                missing.append(
                    f"{name} needs {', '.join(part.file for part in absent)} in {weights_dir} "
                    f"(fetch_weights {name} when online, or import_weights {name} FILE)"
                )
                continue
            try:
                loaded = weights.load_checkpoint(name, weights_dir=weights_dir, device=device)
            except weights.WeightsError as error:
                raise CommandError(str(error)) from None
            methods.append(
                evaluation.Method(
                    name, checkpoint.label,
                    lambda lr, loaded=loaded: inference.upscale(loaded, [lr], device=device)[0],
                )
            )
        return methods, missing

    def _scorers(self, names: str, y_channel: bool, device: str):
        import pyiqa

        scorers, unavailable = [], []
        for name in [part.strip() for part in names.split(",") if part.strip()]:
            if name in ("psnr", "ssim"):
                # Already cropped by the protocol: crop_border 0 here.
                # Y of YCbCr as MATLAB's rgb2ycbcr (pyiqa's default Y is YIQ's).
                channel = {"test_y_channel": True, "color_space": "ycbcr"} if y_channel else {"test_y_channel": False}
                model = pyiqa.create_metric(name, device=device, crop_border=0, **channel)

                def score(output, hr, model=model):
                    with torch.inference_mode():
                        return float(model(_tensor(output, device), _tensor(hr, device)))

                scorers.append(evaluation.Scorer(name, True, score))
                continue
            try:
                loaded = metrics.load_metric(name, device=device, weights_dir=settings.PIPAL_WEIGHTS_DIR)
            except metrics.UnknownMetric as error:
                raise CommandError(str(error)) from None
            except WeightsError as error:
                unavailable.append(f"{name}: {error}")
                continue

            def score(output, hr, loaded=loaded):
                reference = _tensor(hr, device) if loaded.info.full_reference else None
                return loaded.score(_tensor(output, device), reference)[0]

            scorers.append(evaluation.Scorer(name, loaded.info.higher_is_better, score))
        return scorers, unavailable
