"""Owner tokens: making one (its secret shown once), revoking it, and what a token reaches.

A token reaches the studies its user owns (staff: every study), narrowed to its scope when it
has one. A study outside that answers 404, as a study that does not exist: the API does not
tell a token which other studies exist.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotation.models import Study, hash_token
from core.errors import ApplicationError, Conflict, NotFound
from dashboard.models import OwnerToken

SECRET_PREFIX = "pipal_owner_"
# last_used_at is a hint for the owner, not an audit log: written at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class MadeToken:
    token: OwnerToken
    secret: str


def token_create(*, username: str, name: str = "", study_slugs: list[str] | None = None) -> MadeToken:
    """A new token for ``username``, scoped to ``study_slugs`` when given (studies the user
    owns, or any study for staff). The secret is returned here and never again."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"no user {username!r}")
    if not user.is_active:
        raise ApplicationError(f"user {username!r} is inactive: an inactive user's token would never authenticate")
    scope = list(dict.fromkeys(study_slugs or []))
    studies = list(Study.objects.filter(slug__in=scope))
    unknown = sorted(set(scope) - {study.slug for study in studies})
    if unknown:
        raise NotFound(f"no study {', '.join(unknown)}", fields={"study": unknown})
    if not user.is_staff:
        owned = set(user.owned_studies.filter(slug__in=scope).values_list("slug", flat=True))
        foreign = sorted(set(scope) - owned)
        if foreign:
            raise ApplicationError(
                f"{username} does not own {', '.join(foreign)}: a token's scope is studies its user owns",
                fields={"study": foreign},
            )
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = OwnerToken.objects.create(user=user, name=name, secret_hash=hash_token(secret))
        token.studies.set(studies)
    return MadeToken(token=token, secret=secret)


def token_revoke(*, token_id: int) -> OwnerToken:
    """Revoke a token: from now on it answers 401. Revoking twice is refused (409)."""
    with transaction.atomic():
        token = OwnerToken.objects.select_for_update().filter(pk=token_id).first()
        if token is None:
            raise NotFound(f"no owner token {token_id}")
        if token.revoked:
            raise Conflict(f"owner token {token_id} was already revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S} UTC")
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def token_for_secret(secret: str) -> OwnerToken | None:
    """The token with this secret (revoked or not), with its user; None when there is none."""
    return OwnerToken.objects.select_related("user").filter(secret_hash=hash_token(secret)).first()


def token_mark_used(token: OwnerToken) -> None:
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        OwnerToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def token_studies(token: OwnerToken) -> QuerySet[Study]:
    """Every study the token reaches."""
    studies = Study.objects.all() if token.user.is_staff else Study.objects.filter(owners=token.user)
    if token.studies.exists():
        studies = studies.filter(pk__in=token.studies.values("pk"))
    return studies.order_by("slug")


def token_study(token: OwnerToken, slug: str) -> Study:
    """The study ``slug`` if the token reaches it; 404 otherwise, whether it exists or not."""
    study = token_studies(token).filter(slug=slug).first()
    if study is None:
        raise NotFound(f"no study {slug!r} among this token's studies")
    return study


def token_is_scoped(token: OwnerToken) -> bool:
    return token.studies.exists()
