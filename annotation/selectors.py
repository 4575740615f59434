"""Read-only queries about studies."""

from django.db.models import Count, F, Min, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from annotation.analysis import quality
from annotation.models import ControlTrial, DistortedImage, Study, ViewingReport
from annotation.rating import stimulus_trials


def study_summaries(user) -> list:
    """The studies ``user`` may see, with their counts (from the images' counters, not the log):
    every study for staff, their own for owners, none for anyone else."""
    if not (user.is_authenticated and user.is_active):
        return []
    studies = Study.objects.all() if user.is_staff else Study.objects.filter(owners=user)
    images = DistortedImage.objects.filter(study=OuterRef("pk")).order_by().values("study")
    summaries = list(
        studies.annotate(
            image_count=Coalesce(Subquery(images.annotate(n=Count("pk")).values("n")), 0),
            judgment_count=Coalesce(Subquery(images.annotate(n=Sum("judgment_count") / 2).values("n")), 0),
        ).order_by("slug")
    )
    for study in summaries:
        if not study.is_pairwise:  # an image's count is its ratings, or rankings it is in: count the log
            log = study.ratings if study.rating_scale else study.rankings
            study.judgment_count = log.exclude(rater__excluded=True).count()
    return summaries


def study_thresholds(study: Study) -> quality.Thresholds:
    return quality.Thresholds(
        min_trials=study.flag_min_trials,
        side_bias=study.side_bias_threshold,
        min_response_ms=study.min_response_ms,
        max_fast_share=study.max_fast_share,
        min_agreement=study.min_agreement,
        min_gap=study.agreement_min_gap,
        max_non_native_share=study.max_non_native_share,
        min_px_per_degree=study.min_px_per_degree,
        sided=study.is_pairwise,
    )


def rater_qualities(study: Study, raters=None) -> dict[int, quality.RaterQuality]:
    """Each rater's QC figures and flags, from the counters on their rows (the vote paths keep
    them; no judgment is read), their failed gold pairs and their screen calibration."""
    raters = list(raters if raters is not None else study.raters.all())
    gold_failed = dict(
        ControlTrial.objects.filter(study=study, rater__in=raters, kind=ControlTrial.Kind.GOLD, status="voted")
        .exclude(choice=F("correct_side"))
        .values("rater_id")
        .annotate(n=Count("id"))
        .values_list("rater_id", "n")
    )
    if not study.is_pairwise:
        gold_failed = stimulus_trials.failed_checks(study, raters)
    thresholds = study_thresholds(study)
    calibrated = dict(
        ViewingReport.objects.filter(rater__in=raters, px_per_degree__isnull=False)
        .values("rater_id")
        .annotate(ppd=Min("px_per_degree"))
        .values_list("rater_id", "ppd")
    )
    return {
        rater.id: quality.assess_counts(
            quality.Counts(
                votes=rater.votes_cast,
                left=rater.votes_left,
                tied=rater.votes_tied,
                timed=rater.votes_timed,
                fast=rater.votes_fast,
                clear=rater.votes_clear,
                agreed=rater.votes_agreed,
                native=rater.votes_native,
                native_known=rater.votes_native_known,
            ),
            gold_failed=gold_failed.get(rater.id, 0),
            thresholds=thresholds,
            viewing=quality.Viewing(px_per_degree=calibrated.get(rater.id)),
        )
        for rater in raters
    }
