"""The published SR checkpoints, as weights records (no Django, no torch here).

A ``Checkpoint`` is a ``core.weights.WeightsRecord`` that also names the architecture and scale it
builds: the file name as published, where it is published, its SHA-256 only when the authors or a
mirror state it (never invented), the licence. Loading it (``sr_models.weights``) reads tensors
only, maps the file's key layout onto ours with the family's ``convert_state_dict`` and loads
strictly. ``CHECKPOINTS`` holds every record below; ``SrModelsConfig.ready()`` also adds them to
``core.weights.WEIGHTS``, where ``fetch_weights`` and ``import_weights`` find them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core import weights as core_weights
from core.registry import Registry
from core.weights import WeightsRecord


@dataclass(frozen=True, kw_only=True)
class Checkpoint(WeightsRecord):
    arch: str  # registered architecture, e.g. "rrdbnet"
    scale: int
    options: tuple[tuple[str, object], ...] = ()  # build options

    def __post_init__(self):
        if not self.layout:
            object.__setattr__(self, "layout", f"a {self.arch} checkpoint in a known layout")
        if self.check is None and not self.parts:
            object.__setattr__(self, "check", self.loads_strictly)

    @property
    def build_options(self) -> dict:
        return dict(self.options)

    def build(self):
        from sr_models import archs  # the families import torch: only when a network is wanted

        return archs.build(self.arch, self.scale, **self.build_options)

    def load_into(self, path: Path, model=None) -> dict:
        """Load the file at ``path`` into ``model`` (a fresh network when None) strictly, after its
        stated checksum matched and its key layout was mapped onto ours; the file's provenance."""
        from sr_models import archs

        state, files = core_weights.load_state(self, path, convert=archs.arch(self.arch).convert)
        core_weights.load_strict(self.build() if model is None else model, state, self)
        return files

    def loads_strictly(self, path: Path) -> None:
        """Raises WeightsError unless the file's tensors fill this network exactly (import's check)."""
        self.load_into(path)


PUBLISHED: list[Checkpoint] = []

# --- SRCNN and FSRCNN (yjn870/SRCNN-pytorch and FSRCNN-pytorch READMEs; 91-image training set, Y) ---
_YJN870_LINKS = {
    "srcnn": ((2, "rxluu1y8ptjm4rn"), (3, "zn4fdobm2kw0c58"), (4, "pd5b2ketm0oamhj")),
    "fsrcnn": ((2, "1k3dker6g7hz76s"), (3, "pm1ed2nyboulz5z"), (4, "vsvumpopupdpmmu")),
}
_YJN870_NOTES = {
    "srcnn": "PyTorch re-implementation by yjn870 (9-5-5), not the authors' Caffe/MATLAB release",
    "fsrcnn": "PyTorch re-implementation by yjn870 (d=56, s=12, m=4)",
}
for _arch, _links in _YJN870_LINKS.items():
    for _scale, _link in _links:
        PUBLISHED.append(
            Checkpoint(
                name=f"{_arch}_x{_scale}",
                label=f"{_arch.upper()} x{_scale}",
                arch=_arch,
                scale=_scale,
                file=f"{_arch}_x{_scale}.pth",
                source=f"https://github.com/yjn870/{_arch.upper()}-pytorch (README, Dropbox)",
                url=f"https://www.dropbox.com/s/{_link}/{_arch}_x{_scale}.pth?dl=1",
                licence="no licence stated by the repository: research use, ask the author before redistributing",
                notes=_YJN870_NOTES[_arch],
            )
        )


# --- VDSR (twtygqyy/pytorch-vdsr) ---
# twtygqyy/pytorch-vdsr ships model/model_epoch_50.pth (one model for x2, x3 and x4) as a pickled
# nn.Module, which cannot be read without running the pickle's code. Extract its tensors once, in a
# checkout of that repository:  torch.save(torch.load("model/model_epoch_50.pth")["model"].state_dict(),
# "vdsr_epoch_50_state_dict.pth")  and import the result (import_weights vdsr_x3 vdsr_epoch_50_state_dict.pth).
for _scale in (2, 3, 4):
    PUBLISHED.append(
        Checkpoint(
            name=f"vdsr_x{_scale}",
            label=f"VDSR x{_scale}",
            arch="vdsr",
            scale=_scale,
            file="vdsr_epoch_50_state_dict.pth",
            source="https://github.com/twtygqyy/pytorch-vdsr (model/model_epoch_50.pth, a pickled model: "
            "save its state_dict() as vdsr_epoch_50_state_dict.pth first)",
            licence="MIT (twtygqyy/pytorch-vdsr)",
            notes="PyTorch re-implementation; one network for every scale",
        )
    )


# --- published weights (sanghyun-son/EDSR-PyTorch, src/model/edsr.py; DIV2K, bicubic) ---
# The 8 hex digits in each name are the first digits of the file's SHA-256 (torch.hub's
# convention): import_weights checks them.
_EDSR_FILES = {
    ("edsr_baseline", 2): "edsr_baseline_x2-1bc95232.pt",
    ("edsr_baseline", 3): "edsr_baseline_x3-abf2a44e.pt",
    ("edsr_baseline", 4): "edsr_baseline_x4-6b446fab.pt",
    ("edsr", 2): "edsr_x2-0edfb8a3.pt",
    ("edsr", 3): "edsr_x3-ea3ef2c6.pt",
    ("edsr", 4): "edsr_x4-4f62e9ef.pt",
}
for (_arch, _scale), _file in _EDSR_FILES.items():
    PUBLISHED.append(
        Checkpoint(
            name=f"{_arch}_x{_scale}",
            label=f"EDSR{' baseline' if _arch == 'edsr_baseline' else ''} x{_scale}",
            arch=_arch,
            scale=_scale,
            file=_file,
            source="https://github.com/sanghyun-son/EDSR-PyTorch (src/model/edsr.py)",
            url=f"https://cv.snu.ac.kr/research/EDSR/models/{_file}",
            licence="MIT (sanghyun-son/EDSR-PyTorch)",
        )
    )


# --- published weights (yulunzhang/RCAN README: models_ECCV2018RCAN.zip; DIV2K, bicubic) ---
for _scale in (2, 3, 4, 8):
    PUBLISHED.append(
        Checkpoint(
            name=f"rcan_x{_scale}",
            label=f"RCAN x{_scale}",
            arch="rcan",
            scale=_scale,
            file=f"RCAN_BIX{_scale}.pt",
            source="https://github.com/yulunzhang/RCAN (models_ECCV2018RCAN.zip on Dropbox / Google Drive)",
            licence="no licence stated by the repository: research use",
            notes="the zip holds every scale; unpack it and import the file you need",
        )
    )


# --- published weights (XPixelGroup/RankSRGAN README, Google Drive folder 1_KhEc_zBRW7iLeEJITU3i923DC6wv51T) ---
# SRResNet and SRGAN here are the RankSRGAN authors' retrainings without batch norm (the
# generator RankSRGAN starts from), not Ledig et al.'s original models (SPEC §6).
_RANKSRGAN_SOURCE = "https://github.com/XPixelGroup/RankSRGAN (README: pretrained models, Google Drive)"
_RANKSRGAN_LICENCE = "no licence stated by the repository: research use"
for _name, _label, _file, _notes in (
    (
        "srresnet_x4",
        "SRResNet x4 (RankSRGAN authors)",
        "SRResNet_bicx4_in3nf64nb16.pth",
        "the RankSRGAN authors' SRResNet without batch norm, trained with L1/MSE (PSNR-oriented)",
    ),
    (
        "srgan_x4",
        "SRGAN x4 (RankSRGAN authors)",
        "SRGAN.pth",
        "the RankSRGAN authors' SRGAN retraining (no batch norm), not Ledig et al.'s release",
    ),
    ("ranksrgan_niqe_x4", "RankSRGAN (NIQE) x4", "RankSRGAN_NIQE.pth", "Ranker trained on NIQE ranks"),
    ("ranksrgan_ma_x4", "RankSRGAN (Ma) x4", "RankSRGAN_Ma.pth", "Ranker trained on Ma ranks"),
    ("ranksrgan_pi_x4", "RankSRGAN (PI) x4", "RankSRGAN_PI.pth", "Ranker trained on PI ranks"),
):
    PUBLISHED.append(
        Checkpoint(
            name=_name,
            label=_label,
            arch="srresnet",
            scale=4,
            file=_file,
            source=_RANKSRGAN_SOURCE,
            licence=_RANKSRGAN_LICENCE,
            notes=_notes,
        )
    )


# --- published weights (xinntao/ESRGAN README, Google Drive folder 17VYV_SoZZesU6mbxz2dMAIccSSlqLecY) ---
_ESRGAN_SOURCE = "https://github.com/xinntao/ESRGAN (README: pretrained models, Google Drive / Baidu)"
PUBLISHED.append(
    Checkpoint(
        name="esrgan_x4",
        label="ESRGAN x4",
        arch="rrdbnet",
        scale=4,
        file="RRDB_ESRGAN_x4.pth",
        source=_ESRGAN_SOURCE,
        licence="Apache-2.0 (xinntao/ESRGAN)",
        notes="the GAN model of the ESRGAN paper (PIRM 2018 winner); old or new key layout",
    )
)
PUBLISHED.append(
    Checkpoint(
        name="esrgan_psnr_x4",
        label="RRDB PSNR x4 (ESRGAN's PSNR model)",
        arch="rrdbnet",
        scale=4,
        file="RRDB_PSNR_x4.pth",
        source=_ESRGAN_SOURCE,
        licence="Apache-2.0 (xinntao/ESRGAN)",
        notes="RRDBNet trained with L1 only: the PSNR end of network interpolation",
    )
)
PUBLISHED.append(
    Checkpoint(
        name="esrgan_interp_x4",
        label="ESRGAN network interpolation x4",
        arch="rrdbnet",
        scale=4,
        file="RRDB_PSNR_x4.pth + RRDB_ESRGAN_x4.pth",
        source=_ESRGAN_SOURCE,
        licence="Apache-2.0 (xinntao/ESRGAN)",
        notes="theta = (1 - alpha) * RRDB_PSNR + alpha * ESRGAN (ESRGAN Sec. 3.4); alpha per level",
        parts=("esrgan_psnr_x4", "esrgan_x4"),
    )
)


# --- published weights (idearibosome/tf-perceptual-eusr README) ---
# Only frozen TensorFlow graphs are published: `manage.py convert_weights eusr <file.pb>` maps their
# constants onto this network and writes the PyTorch file named here, with provenance.
for _name, _label, _pb in (
    ("eusr_4pp_pirm_x4", "4PP-EUSR (PIRM) x4", "4pp_eusr_pirm.pb"),
    ("eusr_4pp_paper_x4", "4PP-EUSR (paper) x4", "4pp_eusr_paper_v2.pb"),
):
    PUBLISHED.append(
        Checkpoint(
            name=_name,
            label=_label,
            arch="eusr",
            scale=4,
            file=_pb.replace(".pb", ".pth"),
            source=f"http://mcml.yonsei.ac.kr/files/4pp_eusr/{_pb} (TensorFlow graph; convert_weights eusr {_pb})",
            licence="Apache-2.0 (idearibosome/tf-perceptual-eusr)",
            notes="the x4 path (scale input 4), as reported in the paper",
        )
    )


def _published(registry: Registry[Checkpoint]) -> None:
    for checkpoint in PUBLISHED:
        registry.add(checkpoint.name, checkpoint)


CHECKPOINTS: Registry[Checkpoint] = Registry("SR checkpoint", loader=_published)


TRAINED_PREFIX = "trained:"  # a generator trained here: <weights_dir>/trained/<name>.pth (train_sr, train_sr_gan)
TRAINERS = ("train_sr", "train_sr_gan")


def trained_checkpoint(name: str, weights_dir: Path) -> Checkpoint:
    """The record of ``trained:<stem>``, a generator this platform trained: arch, scale and build
    options from the file's provenance, labelled as a local training run, never a published model."""
    stem = name.removeprefix(TRAINED_PREFIX)
    path = Path(weights_dir) / "trained" / f"{stem}.pth"
    if not path.is_file():
        raise KeyError(f"{name}: no {path} (train_sr and train_sr_gan write trained/<name>.pth)")
    provenance = core_weights.read_checkpoint(path).get("provenance") or {}
    if provenance.get("trained_by") not in TRAINERS:
        raise KeyError(f"{name}: {path} was not written by {' or '.join(TRAINERS)}")
    return Checkpoint(
        name=name,
        label=provenance["label"],
        arch=provenance["arch"],
        scale=int(provenance["scale"]),
        file=f"trained/{stem}.pth",
        source=f"{provenance['trained_by']} on this platform (not published)",
        licence="the lab's own training run",
        options=tuple(sorted(provenance["build_options"].items())),
        notes=provenance["label"],
    )
