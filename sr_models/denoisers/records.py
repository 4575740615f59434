"""The published DnCNN and FFDNet weights (cszn/KAIR), as weights records (no Django, no torch here).

A ``DenoiserRecord`` is a ``core.weights.WeightsRecord`` that also says which network the file
fills (architecture, channels, depth ``nb``, width ``nc``), what it was trained for (Gaussian
noise, JPEG artefacts) and at which levels. Its ``check`` loads the file strictly into that
network, so ``import_weights`` refuses a foreign or truncated file before installing it.
``register_weights()`` adds every record to ``core.weights.WEIGHTS`` (``SrModelsConfig.ready()``),
where ``fetch_weights`` and ``import_weights`` find them with no special case.

Facts (SPEC §7.5; KAIR ``main_test_dncnn.py``, ``main_test_ffdnet.py``,
``main_download_pretrained_models.py``, ``models/network_{dncnn,ffdnet}.py``):

* every file is a plain state dict, batch norm merged: ``model.{0,2,…,2(nb−1)}.weight/bias``;
* ``dncnn_15/25/50``: grey, one σ each, 17 layers; ``dncnn_gray_blind``, ``dncnn_color_blind`` and
  ``dncnn3``: 20 layers, blind (DnCNN paper §IV-A: DnCNN-B trained for σ ∈ [0, 55]; DnCNN-3 for
  σ ∈ [0, 55], ×2/×3/×4 SR and JPEG quality 5–99, on the Y channel); colour only for
  ``dncnn_color_blind`` (``'color' in model_name`` → 3 channels);
* ``ffdnet_gray`` (64 channels, 15 layers), ``ffdnet_color`` (96 channels, 12 layers), σ ∈ [0, 75]
  (FFDNet paper §IV-A); the ``*_clip`` variants were trained on noisy images clipped to [0, 1]
  (``use_clip`` in ``main_test_ffdnet.py``), which is what an 8-bit noisy file is;
* input in [0, 1] (uint8 / 255), noise level σ/255; KAIR's download script fetches each file from
  ``https://github.com/cszn/KAIR/releases/download/v1.0/<file>``; no checksum is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import weights as core_weights
from core.registry import Registry
from core.weights import WeightsRecord

TASKS = ("gaussian", "jpeg")
KAIR_SOURCE = "https://github.com/cszn/KAIR"
KAIR_RELEASE = "https://github.com/cszn/KAIR/releases/download/v1.0/"  # main_download_pretrained_models.py
KAIR_LICENCE = "MIT (cszn/KAIR)"
NORMALISATION = "[0,1] float, σ/255"


@dataclass(frozen=True)
class DenoiserOptions:
    """What a denoiser file fills and how it is used: the same for an official record and for a
    file ``train_denoiser`` wrote (kept in its provenance)."""

    arch: str  # "dncnn" | "ffdnet"
    channels: int  # 1: grey network (RGB channels one by one, or Y for JPEG), 3: RGB network
    nb: int  # convolutions
    nc: int  # feature channels
    tasks: tuple[str, ...]  # what it removes, the first is its main use: "gaussian", "jpeg"
    blind: bool  # True: takes no noise level (DnCNN); FFDNet always takes one
    sigma_range: tuple[float, float] | None = None  # the Gaussian σ (0-255) it was trained for
    quality_range: tuple[int, int] | None = None  # the JPEG qualities it was trained for

    def __post_init__(self):
        if self.arch not in ("dncnn", "ffdnet"):
            raise ValueError(f"unknown denoiser architecture {self.arch!r}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, not {self.channels}")
        if not self.tasks or any(task not in TASKS for task in self.tasks):
            raise ValueError(f"tasks must be among {', '.join(TASKS)}, not {self.tasks}")
        object.__setattr__(self, "tasks", tuple(self.tasks))
        for name in ("sigma_range", "quality_range"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def takes_sigma(self) -> bool:
        return self.arch == "ffdnet"

    def as_dict(self) -> dict:
        """Plain data (lists, not tuples) for a checkpoint's provenance."""
        return {
            "arch": self.arch,
            "channels": self.channels,
            "nb": self.nb,
            "nc": self.nc,
            "tasks": list(self.tasks),
            "blind": self.blind,
            "sigma_range": list(self.sigma_range) if self.sigma_range is not None else None,
            "quality_range": list(self.quality_range) if self.quality_range is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> DenoiserOptions:
        return cls(
            arch=data["arch"],
            channels=int(data["channels"]),
            nb=int(data["nb"]),
            nc=int(data["nc"]),
            tasks=tuple(data["tasks"]),
            blind=bool(data["blind"]),
            sigma_range=tuple(data["sigma_range"]) if data.get("sigma_range") is not None else None,
            quality_range=tuple(data["quality_range"]) if data.get("quality_range") is not None else None,
        )

    def build(self, *, batch_norm: bool = False):
        from sr_models.denoisers import arch

        return arch.build(self.arch, channels=self.channels, nb=self.nb, nc=self.nc, batch_norm=batch_norm)


@dataclass(frozen=True, kw_only=True)
class DenoiserRecord(WeightsRecord):
    arch: str  # "dncnn" | "ffdnet"
    channels: int  # 1 | 3
    nb: int
    nc: int = 64
    tasks: tuple[str, ...] = ("gaussian",)  # the first is its main use
    blind: bool
    sigma_range: tuple[float, float] | None = None
    quality_range: tuple[int, int] | None = None

    def __post_init__(self):
        _ = self.options  # building the options validates the fields
        if not self.layout:
            keys = f"model.{{0,2,…,{2 * (self.nb - 1)}}}.weight/bias"
            object.__setattr__(
                self,
                "layout",
                f"KAIR {self.arch} state dict, batch norm merged: {keys}, "
                f"{self.channels}-channel input, {self.nc} features, {self.nb} convolutions",
            )
        if not self.normalisation:
            object.__setattr__(self, "normalisation", NORMALISATION)
        if self.check is None:
            object.__setattr__(self, "check", self.loads_strictly)

    @property
    def task(self) -> str:
        """Its main use ("gaussian" or "jpeg")."""
        return self.tasks[0]

    @property
    def options(self) -> DenoiserOptions:
        return DenoiserOptions(
            arch=self.arch,
            channels=self.channels,
            nb=self.nb,
            nc=self.nc,
            tasks=self.tasks,
            blind=self.blind,
            sigma_range=self.sigma_range,
            quality_range=self.quality_range,
        )

    def build(self):
        return self.options.build()

    def load_into(self, path: Path, model=None) -> dict:
        """Load the file at ``path`` into ``model`` (a fresh network when None) strictly, after its
        stated checksum (if any) matched; the file's provenance."""
        state, files = core_weights.load_state(self, path)
        core_weights.load_strict(self.build() if model is None else model, state, self)
        return files

    def loads_strictly(self, path: Path) -> None:
        """Raises WeightsError unless the file's tensors fill this network exactly (import's check)."""
        self.load_into(path)


def _kair(name: str, label: str, notes: str = "", **fields) -> DenoiserRecord:
    return DenoiserRecord(
        name=name,
        label=label,
        file=f"{name}.pth",
        source=f"{KAIR_SOURCE} (main_download_pretrained_models.py)",
        url=f"{KAIR_RELEASE}{name}.pth",
        licence=KAIR_LICENCE,
        notes=notes,
        **fields,
    )


PUBLISHED: tuple[DenoiserRecord, ...] = (
    *(
        _kair(
            f"dncnn_{sigma}",
            f"DnCNN σ={sigma} (grey, KAIR)",
            arch="dncnn",
            channels=1,
            nb=17,
            blind=False,
            sigma_range=(sigma, sigma),
            notes=f"DnCNN-S for σ = {sigma} (DnCNN paper §IV-A); on colour images, each RGB channel in turn",
        )
        for sigma in (15, 25, 50)
    ),
    _kair(
        "dncnn_gray_blind",
        "DnCNN-B (grey, blind, KAIR)",
        arch="dncnn",
        channels=1,
        nb=20,
        blind=True,
        sigma_range=(0, 55),
        notes="DnCNN-B, blind Gaussian denoiser for σ in [0, 55]; on colour images, each RGB channel in turn",
    ),
    _kair(
        "dncnn_color_blind",
        "CDnCNN-B (colour, blind, KAIR)",
        arch="dncnn",
        channels=3,
        nb=20,
        blind=True,
        sigma_range=(0, 55),
        notes="CDnCNN-B, blind colour Gaussian denoiser for σ in [0, 55]",
    ),
    _kair(
        "dncnn3",
        "DnCNN-3 (grey, blind: noise, SR, JPEG; KAIR)",
        arch="dncnn",
        channels=1,
        nb=20,
        tasks=("jpeg", "gaussian"),
        blind=True,
        sigma_range=(0, 55),
        quality_range=(5, 99),
        notes="one network for Gaussian noise (σ 0-55), bicubic SR (x2-x4) and JPEG (quality 5-99), trained on Y "
        "(DnCNN paper §IV-A); on colour JPEGs it runs on Y (BT.601) and keeps Cb/Cr",
    ),
    *(
        _kair(
            f"ffdnet_{colour}{clip}",
            f"FFDNet ({'colour' if colour == 'color' else 'grey'}{', clipped input' if clip else ''}, KAIR)",
            arch="ffdnet",
            channels=3 if colour == "color" else 1,
            nb=12 if colour == "color" else 15,
            nc=96 if colour == "color" else 64,
            blind=False,
            sigma_range=(0, 75),
            notes="non-blind: takes the noise level σ/255 as a map (FFDNet paper §III)"
            + ("; trained on noisy images clipped to [0, 1], like an 8-bit noisy file" if clip else ""),
        )
        for colour in ("gray", "color")
        for clip in ("", "_clip")
    ),
)


def _published(registry: Registry[DenoiserRecord]) -> None:
    for record in PUBLISHED:
        registry.add(record.name, record)


DENOISERS: Registry[DenoiserRecord] = Registry("denoiser", loader=_published)


def register_weights() -> None:
    """Add every published denoiser to the platform's weights records (SrModelsConfig.ready())."""
    for record in DENOISERS.values():
        if record.name not in core_weights.WEIGHTS:
            core_weights.WEIGHTS.add(record.name, record)
