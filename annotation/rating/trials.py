"""Issuing trials: what a rater sees next (a real pair, a practice or a gold pair), one
transaction each. Concurrency: a vote locks its rater, its assignment, then both image
rows in id order; issuing a pair locks the rater first too, so the open-pair
limit and the quota hold under simultaneous requests (everyone locks in that
order, so no deadlock); on SQLite the IMMEDIATE transaction serialises writers
and ``atomic_with_retry`` absorbs lock time-outs.

Row locks are ``FOR NO KEY UPDATE`` (``no_key=True``): votes change no key
column, and this lock does not conflict with the ``FOR KEY SHARE`` locks that
PostgreSQL takes on images when an assignment or judgment referencing them is
inserted (a plain ``FOR UPDATE`` deadlocks against those, since an assignment
references its left image before its right one, not in id order).
"""

from __future__ import annotations

import random
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation.db import atomic_with_retry
from annotation.models import (
    Assignment,
    ControlTrial,
    DistortedImage,
    Rater,
    ReferenceImage,
    Study,
)
from annotation.rating import control_trials, hot_path, scheduler, stimuli
from annotation.rating.issued import Candidate, IssuedTrial, RaterProgress, gold_slot, opaque_id, rater_progress
from annotation.studies import study_require_judgments
from core.errors import Conflict, Forbidden


def _open_trial(rater: Rater, now) -> Assignment | ControlTrial | None:
    """The rater's open, unexpired trial (at most one exists: a trial leaves by a vote or by expiry)."""
    live = {"rater": rater, "status": Assignment.Status.OPEN, "expires_at__gt": now}
    return (
        Assignment.objects.select_related("reference", "left", "right").filter(**live).first()
        or ControlTrial.objects.select_related("reference").filter(**live).first()
    )


def _retire_expired(rater: Rater, now) -> None:
    expired = {"rater": rater, "status": Assignment.Status.OPEN, "expires_at__lte": now}
    Assignment.objects.filter(**expired).update(status=Assignment.Status.RETIRED)
    ControlTrial.objects.filter(**expired).update(status=Assignment.Status.RETIRED)


def _finish(rater: Rater, now) -> None:
    if rater.finished_at is None and not rater.excluded:
        rater.finished_at = now
        rater.save(update_fields=["finished_at"])


@atomic_with_retry
def pair_next(*, study: Study, rater: Rater, rng: random.Random | None = None) -> IssuedTrial | None:
    """The rater's trial: the open one again while it is open (a reload, a second tab or a
    repeated call cannot skip a pair), else a new one; None when they are done (quota
    reached, every pair seen, or excluded), which marks a rater who finished.

    Order: ``training_trials`` practice pairs with feedback, then real pairs from the
    scheduler with one gold pair in every ``gold_every`` trials.
    """
    if rater.study_id != study.id:
        raise Forbidden("this rater belongs to another study")
    study_require_judgments(study)
    rng = rng or random.Random()
    # The common case in a few SQL statements (hot_path); the rest here, through the ORM.
    fast = hot_path.issue(study=study, rater=rater, rng=rng)
    if fast is not hot_path.SLOW:
        return fast
    # The rater's row is the lock every issue and vote of this rater takes first: one trial
    # open at a time and the quota hold under simultaneous requests.
    rater = lock_rater(rater)
    if rater.excluded:
        return None
    now = timezone.now()
    progress = rater_progress(rater)
    current = _open_trial(rater, now)
    if current is not None:
        return _trial_of(study, current, progress)
    _retire_expired(rater, now)
    trial = None
    if progress.rated < study.trials_per_rater:
        if progress.training_done < study.training_trials:
            trial = _issue_control(study, rater, ControlTrial.Kind.TRAINING, rng, now, progress)
        elif study.gold_every and progress.rated % study.gold_every == gold_slot(rater, study.gold_every):
            trial = _issue_control(study, rater, ControlTrial.Kind.GOLD, rng, now, progress)
        trial = trial or _issue_pair(study, rater, rng, now, progress)
    if trial is None:
        _finish(rater, now)
    return trial


def lock_rater(rater: Rater) -> Rater:
    return Rater.objects.select_for_update(no_key=True).get(pk=rater.pk)


def _expiry(now):
    return now + timedelta(seconds=settings.PIPAL_ASSIGNMENT_TTL_SECONDS)


def _trial_of(study: Study, item: Assignment | ControlTrial, progress: RaterProgress) -> IssuedTrial:
    token = item.token
    if isinstance(item, Assignment):
        slug = study.slug
        names = {
            "reference": stimuli.ensure_display(item.reference, slug),
            "left": stimuli.ensure_display(item.left, slug),
            "right": stimuli.ensure_display(item.right, slug),
        }
        _save_new_displays([item.reference], [item.left, item.right])
        phase = "rating"
    else:
        names = {
            "reference": stimuli.ensure_display(item.reference, study.slug),
            "left": item.left_file,
            "right": item.right_file,
        }
        _save_new_displays([item.reference], [])
        phase = "training" if item.kind == ControlTrial.Kind.TRAINING else "rating"
    return IssuedTrial(
        token=token,
        phase=phase,
        reference=Candidate(opaque_id(token, "reference"), names["reference"]),
        left=Candidate(opaque_id(token, "left"), names["left"]),
        right=Candidate(opaque_id(token, "right"), names["right"]),
        expires_at=item.expires_at,
        done=progress.rated,
        quota=study.trials_per_rater,
        allow_tie=study.allow_ties and phase == "rating",
        assignment=item if isinstance(item, Assignment) else None,
        control=item if isinstance(item, ControlTrial) else None,
    )


def _save_new_displays(references: list[ReferenceImage], images: list[DistortedImage]) -> None:
    """Store display copies made just now (older studies, or rows made without one), in id
    order as votes lock images, so no deadlock."""
    for model, items in ((ReferenceImage, references), (DistortedImage, images)):
        for item in sorted(items, key=lambda item: item.pk):
            if item.display and model.objects.filter(pk=item.pk, display="").exists():
                model.objects.filter(pk=item.pk).update(display=item.display.name)


def _issue_pair(study, rater, rng, now, progress) -> IssuedTrial | None:
    for _ in range(3):  # a concurrent request may take the same pair first
        choice = scheduler.choose_pair(study, rater.id, rng)
        if choice is None:
            return None
        left, right = (choice.first_id, choice.second_id)
        if rng.random() < 0.5:
            left, right = right, left
        try:
            with transaction.atomic():
                assignment = Assignment.objects.create(
                    study=study,
                    rater=rater,
                    token=secrets.token_urlsafe(24),
                    reference_id=choice.reference_id,
                    left_id=left,
                    right_id=right,
                    image_low_id=min(left, right),
                    image_high_id=max(left, right),
                    issued_at=now,
                    expires_at=_expiry(now),
                )
        except IntegrityError:
            continue
        assignment = Assignment.objects.select_related("reference", "left", "right").get(pk=assignment.pk)
        return _trial_of(study, assignment, progress)
    raise Conflict("could not reserve a pair; please retry")


def _issue_control(study, rater, kind, rng, now, progress) -> IssuedTrial | None:
    number = progress.training_done if kind == ControlTrial.Kind.TRAINING else None
    if number == 0 and study.protocol == Study.Protocol.PAIRWISE_NR:
        number = 1  # "sharp but different" is about closeness to a reference, which this study does not show
    pair = control_trials.build(study=study, kind=kind, practice_number=number, rng=rng)
    if pair is None:
        return None
    correct = rng.choice(["left", "right"])
    left, right = (pair.correct, pair.other) if correct == "left" else (pair.other, pair.correct)
    control = ControlTrial.objects.create(
        study=study,
        rater=rater,
        kind=kind,
        token=secrets.token_urlsafe(24),
        reference=pair.reference,
        construction=pair.construction,
        left_file=left,
        right_file=right,
        correct_side=correct,
        issued_at=now,
        expires_at=_expiry(now),
    )
    return _trial_of(study, control, progress)
