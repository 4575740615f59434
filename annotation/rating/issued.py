"""What a rater is issued: a trial's shape as the rater sees it, its opaque ids, progress and
where a rater's gold pairs sit (shared by the ORM path and hot_path)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from annotation.models import (
    Assignment,
    ControlTrial,
    Rater,
)


@dataclass(frozen=True)
class Candidate:
    id: str  # opaque, per assignment and side: nothing links it to an image or tells a check
    file: str  # the stored name of the picture shown (a stimulus; stimuli.py)


@dataclass(frozen=True)
class IssuedTrial:
    """One trial as the rater sees it: a real pair and a gold pair have the same fields,
    shapes and kinds of value (only practice is announced, since it gives feedback)."""

    token: str
    phase: str  # "training" or "rating"
    reference: Candidate
    left: Candidate
    right: Candidate
    expires_at: object
    done: int
    quota: int
    allow_tie: bool = False
    assignment: Assignment | None = None  # internal: the real pair
    control: ControlTrial | None = None  # internal: the control pair


@dataclass(frozen=True)
class RaterProgress:
    training_done: int  # practice pairs answered
    rated: int  # rated trials: real pairs and gold pairs voted


def rater_progress(rater: Rater) -> RaterProgress:
    """Progress from the counters on the rater's row (kept by the vote paths; one trial is open
    at a time, so what was answered is what counts). The caller passes a fresh row."""
    return RaterProgress(training_done=rater.practice_done, rated=rater.trials_done)


def gold_slot(rater: Rater, every: int) -> int:
    """Where in each block of ``every`` trials this rater's gold pair sits:
    fixed per rater, never the first trial, unpredictable across raters."""
    if every <= 1:
        return 0
    return 1 + int(hashlib.sha256(f"gold:{rater.pk}".encode()).hexdigest(), 16) % (every - 1)


def opaque_id(token: str, part: str) -> str:
    """A per-assignment id for one picture of a trial (22 url-safe characters, like any other)."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"{token}:{part}".encode()).digest())[:22].decode()
