"""Read-only queries about studies."""

from django.db.models import Count, F, Min, Sum

from . import quality
from .models import ControlTrial, DistortedImage, Judgment, Study, ViewingReport


def study_summaries():
    """Each study with its counts, for listings."""
    return Study.objects.annotate(
        reference_count=Count("references", distinct=True),
        image_count=Count("images", distinct=True),
    ).order_by("slug")


def study_judgment_total(study: Study) -> int:
    return study.judgments.count()


def study_progress(study: Study) -> dict:
    images = study.images.aggregate(total=Count("id"), judged=Sum("judgment_count"))
    return {
        "images": images["total"] or 0,
        "judgments": study.judgments.count(),
        "raters": study.raters.filter(synthetic=False).count(),
    }


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
    )


def rater_qualities(study: Study, raters=None) -> dict[int, quality.RaterQuality]:
    """Each rater's QC figures and flags, against the study's current MOS."""
    raters = list(raters if raters is not None else study.raters.all())
    mos = dict(DistortedImage.objects.filter(study=study).values_list("id", "mos"))
    votes: dict[int, list[quality.Vote]] = {rater.id: [] for rater in raters}
    rows = Judgment.objects.filter(study=study, rater__in=raters).values_list(
        "rater_id", "image_a_id", "image_b_id", "winner_id", "response_ms", "native"
    )
    for rater_id, a, b, winner, response_ms, native in rows.iterator(chunk_size=10_000):
        if winner is None:  # a tie chooses no side and agrees with no order
            continue
        loser = b if winner == a else a
        votes[rater_id].append(quality.Vote(winner == a, response_ms, mos[winner], mos[loser], native))
    gold_failed = dict(
        ControlTrial.objects.filter(study=study, rater__in=raters, kind=ControlTrial.Kind.GOLD, status="voted")
        .exclude(choice=F("correct_side"))
        .values("rater_id")
        .annotate(n=Count("id"))
        .values_list("rater_id", "n")
    )
    thresholds = study_thresholds(study)
    calibrated = dict(
        ViewingReport.objects.filter(rater__in=raters, px_per_degree__isnull=False)
        .values("rater_id")
        .annotate(ppd=Min("px_per_degree"))
        .values_list("rater_id", "ppd")
    )
    return {
        rater.id: quality.assess(
            votes[rater.id],
            gold_failed=gold_failed.get(rater.id, 0),
            thresholds=thresholds,
            viewing=quality.Viewing(px_per_degree=calibrated.get(rater.id)),
        )
        for rater in raters
    }
