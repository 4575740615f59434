"""A study's data in the shapes the learned-metric trainers take (read-only).

* ``study_triplets``: the judgment log as BAPPS-style 2AFC triplets
  (reference, p0, p1, judge), judge = the share of votes that found p1 more
  similar to the reference — LPIPS's training data has exactly this shape.
  Votes of excluded raters are left out, as they are from the MOS. A study
  whose MOS comes from imported labels has no votes: every pair of a
  reference's images becomes a triplet whose judge is what the labels imply
  (``label_triplets``). A rank-k study's rankings are broken into the pairs they order (a ranking of
  k gives k(k-1)/2); an acr or dcr study has no pairs and is refused.
* ``study_mos_images``: every judged image with its Elo MOS and the Elo values
  it is the mean of (its variability is the MOS's uncertainty).

Paths are absolute file paths on this machine's media storage.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from annotation.analysis.rankings import pairwise_from_rankings
from annotation.models import DistortedImage, Judgment, Ranking, Study
from core.errors import ApplicationError


@dataclass(frozen=True)
class Triplet:
    reference: str  # reference name, e.g. A0001
    reference_path: str
    p0: str  # image names
    p1: str
    p0_path: str
    p1_path: str
    judge: float  # share of votes for p1 (more similar to the reference), in [0, 1]
    votes: int


@dataclass(frozen=True)
class MosImage:
    name: str
    path: str
    reference: str
    reference_path: str
    mos: float
    recent_elo: list[float] = field(default_factory=list)
    judgments: int = 0
    category: str = ""
    subtype: str = ""
    distortion_type: str = ""
    mos_std: float | None = None  # a labelled dataset's published standard deviation (import_labels)


def label_triplets(study: Study) -> list[Triplet]:
    """Every pair of a labels study's images of one reference (p0 = the smaller id), judge implied by
    the labels: for PIPAL's Elo MOS, Eq. 1's probability that p1 wins, 1/(1 + 10^((MOS0 − MOS1)/M));
    for other scales (a MOS CSV) the order alone — 1 when p1's MOS is higher, 0 when lower, 0.5 on ties."""
    from annotation.analysis import elo

    elo_scale = study.label_imports.filter(format="pipal").exists()
    by_reference: dict[int, list] = defaultdict(list)
    for image in study.images.select_related("reference").order_by("id"):
        by_reference[image.reference_id].append(image)
    triplets = []
    for images in by_reference.values():
        for i, first in enumerate(images):
            for second in images[i + 1 :]:
                if elo_scale:
                    judge = elo.win_probability(second.mos, first.mos, study.elo_m)
                else:
                    judge = 0.5 if second.mos == first.mos else float(second.mos > first.mos)
                triplets.append(
                    Triplet(
                        reference=first.reference.name,
                        reference_path=first.reference.file.path,
                        p0=first.name,
                        p1=second.name,
                        p0_path=first.file.path,
                        p1_path=second.file.path,
                        judge=judge,
                        votes=1,
                    )
                )
    return triplets


def study_triplets(study: Study) -> list[Triplet]:
    """One triplet per unordered pair judged at least once (p0 = the image with the smaller id); for a
    study whose MOS comes from imported labels, the pairs the labels imply (``label_triplets``)."""
    if study.mos_from_labels:
        return label_triplets(study)
    if study.protocol in (Study.Protocol.ACR, Study.Protocol.DCR):
        raise ApplicationError(
            f"study {study.slug!r} is {study.protocol}: its raters scored images one at a time, so it holds no "
            "pairs to train on; train_score_predictor learns from its MOS, and build_rank_dataset --source study "
            "+ train_ranker from its order"
        )
    votes: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0, 0])  # (p0, p1) -> [votes p0, votes p1]
    if study.protocol == Study.Protocol.RANK_K:
        # Rank breaking: a ranking of k versions says each is preferred to every one ranked below it.
        for order in Ranking.objects.filter(study=study).exclude(rater__excluded=True).values_list("order", flat=True):
            for winner, loser in pairwise_from_rankings([order]):
                pair = (min(winner, loser), max(winner, loser))
                votes[pair][0 if winner == pair[0] else 1] += 1
        return _triplets_from_votes(study, votes)
    rows = (
        Judgment.objects.filter(study=study)
        .exclude(rater__excluded=True)
        .values_list("image_a_id", "image_b_id", "winner_id", "tie")
        .order_by("id")
    )
    for a, b, winner, tie in rows.iterator(chunk_size=10000):
        pair = (min(a, b), max(a, b))
        if tie:  # half a vote each (BAPPS's judge is the share of votes for p1)
            votes[pair][0] += 0.5
            votes[pair][1] += 0.5
        else:
            votes[pair][0 if winner == pair[0] else 1] += 1
    return _triplets_from_votes(study, votes)


def _triplets_from_votes(study: Study, votes: dict[tuple[int, int], list[float]]) -> list[Triplet]:
    images = {
        image.id: image
        for image in DistortedImage.objects.filter(study=study)
        .select_related("reference")
        .only("id", "name", "file", "reference__name", "reference__file")
    }
    triplets = []
    for (p0, p1), (for_p0, for_p1) in sorted(votes.items()):
        first, second = images[p0], images[p1]
        triplets.append(
            Triplet(
                reference=first.reference.name,
                reference_path=first.reference.file.path,
                p0=first.name,
                p1=second.name,
                p0_path=first.file.path,
                p1_path=second.file.path,
                judge=for_p1 / (for_p0 + for_p1),
                votes=int(for_p0 + for_p1),
            )
        )
    return triplets


def study_mos_images(study: Study, *, min_judgments: int = 1) -> list[MosImage]:
    """Every image with at least ``min_judgments`` judgments, sorted by name."""
    images = (
        study.images.filter(judgment_count__gte=min_judgments)
        .select_related("reference", "distortion_type")
        .order_by("name")
    )
    return [
        MosImage(
            name=image.name,
            path=image.file.path,
            reference=image.reference.name,
            reference_path=image.reference.file.path,
            mos=image.mos,
            recent_elo=[float(value) for value in image.recent_elo],
            judgments=image.judgment_count,
            category=image.distortion_type.category,
            subtype=image.distortion_type.subtype,
            distortion_type=image.distortion_type.code,
            mos_std=image.mos_std,
        )
        for image in images
    ]


def data_fingerprint(items) -> str:
    """A short hash of what a run trains on: a resume must see the same data."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(repr(item).encode())
    return digest.hexdigest()[:16]
