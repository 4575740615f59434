"""train_sr_gan's iterations/s per recipe (SRGAN, ESRGAN, RankSRGAN, 4PP-EUSR, EUSR's L1 pre-training) against a
plain PyTorch loop of the same networks, losses and optimisers, in the same run.

What is timed, per recipe, at CPU-sized widths unless the flags say otherwise (generator nf 32, nb 4;
discriminator at the recipe's width, 64 or 4PP-EUSR's 32; HR patch 64, batch 4):

- platform: ``iqa.sr_gan.trainer.train`` on ``--images`` synthetic textures (``benchlib.grating_texture``) held
  in memory (split by image into training and validation, LR made once per image, as the command does), with the
  recipe's settings (``recipes.recipe(name).settings(...)``), VGG19 features with random weights
  (``feature_net="scratch"``) and no extra metrics. Per step the trainer draws a batch (``sample_batch``: crops,
  flips, rotations), runs the generator step (D frozen; pixel, perceptual, adversarial and rank-content losses),
  the discriminator step, both schedulers, and records the losses. A step's time runs from the end of the
  previous ``progress`` callback (for the first step: the ``announce`` callback, which the trainer calls after
  its setup and its opening validations) to the start of this one, so it holds the loop body only.
  ``validate_every`` and ``checkpoint_every`` are set beyond the run; the trainer still validates and writes
  ``train_state.pt`` on its last step, so the last step is dropped, and so are the first ``--warmup`` steps
  (oneDNN primitive creation, first allocations).
- plain: the loop BasicSR's ``SRGANModel``/``ESRGANModel`` run, written out here in torch — the same
  generator and discriminator builders (``sr_models.archs.build``, ``init_weights``,
  ``sr_models.gan.discriminators.build_discriminator``), the same scratch VGG19 extractor
  (``sr_models.gan.vgg.load_vgg19_features(..., scratch=True)``), the same Ranker weights, Adam and
  MultiStepLR with the recipe's settings, the losses written with ``torch.nn.functional``
  (L1, BCE with logits, RaGAN, sigmoid of the Ranker's score). It is built from the same seed in the
  trainer's order, so its networks start with the trainer's weights, and it consumes the very batches
  the trainer draws, made before the clock starts (no data work inside its clock: the floor). Its
  generator loss is compared with the trainer's at every step ("max |ΔL_G|"): near 0 means both ran the
  same computation.

One plain step runs inside each ``progress`` callback (outside the platform's clock), so the two paths
alternate step by step and see the same machine load. ``--rounds`` repeat every recipe with fresh
networks, the recipe order rotating; figures are medians over all rounds' timed steps. Ratios are
platform ÷ plain in iterations/s (below 1: the platform is slower).

4PP-EUSR: the plain loop makes the three x4 outputs itself (``generate`` x4; x2 twice; x8 then
``resize_bicubic_tf1``), works in 0..255 units and adds each score predictor's score and representation
losses (003 Eq. 4-7) through the predictor's own ``representation``/``head``; EUSR's discriminator is built by
the trainer's ``build_discriminator`` (its widths scaled by ``--d-nf``). EUSR's pre-training (``eusr-l1``) has
no discriminator: the plain loop trains the path the trainer drew for that step (``sample_scale_batch``, drawn
before the clock starts) with L1 alone. Both EUSR recipes start from ``eusr_arch.initialize``.

RankSRGAN needs a Ranker: one is built here with RANDOM weights (``--ranker-nf``, default the official
width 64) and written in train_ranker's folder layout, so the trainer loads it by name as it loads any
platform Ranker; 4PP-EUSR's two score predictors are MobileNetV2s (width 1, the paper's) with RANDOM weights
in train_score_predictor's layout. The VGG19 features are random too: every figure here is speed only, never
quality.

``--device cuda`` times on a GPU (each step synchronised before the clock is read); ``--amp`` adds a
mixed-precision row per recipe (the trainer's ``mixed_precision``; the plain loop under
``torch.autocast(float16)`` with two GradScalers, as the trainer) beside the fp32 one. On the CPU the
trainer never uses mixed precision, so ``--amp`` needs ``--device cuda``. Nothing here imports Django;
the temporary weights folder is removed in a ``finally``.

Run from the repository root:

    .venv/bin/python bench/sr_gan.py --threads 2
    .venv/bin/python bench/sr_gan.py --threads 1 --steps 12 --rounds 2 --recipes esrgan   # a quick look
    .venv/bin/python bench/sr_gan.py --device cuda --amp --nf 64 --nb 16 --patch 128 --batch 16
"""

from __future__ import annotations

import argparse
import contextlib
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

RECIPES = ("srgan", "esrgan", "ranksrgan", "4pp-eusr", "eusr-l1")
RANKER_NAME = "bench_random_ranker"
PREDICTOR_NAMES = {"aesthetic_predictor": "bench_random_aesthetic", "subjective_predictor": "bench_random_subjective"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="train_sr_gan iterations/s per recipe against a plain PyTorch loop of the same networks, "
        "losses and optimisers (random VGG19 and Ranker weights: speed only)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipes to time")
    parser.add_argument("--nf", type=int, default=32, help="generator width (the papers: 64)")
    parser.add_argument("--nb", type=int, default=4, help="generator blocks (the papers: 16 SRResNet, 23 RRDB)")
    parser.add_argument("--d-nf", type=int, default=None,
                        help="discriminator width (default: the recipe's, 64; 4PP-EUSR 32)")
    parser.add_argument("--ranker-nf", type=int, default=64, help="the random Ranker's width (official: 64)")
    parser.add_argument("--patch", type=int, default=64, help="HR patch side (a multiple of 4, at least 32)")
    parser.add_argument("--batch", type=int, default=4, help="patches per step")
    parser.add_argument("--steps", type=int, default=24, help="timed steps per round, recipe and path")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out at the start of each run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of every recipe (fresh networks each)")
    parser.add_argument("--images", type=int, default=4, help="synthetic textures (one is held out)")
    parser.add_argument("--image-size", type=int, default=128, help="side of each texture")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--amp", action="store_true", help="also time mixed precision (CUDA only)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def write_random_ranker(weights_dir: Path, nf: int, seed: int) -> dict:
    """A Ranker with RANDOM weights in train_ranker's folder layout (manifest + model.pt), lower scores
    better as the official Rankers; returns its state dict for the plain loop."""
    import torch

    from iqa.learned import ranker_arch, store

    torch.manual_seed(seed)
    state = ranker_arch.Ranker(nf=nf).state_dict()
    folder = store.learned_root(weights_dir) / RANKER_NAME
    folder.mkdir(parents=True)
    sha256 = store.save_model(
        folder, kind=ranker_arch.KIND, config={"arch": ranker_arch.ARCH, "nf": nf, "in_nc": 3}, state_dict=state
    )
    metric = {"higher_is_better": False, "full_reference": False, "description": "bench: random weights"}
    store.write_json(
        folder / store.MANIFEST_FILE,
        {"kind": ranker_arch.KIND, "name": RANKER_NAME, "model_sha256": sha256, "metric": metric},
    )
    return state


def write_random_score_predictors(weights_dir: Path, seed: int) -> None:
    """4PP-EUSR's two MobileNetV2 score predictors (width 1) with RANDOM weights in train_score_predictor's layout."""
    import torch

    from iqa.learned import score_predictor_arch as sp_arch
    from iqa.learned import store

    for offset, name in enumerate(PREDICTOR_NAMES.values()):
        torch.manual_seed(seed + offset)
        config = {"dropout": 0.75, "crop": 192, "input_norm": "paper", "width_mult": 1.0}
        folder = store.learned_root(weights_dir) / name
        folder.mkdir(parents=True)
        sha256 = store.save_model(folder, kind=sp_arch.KIND, config=config,
                                  state_dict=sp_arch.build(config).state_dict())
        metric = {"higher_is_better": True, "full_reference": False, "description": "bench: random weights"}
        store.write_json(folder / store.MANIFEST_FILE,
                         {"kind": sp_arch.KIND, "name": name, "model_sha256": sha256, "metric": metric})


def synchronise(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


class PlainLoop:
    """BasicSR's optimize_parameters in plain torch: the trainer's networks (same seed, same build order, so
    the same starting weights), Adam and MultiStepLR, the recipe's losses with torch.nn.functional, on
    batches made before the clock starts. ``step()`` returns (seconds, generator loss)."""

    def __init__(self, settings, batches, ranker_state: dict | None, weights_dir: Path, device: str):
        import torch

        from iqa.learned import ranker_arch, store
        from iqa.sr_gan import trainer
        from sr_models import archs
        from sr_models import training as sr_training
        from sr_models.archs import eusr_arch
        from sr_models.gan import discriminators, vgg

        self.settings, self.device = settings, device
        self.unit = float(archs.arch(settings.generator).input_range)  # EUSR works in 0..255
        self.batches = [(scale, lr.to(device) * self.unit, hr.to(device) * self.unit) for scale, lr, hr in batches]
        self.index = 0
        self.predictors = []
        for role in ("aesthetic", "subjective"):
            name = getattr(settings, f"{role}_predictor")
            if name:
                _, network = store.build_trained(store.learned_root(weights_dir) / name / store.MODEL_FILE, device)
                self.predictors.append((role, network.eval().requires_grad_(False)))
        torch.manual_seed(settings.seed)  # the trainer's order: VGG, Rankers, generator, discriminator
        self.features = None
        if settings.perceptual_weight:
            self.features = vgg.load_vgg19_features(weights_dir, scratch=True).network.to(device).eval()
            self.features.requires_grad_(False)
        self.ranker = None
        if settings.rank_weight:
            self.ranker = ranker_arch.Ranker(nf=int(ranker_state["conv0_0.weight"].shape[0]))
            self.ranker.load_state_dict(ranker_state)
            self.ranker.to(device).eval().requires_grad_(False)
        if settings.generator == "eusr":
            self.generator = archs.build("eusr", settings.scale, n_feats=settings.nf, n_shared_blocks=settings.nb)
            eusr_arch.initialize(self.generator)
        else:
            self.generator = archs.build(settings.generator, settings.scale, nf=settings.nf, nb=settings.nb)
            sr_training.init_weights(self.generator)
        self.discriminator = None
        if settings.discriminator == "eusr":  # 4PP-EUSR's, widths scaled by d_nf / 32
            self.discriminator = trainer.build_discriminator(settings)
        elif settings.discriminator:
            self.discriminator = discriminators.build_discriminator(
                settings.discriminator, settings.patch, num_feat=settings.d_nf
            )
        self.generator.to(device).train()
        betas = tuple(settings.betas)
        milestones = list(settings.lr_steps)
        self.optimizer_g = torch.optim.Adam(self.generator.parameters(), lr=settings.lr_g, betas=betas)
        self.scheduler_g = torch.optim.lr_scheduler.MultiStepLR(self.optimizer_g, milestones, settings.lr_gamma)
        if self.discriminator is not None:
            self.discriminator.to(device).train()
            self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), lr=settings.lr_d, betas=betas)
            self.scheduler_d = torch.optim.lr_scheduler.MultiStepLR(self.optimizer_d, milestones, settings.lr_gamma)
        self.amp = device == "cuda" and settings.mixed_precision
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.amp)

    def autocast(self):
        import torch

        return torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    def generator_loss(self, sr, hr):
        import torch
        import torch.nn.functional as F

        s = self.settings
        bce = F.binary_cross_entropy_with_logits
        total = sr.new_zeros(())
        if s.pixel_weight:
            total = total + s.pixel_weight * F.l1_loss(sr, hr)
        if s.perceptual_weight:
            with torch.no_grad():
                hr_features = self.features(hr)
            total = total + s.perceptual_weight * F.l1_loss(self.features(sr), hr_features)
        if self.discriminator is not None:
            fake = self.discriminator(sr)
            if s.adversarial == "relativistic":  # ESRGAN Eq. 2 with the real logits detached (esrgan_model.py)
                real = self.discriminator(hr).detach()
                adversarial = bce(real - fake.mean(), torch.zeros_like(real)) + bce(
                    fake - real.mean(), torch.ones_like(fake)
                )
                adversarial = adversarial / 2 if s.halved else adversarial
            else:  # the non-saturating -log D(G(x)) of SRGAN / RankSRGAN / 4PP-EUSR
                adversarial = bce(fake, torch.ones_like(fake))
            total = total + s.adversarial_weight * adversarial
        if s.rank_weight:  # RankSRGAN Eq. 9, lower scores better: sigmoid(R(G(x))), one Ranker of weight 1
            rank = torch.sigmoid(self.ranker(sr).reshape(-1))
            total = total + s.rank_weight * (rank.sum() if s.rank_reduction == "sum" else rank.mean())
        for role, network in self.predictors:  # 4PP-EUSR Eq. 4-7 on [0, 1] inputs; mean scores over 10 bins
            with torch.no_grad():
                hr_features = network.representation(hr / self.unit)
                hr_probabilities = network.head(hr_features)  # softmax over the 10 bins
                hr_score = (hr_probabilities * torch.arange(1, 11).to(hr_probabilities)).sum(1)
            sr_features = network.representation(sr / self.unit)
            sr_probabilities = network.head(sr_features)
            sr_score = (sr_probabilities * torch.arange(1, 11).to(sr_probabilities)).sum(1)
            score = torch.relu((10 - sr_score) - s.score_alpha * (10 - hr_score)).mean()
            total = total + getattr(s, f"{role}_score_weight") * score
            total = total + getattr(s, f"{role}_representation_weight") * F.mse_loss(sr_features, hr_features)
        return total

    def discriminator_loss(self, sr, hr):
        import torch
        import torch.nn.functional as F

        bce = F.binary_cross_entropy_with_logits
        real, fake = self.discriminator(hr), self.discriminator(sr.detach())
        if self.settings.adversarial == "relativistic":  # ESRGAN Eq. 1
            loss = bce(real - fake.mean(), torch.ones_like(real)) + bce(fake - real.mean(), torch.zeros_like(fake))
            return loss / 2 if self.settings.halved else loss
        return bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))

    def step(self) -> tuple[float, float]:
        import torch

        from sr_models.archs.eusr_arch import resize_bicubic_tf1

        synchronise(self.device)
        started = time.perf_counter()
        scale, lr, hr = self.batches[self.index]
        self.index += 1
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)
        self.optimizer_g.zero_grad(set_to_none=True)
        with self.autocast():
            targets = hr
            if self.settings.multi_pass:  # 4PP-EUSR's three x4 outputs, each against the HR crop
                g, (height, width) = self.generator, lr.shape[-2:]
                sr = torch.cat([g.generate(lr, 4), g.generate(g.generate(lr, 2), 2),
                                resize_bicubic_tf1(g.generate(lr, 8), 4 * height, 4 * width)])
                targets = hr.repeat(3, 1, 1, 1)
            elif self.settings.multi_scale:  # EUSR's pre-training: the drawn path only
                sr = self.generator.generate(lr, scale)
            else:
                sr = self.generator(lr)
            g_loss = self.generator_loss(sr, targets)
        self.scaler_g.scale(g_loss).backward()
        self.scaler_g.step(self.optimizer_g)
        self.scaler_g.update()
        self.scheduler_g.step()
        if self.discriminator is not None:
            self.discriminator.requires_grad_(True)
            self.optimizer_d.zero_grad(set_to_none=True)
            with self.autocast():
                d_loss = self.discriminator_loss(sr, hr)
            self.scaler_d.scale(d_loss).backward()
            self.scaler_d.step(self.optimizer_d)
            self.scaler_d.update()
            self.scheduler_d.step()
        synchronise(self.device)
        return time.perf_counter() - started, float(g_loss.detach())


def timed_run(
    recipe: str, args, images: dict, weights_dir: Path, ranker_state: dict, run_name: str, mixed_precision: bool
) -> dict:
    """One trainer run of ``recipe`` with a plain step after each of its steps; the timed steps of both and
    the largest difference of their generator losses."""
    import numpy as np
    import torch

    from iqa.sr_gan import recipes, trainer

    iterations = args.warmup + args.steps + 1  # the last step validates and checkpoints: never timed
    settings = recipes.recipe(recipe).settings(
        nf=args.nf,
        nb=args.nb,
        d_nf=args.d_nf,
        patch=args.patch,
        batch=args.batch,
        iterations=iterations,
        feature_net="scratch",
        seed=args.seed,
        validate_every=iterations + 1,
        checkpoint_every=iterations + 1,
        mixed_precision=mixed_precision,
        rankers=[(RANKER_NAME, 1.0)] if recipe == "ranksrgan" else None,
        **(PREDICTOR_NAMES if recipe == "4pp-eusr" else {}),
    )
    # The trainer's own data and draws (prepare_data, then sample_scale_batch from default_rng(seed)), made now.
    data = trainer.prepare_data(list(images), list(images.values()), settings, "bench textures")
    rng = np.random.default_rng(settings.seed)
    batches = []
    for _ in range(iterations):
        scale, lr, hr = trainer.sample_scale_batch(data, settings, rng)
        batches.append((scale, torch.from_numpy(lr), torch.from_numpy(hr)))
    plain = PlainLoop(settings, batches, ranker_state if settings.rank_weight else None, weights_dir, args.device)

    platform_seconds: list[float] = []
    plain_seconds: list[float] = []
    loss_differences: list[float] = []
    clock = [0.0]

    def announce(_message: str) -> None:
        synchronise(args.device)
        clock[0] = time.perf_counter()

    def progress(_step: int, generator_loss: float) -> None:
        synchronise(args.device)
        platform_seconds.append(time.perf_counter() - clock[0])
        seconds, plain_loss = plain.step()
        plain_seconds.append(seconds)
        loss_differences.append(abs(generator_loss - plain_loss))
        clock[0] = time.perf_counter()

    trainer.train(
        list(images),
        list(images.values()),
        settings,
        name=run_name,
        weights_dir=weights_dir,
        source="bench textures",
        device=args.device,
        extra_metrics=(),
        progress=progress,
        announce=announce,
    )
    timed = slice(args.warmup, args.warmup + args.steps)
    return {
        "platform": platform_seconds[timed],
        "plain": plain_seconds[timed],
        "loss_difference": max(loss_differences),
        "generator": settings.generator,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    chosen = [name.strip() for name in args.recipes.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(RECIPES))
    if unknown or not chosen:
        raise SystemExit(f"--recipes: unknown {', '.join(unknown) or '(none given)'}; known: {', '.join(RECIPES)}")
    if min(args.steps, args.rounds, args.batch) < 1 or args.warmup < 0 or args.images < 2:
        raise SystemExit("--steps, --rounds and --batch must be at least 1, --warmup at least 0, --images at least 2")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device cuda: torch {torch.__version__} sees no CUDA GPU here; use --device cpu")
    if args.amp and args.device != "cuda":
        raise SystemExit("--amp: the trainer uses mixed precision on CUDA only; add --device cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = ["fp32", "amp"] if args.amp else ["fp32"]
    tmp = Path(tempfile.mkdtemp(prefix="pipal-bench-sr-gan-"))
    started = time.perf_counter()
    try:
        benchlib.header("train_sr_gan against a plain PyTorch loop")
        print(
            f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, device {args.device}; generator "
            f"nf {args.nf} nb {args.nb}, discriminator width {args.d_nf or 'the recipe default'}, patch {args.patch}, "
            "batch "
            f"{args.batch}; Ranker width {args.ranker_nf}; {args.steps} timed steps per round after {args.warmup} "
            f"warm-up (the last step, which validates and checkpoints, dropped); {args.rounds} rounds; "
            f"{args.images} textures of {args.image_size} px; VGG19 and Ranker weights RANDOM (speed only)"
        )
        images = {f"T{i:02d}": grating_texture(i, args.image_size) for i in range(args.images)}
        ranker_state = write_random_ranker(tmp, args.ranker_nf, args.seed)
        if "4pp-eusr" in chosen:
            write_random_score_predictors(tmp, args.seed)
        samples = {
            (recipe, precision): {"platform": [], "plain": [], "loss_difference": 0.0, "generator": ""}
            for recipe in chosen
            for precision in precisions
        }
        for round_ in range(args.rounds):
            order = chosen[round_ % len(chosen) :] + chosen[: round_ % len(chosen)]
            for recipe in order:
                for precision in precisions:
                    result = timed_run(
                        recipe,
                        args,
                        images,
                        tmp,
                        ranker_state,
                        f"{recipe}-{precision}-{round_}",
                        mixed_precision=precision == "amp",
                    )
                    entry = samples[(recipe, precision)]
                    entry["platform"] += result["platform"]
                    entry["plain"] += result["plain"]
                    entry["loss_difference"] = max(entry["loss_difference"], result["loss_difference"])
                    entry["generator"] = result["generator"]
            print(f"  round {round_ + 1}/{args.rounds}: {time.perf_counter() - started:.0f} s", flush=True)

        rows = []
        for (recipe, precision), entry in samples.items():
            platform_rate, plain_rate = 1 / median(entry["platform"]), 1 / median(entry["plain"])
            rows.append(
                [
                    recipe,
                    entry["generator"],
                    precision,
                    platform_rate,
                    plain_rate,
                    ratio(platform_rate, plain_rate),
                    1 / platform_rate,
                    1 / plain_rate,
                    len(entry["platform"]),
                    f"{entry['loss_difference']:.1e}",
                ]
            )
        print()
        print(
            benchlib.table(
                [
                    "recipe",
                    "generator",
                    "precision",
                    "platform it/s",
                    "plain it/s",
                    "platform ÷ plain",
                    "platform s/it",
                    "plain s/it",
                    "steps per path",
                    "max |ΔL_G|",
                ],
                rows,
            )
        )
        print("target: platform ÷ plain ≥ 0.95 for every recipe")
        print(f"\nwhole run {time.perf_counter() - started:.0f} s")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
