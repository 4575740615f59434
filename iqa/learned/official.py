"""Published weights of learned metrics, registered as metrics of their own (no torch at import).

The RankSRGAN authors' Rankers (XPixelGroup/RankSRGAN, README "pretrained models") are no-reference
metrics once their files are in PIPAL_WEIGHTS_DIR: ``ranker_niqe``, ``ranker_ma``, ``ranker_pi``. Their
SHA-256 is not published: the version of a score is the checksum of the file actually read. A missing
file is an error naming it, its source and ``import_weights``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from iqa import metrics

RANKSRGAN_PAGE = "https://github.com/XPixelGroup/RankSRGAN"
RANKSRGAN_DRIVE = "https://drive.google.com/drive/folders/1_KhEc_zBRW7iLeEJITU3i923DC6wv51T?usp=sharing"


@dataclass(frozen=True)
class OfficialRanker:
    metric: str  # the platform's metric name
    file: str  # file name as published
    label: str  # what its rank dataset was labelled with
    higher_is_better: bool  # of the Ranker's score
    source: str  # page that publishes it
    url: str  # where the file is (a Google Drive folder: no direct download)
    sha256: str | None = None  # not published
    input: str = "RGB in [0, 1], no mean/std normalisation, any size of 32 pixels a side or more"
    layout: str = "Ranker_VGG12_296 state dict (conv{0..4}_{0,1}, bn{X}_{Y}, classifier.0/2); 'module.' stripped"
    notes: str = ""


_OFFICIAL_NOTE = (
    "Ranker_VGG12_296 (nf 64) trained by the RankSRGAN authors on DIV2K+Flickr2K patches of ESRGAN, SRGAN and "
    "SRResNet outputs ranked by {label}; lower score = better (RankSRGAN Eq. 9). Experiments/pretrained_models/"
    "readme.md lists it; the Google Drive folder of the README holds it."
)
OFFICIAL_RANKERS: tuple[OfficialRanker, ...] = tuple(
    OfficialRanker(
        metric=f"ranker_{label.lower()}",
        file=f"Ranker_{label}.pth",
        label=description,
        higher_is_better=False,
        source=RANKSRGAN_PAGE + " (README: pretrained models; experiments/pretrained_models/readme.md)",
        url=RANKSRGAN_DRIVE,
        notes=_OFFICIAL_NOTE.format(label=description)
        + (" train_RankSRGAN.yml loads it as mmsr_Ranker_NIQE.pth." if label == "NIQE" else ""),
    )
    for label, description in (
        ("NIQE", "NIQE (lower is better)"),
        ("Ma", "Ma et al.'s score (higher is better; the Ranker still scores worse images higher, Eq. 9)"),
        ("PI", "the perceptual index PI = ((10 - Ma) + NIQE) / 2 (lower is better)"),
    )
)




def _ranker_factory(entry: OfficialRanker):
    def factory(device: str, weights_dir: Path):
        from iqa.learned import ranker
        from iqa.weights import WeightsMissing, file_sha256

        path = Path(weights_dir) / entry.file
        if not path.is_file():
            raise WeightsMissing(entry.file, entry.url, Path(weights_dir))
        network = ranker.load_official(path, device)
        return ranker.as_metric(network), file_sha256(path)[:12]

    return factory


for _entry in OFFICIAL_RANKERS:
    metrics.register(
        metrics.MetricInfo(
            name=_entry.metric,
            higher_is_better=_entry.higher_is_better,
            full_reference=False,
            source="project",
            description=f"RankSRGAN's official Ranker trained on {_entry.label} ({_entry.file})",
        ),
        _ranker_factory(_entry),
    )
