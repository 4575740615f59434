"""The default catalogue as a study's owner picks from it (the admin's "add distortion types"
page): each catalogue type with its levels, whether it can run on this machine, what it is
(or would be) in the study, and a small preview of each level made by its own family on one
of the study's references.

Previews are cached under the study's media folder, named by what they are made from (the
reference's content, the family, the parameters and the generators' code version), so a
page shows them again without running any generator, and a changed catalogue level or
generator makes a new one.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import Count
from PIL import Image

from annotation.generation import catalogue_types, catalogue_unready, parameter_list
from annotation.models import DistortionType, ReferenceImage, Study
from core.errors import ApplicationError, NotFound
from sr_models import distortions

PREVIEW_SIZE = 96  # px: the centre of the distorted reference, shown at native size
# The generator runs on a larger centre crop than it shows: codecs and filters behave on a
# 96 px image unlike on a study's picture (JPEG 2000's headers alone eat a tiny budget).
PREVIEW_CONTEXT = 128  # larger costs more: BM3D took 8 s on 192 px, 4 s on 128 (made once, cached)
PREVIEW_SEED = 0  # one fixed draw: previews show a level, not a particular image's noise


@dataclass(frozen=True)
class CatalogueLevel:
    level: int
    params: dict


@dataclass(frozen=True)
class CatalogueChoice:
    type_id: str
    name: str
    family: str
    summary: str
    parameters: str  # the family's parameters, for people
    category: str
    subtype: str
    levels: tuple[CatalogueLevel, ...]
    needs: str  # what must be installed first ("weights", "a trained model"); '' when nothing
    unready: str  # why it cannot run here (the missing files and how to get them); '' when it can
    installed_as: str  # the study's code of a type with these exact settings; '' when none
    code_taken_by: str  # the study's other type at the catalogue's code ('' when free): a pick gets a free code


def catalogue_choices(study: Study) -> list[CatalogueChoice]:
    """Every type of the default catalogue, as the study sees it."""
    study_types = list(DistortionType.objects.filter(study=study).annotate(n_images=Count("images")).order_by("code"))
    by_settings = {(kind.generator, json.dumps(kind.levels, sort_keys=True)): kind.code for kind in study_types}
    by_code = {kind.code: kind for kind in study_types}
    choices = []
    for type_id, rows in catalogue_types().items():
        first = rows[0]
        family = distortions.get_family(first.family)
        levels = {str(int(row.level)): row.params for row in rows}
        installed_as = by_settings.get((first.family, json.dumps(levels, sort_keys=True)), "")
        at_code = by_code.get(type_id)
        # As catalogue_install decides: a type of the same family without images takes the catalogue's levels.
        moves = at_code is not None and (at_code.n_images or at_code.generator != first.family)
        taken_by = f"{at_code.code} {at_code.name}" if moves and not installed_as else ""
        choices.append(
            CatalogueChoice(
                type_id=type_id,
                name=first.name,
                family=first.family,
                summary=family.summary,
                parameters=parameter_list(family),
                category=first.category,
                subtype=first.subtype,
                levels=tuple(CatalogueLevel(int(row.level), row.params) for row in rows),
                needs=family.needs,
                unready=catalogue_unready(rows),
                installed_as=installed_as,
                code_taken_by=taken_by,
            )
        )
    return choices


def preview_reference(study: Study) -> ReferenceImage | None:
    """The reference previews are made on: the study's first by name."""
    return ReferenceImage.objects.filter(study=study).order_by("name").first()


def catalogue_preview(*, study: Study, type_id: str, level: int) -> bytes:
    """A PNG of the centre of one catalogue level applied to the study's preview reference."""
    rows = catalogue_types().get(type_id)
    row = next((row for row in rows or () if int(row.level) == level), None)
    if row is None:
        raise NotFound(f"the catalogue has no type {type_id} level {level}")
    reference = preview_reference(study)
    if reference is None:
        raise NotFound(f"study {study.slug} has no reference to make a preview on")
    unready = catalogue_unready([row])
    if unready:
        raise ApplicationError(unready)
    made_from = f"{reference.sha256}:{row.family}:{json.dumps(row.params, sort_keys=True)}:{distortions.CODE_VERSION}"
    path = f"studies/{study.slug}/catalogue-previews/{hashlib.sha256(made_from.encode()).hexdigest()}.png"
    if default_storage.exists(path):
        with default_storage.open(path, "rb") as handle:
            return handle.read()
    try:
        with reference.file.open("rb") as handle, Image.open(handle) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:  # the file gone from storage, or damaged since its import
        raise ApplicationError(f"reference {reference.name}: cannot read {reference.file.name} ({error})") from None
    output = distortions.get_family(row.family).apply(_centre_crop(pixels, PREVIEW_CONTEXT), row.params, PREVIEW_SEED)
    output = _centre_crop(output, PREVIEW_SIZE)
    buffer = io.BytesIO()
    Image.fromarray(output).save(buffer, format="PNG")
    data = buffer.getvalue()
    # Two first views at once both write it: same bytes, and the storage keeps one name.
    if not default_storage.exists(path):
        default_storage.save(path, ContentFile(data))
    return data


def _centre_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    size = min(size, height, width)
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(pixels[top : top + size, left : left + size])
