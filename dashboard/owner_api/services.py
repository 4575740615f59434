"""The owner API's writes: a study, a reference, distortion types. Each is the admin's own
service with the admin's own checks, plus the token's rules (who owns what it makes)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from annotation import admin_services, generation
from annotation.imaging import ImageRejected
from annotation.imports.folders import check_upload
from annotation.models import DistortionType, ReferenceImage, Study
from annotation.studies import study_create
from core.errors import ApplicationError, Conflict, Forbidden
from dashboard.models import OwnerToken
from dashboard.owner_api.tokens import token_is_scoped


def owner_study_create(*, token: OwnerToken, slug: str, name: str = "", **options) -> Study:
    """A new study owned by the token's user. A token scoped to studies cannot make one (its
    scope would not include it)."""
    if token_is_scoped(token):
        raise Forbidden("this token is scoped to studies: creating one needs a token without a scope")
    try:
        with transaction.atomic():
            study = study_create(slug=slug, name=name, **options)
            study.owners.add(token.user)
    except ValueError as error:  # the Elo parameters' own check (annotation.analysis.elo)
        raise ApplicationError(str(error)) from None
    except ValidationError as error:
        raise _invalid(error) from None
    return study


def _invalid(error: ValidationError) -> ApplicationError:
    """A model's own validation as an API refusal naming each field."""
    fields = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
    first, messages = next(iter(fields.items()))
    return ApplicationError(f"{first}: {messages[0]}", fields=fields)


def owner_reference_add(*, study: Study, name: str, data: bytes, filename: str) -> ReferenceImage:
    """A new reference from uploaded bytes, checked as the admin's upload is."""
    if len(data) > settings.PIPAL_MAX_IMAGE_BYTES:
        raise ApplicationError(
            f"{filename}: {len(data)} bytes is over the limit of {settings.PIPAL_MAX_IMAGE_BYTES}",
            fields={"file": ["too large"]},
        )
    try:
        checked = check_upload(data, filename)
    except ImageRejected as error:
        raise ApplicationError(str(error), fields={"file": [str(error)]}) from None
    return admin_services.reference_image_upload(study=study, name=name, checked=checked, original_filename=filename)


def owner_catalogue_types_add(*, study: Study, codes: list[str]) -> list[DistortionType]:
    """The catalogue's types ``codes`` installed into the study (generation settings of a type
    that has no images yet are brought up to date; one with images made otherwise is refused)."""
    generation.catalogue_install(study=study, type_ids=codes)
    return list(study.distortion_types.filter(code__in=codes).order_by("code"))


def owner_type_create(
    *, study: Study, code: str, name: str, category: str = "", subtype: str = "", generator: str = "", levels=None
) -> DistortionType:
    """A hand-made distortion type: a generator's levels are checked against its family's
    parameters, as the admin's form checks them; without a generator its images are uploaded
    or imported."""
    problems = admin_services.distortion_code_problems(code=code)
    if problems:
        raise ApplicationError("; ".join(problems), fields={"code": problems})
    if generator:
        try:
            levels = generation.checked_levels(generator, levels or {})
        except ApplicationError as error:
            raise ApplicationError(error.message, fields={"levels": [error.message]}) from None
    elif levels:
        raise ApplicationError("levels need a generator", fields={"generator": ["levels need a generator"]})
    kind = DistortionType(
        study=study,
        code=code,
        name=name,
        category=category,
        subtype=subtype,
        generator=generator,
        levels=levels or {},
    )
    try:
        kind.full_clean(validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        raise _invalid(error) from None
    try:
        with transaction.atomic():
            kind.save()
    except IntegrityError:
        raise Conflict(f"study {study.slug} already has a distortion type {code}", fields={"code": ["taken"]}) from None
    return kind
