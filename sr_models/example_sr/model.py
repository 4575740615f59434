"""Training and running Zeyde, ANR, A+ (and GR) on the Y channel; Cb and Cr by bicubic, as the authors do.

Every method shares one learned pair of dictionaries (Zeyde et al. 2010, ``learn_dict.m``; SPEC §7.4):

* training pairs: each HR image cropped to a multiple of the scale, its LR made the way the platform
  makes LR inputs (MATLAB bicubic ``imresize`` of the 8-bit RGB image, ``sr_models.training.make_lr``),
  features of the bicubic-upscaled LR Y channel and HR-minus-bicubic Y patches (``features.py``);
  the authors resize the float Y channel instead, so their LR is never rounded to 8 bits — ours sees the
  inputs the model is given later;
* PCA of the features (last 0.1 % of the energy dropped), then approximate K-SVD on the projected
  features (1024 atoms, 20 iterations, 3 atoms per signal — ``ksvd_conf``) gives the LR dictionary;
* the HR dictionary is the least-squares fit of the HR patches to the same codes:
  ``dict_hires = patches * gamma' * inv(gamma * gamma')`` (a minimum-norm solve here, so an atom no
  code uses gets a zero HR atom instead of MATLAB's singular-matrix warning).

Methods at test time (feature -> PCA -> prediction + bicubic patch -> overlap-add):

* ``zeyde``: OMP of the feature over the LR dictionary (3 atoms), HR patch = ``dict_hires * gamma``
  (``scaleup_Zeyde.m``);
* ``gr`` (Timofte et al. ICCV 2013, global regression): one ridge projection from the whole
  dictionary, ``P = (1 + lambda) D_h (D_l^T D_l + lambda I)^-1 D_l^T``, lambda by dictionary size
  (0.01 below 1024 atoms, 0.1 below 2048, 1 below 8192, else 5 — the authors' ``go_run`` scripts);
* ``anr`` (ICCV 2013): the atom j with the largest |correlation| to the feature picks a projection
  ``P_j = 1.01 N_h (N_l^T N_l + 0.01 I)^-1 N_l^T`` built from the 40 atoms most correlated with atom j
  (when 40 is half the dictionary or more the authors use GR's projection for every atom);
* ``aplus`` (Timofte et al. ACCV 2014): the same anchors, but each ``P_j = N_h (N_l^T N_l + 0.1 I)^-1
  N_l^T`` is built from the 2048 training samples nearest (Euclidean) to atom j, taken from a pool
  collected at 12 scales of the training images (each 0.98 times the previous) with full overlap; LR
  samples are L2-normalised and their HR patches divided by the same norm, except that norms below 0.1
  leave the HR patch as it is (``l2(l2 < 0.1) = 1`` in the authors' code). The authors' pool holds up to
  5 million samples; ours is a seeded random subset of ``aplus_pool`` of them (CPU memory and time).

CPU budget: K-SVD runs on at most ``max_patches`` training patches, a seeded random subset of all the
grid windows (Zeyde et al. report about 130,000 pairs from the 91 images at x3; the default keeps up to
100,000). Every random choice comes from ``seed``, so a training run is repeatable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
from scipy import sparse

from sr_models.example_sr import features as feat
from sr_models.example_sr import ksvd
from sr_models.imresize import imresize, output_size
from sr_models.training import make_lr, modcrop, psnr_y

METHODS = ("zeyde", "anr", "aplus")
ALL_METHODS = (*METHODS, "gr")  # GR is ANR's global baseline: trainable, not one of PIPAL's types
METHOD_LABELS = {
    "zeyde": "Zeyde et al. 2010 (sparse coding)",
    "anr": "ANR (Timofte et al. 2013)",
    "aplus": "A+ (Timofte et al. 2014)",
    "gr": "GR (Timofte et al. 2013)",
}
SHORT_LABELS = {"zeyde": "Zeyde", "anr": "ANR", "aplus": "A+", "gr": "GR"}
SCALES = (2, 3, 4)  # the factors the authors trained and tested (Set5/Set14 x2, x3, x4)

ANR_LAMBDA = 0.01  # ANR: inv(Lo'*Lo + 0.01*eye(...)) (Timofte et al. 2013 code)
ANR_FACTOR = 1.01  # ANR: conf.PPs{i} = 1.01 * dict_hires(:, idx) * ...
APLUS_LAMBDA = 0.1  # A+: llambda = 0.1 (Timofte et al. 2014 code)
APLUS_SMALL_NORM = 0.1  # A+: l2(l2 < 0.1) = 1 — HR patches of nearly flat samples are not rescaled
APLUS_MAX_POOL = 5_000_000  # A+: the authors cap their pool at 5e6 samples
_EPS = np.finfo(np.float64).eps  # MATLAB eps, added to the A+ norms
PATCH_CHUNK = 8192  # test patches predicted at a time (features and Zeyde's correlations: tens of MB)


def gr_lambda(atoms: int) -> float:
    """GR's ridge weight by dictionary size (Timofte et al. 2013, go_run scripts)."""
    if atoms < 1024:
        return 0.01
    if atoms < 2048:
        return 0.1
    if atoms < 8192:
        return 1.0
    return 5.0


class ExampleSRError(ValueError):
    """Bad input, settings or model file, with a message that says why."""


Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExampleSRConfig:
    method: str
    scale: int
    atoms: int = 1024  # ksvd_conf.dictsize (Zeyde; ANR and A+ use 1024 for their main results)
    sparsity: int = 3  # ksvd_conf.Tdata
    ksvd_iterations: int = 20  # ksvd_conf.iternum
    anr_neighbours: int = 40  # ANR neighbourhood (clustersz = 40)
    aplus_samples: int = 2048  # A+ neighbourhood (clusterszA = 2048)
    max_patches: int = 100_000  # K-SVD training patches, a seeded subset (CPU budget; see the module doc)
    aplus_pool: int = 200_000  # A+ sample pool, a seeded subset (the authors: up to 5,000,000)
    aplus_scales: int = 12  # collectSamplesScales(conf, images, 12, 0.98)
    aplus_scale_step: float = 0.98
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def dictionary_settings(self) -> dict:
        """What the shared dictionary depends on (methods trained together must agree on these)."""
        return {key: getattr(self, key) for key in DICTIONARY_FIELDS}


DICTIONARY_FIELDS = ("scale", "atoms", "sparsity", "ksvd_iterations", "max_patches", "seed")
CONFIG_FIELDS = tuple(field.name for field in fields(ExampleSRConfig))


def _integer(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_config(config: ExampleSRConfig) -> None:
    """Refuse settings the methods cannot run with, saying which and why."""
    if config.method not in ALL_METHODS:
        raise ExampleSRError(f"unknown method {config.method!r}; known: {', '.join(ALL_METHODS)}")
    counts = {
        "scale": config.scale,
        "atoms": config.atoms,
        "sparsity": config.sparsity,
        "ksvd_iterations": config.ksvd_iterations,
        "anr_neighbours": config.anr_neighbours,
        "aplus_samples": config.aplus_samples,
        "max_patches": config.max_patches,
        "aplus_pool": config.aplus_pool,
        "aplus_scales": config.aplus_scales,
        "seed": config.seed,
    }
    for name, value in counts.items():
        if not _integer(value):
            raise ExampleSRError(f"{name} must be an integer, not {value!r}")
    if config.scale not in SCALES:
        raise ExampleSRError(f"example-based SR supports scales x{', x'.join(map(str, SCALES))}, not x{config.scale}")
    if config.atoms < 2:
        raise ExampleSRError(f"atoms must be 2 or more, not {config.atoms}")
    if not 1 <= config.sparsity <= config.atoms:
        raise ExampleSRError(f"sparsity must be between 1 and the {config.atoms} atoms, not {config.sparsity}")
    if config.ksvd_iterations < 1:
        raise ExampleSRError(f"ksvd_iterations must be 1 or more, not {config.ksvd_iterations}")
    if not 1 <= config.anr_neighbours <= config.atoms:
        raise ExampleSRError(
            f"anr_neighbours must be between 1 and the {config.atoms} atoms, not {config.anr_neighbours}"
        )
    if config.max_patches < config.atoms:
        raise ExampleSRError(f"max_patches ({config.max_patches}) must be at least the {config.atoms} atoms")
    if config.aplus_samples < 1:
        raise ExampleSRError(f"aplus_samples must be 1 or more, not {config.aplus_samples}")
    if not config.aplus_samples <= config.aplus_pool <= APLUS_MAX_POOL:
        raise ExampleSRError(
            f"aplus_pool must be between aplus_samples ({config.aplus_samples}) and {APLUS_MAX_POOL}, "
            f"not {config.aplus_pool}"
        )
    if config.aplus_scales < 1:
        raise ExampleSRError(f"aplus_scales must be 1 or more, not {config.aplus_scales}")
    if not (isinstance(config.aplus_scale_step, float | int) and 0 < config.aplus_scale_step <= 1):
        raise ExampleSRError(f"aplus_scale_step must be in (0, 1], not {config.aplus_scale_step!r}")
    if config.seed < 0:
        raise ExampleSRError(f"seed must be 0 or more, not {config.seed}")


@dataclass(frozen=True, eq=False)
class ExampleSRModel:
    """A trained example-based upscaler; ``upscale`` is deterministic.

    ``pca``: (4 (3s)^2, d) PCA basis; ``anchors``: (K, d) LR dictionary, unit rows; ``dict_hires``:
    (K, (3s)^2) HR dictionary (zeyde); ``projections``: (K, (3s)^2, d) per-anchor regressors
    (anr, aplus) or (1, (3s)^2, d) (gr), float32 as saved."""

    config: ExampleSRConfig
    pca: np.ndarray
    anchors: np.ndarray
    dict_hires: np.ndarray | None = None
    projections: np.ndarray | None = None

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def label(self) -> str:
        return METHOD_LABELS[self.method]

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 RGB -> uint8 (sH)x(sW)x3: the method on Y, bicubic Cb/Cr. An image too small for one
        3x3-pixel window inside a 1-pixel border comes back bicubic."""
        if not (isinstance(lr, np.ndarray) and lr.dtype == np.uint8 and lr.ndim == 3 and lr.shape[2] == 3):
            shape = f"{lr.dtype} {lr.shape}" if isinstance(lr, np.ndarray) else type(lr).__name__
            raise ExampleSRError(f"upscale expects an HxWx3 uint8 RGB image, got {shape}")
        if min(lr.shape[:2]) < 1:
            raise ExampleSRError(f"upscale got an empty image {lr.shape}")
        ycbcr = feat.bicubic_ycbcr(lr, self.scale)
        ycbcr[..., 0] += self.residual(ycbcr[..., 0])
        return feat.to_rgb_uint8(ycbcr)

    def residual(self, midres: np.ndarray) -> np.ndarray:
        """The predicted HR-minus-bicubic Y of a bicubic-upscaled Y image (full-overlap grid, averaged)."""
        scale = self.scale
        rows, cols = feat.grid_positions(midres.shape, scale, feat.TEST_OVERLAP_LR)
        if not len(rows):
            return np.zeros_like(midres)
        images = feat.filtered(midres, scale)
        patches = np.empty((len(rows), feat.patch_size(scale)))
        for start in range(0, len(rows), PATCH_CHUNK):  # bounded memory for large images
            chunk = slice(start, start + PATCH_CHUNK)
            patches[chunk] = self.predict(feat.features(images, scale, rows[chunk], cols[chunk]) @ self.pca)
        return feat.overlap_average(patches, midres.shape, scale, feat.TEST_OVERLAP_LR)

    def predict(self, projected: np.ndarray) -> np.ndarray:
        """(n, (3s)^2) HR-minus-bicubic patches of (n, d) PCA-projected features."""
        if self.method == "zeyde":
            codes = ksvd.sparse_code(self.anchors, projected, self.config.sparsity)
            return codes.dense_rows(self.dict_hires)
        projections = self.projections  # float32; each product with the float64 features is computed in float64
        if self.method == "gr":
            return projected @ projections[0].T
        # anr, aplus: the anchor with the largest |correlation| picks the regressor (scaleup_ANR.m)
        nearest = np.argmax(np.abs(projected @ self.anchors.T), axis=1)
        out = np.empty((len(projected), projections.shape[1]))
        order = np.argsort(nearest, kind="stable")
        atoms, starts = np.unique(nearest[order], return_index=True)
        for atom, rows in zip(atoms, np.split(order, starts[1:]), strict=True):
            out[rows] = projected[rows] @ projections[atom].T
        return out


# --- training data ---------------------------------------------------------------------------------


@dataclass
class _TrainingImage:
    midres: np.ndarray  # bicubic-upscaled LR Y, HR size
    residual: np.ndarray  # HR Y minus midres


def _prepare(hr_rgb: np.ndarray, scale: int) -> _TrainingImage:
    hr = modcrop(hr_rgb, scale)
    midres = feat.upscale_luma(feat.luma(make_lr(hr, scale)), hr.shape[:2])
    return _TrainingImage(midres, feat.luma(hr) - midres)


def check_images(images: Sequence[np.ndarray], scale: int, names: Sequence[str] | None = None) -> None:
    """Refuse fewer than one image, non-RGB-uint8 ones and images smaller than one training window."""
    if not len(images):
        raise ExampleSRError("training needs at least one HR image")
    names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
    side = feat.min_hr_side(scale)
    for name, image in zip(names, images, strict=True):
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3):
            shape = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ExampleSRError(f"{name}: expected an HxWx3 uint8 RGB image, got {shape}")
        height, width = image.shape[:2]
        if min(height - height % scale, width - width % scale) < side:
            raise ExampleSRError(
                f"{name}: {width}x{height} is smaller than one x{scale} training window with its border "
                f"({side}x{side} pixels: 3x3 LR pixels plus 1 on each side)"
            )


def _choose(counts: Sequence[int], limit: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A seeded random subset of at most ``limit`` of all windows, as sorted local indices per image."""
    total = int(sum(counts))
    chosen = np.arange(total) if total <= limit else np.sort(rng.choice(total, size=limit, replace=False))
    bounds = np.cumsum([0, *counts])
    cuts = np.searchsorted(chosen, bounds)  # chosen is sorted: each image's indices are one run
    return [chosen[cuts[i] : cuts[i + 1]] - bounds[i] for i in range(len(counts))]


def _samples(
    prepared: Sequence[_TrainingImage], scale: int, overlap_lr: int, limit: int, rng: np.random.Generator
) -> list[tuple[_TrainingImage, np.ndarray, np.ndarray]]:
    """(image, rows, cols) of a bounded random subset of every image's grid windows."""
    grids = [feat.grid_positions(item.midres.shape, scale, overlap_lr) for item in prepared]
    picks = _choose([len(rows) for rows, _ in grids], limit, rng)
    return [(item, rows[pick], cols[pick]) for item, (rows, cols), pick in zip(prepared, grids, picks, strict=True)]


@dataclass(frozen=True)
class Dictionary:
    """What the methods share: PCA basis, LR dictionary (unit rows), HR dictionary."""

    pca: np.ndarray
    anchors: np.ndarray
    dict_hires: np.ndarray


def _streams(seed: int) -> dict[str, np.random.Generator]:
    # independent streams, so A+'s pool does not depend on which other methods were trained alongside
    names = ("patches", "ksvd", "aplus")
    return dict(zip(names, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3)), strict=True))


def _train_dictionary(
    prepared: Sequence[_TrainingImage], config: ExampleSRConfig, progress: Progress | None = None
) -> Dictionary:
    streams = _streams(config.seed)
    scale = config.scale
    chosen = _samples(prepared, scale, feat.TRAIN_OVERLAP_LR, config.max_patches, streams["patches"])
    size = feat.feature_size(scale)
    gram = np.zeros((size, size))
    for done, (item, rows, cols) in enumerate(chosen, 1):  # pass 1: the PCA (F^T F, never all F at once)
        raw = feat.features(item.midres, scale, rows, cols)
        gram += raw.T @ raw
        if progress:
            progress("features", done, 2 * len(chosen))
    pca = feat.pca_basis(gram)
    projected, residuals = [], []
    for done, (item, rows, cols) in enumerate(chosen, len(chosen) + 1):  # pass 2: projected features
        projected.append(feat.features(item.midres, scale, rows, cols) @ pca)
        residuals.append(feat.patches(item.residual, scale, rows, cols).astype(np.float32))  # collect.m: single
        if progress:
            progress("features", done, 2 * len(chosen))
    projected, residuals = np.concatenate(projected), np.concatenate(residuals)
    try:
        anchors, codes = ksvd.ksvd(
            projected,
            config.atoms,
            config.ksvd_iterations,
            config.sparsity,
            streams["ksvd"],
            (lambda done, total: progress("k-svd", done, total)) if progress else None,
        )
    except ValueError as error:
        raise ExampleSRError(f"{error}: use fewer atoms or more (or larger) images") from None
    return Dictionary(pca, anchors, _hires_dictionary(codes, residuals, config.atoms))


def _hires_dictionary(codes: ksvd.SparseCodes, residuals: np.ndarray, atoms: int) -> np.ndarray:
    """(K, p) least squares of the HR patches on the codes: (Gamma Gamma^T)^-1 Gamma P^T, minimum-norm."""
    count, sparsity = codes.atoms.shape
    gamma = sparse.csr_matrix(
        (codes.values.ravel(), codes.atoms.ravel(), np.arange(0, count * sparsity + 1, sparsity)), shape=(count, atoms)
    )
    normal = (gamma.T @ gamma).toarray()
    right = np.asarray(gamma.T @ residuals)
    return np.linalg.lstsq(normal, right, rcond=None)[0]


# --- the methods' projections ------------------------------------------------------------------------


def _ridge(low: np.ndarray, high: np.ndarray, lam: float) -> np.ndarray:
    """(p, d) regressor ``H^T (L L^T + lam I)^-1 L`` of n samples (rows of L: (n, d), H: (n, p)), computed as
    ``H^T L (L^T L + lam I)^-1`` (the same matrix, d x d instead of n x n to invert; the A+ code's
    commented-out alternative)."""
    d = low.shape[1]
    return np.linalg.solve(low.T @ low + lam * np.eye(d), low.T @ high).T


def gr_projection(dictionary: Dictionary) -> np.ndarray:
    lam = gr_lambda(len(dictionary.anchors))
    return ((1 + lam) * _ridge(dictionary.anchors, dictionary.dict_hires, lam))[None]


def anr_projections(dictionary: Dictionary, neighbours: int, progress: Progress | None = None) -> np.ndarray:
    atoms = len(dictionary.anchors)
    if neighbours >= atoms / 2:  # the authors' rule: a neighbourhood of half the dictionary is GR
        return np.repeat(gr_projection(dictionary), atoms, axis=0)
    correlation = np.abs(dictionary.anchors @ dictionary.anchors.T)
    nearest = np.argsort(-correlation, axis=1, kind="stable")[:, :neighbours]
    out = np.empty((atoms, dictionary.dict_hires.shape[1], dictionary.anchors.shape[1]))
    for atom in range(atoms):
        chosen = nearest[atom]
        out[atom] = ANR_FACTOR * _ridge(dictionary.anchors[chosen], dictionary.dict_hires[chosen], ANR_LAMBDA)
        if progress and ((atom + 1) % 64 == 0 or atom + 1 == atoms):
            progress("anr regressors", atom + 1, atoms)
    return out


def aplus_pool(
    images: Sequence[np.ndarray], dictionary: Dictionary, config: ExampleSRConfig, progress: Progress | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) samples at ``aplus_scales`` scales of the images, full overlap, a seeded subset of at most
    ``aplus_pool``; LR projected by the PCA and L2-normalised, HR divided by the same norm (see the module doc)."""
    scale = config.scale
    factors = [config.aplus_scale_step**level for level in range(config.aplus_scales)]
    rng = _streams(config.seed)["aplus"]
    # sizes first, so the subset is drawn once over all (image, scale) pairs without holding them all
    shapes = []
    for factor in factors:
        for image in images:
            resized = image.shape[:2] if factor == 1 else output_size(image.shape[:2], factor)
            shapes.append((resized[0] - resized[0] % scale, resized[1] - resized[1] % scale))
    counts = [feat.grid_count(shape, scale, feat.TEST_OVERLAP_LR) if min(shape) else 0 for shape in shapes]
    picks = _choose(counts, config.aplus_pool, rng)
    low, high = [], []
    pairs = [(factor, image) for factor in factors for image in images]
    for done, ((factor, image), pick) in enumerate(zip(pairs, picks, strict=True), 1):
        if len(pick):
            resized = image if factor == 1 else imresize(image, factor, method="bicubic")
            item = _prepare(resized, scale)
            rows, cols = feat.grid_positions(item.midres.shape, scale, feat.TEST_OVERLAP_LR)
            low.append(feat.features(item.midres, scale, rows[pick], cols[pick]) @ dictionary.pca)
            high.append(feat.patches(item.residual, scale, rows[pick], cols[pick]))
        if progress:
            progress("a+ samples", done, len(pairs))
    low, high = np.concatenate(low), np.concatenate(high)
    norms = np.sqrt(np.einsum("nd,nd->n", low, low)) + _EPS
    low = low / norms[:, None]
    norms[norms < APLUS_SMALL_NORM] = 1.0
    return low, (high / norms[:, None]).astype(np.float32)  # single precision, as collect.m stores patches


def aplus_projections(
    dictionary: Dictionary, low: np.ndarray, high: np.ndarray, samples: int, progress: Progress | None = None
) -> np.ndarray:
    """Per anchor: ridge regression (lambda 0.1) on its ``samples`` nearest pool samples (Euclidean)."""
    atoms, d = dictionary.anchors.shape
    samples = min(samples, len(low))
    squared = np.einsum("nd,nd->n", low, low)
    out = np.empty((atoms, high.shape[1], d))
    block = 32
    for start in range(0, atoms, block):
        anchors = dictionary.anchors[start : start + block]
        distances = squared[None, :] - 2 * anchors @ low.T  # + |a|^2, the same for every sample of a row
        nearest = np.argpartition(distances, samples - 1, axis=1)[:, :samples] if samples < len(low) else None
        for offset in range(len(anchors)):
            rows = slice(None) if nearest is None else np.sort(nearest[offset])
            out[start + offset] = _ridge(low[rows], high[rows], APLUS_LAMBDA)
        if progress:
            progress("a+ regressors", min(start + block, atoms), atoms)
    return out


# --- public entry points -----------------------------------------------------------------------------


def train_models(
    images: Sequence[np.ndarray],
    configs: Sequence[ExampleSRConfig],
    progress: Progress | None = None,
    *,
    names: Sequence[str] | None = None,
) -> list[ExampleSRModel]:
    """Train several methods on one shared dictionary (their dictionary settings must agree)."""
    if not configs:
        raise ExampleSRError("no method to train")
    for config in configs:
        check_config(config)
    shared = configs[0].dictionary_settings()
    for config in configs[1:]:
        if config.dictionary_settings() != shared:
            raise ExampleSRError(
                f"methods trained together share one dictionary: {config.method} has "
                f"{config.dictionary_settings()}, {configs[0].method} has {shared}"
            )
    scale = configs[0].scale
    check_images(images, scale, names)
    prepared = [_prepare(image, scale) for image in images]
    dictionary = _train_dictionary(prepared, configs[0], progress)
    pools: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}  # A+ sample pools, by the settings that shape them
    models = []
    for config in configs:
        extra = {}
        if config.method == "zeyde":
            extra["dict_hires"] = dictionary.dict_hires
        elif config.method == "gr":
            extra["projections"] = gr_projection(dictionary)
        elif config.method == "anr":
            extra["projections"] = anr_projections(dictionary, config.anr_neighbours, progress)
        else:
            key = (config.aplus_pool, config.aplus_scales, config.aplus_scale_step)
            if key not in pools:
                pools[key] = aplus_pool(images, dictionary, config, progress)
            extra["projections"] = aplus_projections(dictionary, *pools[key], config.aplus_samples, progress)
        if "projections" in extra:
            extra["projections"] = extra["projections"].astype(np.float32)  # the saved precision, used as is
        models.append(ExampleSRModel(config=config, pca=dictionary.pca, anchors=dictionary.anchors, **extra))
    return models


def train_model(
    images: Sequence[np.ndarray],
    config: ExampleSRConfig,
    progress: Progress | None = None,
    *,
    names: Sequence[str] | None = None,
) -> ExampleSRModel:
    """Train one method on HxWx3 uint8 RGB HR images; ``progress(stage, done, total)``."""
    return train_models(images, [config], progress, names=names)[0]


def held_out_psnr(models: Sequence[ExampleSRModel], images: Sequence[np.ndarray]) -> dict[str, list[float]]:
    """PSNR-Y per image of bicubic and of each model on HR images they were not trained on, in train_sr's
    convention (``sr_models.training.psnr_y``: 8-bit outputs, BT.601 Y, ``scale`` pixels cropped at each
    border; LR by MATLAB bicubic of the 8-bit image, the baseline its 8-bit bicubic upscaling)."""
    scale = models[0].scale
    scores: dict[str, list[float]] = {"bicubic": [], **{model.method: [] for model in models}}
    for image in images:
        hr = modcrop(image, scale)
        lr = make_lr(hr, scale)
        scores["bicubic"].append(psnr_y(hr, imresize(lr, output_shape=hr.shape[:2], method="bicubic"), scale))
        for model in models:
            scores[model.method].append(psnr_y(hr, model.upscale(lr), scale))
    return scores
