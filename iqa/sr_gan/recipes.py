"""The GAN recipes ``train_sr_gan`` runs, one dataclass each, every constant with its source (SPEC §7.6).

A recipe holds the paper's settings (``paper_*``) and the CPU-sized defaults a run starts from, which are
deviations and say so. ``Recipe.settings(...)`` turns one into the ``GanSettings`` of a run: the learning
rate milestones are the paper's, as fractions of its schedule, resolved on this run's iterations once
(a resumed run keeps the first run's milestones).

Sources:
* SRGAN — Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial
  Network", CVPR 2017: §2.2 Eq. 3 (perceptual loss = content loss + 10^-3 x adversarial loss), §3.2
  (16 random 96x96 HR sub-images per mini-batch, Adam beta1 0.9, lr 10^-4 for 10^5 updates then 10^-5
  for 10^5 more, generator initialised from the MSE-trained SRResNet).
* ESRGAN — papers/004 (Wang et al. 2018) §3.2-3.3, §4.1; BasicSR ``options/train/ESRGAN/train_ESRGAN_x4.yml``.
* RankSRGAN — papers/000/001 (Zhang et al. 2019 / journal version) §3-4; XPixelGroup/RankSRGAN
  ``codes/options/train/train_RankSRGAN.yml``.
* 4PP-EUSR — papers/003 (Choi et al., Neurocomputing 2019) §3-§5 (Eq. 2-8); SPEC §4, §7.6;
  idearibosome/tf-perceptual-eusr ``train/models/4pp_eusr.py`` (the authors' TensorFlow code).
  The generator is a pre-trained EUSR (``--init``): the ``eusr-l1`` recipe below, or a converted graph.
* EUSR's L1 pre-training (``eusr-l1``) — papers/003 §4.1; tf-perceptual-eusr ``train/train.py`` (batch 16,
  input patch 48, scales 2,4,8, 10^6 steps) and ``train/models/eusr.py`` (one scale drawn uniformly per
  step, mean L1 on 0..255 pixels, Adam lr 10^-4 halved every 2x10^5 steps, its initialisation).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# CPU-sized defaults shared by every recipe: deviations from the papers, chosen so that a run finishes in
# minutes on a CPU (train_sr makes the same trade: patch 48, batch 8, 300 iterations).
CPU_PATCH = 64  # HR pixels; the papers: 96 (SRGAN), 128 (ESRGAN), 296 (RankSRGAN)
CPU_BATCH = 4  # the papers: 16 (SRGAN, ESRGAN), 8 (RankSRGAN)
CPU_ITERATIONS = 200  # the papers: 2x10^5 (SRGAN), 4x10^5 (ESRGAN), 5x10^5 (RankSRGAN code; paper 6x10^5)
ADAM_BETAS = (0.9, 0.99)  # BasicSR train_ESRGAN_x4.yml and train_RankSRGAN.yml: beta1 0.9, beta2 0.99
LR_GAMMA = 0.5  # both configs: MultiStepLR, the rate halved at each milestone


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    generator: str  # sr_models.archs name
    discriminator: str  # sr_models.gan.discriminators name, sized to the run's patch (128/296); "": none
    perceptual_weight: float  # VGG19 conv5_4 (pre-activation) feature L1
    adversarial_weight: float
    adversarial: str  # "vanilla", "relativistic", or "none" (no discriminator)
    pixel_weight: float  # L1 on pixels
    rank_weight: float  # RankSRGAN's rank-content loss L_R; 0: none
    halved: bool  # RaGAN's two expectations averaged, not added (the authors' code; sr_models.gan.losses)
    rank_reduction: str  # "sum" over the batch as RankSRGAN_model.py, or "mean"
    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    milestones: tuple[float, ...]  # learning-rate milestones as fractions of the paper's schedule
    paper_iterations: int
    paper_batch: int
    paper_patch: int
    default_nf: int
    default_nb: int
    init_hint: str  # the generator a paper starts from
    sources: dict  # constant -> where it comes from
    # 4PP-EUSR's score-predictor losses (0: none) and its multi-pass training; the other recipes keep the defaults
    aesthetic_score_weight: float = 0.0  # l_as
    aesthetic_representation_weight: float = 0.0  # l_ar
    subjective_score_weight: float = 0.0  # l_ss
    subjective_representation_weight: float = 0.0  # l_sr
    score_alpha: float = 0.8  # α_as = α_ss of 003 Eq. 4 and 6
    multi_pass: bool = False  # three x4 outputs per input (003 §3.2), losses averaged over them
    multi_scale: bool = False  # one of EUSR's x2/x4/x8 paths per step, drawn at random (003 §4.1)
    default_d_nf: int = 64  # the discriminator's first width in the paper

    def settings(self, **given) -> GanSettings:
        """The run's settings: the recipe's constants, the CPU defaults, then ``given`` (None = not given)."""
        chosen = {key: value for key, value in given.items() if value is not None}
        iterations = int(chosen.pop("iterations", CPU_ITERATIONS))
        lr_steps = chosen.pop("lr_steps", None)
        if lr_steps is None:
            lr_steps = tuple(max(1, round(fraction * iterations)) for fraction in self.milestones)
        rankers = tuple((str(name), float(weight)) for name, weight in chosen.pop("rankers", ()))
        # the recipe's constants that a run's settings carry under the same name, then the widths it starts from
        shared = {item.name for item in fields(GanSettings)} & {item.name for item in fields(Recipe)}
        base = {name: getattr(self, name) for name in shared}
        base.update(recipe=self.name, nf=self.default_nf, nb=self.default_nb, d_nf=self.default_d_nf)
        base.update(chosen)
        return GanSettings(iterations=iterations, lr_steps=tuple(int(s) for s in lr_steps), rankers=rankers, **base)

    def deviations(self, settings: GanSettings) -> list[str]:
        """Where a run's settings leave the paper's, in words (recorded in the manifest and the checkpoint)."""
        found = []
        for label, ours, paper in (
            ("patch", settings.patch, self.paper_patch),
            ("batch", settings.batch, self.paper_batch),
            ("iterations", settings.iterations, self.paper_iterations),
            ("generator nf", settings.nf, self.default_nf),
            ("generator nb", settings.nb, self.default_nb),
            *((("discriminator nf", settings.d_nf, self.default_d_nf),) if self.discriminator else ()),
        ):
            if ours != paper:
                found.append(f"{label} {ours} (paper {paper})")
        if settings.perceptual_weight and settings.feature_net == "scratch":
            found.append("VGG19 features with random weights (scratch), not ImageNet's")
        return found


@dataclass(frozen=True)
class GanSettings:
    """Everything a run's result depends on (the manifest's ``settings``; a resume must match all of it
    except ``iterations`` and ``checkpoint_every``)."""

    recipe: str
    generator: str
    discriminator: str
    perceptual_weight: float
    adversarial_weight: float
    adversarial: str
    pixel_weight: float
    rank_weight: float
    halved: bool
    rank_reduction: str
    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    nf: int
    nb: int
    d_nf: int = 64  # the discriminator's first width: 64 in BasicSR/RankSRGAN (num_feat / nf), 32 in 4PP-EUSR
    iterations: int = CPU_ITERATIONS
    lr_steps: tuple[int, ...] = ()
    lr_gamma: float = LR_GAMMA
    rankers: tuple[tuple[str, float], ...] = ()  # (platform Ranker name, weight in the sum of their L_R)
    scale: int = 4  # every recipe is x4 (the papers' factor)
    patch: int = CPU_PATCH
    batch: int = CPU_BATCH
    feature_net: str = "imagenet"  # "scratch": random VGG19 weights, tests and explicit requests only
    seed: int = 0
    holdout: float = 0.25  # share of the images kept for validation, split by image (as train_sr)
    validate_every: int = 50
    checkpoint_every: int = 50
    mixed_precision: bool = True  # torch.autocast + GradScaler, used only on CUDA
    # 4PP-EUSR (the defaults: none of its losses, one output per input)
    aesthetic_score_weight: float = 0.0
    aesthetic_representation_weight: float = 0.0
    subjective_score_weight: float = 0.0
    subjective_representation_weight: float = 0.0
    score_alpha: float = 0.8
    multi_pass: bool = False
    # EUSR's pre-training: each step trains one of the x2/x4/x8 paths, drawn at random; ``patch`` is then the HR
    # side at x4 (the LR crop is patch / 4 at every scale, the HR crop LR x the drawn scale)
    multi_scale: bool = False
    aesthetic_predictor: str = ""  # platform score predictor (train_score_predictor) names; "": none
    subjective_predictor: str = ""

    @property
    def uses_score_predictors(self) -> bool:
        return bool(self.aesthetic_score_weight or self.aesthetic_representation_weight
                    or self.subjective_score_weight or self.subjective_representation_weight)

    def as_dict(self) -> dict:
        from dataclasses import asdict

        out = asdict(self)
        out["betas"] = list(self.betas)
        out["lr_steps"] = list(self.lr_steps)
        out["rankers"] = [[name, weight] for name, weight in self.rankers]
        return out


_ESRGAN_MILESTONES = (50_000 / 400_000, 100_000 / 400_000, 200_000 / 400_000, 300_000 / 400_000)
_RANKSRGAN_MILESTONES = (50_000 / 500_000, 100_000 / 500_000, 200_000 / 500_000, 300_000 / 500_000)

SRGAN = Recipe(
    name="srgan",
    title="SRGAN (Ledig et al. 2017), on RankSRGAN's SRResNet without batch norm",
    generator="srresnet",  # the no-BN SRResNet the RankSRGAN authors retrained SRGAN with (SPEC §4)
    discriminator="vgg_style",  # BasicSR VGGStyleDiscriminator at 128 (SPEC §7.6); Ledig's D is a similar VGG net
    perceptual_weight=1.0,  # platform form: VGG19 conv5_4 pre-activation L1 (BasicSR); Ledig: MSE on phi_5,4
    adversarial_weight=1e-3,  # Ledig et al. 2017 Eq. 3: 10^-3 x l_Gen
    adversarial="vanilla",  # Ledig et al. 2017 Eq. 2, -log D(G(I_LR))
    pixel_weight=0.0,  # Ledig et al. 2017: the SRGAN-VGG54 model has no pixel loss
    rank_weight=0.0,
    halved=False,  # no relativistic loss
    rank_reduction="mean",  # no rank-content loss
    lr_g=1e-4,  # Ledig et al. 2017 §3.2: 10^-4, then 10^-5 after 10^5 updates
    lr_d=1e-4,  # the same optimiser settings for both networks (Ledig §3.2)
    betas=(0.9, 0.999),  # Ledig §3.2: beta1 0.9 (beta2 not stated: Adam's default 0.999)
    milestones=(0.5,),  # Ledig §3.2: x0.1 after 10^5 of 2x10^5 updates (here x0.5 as the other recipes: deviation)
    paper_iterations=200_000,  # Ledig §3.2: 10^5 + 10^5 updates
    paper_batch=16,  # Ledig §3.2
    paper_patch=96,  # Ledig §3.2: 96x96 HR sub-images
    default_nf=64,  # Ledig: B = 16 residual blocks of 64 channels
    default_nb=16,
    init_hint="an SRResNet trained with L1/MSE (train_sr, or the srresnet_x4 checkpoint)",
    sources={
        "adversarial_weight": "Ledig et al. 2017 Eq. 3 (10^-3)",
        "lr": "Ledig et al. 2017 §3.2 (10^-4)",
        "batch/patch": "Ledig et al. 2017 §3.2 (16 of 96x96)",
        "perceptual": "VGG19 conv5_4 pre-activation L1, weight 1 (BasicSR/RankSRGAN form, not Ledig's scaled MSE)",
        "lr_gamma": "0.5 at half the run (deviation: Ledig drops to 10^-5, x0.1)",
    },
)

ESRGAN = Recipe(
    name="esrgan",
    title="ESRGAN (Wang et al. 2018)",
    generator="rrdbnet",  # 004 §3.1: RRDB, 23 blocks, 64 channels (BasicSR num_block 23, num_feat 64)
    discriminator="vgg_style",  # BasicSR VGGStyleDiscriminator, 128-pixel input in the paper (SPEC §7.6)
    perceptual_weight=1.0,  # BasicSR train_ESRGAN_x4.yml perceptual_weight 1.0, conv5_4 before activation (004 §3.3)
    adversarial_weight=5e-3,  # 004 §3.2 lambda = 5e-3
    adversarial="relativistic",  # 004 §3.2 Eq. 1-2, RaGAN
    pixel_weight=1e-2,  # 004 §3.2 eta = 1e-2
    rank_weight=0.0,
    halved=True,  # BasicSR esrgan_model.py: (l_d_real + l_d_fake) / 2, (l_g_real + l_g_fake) / 2; lambda tuned so
    rank_reduction="mean",  # no rank-content loss
    lr_g=1e-4,  # 004 §4.1: GAN stage lr 1e-4; train_ESRGAN_x4.yml optim_g lr 1e-4
    lr_d=1e-4,  # train_ESRGAN_x4.yml optim_d lr 1e-4
    betas=ADAM_BETAS,  # train_ESRGAN_x4.yml betas [0.9, 0.99]
    milestones=_ESRGAN_MILESTONES,  # 004 §4.1: halved at 50k, 100k, 200k, 300k of 400k
    paper_iterations=400_000,  # train_ESRGAN_x4.yml total_iter 400000
    paper_batch=16,  # 004 §4.1
    paper_patch=128,  # 004 §4.1: HR patches 128x128
    default_nf=64,
    default_nb=23,
    init_hint="the PSNR-oriented RRDBNet (esrgan_psnr_x4, RRDB_PSNR_x4.pth): 004 §4.1",
    sources={
        "lambda": "004 §3.2 (5e-3)",
        "eta": "004 §3.2 (1e-2)",
        "lr": "004 §4.1 (1e-4, halved at 50k/100k/200k/300k)",
        "betas": "BasicSR train_ESRGAN_x4.yml (0.9, 0.99)",
        "EMA": "BasicSR keeps an EMA (0.999) of G: not done here (deviation)",
    },
)

RANKSRGAN = Recipe(
    name="ranksrgan",
    title="RankSRGAN (Zhang et al. 2019; journal version's multi-Ranker extension)",
    generator="srresnet",  # train_RankSRGAN.yml network_G: SRResNet, nf 64, nb 16
    discriminator="vgg_style",  # train_RankSRGAN.yml network_D: discriminator_vgg_296 (the same layout at 296)
    perceptual_weight=1.0,  # train_RankSRGAN.yml feature_weight 1, feature_criterion l1 (VGG19 layer 34 = conv5_4)
    adversarial_weight=5e-3,  # train_RankSRGAN.yml gan_weight 5e-3, gan_type gan (vanilla)
    adversarial="vanilla",
    pixel_weight=0.0,  # train_RankSRGAN.yml pixel_weight 0
    rank_weight=3e-2,  # train_RankSRGAN.yml R_weight 3e-2; 000 §3.3 Eq. 9: L_R = sigmoid(R(G(x)))
    halved=False,  # vanilla GAN
    rank_reduction="sum",  # RankSRGAN_model.py: torch.sum(torch.sigmoid(l_g_rank - R_bias)), R_bias 0
    lr_g=1e-4,  # train_RankSRGAN.yml lr_G 1e-4
    lr_d=1e-4,  # train_RankSRGAN.yml lr_D 1e-4
    betas=ADAM_BETAS,  # train_RankSRGAN.yml beta1_G/D 0.9, beta2_G/D 0.99
    milestones=_RANKSRGAN_MILESTONES,  # train_RankSRGAN.yml lr_steps [50k, 100k, 200k, 300k], gamma 0.5, 500k iters
    paper_iterations=500_000,  # train_RankSRGAN.yml niter 500000 (the paper: 600k)
    paper_batch=8,  # train_RankSRGAN.yml batch_size 8
    paper_patch=296,  # train_RankSRGAN.yml GT_size 296
    default_nf=64,
    default_nb=16,
    init_hint="an SRResNet (srresnet_x4, SRResNet_bicx4_in3nf64nb16.pth, or a train_sr output): 000 §4",
    sources={
        "weights": "train_RankSRGAN.yml: pixel 0, feature 1, gan 5e-3, R 3e-2",
        "lr": "train_RankSRGAN.yml lr_G/lr_D 1e-4, x0.5 at 50k/100k/200k/300k of 500k",
        "batch/patch": "train_RankSRGAN.yml batch 8, GT 296",
        "several Rankers": "journal version (001): weighted sum of the Rankers' L_R",
    },
)

FOUR_PP_EUSR = Recipe(
    name="4pp-eusr",
    title="4PP-EUSR (Choi et al. 2019): multi-pass EUSR, discriminator and two score predictors",
    generator="eusr",  # 003 §3.1, §4.1: EUSR, 32 shared local residual blocks, one per upscaling module
    discriminator="eusr",  # 003 §3.3 Fig. 5; 4pp_eusr.py _discriminator (sr_models.gan.discriminators)
    perceptual_weight=0.0,  # 003 Eq. 8: no VGG loss (the score predictors' representations instead)
    adversarial_weight=0.1,  # 003 Eq. 8: 0.1 l_g; 4pp_eusr.py eusr_weight_lg 0.1
    adversarial="vanilla",  # 003 Eq. 3 l_g = -log D; 4pp_eusr.py sigmoid cross-entropy
    pixel_weight=0.05,  # 003 Eq. 8: 0.05 l_r (Eq. 2: L1 on pixels, 0..255 as 4pp_eusr.py computes it)
    rank_weight=0.0,
    halved=False,  # no relativistic loss
    rank_reduction="mean",  # no rank-content loss
    lr_g=1e-5,  # 003 §4.3; 4pp_eusr.py eusr_learning_rate 1e-5
    lr_d=2e-5,  # 003 §4.3; 4pp_eusr.py eusr_learning_rate_discriminator 2e-5
    betas=(0.9, 0.999),  # 003 §4.3: Adam beta1 0.9, beta2 0.999, epsilon 1e-8 (torch's default epsilon)
    milestones=(),  # 4pp_eusr.py: x0.5 every 10^6 steps, so constant over the 4x10^5 steps of 003 §4.3
    paper_iterations=400_000,  # 003 §4.3: 4x10^5 steps
    paper_batch=2,  # 003 §4.3: two input patches per step (six x4 outputs)
    paper_patch=192,  # 003 §4.2: 48x48 LR patches, 192x192 outputs
    default_nf=64,  # 4pp_eusr.py eusr_conv_features 64
    default_nb=32,  # 003 §4.1: 32 local residual blocks in the shared residual module
    init_hint="an EUSR pre-trained with L1 over randomly chosen x2/x4/x8 paths (003 §4.1: the eusr-l1 recipe, "
    "--init trained:NAME), or a converted official graph (eusr_4pp_paper_x4, eusr_4pp_pirm_x4)",
    sources={
        "weights": "003 Eq. 8: 0.05 l_r + 0.1 l_g + 0.01 l_as + 0.1 l_ar + 0.01 l_ss + 0.1 l_sr (4pp_eusr.py flags)",
        "alpha": "003 §4.3: alpha_as = alpha_ss = 0.8",
        "score loss": "003 Eq. 4/6 on the predicted mean scores (4pp_eusr.py: max(0, p~ - 0.8 p) on the 10-bin "
        "distributions, a different form; see trainer.score_loss)",
        "representation": "003 Eq. 5/7 at the global-average-pooling output (1280); mean of squares as 4pp_eusr.py "
        "(tf.losses.mean_squared_error), not Eq. 5's sum",
        "lr": "003 §4.3 (1e-5 G, 2e-5 D, 4x10^5 steps)",
        "multi-pass": "003 §3.2: x4 path, x2 path twice, x8 path then bicubic x1/2; losses averaged (003 §4.3)",
        "order": "003 §4.3 updates D then G; 4pp_eusr.py both from one forward; here G then D (the other recipes)",
    },
    aesthetic_score_weight=0.01,  # 003 Eq. 8; 4pp_eusr.py eusr_weight_las
    aesthetic_representation_weight=0.1,  # 003 Eq. 8; eusr_weight_lar
    subjective_score_weight=0.01,  # 003 Eq. 8; eusr_weight_lss
    subjective_representation_weight=0.1,  # 003 Eq. 8; eusr_weight_lsr
    score_alpha=0.8,  # 003 §4.3: alpha_as = alpha_ss = 0.8
    multi_pass=True,  # 003 §3.2, Fig. 4
    default_d_nf=32,  # 4pp_eusr.py conv1: 32 channels (the widths scale with it: sr_models.gan.discriminators)
)

EUSR_L1 = Recipe(
    name="eusr-l1",
    title="EUSR pre-training (4PP-EUSR §4.1): L1 over randomly chosen x2/x4/x8 paths",
    generator="eusr",  # 003 §4.1: EUSR with 32 shared local residual blocks and one per upscaling module
    discriminator="",  # 003 §4.1: L1 only, no discriminator
    perceptual_weight=0.0,
    adversarial_weight=0.0,
    adversarial="none",
    pixel_weight=1.0,  # 003 §4.1 "the L1 reconstruction loss"; eusr.py: 1.0 x mean |output - truth| on 0..255
    rank_weight=0.0,
    halved=False,
    rank_reduction="mean",
    lr_g=1e-4,  # 003 §4.1; eusr.py eusr_learning_rate 1e-4
    lr_d=0.0,  # no discriminator
    betas=(0.9, 0.999),  # 003 §4.1: Adam beta1 0.9, beta2 0.999, epsilon 1e-8 (torch's default epsilon)
    milestones=(0.2, 0.4, 0.6, 0.8),  # 003 §4.1: halved every 2x10^5 of 10^6 steps (eusr.py staircase decay 0.5)
    paper_iterations=1_000_000,  # 003 §4.1; train.py max_steps 1000000
    paper_batch=16,  # 003 §4.1; train.py batch_size 16
    paper_patch=192,  # 003 §4.1: 48x48 LR patches (train.py input_patch_size 48), given here as the x4 HR side
    default_nf=64,  # eusr.py eusr_conv_features 64
    default_nb=32,  # 003 §4.1; eusr.py eusr_shared_blocks 32
    init_hint="none: EUSR's own initialisation (eusr_arch.initialize, as eusr.py)",
    sources={
        "loss": "003 §4.1 L1; eusr.py recon_l1 = mean absolute difference on 0..255 pixels, weight 1.0",
        "paths": "003 §4.1 one of x2/x4/x8 per step; eusr.py get_next_train_scale: uniform over the scales",
        "lr": "003 §4.1 (1e-4, halved every 2x10^5 steps; 10^6 steps)",
        "batch/patch": "003 §4.1 (16 LR patches of 48x48; HR 96/192/384 by the drawn path)",
        "augmentation": "train/dataloaders/basic_loader.py: a random rot90 and left-right flip (the eight "
        "symmetries, as sample_batch's flips and transpose)",
        "init": "eusr.py: variance scaling 1e-4/62 (fan in, truncated normal) in the residual blocks, Glorot "
        "elsewhere, zero biases (eusr_arch.initialize)",
    },
    multi_scale=True,  # 003 §4.1
)

RECIPES: dict[str, Recipe] = {
    recipe.name: recipe for recipe in (SRGAN, ESRGAN, RANKSRGAN, FOUR_PP_EUSR, EUSR_L1)
}


def recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r} (known: {', '.join(RECIPES)})")
    return RECIPES[name]
