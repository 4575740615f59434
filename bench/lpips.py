"""Anti-aliased LPIPS: inference images/s and training steps/s, as ratios against baselines run alongside.

Inference. 288x288 images (PIPAL's patch size), ``--batch`` per call, every image compared
with one reference broadcast over the batch (how compute_scores calls a full-reference
metric). Baseline: pyiqa's ``lpips`` (LPIPS-Alex v0.1) built from the same weight files, so
both compute the same distances (checked: largest difference printed). Our max-pooling
network runs the reference through AlexNet once per batch instead of once per image;
"ours, reference per image" turns that off (a contiguous reference batch) to show what it is
worth. BlurPool and L2 rows are against our max pooling.

Training. One ``train_lpips`` step: ``--train-batch`` triplets of 64x64 crops (BAPPS's patch
size), reference features once, two distances, the LPIPS ranking head, BCE, Adam, the lin
clamp. "lin" trains lin layers and head over a frozen trunk (LPIPS's lin mode, the default with
a pretrained backbone); "all" trains the whole network (``--backbone scratch`` or ``--tune``).
Baseline: the max-pooling lin step.

Weights are RANDOM (torchvision's AlexNet initialisation, uniform lin weights): speed does not
depend on them, and the ImageNet file cannot be downloaded here. Method: one warm-up call per
variant, then ``--rounds`` rounds that time every variant once each, in a rotating order;
figures are medians. Run:

    .venv/bin/python bench/lpips.py [--rounds 7] [--batch 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TORCH_HOME", tempfile.mkdtemp(prefix="pipal-bench-lpips-"))

import benchlib  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

from iqa.learned import lpips_arch  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=8, help="images per inference call (8)")
    parser.add_argument("--train-batch", type=int, default=50, help="triplets per training step (50, as LPIPS)")
    parser.add_argument("--size", type=int, default=288, help="inference image side (288, PIPAL)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    return parser.parse_args(argv)


def weight_files(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    alexnet = folder / lpips_arch.ALEXNET_FILE
    torch.save(torchvision.models.alexnet().state_dict(), alexnet)
    lin = folder / lpips_arch.LIN_FILES[0]
    torch.save({f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(lpips_arch.CHANNELS)}, lin)
    return alexnet, lin


def pyiqa_lpips(folder: Path):
    import pyiqa
    from pyiqa.utils import download_util

    from iqa import weights

    download_util.DEFAULT_CACHE_DIR = str(folder / "pyiqa")
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / lpips_arch.ALEXNET_FILE).write_bytes((folder / lpips_arch.ALEXNET_FILE).read_bytes())
    with weights.weight_sources(folder):
        return pyiqa.create_metric("lpips", device="cpu", as_loss=False)


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def rotate(variants: dict, rounds: int) -> dict[str, float]:
    """Median seconds per variant: one warm-up each, then rounds in a rotating order."""
    names = list(variants)
    for name in names:
        variants[name]()
    seconds = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            seconds[name].append(timed(variants[name]))
    return {name: benchlib.median(values) for name, values in seconds.items()}


def inference(args, folder: Path) -> None:
    alexnet, lin = weight_files(folder)
    theirs = pyiqa_lpips(folder)
    ours = {pooling: lpips_arch.load_official(alexnet, lin, pooling=pooling) for pooling in lpips_arch.POOLINGS}
    torch.manual_seed(1)
    images = torch.rand(args.batch, 3, args.size, args.size)
    shared = torch.rand(1, 3, args.size, args.size).expand(args.batch, -1, -1, -1)
    per_image = shared.contiguous()
    with torch.inference_mode():
        difference = float((theirs(images, shared).flatten() - ours["max"](images, shared)).abs().max())

    def run(network, reference):
        def call():
            with torch.inference_mode():
                network(images, reference)

        return call

    variants = {
        "pyiqa lpips (baseline)": run(theirs, shared),
        "ours, max pooling": run(ours["max"], shared),
        "ours, max, reference per image": run(ours["max"], per_image),
        "ours, blurpool": run(ours["blurpool"], shared),
        "ours, l2": run(ours["l2"], shared),
    }
    seconds = rotate(variants, args.rounds)
    base, ours_max = seconds["pyiqa lpips (baseline)"], seconds["ours, max pooling"]
    rows = []
    for name, value in seconds.items():
        rows.append((name, args.batch / value, benchlib.ratio(base, value), benchlib.ratio(ours_max, value)))
    print(f"\ninference, {args.batch} images of {args.size}x{args.size} per call, one reference; "
          f"largest |ours - pyiqa| = {difference:.2e}")
    print(benchlib.table(["variant", "images/s", "× pyiqa", "× ours max"], rows))


def training(args) -> None:
    torch.manual_seed(2)
    batch = args.train_batch
    refs, p0s, p1s = (torch.rand(batch, 3, 64, 64) for _ in range(3))
    judge = torch.rand(batch)
    variants = {}
    for pooling in lpips_arch.POOLINGS:
        for mode in ("lin", "all"):
            network, head = lpips_arch.LPIPS(pooling), lpips_arch.RankingHead()
            for parameter in network.features.parameters():
                parameter.requires_grad_(mode == "all")
            model = nn.ModuleDict({"lpips": network, "head": head})
            trained = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.Adam(trained, lr=1e-4, betas=(0.5, 0.999))

            def step(network=network, head=head, optimizer=optimizer):
                optimizer.zero_grad(set_to_none=True)
                taps = network.taps(refs)
                d0 = network.distance(network.taps(p0s), taps)
                d1 = network.distance(network.taps(p1s), taps)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(head(d0, d1), judge)
                loss.backward()
                optimizer.step()
                network.clamp_lins()

            variants[f"{pooling}, {mode}"] = step
    seconds = rotate(variants, args.rounds)
    base = seconds["max, lin"]
    rows = [(name, 1 / value, batch / value, benchlib.ratio(base, value)) for name, value in seconds.items()]
    print(f"\ntraining, {batch} triplets of 64x64 crops per step")
    print(benchlib.table(["pooling, trained", "steps/s", "triplets/s", "× max, lin"], rows))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    benchlib.header(f"LPIPS-Alex variants (torch {torch.__version__}, {torch.get_num_threads()} threads, CPU)")
    with tempfile.TemporaryDirectory(prefix="pipal-bench-lpips-") as tmp:
        inference(args, Path(tmp))
    training(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
