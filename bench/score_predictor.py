"""4PP-EUSR score predictor: training iterations/s and inference images/s, against plain torchvision MobileNetV2.

What is timed, on the CPU (or ``--device cuda``), with RANDOM weights (speed only):

- train, phase 2 (all layers): one step of ``iqa.learned.score_predictor`` as ``train`` runs it —
  ``sample_batch`` (``--batch`` distinct images drawn from ``--images`` in-memory uint8 images of
  ``--image-size`` pixels, a random ``--crop`` window of each, their Gaussian targets) and
  ``train_step(..., "all")`` (forward, squared EMD, backward, Adam);
- train, phase 1 (new layer): the same at ``--head-batch`` with ``train_step(..., "head")``: the
  frozen trunk runs without gradients, only the new layer is trained;
- inference: the metric as ``compute_scores`` calls it (``as_metric``: a batch of full-size
  [0, 1] images, contiguous NCHW as ``metrics.stack`` makes them, centre crop, network, mean of
  the distribution) under ``torch.inference_mode``, for each batch size of ``--infer-batches``.

The baseline, measured in the same run and interleaved with the app: torchvision's own
``mobilenet_v2()`` (1000 classes) on a tensor of the crop's shape made before the clock starts —
for training a full step (train mode, cross-entropy, backward, Adam over every parameter) at the
same batch size, for inference ``model(x)`` in eval mode on the very centre crops the app
takes (same values and memory layout: oneDNN's kernel choice follows the layout, and a
channels-last input alone ran the network about 1.4 times faster here at batch 16). So
"app ÷ plain" below 1 means the app is slower than the bare network: data preparation
(cropping, targets, the uint8 -> float copy), the softmax head and the EMD; in phase 1 above 1:
what freezing the trunk saves.

Method: one warm-up of each path, then ``--repeats`` rounds timing app and plain once each,
alternating which goes first; medians. Nothing here imports Django.

Run from the repository root:

    .venv/bin/python bench/score_predictor.py
    .venv/bin/python bench/score_predictor.py --repeats 5 --threads 2 --infer-batches 1,8,32
    .venv/bin/python bench/score_predictor.py --head-batch 32 --batch 8 --repeats 2   # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import benchlib
from benchlib import median, ratio


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Training iterations/s and inference images/s of the 4PP-EUSR score predictor against plain "
        "torchvision MobileNetV2 on the same input sizes (random weights).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--batch", type=int, default=32, help="phase 2 batch (the paper's 32)")
    parser.add_argument("--head-batch", type=int, default=128, help="phase 1 batch (the paper's 128)")
    parser.add_argument("--crop", type=int, default=192, help="training crop and inference centre crop")
    parser.add_argument("--image-size", type=int, default=288, help="side of the square images (PIPAL: 288)")
    parser.add_argument("--images", type=int, default=64, help="in-memory images to draw batches from")
    parser.add_argument("--infer-batches", default="1,16", help="inference batch sizes (compute_scores: 1 on CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each path (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def timed(run: Callable[[], object], device: str) -> float:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    run()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def interleaved(app: Callable[[], object], plain: Callable[[], object], args) -> tuple[float, float]:
    """Median seconds per call of app and plain: one warm-up each, then alternating rounds."""
    timed(app, args.device)
    timed(plain, args.device)
    samples: dict[str, list[float]] = {"app": [], "plain": []}
    for round_ in range(args.repeats):
        order = (("app", app), ("plain", plain)) if round_ % 2 == 0 else (("plain", plain), ("app", app))
        for label, run in order:
            samples[label].append(timed(run, args.device))
    return median(samples["app"]), median(samples["plain"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch
    from torchvision.models import mobilenet_v2

    from iqa.learned import score_predictor_arch as sp_arch
    from iqa.learned import score_predictor_training as sp

    if args.repeats < 1 or min(args.batch, args.head_batch, args.images) < 2 or args.crop > args.image_size:
        raise SystemExit("--repeats >= 1, --batch, --head-batch and --images >= 2, and --crop <= --image-size")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device cuda: torch {torch.__version__} sees no CUDA GPU here; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    rng = np.random.default_rng(args.seed)
    size = args.image_size
    pixels = {f"img{i}": rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for i in range(args.images)}
    samples = [
        sp.Sample(name, name, f"R{i % 4}", size, size, 1400.0, float(rng.uniform(1, 10)), 0.5)
        for i, name in enumerate(pixels)
    ]
    settings = sp.Settings(batch=args.batch, head_batch=args.head_batch, crop=args.crop)
    torch.manual_seed(args.seed)
    model = sp_arch.build(sp.model_config(settings, {"init": "scratch"})).to(device)
    optimizers = sp.Optimizers(model, settings)
    plain_model = mobilenet_v2().to(device)
    plain_optimizer = torch.optim.Adam(plain_model.parameters(), lr=1e-5, eps=1e-7)
    read = pixels.__getitem__

    def app_step(phase: str, batch: int) -> Callable[[], object]:
        def run():
            x, target = sp.sample_batch(samples, read, args.crop, batch, rng)
            return sp.train_step(model, optimizers, phase, x.to(device), target.to(device))

        return run

    def plain_step(batch: int) -> Callable[[], object]:
        x = torch.rand(batch, 3, args.crop, args.crop, device=device)
        labels = torch.randint(0, 1000, (batch,), device=device)

        def run():
            plain_model.train()
            loss = torch.nn.functional.cross_entropy(plain_model(x), labels)
            plain_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            plain_optimizer.step()
            return float(loss.detach())

        return run

    benchlib.header("score predictor: app training step and metric vs plain torchvision MobileNetV2")
    print(
        f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} intra-op threads; crop {args.crop}, "
        f"images {size}x{size}; {args.repeats} timed runs per path (median); RANDOM weights: speed only"
    )
    rows = []
    started = time.perf_counter()
    for label, phase, batch in (
        ("train, phase 2 (all layers)", "all", args.batch),
        ("train, phase 1 (new layer)", "head", args.head_batch),
    ):
        app, plain = interleaved(app_step(phase, batch), plain_step(batch), args)
        rows.append([label, batch, 1 / app, 1 / plain, batch / app, batch / plain, ratio(plain, app)])
        print(f"  {label}: {time.perf_counter() - started:.0f} s", flush=True)

    metric = sp_arch.as_metric(model)
    plain_model.eval()
    for batch in [int(part) for part in args.infer_batches.split(",") if part.strip()]:
        images = torch.from_numpy(np.stack([pixels[f"img{i % args.images}"] for i in range(batch)]))
        # contiguous NCHW, as compute_scores stacks pyiqa's (3, H, W) images; the plain loop gets the same
        # centre crops (a view, as the app's): both run the network on the same layout and values
        images = images.permute(0, 3, 1, 2).float().div(255).contiguous().to(device)
        x = sp_arch.center_crop(images, args.crop)

        def app_infer(images=images):
            with torch.inference_mode():
                return metric(images).cpu()

        def plain_infer(x=x):
            with torch.inference_mode():
                return plain_model(x)

        app, plain = interleaved(app_infer, plain_infer, args)
        rows.append([f"inference (metric, {size} px -> centre {args.crop})", batch, 1 / app, 1 / plain])
        rows[-1] += [batch / app, batch / plain, ratio(plain, app)]
        print(f"  inference batch {batch}: {time.perf_counter() - started:.0f} s", flush=True)
    print()
    headers = ["what", "batch", "app it/s", "plain it/s", "app images/s", "plain images/s", "app ÷ plain"]
    print(benchlib.table(headers, rows))
    print(f"\nwhole run {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
