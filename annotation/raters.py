"""Raters: joining (and resuming), credentials, completion codes and exclusion."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation import tasks
from annotation.db import atomic_with_retry
from annotation.models import (
    Judgment,
    Ranking,
    Rater,
    Rating,
    Study,
    hash_token,
)
from annotation.studies import study_require_judgments
from core.errors import ApplicationError, Conflict

# Crockford's base32 (no I, L, O, U): codes people copy by hand without misreading.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 12  # 60 bits: unguessable, and checkable against the rater list


def new_completion_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def rater_create(
    *, study: Study, external_id: str, synthetic: bool = False, consented: bool = False
) -> tuple[Rater, str]:
    """A new rater and their API token (returned once; only its hash is kept). Without a
    study-wide completion code the rater gets a unique code of their own, shown when they finish."""
    study_require_judgments(study)
    external_id = external_id.strip()
    if not external_id:
        raise ApplicationError("external_id must not be empty", fields={"external_id": ["must not be empty"]})
    token = secrets.token_urlsafe(32)
    for _ in range(3):  # a code clash (1 in 2^60 per pair) or a concurrent join of the same id
        try:
            with transaction.atomic():
                rater = Rater.objects.create(
                    study=study,
                    external_id=external_id,
                    token_hash=hash_token(token),
                    synthetic=synthetic,
                    consented_at=timezone.now() if consented else None,
                    completion_code="" if study.completion_code else new_completion_code(),
                )
            return rater, token
        except IntegrityError:
            if Rater.objects.filter(study=study, external_id=external_id).exists():
                break
    raise Conflict(
        f"rater {external_id!r} has already joined study {study.slug!r}", fields={"external_id": ["already joined"]}
    )


@dataclass(frozen=True)
class Joined:
    rater: Rater
    token: str
    resumed: bool


@atomic_with_retry
def rater_join(*, study: Study, external_id: str, consented: bool = False) -> Joined:
    """Join a study, or — the same external id again, from a new browser or after cleared
    cookies — resume that rater where they stopped (progress, quota, pairs seen) with a new
    token, unless the study turns resume off. The old token stops working."""
    study_require_judgments(study)
    existing = Rater.objects.select_for_update(no_key=True).filter(study=study, external_id=external_id.strip()).first()
    if existing is None:
        rater, token = rater_create(study=study, external_id=external_id, consented=consented)
        return Joined(rater, token, resumed=False)
    if not study.allow_resume:
        raise Conflict(
            f"{existing.external_id!r} has already taken part in this study, which allows one session per id",
            code="already_joined",
            fields={"external_id": ["already taken part"]},
        )
    token = secrets.token_urlsafe(32)
    existing.token_hash = hash_token(token)
    existing.consented_at = existing.consented_at or (timezone.now() if consented else None)
    existing.save(update_fields=["token_hash", "consented_at"])
    return Joined(existing, token, resumed=True)


def rater_code(rater: Rater, study: Study) -> str:
    """The code a finished rater gets: the study's own, or theirs."""
    return study.completion_code or rater.completion_code


@atomic_with_retry
def raters_set_excluded(*, raters: Iterable[Rater], excluded: bool, reason: str = "") -> int:
    """Exclude raters' votes from the MOS (or bring them back), all or none.
    The MOS is then rebuilt from the judgment log by the recompute task, once
    per study, after this commits. Returns how many raters changed."""
    changed = list(
        Rater.objects.select_for_update(no_key=True)
        .filter(pk__in=[rater.pk for rater in raters])
        .exclude(excluded=excluded)
        .order_by("pk")
    )
    for rater in changed:
        rater.excluded, rater.exclusion_reason = excluded, reason if excluded else ""
        rater.save(update_fields=["excluded", "exclusion_reason"])
    voted = {
        study_id
        for log in (Judgment, Rating, Ranking)
        for study_id in log.objects.filter(rater__in=changed).values_list("study_id", flat=True).distinct()
    }
    for study_id in sorted(voted):
        _recompute_after_commit(study_id)
    return len(changed)


def rater_set_excluded(*, rater: Rater, excluded: bool, reason: str = "") -> bool:
    """One rater: see raters_set_excluded. Returns whether anything changed."""
    return raters_set_excluded(raters=[rater], excluded=excluded, reason=reason) == 1


def _recompute_after_commit(study_id: int) -> None:
    transaction.on_commit(lambda: tasks.recompute_mos.delay(study_id))
