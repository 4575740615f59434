"""RankSRGAN Ranker on the CPU: training iterations/s and inference images/s of the app's paths against a
plain PyTorch loop of the same network, in the same run.

What is timed, at the official width (nf 64, 13.7M parameters) unless ``--nf`` says otherwise:

- training, app: ``iqa.learned.ranker.train`` on a rank dataset written to a temporary folder by
  ``iqa.learned.rank_dataset.build_distortion`` (``--images`` synthetic 296x296 textures, Gaussian blur
  0.1/2/4, one 296-pixel patch per image and level, one image for validation): per step it draws
  ``--batch`` pairs (group, pair, order), reads and caches the PNG patches, crops ``--crop`` pixels with
  flips and transposition, stacks them, runs two forward passes, the margin-ranking loss, backward, Adam
  and the MultiStepLR step. Each step's time is taken from the progress callback's timestamps; the
  first ``--warmup`` steps (first PNG reads, oneDNN primitives) are left out, the rest give the median.
  The checkpoint, validation and ``model.pt`` at the end of the run are not timed.
- training, plain: the same network class and optimiser on two tensors of the same shape made once before
  the clock starts (zero_grad, two forward passes, ``nn.MarginRankingLoss(0.5)`` on clamped scores,
  backward, ``Adam.step``): the floor for this network on this machine. One plain step runs right after
  each app step (from the app's progress callback, outside the app's clock), so the two are interleaved
  step by step and see the same machine load; the same warm-up steps are left out of both.
- inference, app: a trained-metric folder (random weights written through ``TrainingRun.finish``) loaded
  with ``iqa.metrics.load_metric`` as ``compute_scores`` does, and ``LoadedMetric.score(batch)`` on
  ``--infer-batch`` 296x296 images (``inference_mode``, the ``RankerMetric`` wrapper, the list of floats).
- inference, plain: ``with torch.inference_mode(): model(x)`` on the same module and tensor.

Ratios (app ÷ plain, in iterations/s or images/s; below 1: the app is slower) show what the app's data
path and wrappers cost around the network. Inference calls alternate which path goes first; figures are
medians. On a shared machine absolute times swing by several times with the neighbours' load: compare
the ratios.
Weights are random: speed only. Nothing here imports Django (``iqa.metrics`` is told the learned folder
directly). The temporary folder is removed in a ``finally``.

Run from the repository root:

    .venv/bin/python bench/ranker.py
    .venv/bin/python bench/ranker.py --steps 6 --rounds 3 --threads 2
    .venv/bin/python bench/ranker.py --nf 16        # a quick look at a narrow Ranker
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import ROOT, grating_texture, median, ratio

if str(ROOT) in sys.path:
    sys.path.remove(str(ROOT))
sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Ranker training iterations/s and inference images/s through the app vs a plain torch loop",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--nf", type=int, default=64, help="network width (64: the official Ranker)")
    parser.add_argument("--batch", type=int, default=16, help="training pairs per step (train_Ranker.yml)")
    parser.add_argument("--crop", type=int, default=128, help="training crop (train_Ranker.yml GT_size)")
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per round and path")
    parser.add_argument("--warmup", type=int, default=1, help="training steps left out at the start of each run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (app, plain), alternating the order")
    parser.add_argument("--size", type=int, default=296, help="patch and inference image side")
    parser.add_argument("--images", type=int, default=4, help="synthetic source images of the rank dataset")
    parser.add_argument("--infer-batch", type=int, default=4, help="images per inference call")
    parser.add_argument("--infer-repeats", type=int, default=5, help="timed inference calls per round and path")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    return parser.parse_args(argv)


class PlainLoop:
    """The floor: the same network class and optimiser on two tensors made once, one step per call."""

    def __init__(self, args, seed: int):
        import torch

        from iqa.learned import ranker_arch

        torch.manual_seed(seed)
        self.model = ranker_arch.Ranker(nf=args.nf).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4, weight_decay=1e-4)
        self.loss = torch.nn.MarginRankingLoss(margin=0.5)
        self.a = torch.rand(args.batch, 3, args.crop, args.crop)
        self.b = torch.rand(args.batch, 3, args.crop, args.crop)
        self.target = torch.where(torch.rand(args.batch) < 0.5, 1.0, -1.0)

    def step(self) -> float:
        started = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        s1 = self.model(self.a).clamp(-5, 5).reshape(-1)
        s2 = self.model(self.b).clamp(-5, 5).reshape(-1)
        self.loss(s1, s2, self.target).backward()
        self.optimizer.step()
        return time.perf_counter() - started


def training_round(dataset, args, folder: Path, seed: int) -> tuple[list[float], list[float]]:
    """Seconds per step of ranker_training.train and of the plain loop, interleaved step by step: the progress
    callback runs one plain step after each app step (outside the app's clock), so both see the same load."""
    from iqa.learned import ranker_arch, ranker_training
    from iqa.learned.training import TrainingRun

    settings = ranker_training.RankerSettings(
        iterations=args.warmup + args.steps, batch=args.batch, crop=args.crop, nf=args.nf, seed=seed
    )
    plain = PlainLoop(args, seed)
    app_steps: list[float] = []
    plain_steps: list[float] = []
    clock = [0.0]

    def progress(step: int, loss: float) -> None:
        app_steps.append(time.perf_counter() - clock[0])
        plain_steps.append(plain.step())
        clock[0] = time.perf_counter()

    run = TrainingRun(folder, kind=ranker_arch.KIND, settings=settings.as_dict(), data={"bench": True})
    clock[0] = time.perf_counter()
    ranker_training.train(dataset, settings, run, progress, checkpoint_every=0)
    return app_steps[args.warmup :], plain_steps[args.warmup :]


def write_metric(root: Path, name: str, nf: int) -> None:
    """A finished trained-metric folder with random weights, as train_ranker leaves it."""
    import torch

    from iqa.learned import ranker_arch
    from iqa.learned.training import TrainingRun

    torch.manual_seed(0)
    network = ranker_arch.Ranker(nf=nf)
    run = TrainingRun(root / name, kind=ranker_arch.KIND, settings={"iterations": 0}, data={})
    run.start()
    run.finish(
        config={"arch": ranker_arch.ARCH, "nf": nf, "in_nc": 3},
        state_dict=network.state_dict(),
        results={},
        metric={"higher_is_better": False, "full_reference": False, "description": "bench (random weights)"},
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch

    from iqa import metrics
    from iqa.learned import rank_dataset, ranker_arch

    if min(args.steps, args.rounds, args.infer_batch, args.infer_repeats, args.images - 1) < 1:
        raise SystemExit("--steps, --rounds, --infer-batch, --infer-repeats must be at least 1, --images at least 2")
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="pipal-bench-ranker-"))
    started = time.perf_counter()
    try:
        benchlib.header("Ranker: app training/inference vs a plain PyTorch loop (CPU)")
        network = ranker_arch.Ranker(nf=args.nf)
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; Ranker_VGG12_296 nf {args.nf} "
            f"({ranker_arch.parameter_count(network):,} parameters); training batch {args.batch} pairs of "
            f"{args.crop}x{args.crop} crops, {args.steps} timed steps per round after {args.warmup} warm-up; "
            f"inference {args.infer_batch} x {args.size}x{args.size}, {args.infer_repeats} calls per round; "
            f"{args.rounds} rounds; RANDOM weights"
        )
        images = [
            (f"t{i}", grating_texture(i, args.size, frequencies=(0.02, 0.25), amplitude=0.08))
            for i in range(args.images)
        ]
        options = rank_dataset.PatchOptions(size=args.size, stride=args.size, validation=1 / args.images)
        rank_dataset.build_distortion(tmp / "dataset", images, kind="blur", options=options)
        dataset = rank_dataset.load(tmp / "dataset")

        learned = tmp / "learned"
        write_metric(learned, "bench_ranker", args.nf)
        metrics.configure_learned_root(learned)
        loaded = metrics.load_metric("bench_ranker", device="cpu", weights_dir=tmp)
        model = loaded.model.network
        batch = [images[i % len(images)][1] for i in range(args.infer_batch)]
        x = torch.from_numpy(np.stack(batch).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0))
        x = x.contiguous()

        def app_infer():
            return loaded.score(x)

        def plain_infer():
            with torch.inference_mode():
                return model(x)

        app_infer(), plain_infer()  # warm-up
        difference = float(np.abs(np.array(app_infer()) - plain_infer().reshape(-1).numpy()).max())
        samples = {"app_train": [], "plain_train": [], "app_infer": [], "plain_infer": []}
        for round_ in range(args.rounds):
            app_steps, plain_steps = training_round(dataset, args, tmp / f"run{round_}", seed=round_)
            samples["app_train"] += app_steps
            samples["plain_train"] += plain_steps
            for repeat in range(args.infer_repeats):
                order = ("app", "plain") if (round_ + repeat) % 2 == 0 else ("plain", "app")
                for path in order:
                    call = app_infer if path == "app" else plain_infer
                    t0 = time.perf_counter()
                    call()
                    samples[f"{path}_infer"].append((time.perf_counter() - t0) / args.infer_batch)
            print(f"  round {round_ + 1}/{args.rounds}: {time.perf_counter() - started:.0f} s", flush=True)

        app_it, plain_it = 1 / median(samples["app_train"]), 1 / median(samples["plain_train"])
        app_im, plain_im = 1 / median(samples["app_infer"]), 1 / median(samples["plain_infer"])
        print()
        print(
            benchlib.table(
                ["what", "app /s", "plain /s", "app ÷ plain", "app s each", "plain s each", "samples per path"],
                [
                    [f"training iterations (batch {args.batch}, crop {args.crop})", app_it, plain_it,
                     ratio(app_it, plain_it), 1 / app_it, 1 / plain_it, len(samples["app_train"])],
                    [f"inference images ({args.size}x{args.size}, batch {args.infer_batch})", app_im, plain_im,
                     ratio(app_im, plain_im), 1 / app_im, 1 / plain_im, len(samples["app_infer"])],
                ],
            )
        )
        print(f"max |app score − plain score| on the inference batch: {difference:.2e}")
        print(f"\nwhole run {time.perf_counter() - started:.0f} s")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
