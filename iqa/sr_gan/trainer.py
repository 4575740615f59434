"""``train_sr_gan``'s loop: a generator and a discriminator trained by a recipe (``recipes``), no Django here.

Each iteration, as BasicSR's ``SRGANModel``/``ESRGANModel`` and RankSRGAN's ``RankSRGAN_model`` do it:

1. a batch of aligned (LR, HR) crops (``sr_models.training.sample_batch``: MATLAB-bicubic LR made once per
   image, crops on the LR grid, flips and 90° rotations), from the training images only — the images are
   split *by image* into training and validation (``split_by_image``), as ``train_sr``;
2. the generator step, the discriminator frozen: L_G = w_pix·L1 + w_percep·L1(VGG19 conv5_4 pre-activation)
   + w_adv·L_adv + w_R·Σ_i v_i·L_R,i, with L_adv vanilla (SRGAN, RankSRGAN) or relativistic average
   (ESRGAN Eq. 2, the real logits detached), and L_R,i = sigmoid(±R_i(G(x))) from frozen Rankers, the sign
   by each Ranker's direction (RankSRGAN Eq. 9; several with weights v_i: the journal version);
3. the discriminator step on HR and on the detached output (vanilla BCE, or ESRGAN Eq. 1).

EUSR's pre-training (``eusr-l1``, 003 §4.1) has no discriminator and no step 3: each step draws one of EUSR's
×2/×4/×8 paths uniformly from the run's RNG (so a resume draws the same ones), takes LR crops of patch/4 pixels
at that scale (HR crops 2, 4 or 8 times larger, from one HR image cropped to a multiple of 8) and trains that
path with L1; validation adds the PSNR-Y of the ×2 and ×8 paths to the ×4 figures.

4PP-EUSR (003 §3.2, §4.3) works in EUSR's pixel units, 0..255, as the authors' ``4pp_eusr.py`` does (its
L1 and discriminator inputs are on that scale): each LR crop gives three ×4 outputs (``multi_pass``: the
×4 path, the ×2 path twice, the ×8 path then TF1 bicubic ×½), stacked along the batch against the HR crop
repeated, so every batch-mean loss is the average over the three outputs (003 §4.3: "calculated for all the
three upscaled images and then averaged"). Its generator loss adds, for each of the two frozen score
predictors (aesthetic, subjective; MobileNetV2s trained by ``train_score_predictor``), the score loss of
003 Eq. 4/6 on the predicted mean scores (``score_loss``) and the representation loss of Eq. 5/7 on the
1280-vector at MobileNetV2's global average pooling (``representation_loss``).

Exact resume: one ``train_state.pt`` holds both networks, both optimisers, both schedulers, the AMP scalers,
torch/Python/NumPy RNG states and the history (``iqa.learned.training.TrainingRun``), so N steps then N more
equal 2N steps on the CPU (a fixed thread count). A resume needs the same data, split and settings; only the
iteration count and the checkpoint interval may change.

Validation (before training, every ``validate_every`` steps, at the end) on the whole held-out images:
PSNR and SSIM on Y (BT.601, ``scale`` pixels cropped, 8-bit outputs — the SR convention of ``train_sr``),
each Ranker's mean score of the outputs, and the extra metrics (NIQE, Ma, PI, LPIPS) the caller could load;
the ones it could not are recorded as skipped with the reason. ``plot`` draws losses and validation figures.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import MISSING as dataclass_missing
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from iqa.learned import store
from iqa.learned.errors import LearnedModelError
from iqa.learned.training import TrainingError, TrainingRun
from iqa.sr_gan.recipes import GanSettings
from iqa.sr_gan.recipes import recipe as recipe_of
from sr_models import training as sr_training

KIND = "sr_gan"
TRAINED_FOLDER = "trained"  # under the weights directory, shared with train_sr and train_denoiser
RUNS_FOLDER = "sr_gan_runs"  # under TRAINED_FOLDER: one run folder (manifest, train_state.pt, plot) per name
PLOT_FILE = "training.png"
TRAINED_BY = "train_sr_gan"
SCRATCH_NOTE = "VGG features: random (scratch) — not the paper's perceptual loss"
FEATURE_NETS = ("imagenet", "scratch")
EXTRA_METRICS = ("niqe", "nrqm", "pi", "lpips")  # nrqm is Ma et al.'s score in pyiqa


# --- where things go ------------------------------------------------------------------------------------


def run_folder(weights_dir: Path, name: str) -> Path:
    return Path(weights_dir) / TRAINED_FOLDER / RUNS_FOLDER / name


def checkpoint_path(weights_dir: Path, name: str) -> Path:
    return Path(weights_dir) / TRAINED_FOLDER / f"{name}.pth"


def label_for(recipe: str, source: str) -> str:
    return f"{recipe} generator trained by the platform on {source} — not an official checkpoint"


# --- the run folder ------------------------------------------------------------------------------------


def read_run_manifest(folder: Path) -> dict:
    path = Path(folder) / store.MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainingError(f"{path} is missing") from None
    except (OSError, ValueError) as error:
        raise TrainingError(f"{path} is not a readable JSON manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise TrainingError(f"{path} is not a train_sr_gan run (kind {manifest.get('kind')!r})")
    return manifest


class GanRun(TrainingRun):
    """``TrainingRun`` for a run that is not a learned metric: its manifest is read here, since
    ``store.read_manifest`` accepts metric kinds only. The resume rules are TrainingRun's."""

    data_changed = "the data or the split changed (images added, removed or changed)"

    def read_manifest(self) -> dict:
        return read_run_manifest(self.folder)

    def earlier_settings(self, manifest: dict) -> dict:
        return {**_SETTING_DEFAULTS, **manifest.get("settings", {})}  # a run recorded before a field existed

    def update_manifest(self, **entries) -> None:
        manifest = self.read_manifest()
        manifest.update(json.loads(json.dumps(entries, default=str)))
        store.write_json(self.folder / store.MANIFEST_FILE, manifest)


_SETTING_DEFAULTS = {
    item.name: item.default for item in dataclass_fields(GanSettings) if item.default is not dataclass_missing
}


def resumed_settings(weights_dir: Path, name: str) -> dict:
    """The settings an earlier run ``name`` recorded (a resume starts from them)."""
    manifest = read_run_manifest(run_folder(weights_dir, name))
    settings = dict(manifest.get("settings", {}))
    settings["betas"] = tuple(settings.get("betas", ()))
    settings["lr_steps"] = tuple(settings.get("lr_steps", ()))
    settings["rankers"] = tuple((name, float(weight)) for name, weight in settings.get("rankers", ()))
    return settings


class _Bundle:
    """Several optimisers / schedulers / AMP scalers saved and restored as one (TrainingRun takes one)."""

    def __init__(self, **parts):
        self.parts = parts

    def state_dict(self) -> dict:
        return {name: part.state_dict() for name, part in self.parts.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, part in self.parts.items():
            part.load_state_dict(state[name])


# --- checks ----------------------------------------------------------------------------------------------


def check_settings(settings: GanSettings) -> None:
    """The settings' own refusals, with the patch checked against the generator, the discriminator and the
    Rankers before anything is built (a message, never a torch padding or shape error)."""
    from iqa.learned.ranker_arch import MIN_SIDE as RANKER_MIN_SIDE

    for name in ("iterations", "batch", "nf", "nb", "d_nf", "validate_every", "checkpoint_every"):
        minimum = 0 if name == "iterations" else 1
        if getattr(settings, name) < minimum:
            raise TrainingError(f"{name} must be at least {minimum}, not {getattr(settings, name)}")
    if settings.feature_net not in FEATURE_NETS:
        raise TrainingError(f"--feature-net must be one of {', '.join(FEATURE_NETS)}, not {settings.feature_net!r}")
    if not settings.lr_g > 0 or (settings.discriminator and not settings.lr_d > 0) or not 0 < settings.lr_gamma <= 1:
        raise TrainingError("the learning rates must be positive and lr_gamma in (0, 1]")
    if not 0 < settings.holdout < 1:
        raise TrainingError(f"the validation share must be between 0 and 1, not {settings.holdout}")
    if list(settings.lr_steps) != sorted(settings.lr_steps) or any(step < 1 for step in settings.lr_steps):
        raise TrainingError(f"lr_steps must be increasing positive steps, not {list(settings.lr_steps)}")
    if settings.rank_weight and not settings.rankers:
        raise TrainingError(f"{settings.recipe} needs at least one Ranker (--ranker NAME[:WEIGHT])")
    if settings.rankers and not settings.rank_weight:
        raise TrainingError(f"{settings.recipe} has no rank-content loss: --ranker is for ranksrgan")
    minimum = 2 * settings.scale
    if settings.patch < minimum or settings.patch % settings.scale:
        raise TrainingError(
            f"--patch {settings.patch}: the {settings.generator} generator needs a multiple of the scale "
            f"({settings.scale}) of at least {minimum} HR pixels"
        )
    if settings.rankers and settings.patch < RANKER_MIN_SIDE:
        raise TrainingError(
            f"--patch {settings.patch}: the Ranker needs at least {RANKER_MIN_SIDE} pixels a side (five stride-2 "
            "convolutions)"
        )
    for flag, what in ((settings.multi_pass, "multi-pass training"), (settings.multi_scale, "multi-scale training")):
        if flag and settings.generator != "eusr":
            raise TrainingError(f"{what} needs EUSR's x2/x4/x8 paths, not the {settings.generator} generator")
    for role, weights in (
        ("aesthetic", (settings.aesthetic_score_weight, settings.aesthetic_representation_weight)),
        ("subjective", (settings.subjective_score_weight, settings.subjective_representation_weight)),
    ):
        named = getattr(settings, f"{role}_predictor")
        if any(weights) and not named:
            raise TrainingError(
                f"{settings.recipe} needs --{role}-predictor NAME: a score predictor trained with "
                "python manage.py train_score_predictor"
            )
        if named and not any(weights):
            raise TrainingError(f"{settings.recipe} has no {role} score loss: --{role}-predictor is for 4pp-eusr")
    if settings.discriminator:
        build_discriminator(settings)  # refuses a patch the discriminator cannot take, with its message
    from sr_models.gan.discriminators import vgg_final_side

    if settings.discriminator == "vgg_style" and settings.batch * vgg_final_side(settings.patch) ** 2 < 2:
        raise TrainingError(
            f"--batch {settings.batch} with --patch {settings.patch}: the discriminator's BatchNorm needs more than "
            "one value per channel in its last layer; use a batch of 2 or more, or a patch of 64 or more"
        )


def build_discriminator(settings: GanSettings):
    from sr_models.gan import discriminators

    if settings.discriminator == "eusr":  # 4pp_eusr.py widths 32..512 and FC 1024, scaled by d_nf / 32
        options = {"channels": tuple(c * settings.d_nf // discriminators.EUSR_CHANNELS[0]
                                     for c in discriminators.EUSR_CHANNELS),
                   "hidden": discriminators.EUSR_HIDDEN * settings.d_nf // discriminators.EUSR_CHANNELS[0]}
    else:
        options = {"num_feat": settings.d_nf}
    try:
        return discriminators.build_discriminator(settings.discriminator, settings.patch, **options)
    except ValueError as error:
        raise TrainingError(f"--patch {settings.patch}: {error}") from None


# --- data --------------------------------------------------------------------------------------------


@dataclass
class Data:
    names: list[str]
    train_names: list[str]
    validation_names: list[str]
    train_pairs: list[tuple[np.ndarray, np.ndarray]]  # (LR, HR) uint8 at the run's scale (x4)
    validation_pairs: list[tuple[np.ndarray, np.ndarray]]
    fingerprint: dict  # source, images' SHA-256 and the split: what a resume must find again
    # multi-scale runs: scale -> (training pairs, validation pairs), the same HR images at x2, x4 and x8
    scale_pairs: dict = field(default_factory=dict)


def training_scales(settings: GanSettings) -> tuple[int, ...]:
    """The scales a run trains: EUSR's three paths for a multi-scale run, else the run's scale."""
    from sr_models.archs.eusr_arch import MODEL_SCALES

    return tuple(MODEL_SCALES) if settings.multi_scale else (settings.scale,)


def prepare_data(names: Sequence[str], images: Sequence[np.ndarray], settings: GanSettings, source: str) -> Data:
    """Images split by image into training and validation (train_sr's split), LR made once per image and scale
    (a multi-scale run crops each HR image to a multiple of 8, so its three LR versions share one HR image)."""
    names = list(names)
    scales = training_scales(settings)
    largest = max(scales)
    hr_patch = settings.patch // settings.scale * largest  # the largest HR crop a step takes
    try:
        sr_training.check_images(images, SimpleNamespace(patch=hr_patch), names)
    except sr_training.TrainingError as error:
        suffix = f" (the x{largest} path's HR crop: --patch {settings.patch} / {settings.scale} x {largest})"
        raise TrainingError(f"{error}{suffix if largest != settings.scale else ''}") from None
    train_idx, val_idx = sr_training.split_by_image(len(images), settings.holdout, settings.seed)
    pairs = {}
    for index in train_idx + val_idx:
        hr = sr_training.modcrop(images[index], largest)
        pairs[index] = {scale: (sr_training.make_lr(hr, scale), hr) for scale in scales}
    fingerprint = {
        "source": source,
        "images": {name: hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()[:16]
                   for name, image in zip(names, images, strict=True)},
        "split": {"train": [names[i] for i in train_idx], "validation": [names[i] for i in val_idx]},
    }
    if settings.multi_scale:
        fingerprint["scales"] = list(scales)
    scale_pairs = {
        scale: ([pairs[i][scale] for i in train_idx], [pairs[i][scale] for i in val_idx]) for scale in scales
    }
    return Data(
        names=names,
        train_names=[names[i] for i in train_idx],
        validation_names=[names[i] for i in val_idx],
        train_pairs=scale_pairs[settings.scale][0],
        validation_pairs=scale_pairs[settings.scale][1],
        fingerprint=fingerprint,
        scale_pairs=scale_pairs if settings.multi_scale else {},
    )


def sample_scale_batch(
    data: Data, settings: GanSettings, rng: np.random.Generator
) -> tuple[int, np.ndarray, np.ndarray]:
    """(scale, LR batch, HR batch): a multi-scale run draws one of the paths uniformly from the run's RNG
    (tf-perceptual-eusr ``get_next_train_scale``), then LR crops of patch / 4 pixels at that scale (003 §4.1: 48x48
    LR patches whatever the path); any other run takes its patch at its scale."""
    if not settings.multi_scale:
        return (settings.scale, *sr_training.sample_batch(data.train_pairs, settings, rng))
    scales = sorted(data.scale_pairs)
    scale = scales[int(rng.integers(len(scales)))]
    crop = SimpleNamespace(patch=settings.patch // settings.scale * scale, scale=scale, batch=settings.batch)
    return (scale, *sr_training.sample_batch(data.scale_pairs[scale][0], crop, rng))


# --- networks ------------------------------------------------------------------------------------------


@dataclass
class LoadedRanker:
    name: str
    weight: float  # in the weighted sum of the Rankers' L_R
    lower_is_better: bool
    network: object  # frozen Ranker in eval mode
    source: str  # "official" or "trained by train_ranker"


def load_rankers(rankers: Sequence[tuple[str, float]], weights_dir: Path, device: str) -> list[LoadedRanker]:
    """Any platform Ranker by metric name: an official one (ranker_niqe/ma/pi) or one train_ranker wrote;
    frozen (eval mode: BatchNorm's running statistics; no gradient to its weights)."""
    from core.weights import WeightsError, locate
    from iqa.learned import official, ranker_arch

    officials = {entry.metric: entry for entry in official.OFFICIAL_RANKERS}
    loaded = []
    for name, weight in rankers:
        if name in officials:
            entry = officials[name]
            try:
                network = ranker_arch.load_official(locate(entry, Path(weights_dir)), device)
            except (WeightsError, LearnedModelError) as error:
                raise TrainingError(f"Ranker {name}: {error}") from None
            lower_is_better, source = not entry.higher_is_better, "official"
        else:
            folder = store.learned_root(Path(weights_dir)) / name
            try:
                manifest = store.read_manifest(folder)
                if manifest.get("kind") != ranker_arch.KIND:
                    raise TrainingError(f"{name} is a trained {manifest.get('kind')}, not a Ranker")
                _, network = store.build_trained(folder / store.MODEL_FILE, device)
            except LearnedModelError as error:
                known = ", ".join(sorted(officials) + sorted(
                    n for n, m in store.discover(store.learned_root(Path(weights_dir))).items()
                    if m.get("kind") == ranker_arch.KIND))
                raise TrainingError(f"Ranker {name}: {error} (Rankers known here: {known})") from None
            lower_is_better = not manifest.get("metric", {}).get("higher_is_better", False)
            source = "trained by train_ranker"
        network.eval()
        for parameter in network.parameters():
            parameter.requires_grad_(False)
        loaded.append(LoadedRanker(name, float(weight), lower_is_better, network, source))
    return loaded


@dataclass
class LoadedPredictor:
    role: str  # "aesthetic" or "subjective" (003 §3.4)
    name: str  # the platform metric train_score_predictor wrote
    network: object  # frozen iqa.learned.score_predictor_arch.ScorePredictor in eval mode (no dropout)
    sha256: str  # of its model.pt


def load_score_predictors(settings: GanSettings, weights_dir: Path, device: str) -> list[LoadedPredictor]:
    """The two score predictors of 4PP-EUSR by name, as ``load_rankers`` finds trained Rankers: the folder
    train_score_predictor wrote under ``weights_dir/learned/``; frozen (eval mode, no gradient to their
    weights; the gradient reaches the SR output through them). A missing one is refused with its name and
    the command that makes it."""
    from iqa.learned import score_predictor_arch as sp_arch

    root = store.learned_root(Path(weights_dir))
    loaded = []
    for role in ("aesthetic", "subjective"):
        name = getattr(settings, f"{role}_predictor")
        if not name:
            continue
        folder = root / name
        try:
            manifest = store.read_manifest(folder)
            if manifest.get("kind") != sp_arch.KIND:
                raise TrainingError(f"{role} score predictor {name} is a trained {manifest.get('kind')}, not a "
                                    "score predictor (train_score_predictor)")
            _, network = store.build_trained(folder / store.MODEL_FILE, device)
        except LearnedModelError as error:
            known = ", ".join(sorted(n for n, m in store.discover(root).items() if m.get("kind") == sp_arch.KIND))
            raise TrainingError(
                f"{role} score predictor {name}: {error}; make it with: python manage.py train_score_predictor "
                f"STUDY --name {name} (score predictors here: {known or 'none'})"
            ) from None
        network.eval()
        for parameter in network.parameters():
            parameter.requires_grad_(False)
        loaded.append(LoadedPredictor(role, name, network, manifest.get("model_sha256", "")))
    return loaded


def load_features(weights_dir: Path, feature_net: str, device: str):
    """VGG19 up to conv5_4 (pre-activation), frozen; a missing file is refused with its name, URL and the
    import command (``sr_models.gan.vgg``); random weights only with feature_net "scratch"."""
    from core.weights import WeightsError
    from sr_models.gan import vgg

    try:
        network = vgg.load_vgg19_features(Path(weights_dir), scratch=feature_net == "scratch").network
    except WeightsError as error:
        raise TrainingError(f"{error} (or, for a test only, --feature-net scratch)") from None
    network = network.to(device).eval()
    for parameter in network.parameters():
        parameter.requires_grad_(False)
    return network


def generator_options(settings: GanSettings) -> dict:
    """The generator's build options (sr_models.archs) for the run's widths."""
    if settings.generator == "eusr":  # n_feats 64, 32 shared blocks in the paper (eusr_arch.build)
        return {"n_feats": settings.nf, "n_shared_blocks": settings.nb}
    return {"nf": settings.nf, "nb": settings.nb}


def build_generator(settings: GanSettings):
    from sr_models import archs

    return archs.build(settings.generator, settings.scale, **generator_options(settings))


def pixel_unit(settings: GanSettings) -> float:
    """What 1.0 of a [0, 1] image is in the generator's units (255 for EUSR, 1 for the others)."""
    from sr_models import archs

    return float(archs.arch(settings.generator).input_range)


MULTI_PASSES = 3  # 003 §3.2: three x4 outputs per input


def multi_pass(generator, lr):
    """003 §3.2, Fig. 4 (4pp_eusr.py's training graph): the x4 path, the x2 path twice, the x8 path then TF1
    bicubic to 4x the input; the three outputs stacked along the batch, (3N, C, 4H, 4W), in the input's units."""
    import torch

    from sr_models.archs.eusr_arch import resize_bicubic_tf1

    height, width = lr.shape[-2:]
    return torch.cat([
        generator.generate(lr, 4),
        generator.generate(generator.generate(lr, 2), 2),
        resize_bicubic_tf1(generator.generate(lr, 8), 4 * height, 4 * width),
    ])


def load_initial(generator, settings: GanSettings, init: str | None, weights_dir: Path) -> dict:
    """Initial weights: a checkpoint file (path), a registered checkpoint name or ``trained:NAME`` (a generator
    train_sr or train_sr_gan wrote, e.g. an ``eusr-l1`` pre-training), loaded strictly after its layout is mapped
    onto ours; none: EUSR's own initialisation for EUSR (``eusr_arch.initialize``, as the authors' code), else
    Kaiming-normal x0.1 (train_sr's ``init_weights``, mmsr's ``initialize_weights(net, 0.1)``). Returns what was
    used, for the manifest."""
    from core import weights as core_weights
    from sr_models import archs
    from sr_models.checkpoints import CHECKPOINTS, TRAINED_PREFIX
    from sr_models.weights import get_checkpoint

    if not init:
        if settings.generator == "eusr":
            from sr_models.archs import eusr_arch

            eusr_arch.initialize(generator)
            return {"init": "scratch (EUSR's initialisation: tf-perceptual-eusr train/models/eusr.py)"}
        sr_training.init_weights(generator)
        return {"init": "scratch (Kaiming-normal x0.1, as train_sr)"}
    path = Path(init)
    checkpoint = None
    if not path.is_file():
        if not init.startswith(TRAINED_PREFIX) and init not in CHECKPOINTS:
            raise TrainingError(f"--init {init}: no such file, and no registered SR checkpoint of that name "
                                f"(a generator trained here is {TRAINED_PREFIX}NAME)")
        try:
            checkpoint = get_checkpoint(init, Path(weights_dir))
        except KeyError as error:
            raise TrainingError(f"--init {error.args[0]}") from None
        if checkpoint.arch != settings.generator or checkpoint.parts:
            raise TrainingError(f"--init {init} is a {checkpoint.arch} checkpoint; {settings.recipe} trains a "
                                f"{settings.generator}")
        try:
            path = core_weights.locate(checkpoint, Path(weights_dir))
        except core_weights.WeightsError as error:
            raise TrainingError(str(error)) from None
    try:
        state = core_weights.read_state(path)
        state = archs.arch(settings.generator).convert(state)
        generator.load_state_dict(state, strict=True)
    except (core_weights.WeightsError, archs.UnknownLayout, RuntimeError) as error:
        raise TrainingError(
            f"--init {init} does not fit {settings.generator} (nf {settings.nf}, nb {settings.nb}): {error}"
        ) from None
    return {"init": str(init), "init_sha256": core_weights.file_sha256(path)}


# --- validation --------------------------------------------------------------------------------------


def _y(rgb: np.ndarray, border: int) -> np.ndarray:
    from sr_models.inference import rgb_to_ycbcr

    y = rgb_to_ycbcr(rgb.astype(np.float64) / 255.0)[..., 0] * 255.0
    return y[border:-border, border:-border] if border else y


def ssim_y(reference: np.ndarray, output: np.ndarray, border: int) -> float:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, 'valid' filtering) on
    BT.601 Y in [0, 255] with ``border`` pixels cropped — the SR papers' ``calculate_ssim`` (BasicSR)."""
    y1, y2 = _y(reference, border), _y(output, border)
    if min(y1.shape) < 11:
        return math.nan
    taps = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    taps /= taps.sum()

    def blur(a: np.ndarray) -> np.ndarray:
        a = np.lib.stride_tricks.sliding_window_view(a, 11, axis=0) @ taps
        return np.lib.stride_tricks.sliding_window_view(a, 11, axis=1) @ taps

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1, mu2 = blur(y1), blur(y2)
    var1, var2 = blur(y1 * y1) - mu1**2, blur(y2 * y2) - mu2**2
    cov = blur(y1 * y2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * cov + c2)) / ((mu1**2 + mu2**2 + c1) * (var1 + var2 + c2))
    return float(ssim_map.mean())


@dataclass
class ExtraMetric:
    name: str
    higher_is_better: bool
    score: Callable[[np.ndarray, np.ndarray], float]  # (output, hr) uint8, border cropped


def load_extra_metrics(names: Sequence[str], device: str, weights_dir: Path) -> tuple[list[ExtraMetric], dict]:
    """NIQE, Ma, PI, LPIPS as the platform loads them; one whose file is missing is skipped, with the reason."""
    import torch

    from core.weights import WeightsError
    from iqa import metrics

    loaded, skipped = [], {}
    for name in names:
        try:
            metric = metrics.load_metric(name, device=device, weights_dir=Path(weights_dir))
        except WeightsError as error:
            skipped[name] = f"skipped: {error}"
            continue

        def score(output, hr, metric=metric):
            as_tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].float() / 255  # noqa: E731
            reference = as_tensor(hr) if metric.info.full_reference else None
            return metric.score(as_tensor(output), reference)[0]

        loaded.append(ExtraMetric(name, metric.info.higher_is_better, score))
    return loaded, skipped


def _upscale(generator, lr: np.ndarray, device: str, unit: float = 1.0, path_scale: int | None = None) -> np.ndarray:
    """The generator's 8-bit output for one LR image (EUSR through its x``path_scale`` path when given)."""
    import torch

    batch = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1), dtype=np.float32) / 255.0)[None]
    network = generator if path_scale is None else (lambda x: generator.generate(x, path_scale))
    output = network(batch.to(device) * unit)[0].float() / unit
    output = output.clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()
    return sr_training.quantize(output)


def ranker_score(ranker: LoadedRanker, image: np.ndarray, device: str) -> float:
    import torch

    batch = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0)[None]
    with torch.inference_mode():
        return float(ranker.network(batch.to(device)).reshape(-1)[0])


def predictor_score(predictor: LoadedPredictor, image: np.ndarray, device: str) -> float:
    """The predicted mean score (1..10) of the image's centre crop, as the predictor's metric computes it."""
    import torch

    from iqa.learned import score_predictor_arch as sp_arch

    batch = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0)[None]
    with torch.inference_mode():
        return float(sp_arch.as_metric(predictor.network)(batch.to(device))[0])


def validate(generator, data: Data, settings: GanSettings, rankers: Sequence[LoadedRanker],
             extra: Sequence[ExtraMetric], device: str, *, bicubic: bool = False,
             predictors: Sequence[LoadedPredictor] = (), skipped: dict | None = None) -> dict:
    """Means over the validation images of PSNR-Y, SSIM-Y, each Ranker's score, each score predictor's mean
    score and the extra metrics (of the generator's 8-bit outputs — EUSR's through its x4 path, the output
    4PP-EUSR reports — or of MATLAB-bicubic upscaling when ``bicubic``); a multi-scale run adds the PSNR-Y
    of its x2 and x8 paths (``psnr_y_x2``, ``psnr_y_x8``, the scale's pixels cropped at the border). An extra
    metric that cannot score the validation images (NIQE's 96-pixel blocks need larger images than a small
    study's) is left out and the reason written into ``skipped``, never a failed run."""
    import torch

    from sr_models.imresize import imresize

    border = settings.scale
    figures: dict[str, list[float]] = {"psnr_y": [], "ssim_y": []}
    was_training = generator.training
    generator.eval()
    with torch.inference_mode():
        for lr, hr in data.validation_pairs:
            if bicubic:
                output = imresize(lr, output_shape=hr.shape[:2], method="bicubic")
            else:
                output = _upscale(generator, lr, device, pixel_unit(settings))
            figures["psnr_y"].append(sr_training.psnr_y(hr, output, border))
            figures["ssim_y"].append(ssim_y(hr, output, border))
            for ranker in rankers:
                figures.setdefault(f"ranker:{ranker.name}", []).append(ranker_score(ranker, output, device))
            for predictor in predictors:
                figures.setdefault(f"{predictor.role}:{predictor.name}", []).append(
                    predictor_score(predictor, output, device))
            cropped = (output[border:-border, border:-border], hr[border:-border, border:-border])
            for metric in extra:
                if skipped is not None and metric.name in skipped:
                    continue
                try:
                    value = metric.score(*cropped)
                except (RuntimeError, ValueError) as error:
                    height, width = cropped[0].shape[:2]
                    reason = f"skipped: cannot score a {width}x{height} validation image ({type(error).__name__})"
                    if skipped is None:
                        raise
                    skipped[metric.name] = reason
                    figures.pop(metric.name, None)
                    continue
                figures.setdefault(metric.name, []).append(value)
        for scale, (_, pairs) in sorted(data.scale_pairs.items()):  # EUSR's other paths, by their own PSNR
            if scale == settings.scale:
                continue
            figures[f"psnr_y_x{scale}"] = [
                sr_training.psnr_y(hr, imresize(lr, output_shape=hr.shape[:2], method="bicubic") if bicubic
                                   else _upscale(generator, lr, device, pixel_unit(settings), scale), scale)
                for lr, hr in pairs
            ]
    generator.train(was_training)
    return {name: float(np.mean(values)) for name, values in figures.items()}


# --- training --------------------------------------------------------------------------------------


@dataclass
class GanResult:
    state_dict: dict  # the generator's, CPU tensors
    steps_before: int
    history: list[dict]  # {"step", "losses": {...}} per step and {"step", "validation": {...}}
    validation: dict  # the last validation
    bicubic: dict  # the validation figures of bicubic upscaling
    skipped: dict  # extra metric -> why it was not measured
    init: dict
    rankers: list[dict]
    data: Data
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    predictors: list[dict] = field(default_factory=list)

    def step_losses(self) -> list[dict]:
        return [entry["losses"] for entry in self.history if "losses" in entry]


def _autocast(device: str, enabled: bool):
    import torch

    if device == "cuda" and enabled:
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def score_loss(sr_scores, hr_scores, alpha: float):
    """003 Eq. 4 (l_as) and Eq. 6 (l_ss), batch mean: max(0, (S_max − S̃) − α·(S_max − S)) on the predicted
    mean scores (S_max 10, the top bin): zero once the output scores within α of the HR's distance to the top,
    so with α 0.8 it asks for outputs scored better than the ground truth (003 §4.3).

    The authors' ``4pp_eusr.py`` computes ``max(0, p̃ − 0.8·p)`` on the 10-bin distributions ``output_scores``
    instead, averaged over the bins: that penalises probability in every bin alike, the top bins included, so
    it does not push towards a higher score and does not use S_max; the paper's form is used here because it
    is the one the paper states and explains, and it is defined on the mean score the predictors report."""
    import torch

    from iqa.learned.score_predictor_arch import SCORES

    top = SCORES[1]
    return torch.relu((top - sr_scores) - alpha * (top - hr_scores)).mean()


def representation_loss(sr_features, hr_features):
    """003 Eq. 5 (l_ar) and Eq. 7 (l_sr): the L2 between the 1280-vectors of MobileNetV2's global average
    pooling (``ScorePredictor.representation``; the frozen graph's ``output_features``, Keras
    ``MobileNetV2(include_top=False, pooling='avg')``'s last layer), as the mean of squares over the features
    and the batch, as ``4pp_eusr.py`` (``tf.losses.mean_squared_error``) computes the loss its weight 0.1 was
    used with; Eq. 5 writes the sum over the 1280 features (1280 times larger)."""
    import torch

    return torch.nn.functional.mse_loss(sr_features, hr_features.detach())


def generator_losses(settings: GanSettings, sr, hr, discriminator, features, rankers: Sequence[LoadedRanker],
                     predictors: Sequence[LoadedPredictor] = ()):
    """(total, parts) of the generator's loss on one batch; parts are the unweighted terms. ``sr`` and ``hr`` are
    in the generator's units (``pixel_unit``), with ``hr`` repeated to match a multi-pass ``sr``."""
    import torch

    from sr_models.gan import losses

    parts = {}
    total = sr.new_zeros(())
    if settings.pixel_weight:
        parts["pixel"] = torch.nn.functional.l1_loss(sr, hr)
        total = total + settings.pixel_weight * parts["pixel"]
    if settings.perceptual_weight:
        with torch.no_grad():
            hr_features = features(hr)
        parts["perceptual"] = losses.perceptual_loss(features(sr), hr_features)
        total = total + settings.perceptual_weight * parts["perceptual"]
    if discriminator is not None:
        fake_logits = discriminator(sr)
        if settings.adversarial == "relativistic":
            real_logits = discriminator(hr).detach()  # ESRGAN/BasicSR: D's real logits detached in the G step
            parts["adversarial"] = losses.relativistic_generator_loss(real_logits, fake_logits,
                                                                      halved=settings.halved)
        else:
            parts["adversarial"] = losses.vanilla_generator_loss(fake_logits)
        total = total + settings.adversarial_weight * parts["adversarial"]
    if settings.rank_weight:
        rank = sr.new_zeros(())
        for ranker in rankers:
            scores = ranker.network(sr).reshape(-1)
            rank = rank + ranker.weight * losses.rank_content_loss(
                scores, lower_is_better=ranker.lower_is_better, reduction=settings.rank_reduction)
        parts["rank"] = rank
        total = total + settings.rank_weight * rank
    if predictors:
        from iqa.learned.score_predictor_arch import mean_score

        unit = pixel_unit(settings)
        for predictor in predictors:  # the predictors take [0, 1] RGB (their input_norm does the rest)
            network, role = predictor.network, predictor.role
            with torch.no_grad():
                hr_features = network.representation(hr / unit)
                hr_scores = mean_score(network.head(hr_features))
            sr_features = network.representation(sr / unit)
            parts[f"{role}_score"] = score_loss(mean_score(network.head(sr_features)), hr_scores,
                                                settings.score_alpha)
            parts[f"{role}_representation"] = representation_loss(sr_features, hr_features)
            total = (total + getattr(settings, f"{role}_score_weight") * parts[f"{role}_score"]
                     + getattr(settings, f"{role}_representation_weight") * parts[f"{role}_representation"])
    return total, parts


def discriminator_loss(settings: GanSettings, sr, hr, discriminator):
    from sr_models.gan import losses

    real_logits, fake_logits = discriminator(hr), discriminator(sr.detach())
    if settings.adversarial == "relativistic":
        return losses.relativistic_discriminator_loss(real_logits, fake_logits, halved=settings.halved)
    return losses.vanilla_discriminator_loss(real_logits, fake_logits)


def train(
    names: Sequence[str],
    images: Sequence[np.ndarray],
    settings: GanSettings,
    *,
    name: str,
    weights_dir: Path,
    source: str,
    init: str | None = None,
    resume: bool = False,
    device: str = "cpu",
    extra_metrics: Sequence[str] = EXTRA_METRICS,
    progress: Callable[[int, float], None] | None = None,
    announce: Callable[[str], None] | None = None,
) -> GanResult:
    """Train (or resume) run ``name`` under ``weights_dir/trained/sr_gan_runs/``; write the generator's
    checkpoint ``weights_dir/trained/<name>.pth`` (``write_checkpoint``) and the plot. Raises TrainingError
    with a message that says why for every refusal. ``progress(step, generator loss)`` after each step."""
    import torch

    check_settings(settings)
    started = time.perf_counter()
    data = prepare_data(names, images, settings, source)
    predictors = load_score_predictors(settings, weights_dir, device)  # refused before the run folder exists
    run = GanRun(run_folder(weights_dir, name), kind=KIND, settings=settings.as_dict(),
                 data=data.fingerprint, resume=resume)
    torch.manual_seed(settings.seed)  # first: scratch VGG weights are drawn from it too, the same on a resume
    rng = np.random.default_rng(settings.seed)
    features = load_features(weights_dir, settings.feature_net, device) if settings.perceptual_weight else None
    rankers = load_rankers(settings.rankers, weights_dir, device)
    extra, skipped = load_extra_metrics(extra_metrics, device, weights_dir)
    generator = build_generator(settings)
    init_record = load_initial(generator, settings, init, weights_dir)
    discriminator = build_discriminator(settings) if settings.discriminator else None  # eusr-l1: none
    generator.to(device).train()
    networks = torch.nn.ModuleDict({"generator": generator})
    milestones = list(settings.lr_steps)
    amp = device == "cuda" and settings.mixed_precision
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=settings.lr_g, betas=tuple(settings.betas))
    scheduler_g = torch.optim.lr_scheduler.MultiStepLR(optimizer_g, milestones, gamma=settings.lr_gamma)
    scaler_g = torch.amp.GradScaler("cuda", enabled=amp)
    optimizers = _Bundle(generator=optimizer_g, scaler_g=scaler_g)
    schedulers = _Bundle(generator=scheduler_g)
    if discriminator is not None:
        discriminator.to(device).train()
        networks["discriminator"] = discriminator
        optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=settings.lr_d, betas=tuple(settings.betas))
        scheduler_d = torch.optim.lr_scheduler.MultiStepLR(optimizer_d, milestones, gamma=settings.lr_gamma)
        scaler_d = torch.amp.GradScaler("cuda", enabled=amp)
        optimizers.parts.update(discriminator=optimizer_d, scaler_d=scaler_d)
        schedulers.parts.update(discriminator=scheduler_d)

    steps_before = run.restore(networks, optimizers, schedulers, rng)
    if not resume:
        init_manifest = {"init": init_record, "rankers": _ranker_records(rankers),
                         "score_predictors": _predictor_records(predictors),
                         "deviations": recipe_of(settings.recipe).deviations(settings)}
        run.start()
        run.update_manifest(**init_manifest)
    else:
        run.start()
    unit = pixel_unit(settings)

    def validation(**options) -> dict:
        return validate(
            generator, data, settings, rankers, extra, device, predictors=predictors, skipped=skipped, **options
        )

    bicubic = validation(bicubic=True)
    if steps_before == 0:
        run.history.append({"step": 0, "validation": validation()})
    if announce:
        announce(f"{settings.recipe}: {len(data.train_names)} training image(s), validating on "
                 f"{', '.join(data.validation_names)}; steps {steps_before + 1}..{settings.iterations} on {device}"
                 f"{' (mixed precision)' if amp else ''}")

    for step in range(steps_before + 1, settings.iterations + 1):
        scale, lr_batch, hr_batch = sample_scale_batch(data, settings, rng)
        lr_batch, hr_batch = torch.from_numpy(lr_batch).to(device), torch.from_numpy(hr_batch).to(device)
        if unit != 1.0:
            lr_batch, hr_batch = lr_batch * unit, hr_batch * unit

        if discriminator is not None:
            discriminator.requires_grad_(False)  # the G step: D frozen (BasicSR optimize_parameters)
        optimizer_g.zero_grad(set_to_none=True)
        with _autocast(device, amp):
            if settings.multi_pass:
                sr = multi_pass(generator, lr_batch)
                targets = hr_batch.repeat(MULTI_PASSES, 1, 1, 1)  # each output against its own HR crop
            elif settings.multi_scale:
                sr, targets = generator.generate(lr_batch, scale), hr_batch  # only the drawn path learns
            else:
                sr, targets = generator(lr_batch), hr_batch
            total, parts = generator_losses(settings, sr, targets, discriminator, features, rankers, predictors)
        scaler_g.scale(total).backward()
        scaler_g.step(optimizer_g)
        scaler_g.update()
        scheduler_g.step()

        losses = {key: float(value.detach()) for key, value in parts.items()}
        losses.update(generator=float(total.detach()), lr_g=optimizer_g.param_groups[0]["lr"])
        if discriminator is not None:
            discriminator.requires_grad_(True)
            optimizer_d.zero_grad(set_to_none=True)
            with _autocast(device, amp):
                d_loss = discriminator_loss(settings, sr, hr_batch, discriminator)
            scaler_d.scale(d_loss).backward()
            scaler_d.step(optimizer_d)
            scaler_d.update()
            scheduler_d.step()
            losses["discriminator"] = float(d_loss.detach())
        if not all(math.isfinite(v) for v in losses.values()):
            raise TrainingError(f"step {step}: a loss is not finite ({losses}); lower the learning rates")
        run.history.append({"step": step, "losses": losses, **({"scale": scale} if settings.multi_scale else {})})
        if step % settings.validate_every == 0 or step == settings.iterations:
            run.history.append({"step": step, "validation": validation()})
        if step % settings.checkpoint_every == 0 or step == settings.iterations:
            run.checkpoint(step, networks, optimizers, schedulers, rng)
        if progress is not None:
            progress(step, losses["generator"])

    validations = [entry for entry in run.history if "validation" in entry]
    if not validations or validations[-1]["step"] != settings.iterations:
        validations.append({"step": settings.iterations, "validation": validation()})
    notes = [SCRATCH_NOTE] if uses_scratch_features(settings) else []
    state = {key: value.detach().cpu().clone() for key, value in generator.state_dict().items()}
    result = GanResult(
        state_dict=state, steps_before=steps_before, history=list(run.history),
        validation=validations[-1]["validation"], bicubic=bicubic, skipped=skipped,
        init=read_run_manifest(run.folder).get("init", init_record), rankers=_ranker_records(rankers),
        data=data, seconds=time.perf_counter() - started, notes=notes, predictors=_predictor_records(predictors),
    )
    plot(result, settings, run.folder / PLOT_FILE)
    run.update_manifest(
        results={"validation": result.validation, "bicubic": bicubic, "skipped": skipped, "notes": notes,
                 "validations": [entry for entry in run.history if "validation" in entry]},
        feature_net=_feature_record(settings), plot=PLOT_FILE,
    )
    return result


def _ranker_records(rankers: Sequence[LoadedRanker]) -> list[dict]:
    return [{"name": r.name, "weight": r.weight, "lower_is_better": r.lower_is_better, "source": r.source}
            for r in rankers]


def uses_scratch_features(settings: GanSettings) -> bool:
    """Whether the run's perceptual loss used random VGG19 weights (a recipe without that loss loads none)."""
    return bool(settings.perceptual_weight) and settings.feature_net == "scratch"


def _predictor_records(predictors: Sequence[LoadedPredictor]) -> list[dict]:
    return [{"role": p.role, "name": p.name, "model_sha256": p.sha256, "source": "trained by train_score_predictor"}
            for p in predictors]


def _feature_record(settings: GanSettings) -> dict:
    if not settings.perceptual_weight:
        return {"net": "none", "note": f"{settings.recipe} has no VGG19 perceptual loss"}
    if settings.feature_net == "scratch":
        return {"net": "scratch", "pretrained": False, "note": SCRATCH_NOTE}
    return {"net": "imagenet", "pretrained": True, "layer": "VGG19 conv5_4 before its ReLU"}


# --- outputs ------------------------------------------------------------------------------------------


def provenance(result: GanResult, settings: GanSettings, *, name: str, source: str) -> dict:
    """What the checkpoint file says about itself (a train_sr-like ``provenance``)."""
    import torch

    return {
        "trained_by": TRAINED_BY,
        "label": label_for(settings.recipe, source),
        "official": False,
        "recipe": settings.recipe,
        "arch": settings.generator,
        "scale": settings.scale,
        "build_options": generator_options(settings),
        "run": f"{TRAINED_FOLDER}/{RUNS_FOLDER}/{name}",
        "data": result.data.fingerprint,
        "settings": settings.as_dict(),
        "deviations": recipe_of(settings.recipe).deviations(settings),
        "feature_net": _feature_record(settings),
        "rankers": result.rankers,
        "score_predictors": result.predictors,
        "init": result.init,
        "validation": result.validation,
        "bicubic": result.bicubic,
        "skipped": result.skipped,
        "notes": result.notes,
        "torch": str(torch.__version__),
    }


def write_checkpoint(path: Path, result: GanResult, provenance_record: dict) -> None:
    """``{"params": generator state, "provenance": ...}`` written atomically (train_sr's file layout:
    ``core.weights.read_state`` unwraps ``params``)."""
    from core.weights import write_checkpoint as write_params

    write_params(Path(path), result.state_dict, json.loads(json.dumps(provenance_record, default=str)))


def plot(result: GanResult, settings: GanSettings, path: Path) -> None:
    """Losses per step (left) and validation PSNR-Y and Ranker scores (right), a PNG in the run folder."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = [entry["step"] for entry in result.history if "losses" in entry]
    losses = result.step_losses()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for key in ("generator", "discriminator", "perceptual", "adversarial", "pixel", "rank", "aesthetic_score",
                "aesthetic_representation", "subjective_score", "subjective_representation"):
        if losses and key in losses[0]:
            left.plot(steps, [entry[key] for entry in losses], label=key, linewidth=0.8)
    left.set_xlabel("step")
    left.set_yscale("log")
    left.set_title(f"{settings.recipe} losses" + (" — scratch VGG" if settings.feature_net == "scratch" else ""))
    if losses:  # a run of 0 steps has only its validation
        left.legend(fontsize=7)
    validations = [entry for entry in result.history if "validation" in entry]
    v_steps = [entry["step"] for entry in validations]
    for key in sorted(k for k in result.bicubic if k.startswith("psnr_y")):  # x4, and a multi-scale run's x2, x8
        scale_label = key.removeprefix("psnr_y").lstrip("_") or f"x{settings.scale}"
        line, = right.plot(v_steps, [entry["validation"][key] for entry in validations], "o-",
                           label=f"PSNR-Y {scale_label} (dB)")
        right.axhline(result.bicubic[key], linestyle=":", color=line.get_color(), label=f"bicubic {scale_label}")
    right.set_xlabel("step")
    right.legend(fontsize=7, loc="upper left")
    ranker_keys = [key for key in (validations[0]["validation"] if validations else {})
                   if key.split(":")[0] in ("ranker", "aesthetic", "subjective")]
    if ranker_keys:
        twin = right.twinx()
        for key in ranker_keys:
            twin.plot(v_steps, [entry["validation"][key] for entry in validations], "s--", label=key)
        twin.legend(fontsize=7, loc="upper right")
    right.set_title("validation (held-out images)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
