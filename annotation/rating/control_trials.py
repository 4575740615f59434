"""Building practice and gold pairs from the study's own images (the pictures: controls.py).

* gold: one of the study's images against its decoy (the same image degraded much
  further): the image is the clear answer, and it is an image raters also meet in real
  pairs, under the same kind of name, so nothing but the answer marks the pair;
* practice, in order: (1) "sharp but different" against a barely softened copy of a
  reference, the case the instructions warn about; (2) the mildest against the strongest
  level of one generated distortion type of a reference (the catalogue's levels grow
  stronger), else two images whose MOS differ by at least PRACTICE_MOS_GAP after enough
  judgments; (3 and later) an image against its decoy.

Pictures are made on first use and kept (ControlPicture): ``prepare_study_controls``
makes a few per reference ahead of time, so issuing a gold pair costs what issuing a
real pair does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import Count

from annotation.models import ControlPicture, ControlTrial, DistortedImage, ReferenceImage, Study
from annotation.rating import controls, stimuli

# A 300-point Elo gap: the better image is preferred 85% of the time (PIPAL Eq. 1).
PRACTICE_MOS_GAP = 300.0
PRACTICE_MIN_JUDGMENTS = 10
# Decoys made ahead of time per reference (gold pairs draw among these images first).
DECOYS_PER_REFERENCE = 2


@dataclass(frozen=True)
class ControlPair:
    reference: ReferenceImage
    correct: str  # stored name of the picture closer to the reference
    other: str
    construction: str


def picture(reference: ReferenceImage, kind: str, image: DistortedImage | None = None) -> str:
    """The stored name of a control picture, made and recorded on first use."""
    found = ControlPicture.objects.filter(reference=reference, image=image, kind=kind).first()
    if found:
        return found.file.name
    source = image.file if image is not None else reference.file
    with source.open("rb") as handle:
        data = handle.read()
    make = {
        ControlPicture.Kind.DECOY: controls.decoy_picture,
        ControlPicture.Kind.SHARP: controls.sharp_picture,
        ControlPicture.Kind.MILD: controls.mild_picture,
        **{f"ladder{step}": partial(controls.ladder_picture, step=step) for step in range(1, 6)},
    }[kind]
    name = stimuli.store_stimulus(reference.study.slug, make(data))
    try:
        with transaction.atomic():
            ControlPicture.objects.create(
                study_id=reference.study_id, reference=reference, image=image, kind=kind, file=name
            )
    except IntegrityError:
        pass  # made at the same moment by another request: same content, same name
    return name


def ladder_picture(reference: ReferenceImage, step: int) -> str:
    """Step ``step`` of a rank-k check's ladder: 0 is the reference's own display copy."""
    if step == 0:
        if not reference.display:
            reference.display = stimuli.display_for(reference.study.slug, reference.file)
            ReferenceImage.objects.filter(pk=reference.pk).update(display=reference.display.name)
        return reference.display.name
    return picture(reference, f"ladder{step}")


def _display(image: DistortedImage) -> str:
    if not image.display:
        image.display = stimuli.display_for(image.study.slug, image.file)
        DistortedImage.objects.filter(pk=image.pk).update(display=image.display.name)
    return image.display.name


def _references_with_images(study: Study) -> list[ReferenceImage]:
    return list(
        ReferenceImage.objects.filter(study=study)
        .annotate(n=Count("distorted"))
        .filter(n__gt=0)
        .select_related("study")
        .order_by("id")
    )


def _gold(study: Study, rng: random.Random, construction: str = "decoy") -> ControlPair | None:
    references = _references_with_images(study)
    if not references:
        return None
    reference = references[rng.randrange(len(references))]
    ready = list(
        DistortedImage.objects.filter(reference=reference, control_pictures__kind=ControlPicture.Kind.DECOY)
        .select_related("study")
        .order_by("id")
        .distinct()
    )
    pool = ready or list(DistortedImage.objects.filter(reference=reference).select_related("study").order_by("id"))
    image = pool[rng.randrange(len(pool))]
    return ControlPair(reference, _display(image), picture(reference, ControlPicture.Kind.DECOY, image), construction)


def _sharp_versus_mild(study: Study, rng: random.Random) -> ControlPair | None:
    references = list(ReferenceImage.objects.filter(study=study).select_related("study").order_by("id"))
    if not references:
        return None
    reference = references[rng.randrange(len(references))]
    return ControlPair(
        reference,
        picture(reference, ControlPicture.Kind.MILD),
        picture(reference, ControlPicture.Kind.SHARP),
        "sharp",
    )


def _clear_study_pair(study: Study, rng: random.Random) -> ControlPair | None:
    """Two of the study's images with a clear answer: the mildest and strongest level of a
    generated type, or a large MOS gap after enough judgments."""
    images = DistortedImage.objects.filter(study=study).select_related("distortion_type", "reference__study")
    by_type: dict[tuple[int, int], list[DistortedImage]] = {}
    for image in images.exclude(distortion_type__generator=""):
        by_type.setdefault((image.reference_id, image.distortion_type_id), []).append(image)
    spans = [group for group in by_type.values() if len(group) >= 2]
    if spans:
        group = sorted(spans[rng.randrange(len(spans))], key=lambda image: image.level)
        mildest, strongest = group[0], group[-1]
        for image in sorted((mildest, strongest), key=lambda image: image.pk):  # rows in id order, as votes lock
            _display(image)
        return ControlPair(mildest.reference, _display(mildest), _display(strongest), "levels")
    judged = list(images.filter(judgment_count__gte=PRACTICE_MIN_JUDGMENTS).order_by("reference_id", "mos"))
    by_reference: dict[int, list[DistortedImage]] = {}
    for image in judged:
        by_reference.setdefault(image.reference_id, []).append(image)
    gaps = [group for group in by_reference.values() if group[-1].mos - group[0].mos >= PRACTICE_MOS_GAP]
    if gaps:
        group = gaps[rng.randrange(len(gaps))]
        for image in sorted((group[0], group[-1]), key=lambda image: image.pk):
            _display(image)
        return ControlPair(group[0].reference, _display(group[-1]), _display(group[0]), "mos_gap")
    return None


def build(*, study: Study, kind: str, practice_number: int | None, rng: random.Random) -> ControlPair | None:
    """A control pair of ``kind``; practice pairs follow the module's order by ``practice_number``."""
    if kind == ControlTrial.Kind.GOLD:
        return _gold(study, rng)
    if practice_number == 0:
        return _sharp_versus_mild(study, rng)
    if practice_number == 1:
        return _clear_study_pair(study, rng) or _gold(study, rng)
    return _gold(study, rng)


def prepare_study_controls(study: Study, progress=None) -> int:
    """Make ahead of time what control pairs show: every display copy, the practice pictures
    and a few decoys per reference. Returns how many pictures were made or found."""
    made = 0
    for reference in ReferenceImage.objects.filter(study=study).select_related("study").order_by("id"):
        if not reference.display:
            reference.display = stimuli.display_for(study.slug, reference.file)
            ReferenceImage.objects.filter(pk=reference.pk).update(display=reference.display.name)
        for kind in (ControlPicture.Kind.SHARP, ControlPicture.Kind.MILD):
            picture(reference, kind)
            made += 1
        images = list(
            DistortedImage.objects.filter(reference=reference).select_related("study").order_by("shuffle_key")
        )
        for index, image in enumerate(images):
            _display(image)
            if index < DECOYS_PER_REFERENCE:
                picture(reference, ControlPicture.Kind.DECOY, image)
                made += 1
            made += 1
        if progress:
            progress(1)
    return made
