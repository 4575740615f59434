"""Published weights the learned metrics load, as ``core.weights`` records (no torch at import).

* RankSRGAN's official Rankers (XPixelGroup/RankSRGAN, README "pretrained models"): no-reference
  metrics once their files are in PIPAL_WEIGHTS_DIR: ``ranker_niqe``, ``ranker_ma``, ``ranker_pi``.
  Their SHA-256 is not published: the version of a score is the checksum of the file actually read.
* LPIPS v0.1's trunk (torchvision's ImageNet AlexNet) and its ``lin`` layers.
* torchvision's ImageNet MobileNetV2 files, the score predictor's pretrained backbones.

A missing file is an error naming it, its source and ``import_weights``. The networks that read
these files are in ``*_arch.py`` beside this module; ``iqa.weights.weight_records`` lists these
records for the weights registry and ``iqa.metric_registry`` the Rankers' metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.weights import WeightsError, WeightsRecord, file_sha256, load_strict, locate, read_state
from iqa.metric_info import MetricInfo, ProjectMetric

RANKSRGAN_PAGE = "https://github.com/XPixelGroup/RankSRGAN"
RANKSRGAN_DRIVE = "https://drive.google.com/drive/folders/1_KhEc_zBRW7iLeEJITU3i923DC6wv51T?usp=sharing"
TORCHVISION_LICENCE = "BSD-3-Clause (torchvision); ImageNet weights for non-commercial research"


# --- import checks: a candidate file is loaded strictly into its network before it is installed -------
# The networks import torch: imported inside the checks. lpips_arch reads this module's records, so the
# LPIPS checks build the two layouts here (torchvision's AlexNet; LPIPS v0.1's lin layers) instead.


def _refused(path: Path, record: WeightsRecord, error: Exception) -> WeightsError:
    return WeightsError(f"{Path(path).name} is not {record.label} ({record.layout}): {error}")


def _ranker_check(name: str):
    """The check of the official Ranker ``name``: the file loaded as the metric loads it (read weights-only,
    the official layout's missing BatchNorm counters added, strictly into Ranker_VGG12_296 of its width)."""

    def check(path: Path) -> None:
        from iqa.learned import ranker_arch

        record = next(entry for entry in OFFICIAL_RANKERS if entry.name == name)
        try:
            state = ranker_arch.official_state(read_state(path))
            first = state.get("conv0_0.weight")
            if first is None or first.ndim != 4:
                raise WeightsError(f"no conv0_0.weight (keys start {', '.join(sorted(state)[:4])})")
            network = ranker_arch.Ranker(in_nc=int(first.shape[1]), nf=int(first.shape[0]))
            load_strict(network, state, record)
        except WeightsError as error:
            raise _refused(path, record, error) from None

    return check


def _check_alexnet(path: Path) -> None:
    """LPIPS's trunk as ``lpips_arch.alexnet_trunk_state`` takes it: the file's ``features.*`` tensors,
    loaded strictly into torchvision's AlexNet features."""
    from torchvision.models import alexnet

    try:
        state = read_state(path)
        trunk = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
        load_strict(alexnet(weights=None).features, trunk, ALEXNET)
    except WeightsError as error:
        raise _refused(path, ALEXNET, error) from None


LPIPS_CHANNELS = (64, 192, 384, 256, 256)  # relu1..relu5 of AlexNet: the lin layers' inputs


def _check_lpips_lin(path: Path) -> None:
    """LPIPS v0.1's five lin layers (``lin{k}.model.1``: dropout, then a 1x1 conv to one channel, no bias),
    loaded strictly from the file's ``lin*`` tensors."""
    from torch import nn

    lins = nn.Module()
    for k, channels in enumerate(LPIPS_CHANNELS):
        lin = nn.Module()
        lin.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))
        lins.add_module(f"lin{k}", lin)
    try:
        state = read_state(path)
        # as lpips_arch.lin_state: the lin tensors (a file may carry the trunk too), every one of them
        load_strict(lins, {key: value for key, value in state.items() if key.startswith("lin")}, LPIPS_LIN)
    except WeightsError as error:
        raise _refused(path, LPIPS_LIN, error) from None


@dataclass(frozen=True, kw_only=True)
class OfficialRanker(WeightsRecord):
    metric: str  # the platform's metric name
    ranked_by: str  # what its rank dataset was labelled with
    higher_is_better: bool = False  # of the Ranker's score


_OFFICIAL_NOTE = (
    "Ranker_VGG12_296 (nf 64) trained by the RankSRGAN authors on DIV2K+Flickr2K patches of ESRGAN, SRGAN and "
    "SRResNet outputs ranked by {label}; lower score = better (RankSRGAN Eq. 9). Experiments/pretrained_models/"
    "readme.md lists it; the Google Drive folder of the README holds it."
)
OFFICIAL_RANKERS: tuple[OfficialRanker, ...] = tuple(
    OfficialRanker(
        name=f"ranker_{label.lower()}",
        metric=f"ranker_{label.lower()}",
        label=f"RankSRGAN's Ranker ({label})",
        file=f"Ranker_{label}.pth",
        check=_ranker_check(f"ranker_{label.lower()}"),
        ranked_by=description,
        # The Google Drive folder is no direct download: import_weights installs a lab's copy.
        source=f"{RANKSRGAN_PAGE} (README: pretrained models; experiments/pretrained_models/readme.md; "
        f"Google Drive folder {RANKSRGAN_DRIVE})",
        licence="as published by the RankSRGAN authors (repository: see its LICENSE)",
        layout="Ranker_VGG12_296 state dict (conv{0..4}_{0,1}, bn{X}_{Y}, classifier.0/2); 'module.' stripped",
        normalisation="RGB in [0, 1], no mean/std normalisation, any size of 32 pixels a side or more",
        notes=_OFFICIAL_NOTE.format(label=description)
        + (" train_RankSRGAN.yml loads it as mmsr_Ranker_NIQE.pth." if label == "NIQE" else ""),
    )
    for label, description in (
        ("NIQE", "NIQE (lower is better)"),
        ("Ma", "Ma et al.'s score (higher is better; the Ranker still scores worse images higher, Eq. 9)"),
        ("PI", "the perceptual index PI = ((10 - Ma) + NIQE) / 2 (lower is better)"),
    )
)

# LPIPS v0.1 "alex": torchvision's ImageNet AlexNet trunk (the name ends in its SHA-256 prefix) and the
# lin layers (pip lpips ships weights/v0.1/alex.pth; pyiqa mirrors it under the hash-suffixed name).
ALEXNET = WeightsRecord(
    name="alexnet_imagenet",
    label="torchvision's ImageNet AlexNet (LPIPS' trunk)",
    file="alexnet-owt-7be5be79.pth",
    source="https://pytorch.org/vision/stable/models/generated/torchvision.models.alexnet.html",
    url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    licence=TORCHVISION_LICENCE,
    layout="torchvision AlexNet state dict (features.{0,3,6,8,10}.weight/bias, classifier.*)",
    check=_check_alexnet,
    normalisation="LPIPS: [0, 1] -> [-1, 1], then LPIPS' scaling layer (shift/scale per channel)",
)
LPIPS_LIN = WeightsRecord(
    name="lpips_alex_lin",
    label="LPIPS v0.1 AlexNet lin layers",
    file="LPIPS_v0.1_alex-df73285e.pth",
    source="https://github.com/richzhang/PerceptualSimilarity (lpips/weights/v0.1/alex.pth; pyiqa's mirror)",
    url="https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/LPIPS_v0.1_alex-df73285e.pth",
    licence="BSD-2-Clause (richzhang/PerceptualSimilarity)",
    layout="lin{0..4}.model.1.weight, shapes (1, C, 1, 1) for C = 64, 192, 384, 256, 256",
    check=_check_lpips_lin,
    notes="pip lpips ships the same tensors as alex.pth",
)


@dataclass(frozen=True, kw_only=True)
class Backbone(WeightsRecord):
    """A torchvision ImageNet checkpoint of MobileNetV2 (torchvision 0.29, ``MobileNet_V2_Weights``)."""

    weights: str  # the enum member
    top1: float  # ImageNet-1K acc@1, torchvision's meta


MOBILENET_V2 = {
    choice: Backbone(
        name=f"mobilenet_v2_{enum.lower()}",
        label=f"torchvision MobileNet_V2_Weights.{enum} (ImageNet)",
        file=file,
        source="https://pytorch.org/vision/stable/models/generated/torchvision.models.mobilenet_v2.html",
        url=f"https://download.pytorch.org/models/{file}",
        licence=TORCHVISION_LICENCE,
        layout="torchvision MobileNetV2 state dict (features.*, classifier.1.*)",
        normalisation="torchvision's ImageNet mean/std (the score predictor's input_norm imagenet)",
        weights=enum,
        top1=top1,
    )
    for choice, enum, file, top1 in (
        ("pretrained", "IMAGENET1K_V1", "mobilenet_v2-b0353104.pth", 71.878),
        ("pretrained-v2", "IMAGENET1K_V2", "mobilenet_v2-7ebf99e0.pth", 72.154),
    )
}

RECORDS: tuple[WeightsRecord, ...] = (*OFFICIAL_RANKERS, ALEXNET, LPIPS_LIN, *MOBILENET_V2.values())


def _ranker_factory(entry: OfficialRanker):
    def factory(device: str, weights_dir: Path):
        from iqa.learned import ranker_arch

        path = locate(entry, Path(weights_dir))
        network = ranker_arch.load_official(path, device)
        return ranker_arch.as_metric(network), file_sha256(path)[:12]

    return factory


def ranker_metrics() -> list[ProjectMetric]:
    """The official Rankers as project metrics (``iqa.metric_registry`` lists them)."""
    return [
        ProjectMetric(
            MetricInfo(
                name=entry.metric,
                higher_is_better=entry.higher_is_better,
                full_reference=False,
                source="project",
                description=f"RankSRGAN's official Ranker trained on {entry.ranked_by} ({entry.file})",
                score_range="unbounded",
                weights=(entry.name,),
            ),
            _ranker_factory(entry),
        )
        for entry in OFFICIAL_RANKERS
    ]
