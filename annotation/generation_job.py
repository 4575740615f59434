"""Making one distorted image: the job a Celery worker runs for one (reference, type, level)
slot, idempotent and reproducible (the seed comes from the reference's content and the slot).
generation.py plans and queues these jobs; tasks.py runs them."""

from __future__ import annotations

import hashlib

import numpy as np
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from PIL import Image

from annotation.imaging import checked_png
from annotation.imports.folders import joining_image
from annotation.models import DistortedImage, DistortionType, GenerationFailure, ReferenceImage
from annotation.rating import stimuli
from core.errors import ApplicationError
from sr_models import distortions


def slot_seed(reference: ReferenceImage, kind: DistortionType, level: int) -> int:
    """Fixed by the reference's content and the slot: the same inputs give the same image, in any study."""
    digest = hashlib.sha256(f"{reference.sha256}:{kind.generator}:{kind.code}:{level}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def distortion_generate(*, reference_id: int, distortion_type_id: int, level: int) -> DistortedImage:
    """Make one slot's image, or return it if it exists (idempotent); a failure recorded for the
    slot before is removed once its image exists."""
    image = _slot_image(reference_id=reference_id, distortion_type_id=distortion_type_id, level=level)
    GenerationFailure.objects.filter(
        reference_id=reference_id, distortion_type_id=distortion_type_id, level=level
    ).delete()
    return image


def _slot_image(*, reference_id: int, distortion_type_id: int, level: int) -> DistortedImage:
    existing = DistortedImage.objects.filter(
        reference_id=reference_id, distortion_type_id=distortion_type_id, level=level
    ).first()
    if existing:
        return existing
    reference = ReferenceImage.objects.select_related("study").get(pk=reference_id)
    kind = DistortionType.objects.get(pk=distortion_type_id)
    params = kind.levels.get(str(level))
    if not kind.generator or params is None:
        raise ApplicationError(f"type {kind.code} has no generator settings for level {level}")
    with reference.file.open("rb") as handle, Image.open(handle) as image:
        pixels = np.asarray(image.convert("RGB"))
    seed = slot_seed(reference, kind, level)
    family = distortions.get_family(kind.generator)
    try:
        family.check_ready(params)
    except distortions.DistortionError as error:
        raise ApplicationError(f"type {kind.code} ({kind.name}): {error}") from None
    output = family.apply(pixels, params, seed)
    extra_provenance = family.run_provenance(params)
    checked = checked_png(output)
    study = reference.study
    name = f"{reference.name}_{kind.code}_{level:02d}.png"
    written: list[str] = []
    # The file first, outside the transaction: SQLite holds its write lock for
    # the whole transaction. Content-addressed, so a lost race costs nothing.
    image = joining_image(study, reference, kind, level, name, checked, written)
    image.display = stimuli.store_stimulus(study.slug, checked.data)  # made PNG already: it is its own display
    try:
        with transaction.atomic():
            image.provenance = {
                "generator": kind.generator,
                "params": params,
                "seed": seed,
                "code_version": distortions.CODE_VERSION,
                "libraries": distortions.library_versions(),
                "reference_sha256": reference.sha256,
                **extra_provenance,
            }
            image.save()
    except IntegrityError:
        # A concurrent job made this slot first; its file has the same content.
        return DistortedImage.objects.get(reference_id=reference_id, distortion_type_id=distortion_type_id, level=level)
    return image


def slot_failure_record(*, reference_id: int, distortion_type_id: int, level: int, error: str) -> None:
    """Record why a slot's image could not be made (a repeat counts one more attempt); nothing when
    the slot's image exists after all, or its reference or type is gone."""
    if DistortedImage.objects.filter(
        reference_id=reference_id, distortion_type_id=distortion_type_id, level=level
    ).exists():
        return
    reference = ReferenceImage.objects.filter(pk=reference_id).only("study_id").first()
    if reference is None or not DistortionType.objects.filter(pk=distortion_type_id).exists():
        return
    slot = {"reference_id": reference_id, "distortion_type_id": distortion_type_id, "level": level}
    now, error = timezone.now(), error[:2000]
    updated = GenerationFailure.objects.filter(**slot).update(error=error, failed_at=now, attempts=F("attempts") + 1)
    if not updated:
        try:
            with transaction.atomic():
                GenerationFailure.objects.create(study_id=reference.study_id, error=error, failed_at=now, **slot)
        except IntegrityError:  # another job recorded the same slot at the same moment
            GenerationFailure.objects.filter(**slot).update(error=error, failed_at=now)
