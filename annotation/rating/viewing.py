"""Viewing conditions: what the rating page reports about each rater's screen."""

from annotation.models import Rater, ViewingReport


def viewing_report_create(*, rater: Rater, **conditions) -> ViewingReport:
    """Record a rater's viewing conditions (the API has checked each value's range)."""
    report = ViewingReport(rater=rater, **conditions)
    report.full_clean()
    report.save()
    return report
