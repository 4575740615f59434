"""Payment reconciliation for study owners: every rater with their external id, status,
trials, times and earned code; searchable by code and id; as CSV; and a code check.

Views for the study's owners and staff (the dashboard's rule); one selector builds the
rows from a fixed number of aggregate queries, whatever the number of raters.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Avg, Max, Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache

from annotation.models import Rater, Study, ViewingReport
from annotation.raters import rater_code
from annotation.rating import completion
from dashboard.views import can_view_dashboard, study_nav

STATUS_LABELS = {
    completion.IN_PROGRESS: "in progress",
    completion.FINISHED: "finished",
    completion.SCREENED_OUT: "excluded",
}
CSV_COLUMNS = (
    "external_id",
    "status",
    "reason",
    "trials",
    "started_at",
    "finished_at",
    "completion_code",
    "device_pixel_ratio",
    "viewport",
    "native_share",
    "px_per_degree",
)


@dataclass(frozen=True)
class RaterRow:
    rater: Rater
    status: str  # the label: in progress / finished / excluded
    reason: str
    trials: int
    code: str  # the code earned ('' while rating or when screened out)
    device_pixel_ratio: float | None
    viewport: str
    native_share: float | None  # of the rater's judgments with a known value
    px_per_degree: float | None

    @property
    def started_at(self) -> datetime:
        return self.rater.consented_at or self.rater.created_at


def rater_rows(study: Study, query: str = "") -> list[RaterRow]:
    """The study's raters for reconciliation; ``query`` matches an external id (part of it) or
    a code (exactly)."""
    raters = Rater.objects.filter(study=study).select_related("study").order_by("created_at", "id")
    if query.strip():
        text = query.strip()
        raters = raters.filter(Q(external_id__icontains=text) | Q(completion_code=text.upper()))
        if study.completion_code and text.upper() == study.completion_code.upper():
            raters = Rater.objects.filter(study=study, finished_at__isnull=False, excluded=False).order_by("id")
    return rows_of(study, list(raters))


def rows_of(study: Study, raters: list[Rater]) -> list[RaterRow]:
    """Reconciliation rows of some of a study's raters, from a fixed number of queries."""
    ids = [rater.id for rater in raters]
    latest = {}
    for report in ViewingReport.objects.filter(
        pk__in=ViewingReport.objects.filter(rater_id__in=ids).values("rater_id").annotate(last=Max("id")).values("last")
    ):
        latest[report.rater_id] = report
    calibrated = dict(
        ViewingReport.objects.filter(rater_id__in=ids, px_per_degree__isnull=False)
        .values("rater_id")
        .annotate(ppd=Avg("px_per_degree"))
        .values_list("rater_id", "ppd")
    )
    rows = []
    for rater in raters:
        status = completion.rater_status(rater)
        report = latest.get(rater.id)
        rows.append(
            RaterRow(
                rater=rater,
                status=STATUS_LABELS[status],
                reason=rater.exclusion_reason if rater.excluded else "",
                trials=rater.trials_done,
                code=rater_code(rater, study) if status == completion.FINISHED else "",
                device_pixel_ratio=report.device_pixel_ratio if report else None,
                viewport=f"{report.viewport_width}x{report.viewport_height}" if report else "",
                native_share=rater.votes_native / rater.votes_native_known if rater.votes_native_known else None,
                px_per_degree=calibrated.get(rater.id),
            )
        )
    return rows


def _owner_study(request, slug) -> Study | HttpResponse:
    study = get_object_or_404(Study, slug=slug)
    if not can_view_dashboard(request.user, study):
        raise PermissionDenied("only the study's owners and staff see its raters")
    return study


def _signed_in(view):
    def wrapped(request, slug):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, _owner_study(request, slug))

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return never_cache(wrapped)


@_signed_in
def rater_list(request, study: Study):
    """Every rater of the study, searchable by code or external id."""
    query = request.GET.get("q", "")
    context = {
        "study": study,
        "rows": rater_rows(study, query),
        "query": query,
        "nav": study_nav(request, study, "raters"),
    }
    return render(request, "dashboard/raters.html", context)


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def rows_csv(rows: list[RaterRow], filename: str) -> HttpResponse:
    """Reconciliation rows as a CSV download (one row per rater)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("study", *CSV_COLUMNS))
    for row in rows:
        writer.writerow(
            [
                row.rater.study.slug,
                row.rater.external_id,
                row.status,
                row.reason,
                row.trials,
                _when(row.started_at),
                _when(row.rater.finished_at),
                row.code,
                row.device_pixel_ratio or "",
                row.viewport,
                "" if row.native_share is None else f"{row.native_share:.3f}",
                "" if row.px_per_degree is None else f"{row.px_per_degree:.1f}",
            ]
        )
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@_signed_in
def rater_csv(request, study: Study):
    """The reconciliation table as CSV."""
    return rows_csv(rater_rows(study, request.GET.get("q", "")), f"{study.slug}-raters.csv")


@_signed_in
def code_check(request, study: Study):
    """Is this a code the study gave to a rater who finished? (JSON)"""
    check = completion.completion_code_check(study=study, code=request.GET.get("code", ""))
    if not check.valid or check.rater is None:
        return JsonResponse({"valid": check.valid, "reason": check.reason})
    return JsonResponse(
        {
            "valid": True,
            "external_id": check.rater.external_id,
            "status": STATUS_LABELS[completion.FINISHED],
            "finished_at": _when(check.rater.finished_at),
        }
    )
