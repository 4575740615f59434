"""Writes behind the admin: adding one reference or distorted image from an
uploaded file, and excluding or including raters in bulk.

The caller checks the file first (``imaging.check_image`` gives a
``CheckedImage``), so a refused file never reaches a service. The naming and
size rules are ``*_problems`` functions that the admin forms call too: a form
shows the problems next to the upload, a service refuses with the same words.
Each upload is one transaction; files it wrote are removed if that fails.
Inside an enclosing transaction (the admin wraps its add view in one) a later
rollback there can leave the content-addressed files behind; they are
harmless, and an upload of the same bytes reuses them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TypeVar

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError

from annotation.db import atomic_with_retry
from annotation.imaging import CheckedImage
from annotation.imports.folders import joining_image, store_image
from annotation.models import DistortedImage, DistortionType, ReferenceImage, Study
from annotation.rating.controls import thumbnail
from core.errors import ApplicationError, Conflict

# The import's file-name grammar (<ref>_<type>_<level>.<ext>) splits on "_",
# so neither part may contain one, or the names stop being readable back.
NAME_PART = re.compile(r"^[^_/\\\s.]+$")
TYPE_CODE = re.compile(r"^[^_/\\\s]+$")

T = TypeVar("T")


def reference_problems(*, name: str) -> list[str]:
    if not NAME_PART.match(name):
        return [f"reference name {name!r} must be non-empty without '_', '.', '/', '\\' or spaces (e.g. A0001)"]
    return []


def distortion_code_problems(*, code: str) -> list[str]:
    if not TYPE_CODE.match(code):
        return [f"type code {code!r} must be non-empty without '_', '/', '\\' or spaces (e.g. 10)"]
    return []


def distorted_problems(
    *, reference: ReferenceImage, distortion_type: DistortionType, checked: CheckedImage
) -> list[str]:
    problems = distortion_code_problems(code=distortion_type.code)
    if distortion_type.study_id != reference.study_id:
        problems.append(
            f"distortion type {distortion_type.code} belongs to another study than reference {reference.name}"
        )
    if (checked.width, checked.height) != (reference.width, reference.height):
        problems.append(
            f"{checked.width}x{checked.height} does not match its reference {reference.name} "
            f"({reference.width}x{reference.height})"
        )
    return problems


def distorted_name(*, reference: ReferenceImage, distortion_type: DistortionType, level: int, extension: str) -> str:
    """PIPAL's name for a distorted image, e.g. A0001_10_02.bmp."""
    return f"{reference.name}_{distortion_type.code}_{level:02d}.{extension}"


def _with_file_cleanup(write: Callable[[list[str]], T]) -> T:
    written: list[str] = []
    try:
        return write(written)
    except BaseException:
        for path in written:
            default_storage.delete(path)
        raise


def _store_thumbnail(study: Study, checked: CheckedImage, written: list[str]) -> str:
    data = thumbnail(checked.data)
    # Named by its own hash like every stored picture, so the name says nothing about the image.
    path = f"studies/{study.slug}/thumbs/{hashlib.sha256(data).hexdigest()}.png"
    if not default_storage.exists(path):
        path = default_storage.save(path, ContentFile(data))
        written.append(path)
    return path


def reference_image_upload(*, study: Study, name: str, checked: CheckedImage, original_filename: str) -> ReferenceImage:
    """A new reference of ``study`` from a checked upload, with its thumbnail."""
    problems = reference_problems(name=name)
    if problems:
        raise ApplicationError("; ".join(problems), fields={"name": problems})

    @atomic_with_retry
    def write(written: list[str]) -> ReferenceImage:
        if ReferenceImage.objects.filter(study=study, name=name).exists():
            raise Conflict(f"study {study.slug} already has a reference {name}", fields={"name": ["already taken"]})
        reference = ReferenceImage(
            study=study,
            name=name,
            file=store_image(study, checked, written),
            thumbnail=_store_thumbnail(study, checked, written),
            original_filename=original_filename[:300],
            sha256=checked.sha256,
            width=checked.width,
            height=checked.height,
        )
        reference.full_clean()
        reference.save()
        return reference

    return _with_file_cleanup(write)


def distorted_image_upload(
    *, reference: ReferenceImage, distortion_type: DistortionType, level: int, checked: CheckedImage
) -> DistortedImage:
    """A new distorted image of ``reference`` from a checked upload. It joins
    the study at the initial rating, as imported images do (PIPAL's
    extensibility argument): ratings of images already in the study stay."""
    problems = distorted_problems(reference=reference, distortion_type=distortion_type, checked=checked)
    if problems:
        raise ApplicationError("; ".join(problems))
    study = reference.study
    name = distorted_name(
        reference=reference, distortion_type=distortion_type, level=level, extension=checked.extension
    )

    @atomic_with_retry
    def write(written: list[str]) -> DistortedImage:
        taken = DistortedImage.objects.filter(reference=reference, distortion_type=distortion_type, level=level)
        if taken.exists():
            raise Conflict(
                f"reference {reference.name} already has type {distortion_type.code} at level {level}: "
                f"{taken.get().name}"
            )
        image = joining_image(study, reference, distortion_type, level, name, checked, written)
        image.full_clean(exclude=["recent_elo"])  # an empty list counts as blank to the validator
        try:
            image.save()
        except IntegrityError:  # the same slot taken by a concurrent upload since the check
            raise Conflict(f"{name} was added meanwhile") from None
        return image

    return _with_file_cleanup(write)
