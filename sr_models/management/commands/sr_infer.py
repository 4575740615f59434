from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from PIL import Image

from sr_models import inference, runtime, weights


class Command(BaseCommand):
    help = (
        "Super-resolve one image with a bundled SR checkpoint (the image is the LR input; the output is "
        "scale times larger). --list shows every checkpoint, its weight file and whether it is installed."
    )

    def add_arguments(self, parser):
        parser.add_argument("checkpoint", nargs="?", help="checkpoint name, e.g. esrgan_x4 (see --list)")
        parser.add_argument("input", nargs="?", help="LR image (PNG, BMP, JPEG, ...)")
        parser.add_argument("output", nargs="?", help="where to write the SR image (PNG)")
        parser.add_argument("--list", action="store_true", help="list the checkpoints and exit")
        parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when a GPU is present")
        parser.add_argument("--dtype", choices=inference.DTYPES, default="fp32")
        parser.add_argument("--tile", type=int, help="run in tiles of this many LR pixels (large inputs)")
        parser.add_argument("--overlap", type=int, default=16, help="tile overlap in LR pixels")
        parser.add_argument("--alpha", type=float, help="for interpolation checkpoints: 0 = PSNR model, 1 = GAN")

    def handle(self, *args, checkpoint, input, output, list, device, dtype, tile, overlap, alpha, **options):
        weights_dir = runtime.current().weights_dir
        if list:
            for name in weights.checkpoint_names():
                entry = weights.get_checkpoint(name)
                missing = weights.missing_files(entry, weights_dir)
                state = "missing " + ", ".join(part.file for part in missing) if missing else "installed"
                self.stdout.write(f"{name:24} {entry.label:34} x{entry.scale} {entry.arch:14} {state}")
            return
        if not (checkpoint and input and output):
            raise CommandError("give a checkpoint, an input image and an output path (or --list)")
        try:
            entry = weights.get_checkpoint(checkpoint, weights_dir)
            device = device or inference.default_device()
            inference.check_device_dtype(device, dtype)
            if entry.parts:
                if alpha is None:
                    raise CommandError(f"{checkpoint} blends two models: give --alpha between 0 and 1")
                loaded = weights.load_interpolated(checkpoint, alpha, weights_dir=weights_dir, device=device)
            else:
                loaded = weights.load_checkpoint(checkpoint, weights_dir=weights_dir, device=device)
            try:
                with Image.open(input) as image:
                    pixels = np.asarray(image.convert("RGB"))
            except (OSError, ValueError) as error:
                raise CommandError(f"{input}: not a readable image ({error})") from None
            (result,) = inference.upscale(loaded, [pixels], device=device, dtype=dtype, tile=tile, overlap=overlap)
        except (KeyError, weights.WeightsError, inference.InferenceError) as error:
            raise CommandError(str(error.args[0] if isinstance(error, KeyError) else error)) from None
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(result).save(output, format="PNG")
        height, width = pixels.shape[:2]
        self.stdout.write(
            f"{input} {width}x{height} -> {output} {result.shape[1]}x{result.shape[0]} "
            f"({entry.label}, {device}, {dtype}{f', tiles of {tile}' if tile else ''})"
        )
