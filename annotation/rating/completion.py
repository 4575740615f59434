"""Completion and payment: who has finished, which code they get, and checking a code.

A code is earned only by finishing (the quota reached, or every pair seen): a study-wide
code (Prolific's) or the rater's own unique one (MTurk style). A rater screened out by a
check gets the study's screen-out code instead, if it has one.
"""

from __future__ import annotations

from dataclasses import dataclass

from annotation.models import Rater, Study
from annotation.raters import rater_code
from annotation.rating.issued import rater_progress

IN_PROGRESS, FINISHED, SCREENED_OUT = "in_progress", "finished", "screened_out"


@dataclass(frozen=True)
class Progress:
    done: int
    quota: int


@dataclass(frozen=True)
class Completion:
    status: str
    progress: Progress
    code: str | None  # shown only when earned
    url: str | None  # the crowd platform's return address with the code, if the study has one


def _url(template: str, code: str | None) -> str | None:
    return template.replace("{code}", code or "") if template else None


def rater_status(rater: Rater) -> str:
    if rater.excluded:
        return SCREENED_OUT
    return FINISHED if rater.finished_at is not None else IN_PROGRESS


def rater_completion(*, study: Study, rater: Rater) -> Completion:
    rater.refresh_from_db(fields=["excluded", "finished_at", "completion_code"])
    progress = Progress(done=rater_progress(rater).rated, quota=study.trials_per_rater)
    status = rater_status(rater)
    if status == FINISHED:
        code = rater_code(rater, study)
        return Completion(status, progress, code, _url(study.completion_url, code))
    if status == SCREENED_OUT:
        code = study.screen_out_code or None
        return Completion(status, progress, code, _url(study.screen_out_url, code))
    return Completion(status, progress, None, None)


@dataclass(frozen=True)
class CodeCheck:
    valid: bool
    reason: str = ""
    rater: Rater | None = None


def completion_code_check(*, study: Study, code: str) -> CodeCheck:
    """Is ``code`` a code this study gave to a rater who finished? (A forged code, another
    study's, or the code of a rater still rating or screened out is not.)"""
    code = code.strip().upper()
    if not code:
        return CodeCheck(False, "no code given")
    if study.completion_code:
        if code != study.completion_code.upper():
            return CodeCheck(False, "not this study's completion code")
        return CodeCheck(True, "the study's completion code (the same for every rater: reconcile by external id)")
    rater = Rater.objects.filter(study=study, completion_code=code).first()
    if rater is None:
        return CodeCheck(False, "no rater of this study has this code")
    status = rater_status(rater)
    if status == IN_PROGRESS:
        return CodeCheck(False, "this code belongs to a rater who has not finished", rater)
    if status == SCREENED_OUT:
        return CodeCheck(False, f"this code belongs to a rater screened out ({rater.exclusion_reason})", rater)
    return CodeCheck(True, "", rater)
