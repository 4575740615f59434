"""Read-only study pages: the home page, the owner dashboard with its chart downloads,
and the admin's progress page with its MOS CSV download.

Views only gather figures (the small query helpers here and ``selectors``),
hand numbers to ``plots`` and render; nothing here writes. The page's charts are
inlined as PNG ``data:`` URIs (one request draws the page); each is also at its own
URL as PNG or SVG, behind the same access check, to download.
"""

from __future__ import annotations

import base64
import functools
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.admin.utils import unquote
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import TruncHour
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache

from annotation import generation, selectors
from annotation.analysis import bt_fit
from annotation.analysis.exports import mos_csv
from annotation.models import BradleyTerryFit, Category, DistortedImage, Judgment, Study
from dashboard import page_cache
from iqa import selectors as iqa_selectors

RATER_TABLE_LIMIT = 500  # rows; the chart still shows every rater


# --- figures ---------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    judgments: int
    judgments_counted: int  # without excluded raters' votes: what the MOS is built from
    references: int
    images: int
    images_judged: int
    raters_real: int
    raters_synthetic: int
    raters_excluded: int


@dataclass(frozen=True)
class ImageFigures:
    judgments: int
    mos: float
    category: str
    subtype: str


def study_progress_figures(study: Study) -> Progress:
    """From counters, not by counting the log: every counted judgment added one to each of its two
    images' judgment counts, and each excluded rater's row counts their votes."""
    raters = study.raters.aggregate(
        n_real=Count("id", filter=Q(synthetic=False)),
        n_synthetic=Count("id", filter=Q(synthetic=True)),
        n_excluded=Count("id", filter=Q(excluded=True)),
        excluded_votes=Sum("votes_cast", filter=Q(excluded=True)),
    )
    images = study.images.aggregate(
        total=Count("id"), judged=Count("id", filter=Q(judgment_count__gt=0)), counts=Sum("judgment_count")
    )
    # A labels study's images carry the label's nominal count, not judgments.
    counted = 0 if study.mos_from_labels else (images["counts"] or 0) // 2
    if not study.is_pairwise:
        # acr/dcr/rank-k: ratings or rankings, counted in their log (an image's count is its
        # ratings, or its appearances in rankings of any length).
        log = study.ratings if study.rating_scale else study.rankings
        counted = log.exclude(rater__excluded=True).count()
    return Progress(
        judgments=counted + (raters["excluded_votes"] or 0),
        judgments_counted=counted,
        references=study.references.count(),
        images=images["total"],
        images_judged=images["judged"],
        raters_real=raters["n_real"],
        raters_synthetic=raters["n_synthetic"],
        raters_excluded=raters["n_excluded"],
    )


def study_image_figures(study: Study) -> list[ImageFigures]:
    rows = DistortedImage.objects.filter(study=study).values_list(
        "judgment_count", "mos", "distortion_type__category", "distortion_type__subtype"
    )
    return [ImageFigures(*row) for row in rows.iterator(chunk_size=10_000)]


def study_judgments_per_hour(study: Study) -> list[tuple[datetime, int]]:
    rows = (
        Judgment.objects.filter(study=study)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(n=Count("id"))
        .order_by("hour")
        .values_list("hour", "n")
    )
    return list(rows)


UNCATEGORISED = "uncategorised"
# The chart legends' order: PIPAL's categories as in the paper, then images of no category.
CATEGORY_ORDER = (*Category.labels, UNCATEGORISED)


def category_label(value: str) -> str:
    if value in Category.values:
        return Category(value).label
    return value or UNCATEGORISED


def mos_by_category(images: list[ImageFigures]) -> dict[str, list[float]]:
    """MOS of judged images per PIPAL category, in the paper's order."""
    groups: dict[str, list[float]] = defaultdict(list)
    for image in images:
        if image.judgments:
            groups[image.category].append(image.mos)
    labels = {choice.value: choice.label for choice in Category}
    ordered = {labels[value]: groups[value] for value in labels if groups.get(value)}
    if groups.get(""):
        ordered[UNCATEGORISED] = groups[""]
    return ordered


def mos_by_subtype(images: list[ImageFigures]) -> dict[str, list[float]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for image in images:
        if image.judgments:
            groups[image.subtype or "(none)"].append(image.mos)
    return dict(sorted(groups.items()))


# --- the Bradley–Terry fit beside Elo ------------------------------------------------


@dataclass(frozen=True)
class FitFigure:
    """One convergence figure of a Bradley–Terry fit, with what it means in plain words."""

    label: str
    value: str
    target: str  # the study's goal for it, "" when it has none
    meaning: str


@dataclass(frozen=True)
class FitSummary:
    fit: BradleyTerryFit
    current: bool  # False: judgments were added or raters excluded since the fit
    figures: list[FitFigure]


def fit_figures(fit: BradleyTerryFit) -> list[FitFigure]:
    within = "within a reference" if fit.scope == Study.BtScope.REFERENCE else "of the study"
    return [
        FitFigure(
            "Median 95% CI width",
            f"{fit.median_ci:.1f} Elo points",
            "",
            f"Half the fitted images have a narrower interval: their MOS is known to about "
            f"±{fit.median_ci / 2:.0f} points.",
        ),
        FitFigure(
            "Widest 95% CI",
            f"{fit.widest_ci:.1f} Elo points",
            f"≤ {fit.target_ci_width:g}",
            "The least certain fitted image; the goal is every interval at most the target wide.",
        ),
        FitFigure(
            "Images wider than the target",
            str(fit.images_too_wide),
            "0",
            f"Images whose interval is wider than {fit.target_ci_width:g} points, images not judged yet "
            "included: these need more judgments.",
        ),
        FitFigure(
            "Ranking stability (Kendall distance)",
            f"{fit.kendall:.4f}",
            f"≤ {fit.target_kendall:g}",
            f"The share of image pairs {within} that two bootstrap replicates order differently: "
            "0 means the ranking no longer depends on which judgments happened to be drawn.",
        ),
        FitFigure(
            "Precision goal",
            "DONE" if fit.done else "not done yet",
            "",
            "Done when no image is wider than the target and the ranking is at least as stable as its target; "
            "until then the study needs more judgments.",
        ),
    ]


def bt_fit_summary(study: Study) -> FitSummary | None:
    """The latest Bradley–Terry fit with its convergence figures; None before the first fit."""
    fit = study.bt_fits.first()
    if fit is None:
        return None
    return FitSummary(fit=fit, current=bt_fit.fit_is_current(study, fit, exact=False), figures=fit_figures(fit))


def reference_bt_rows(study: Study, reference: str) -> list[tuple[str, float, float, float, str, float]]:
    """(name, Bradley–Terry MOS, CI low, CI high, category, Elo MOS) of the reference's fitted images."""
    rows = DistortedImage.objects.filter(study=study, reference__name=reference, mos_bt__isnull=False).values_list(
        "name", "mos_bt", "bt_ci_low", "bt_ci_high", "distortion_type__category", "mos"
    )
    return list(rows)


def bt_ci_widths(study: Study) -> list[float]:
    rows = DistortedImage.objects.filter(study=study, mos_bt__isnull=False).annotate(
        ci_width=F("bt_ci_high") - F("bt_ci_low")
    )
    return list(rows.values_list("ci_width", flat=True).iterator(chunk_size=10_000))


def _plots():
    # matplotlib takes about a quarter of a second to import: only the chart
    # pages pay for it, not every process that loads the admin (commands, workers).
    from dashboard import plots

    return plots


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _judgments_per_image_chart(images: list[ImageFigures], fmt: str = "png") -> bytes:
    return _plots().histogram(
        [image.judgments for image in images],
        title="Judgments per image",
        xlabel="judgments the image took part in (excluded raters left out)",
        ylabel="images",
        fmt=fmt,
    )


def _judgments_per_hour_chart(study: Study, fmt: str = "png") -> bytes:
    return _plots().counts_per_hour(
        study_judgments_per_hour(study), title="Judgments per hour", ylabel="judgments", fmt=fmt
    )


# --- owner dashboard ---------------------------------------------------------------


def study_rater_rows(study: Study) -> list:
    """(rater, quality) of every rater, flagged first, then by trials."""
    raters = list(study.raters.order_by("external_id"))
    qualities = selectors.rater_qualities(study, raters)
    return sorted(((rater, qualities[rater.id]) for rater in raters), key=lambda r: (not r[1].flagged, -r[1].trials))


def _dashboard_chart(
    study: Study, name: str, fmt: str, images: Callable[[], list[ImageFigures]], rater_rows: Callable[[], list]
) -> bytes:
    """One of DASHBOARD_CHARTS; ``images`` and ``rater_rows`` are read only by the charts that need them."""
    plots = _plots()
    if name == "judgments_per_image":
        return _judgments_per_image_chart(images(), fmt)
    if name == "judgments_per_hour":
        return _judgments_per_hour_chart(study, fmt)
    if name == "mos":
        judged_mos = [image.mos for image in images() if image.judgments]
        return plots.histogram(
            judged_mos, title="MOS of judged images", xlabel="MOS (Elo scale)", ylabel="images", fmt=fmt
        )
    if name == "mos_by_category":
        return plots.box_plot(
            mos_by_category(images()), title="MOS by category", value_label="MOS (Elo scale)", group_label="", fmt=fmt
        )
    if name == "mos_by_subtype":
        return plots.box_plot(
            mos_by_subtype(images()),
            title="MOS by subtype (highest median on top)",
            value_label="MOS (Elo scale)",
            group_label="",
            sort_by_median=True,
            fmt=fmt,
        )
    points = [plots.RaterPoint(rater.external_id, q.trials, q.agreement, q.flagged) for rater, q in rater_rows()]
    return plots.rater_agreement(points, fmt=fmt)


def _bt_chart(study: Study, summary: FitSummary, reference: str | None, name: str, fmt: str) -> bytes:
    """One of BT_CHARTS for one reference."""
    plots = _plots()
    if name == "bt_ci_widths":
        target = summary.fit.target_ci_width
        return plots.histogram(
            bt_ci_widths(study),
            title="Width of the 95% confidence intervals (Bradley–Terry)",
            xlabel="CI width (Elo points)",
            ylabel="images",
            mark=target,
            mark_label=f"target: {target:g}",
            fmt=fmt,
        )
    rows = reference_bt_rows(study, reference) if reference else []
    points = [
        plots.IntervalPoint(name, score, low, high, category_label(category), mos)
        for name, score, low, high, category, mos in rows
    ]
    return plots.intervals(
        points,
        title=f"Bradley–Terry MOS and 95% CI: {reference or 'no reference'}",
        xlabel="images, from lowest to highest Bradley–Terry MOS",
        ylabel="Bradley–Terry MOS",
        groups=CATEGORY_ORDER,
        other_label="imported MOS" if study.mos_from_labels else "Elo MOS",
        empty_text="no fitted image in this reference",
        fmt=fmt,
    )


# The charts by the name their download URL carries; the Bradley–Terry ones also take ?reference=.
DASHBOARD_CHARTS = ("judgments_per_image", "judgments_per_hour", "mos", "mos_by_category", "mos_by_subtype", "raters")
BT_CHARTS = ("bt_intervals", "bt_ci_widths")


def _bt_charts(study: Study, summary: FitSummary, reference: str | None) -> dict[str, str]:
    return {name: png_data_uri(_bt_chart(study, summary, reference, name, "png")) for name in BT_CHARTS}


def bt_dashboard_section(study: Study, reference: str | None) -> dict:
    """The Bradley–Terry part of the dashboard for one reference (default: the
    first by name); a name the study does not have is a 404."""
    names = list(study.references.order_by("name").values_list("name", flat=True))
    if reference and reference not in names:
        raise Http404(f"study {study.slug!r} has no reference named {reference!r}")
    reference = reference or (names[0] if names else None)
    summary = bt_fit_summary(study)
    position = names.index(reference) if reference else 0
    return {
        "summary": summary,
        "references": names,
        "reference": reference,
        "previous": names[position - 1] if reference and position > 0 else None,
        "next": names[position + 1] if reference and position + 1 < len(names) else None,
        "query": urlencode({"reference": reference}) if reference else "",  # for the charts' download links
        # No fit, nothing to draw: the page says how to make one instead.
        "charts": page_cache.cached(study, "bt-charts", lambda: _bt_charts(study, summary, reference), reference).value
        if summary
        else {},
    }


def _dashboard_charts(study: Study, images: list[ImageFigures], rater_rows) -> dict[str, str]:
    return {
        name: png_data_uri(_dashboard_chart(study, name, "png", lambda: images, lambda: rater_rows))
        for name in DASHBOARD_CHARTS
    }


def study_nav(request, study: Study, current: str) -> list[dict]:
    """The links between a study's owner pages (``current``: the one shown): home, dashboard,
    benchmark runs (once there is one), raters, and for staff the study in the admin."""
    links = [
        ("home", "Home", reverse("dashboard:home")),
        ("dashboard", "Dashboard", reverse("dashboard:study", args=[study.slug])),
    ]
    if study.benchmark_runs.exists():
        links.append(("benchmark", "Benchmark runs", reverse("dashboard:benchmark", args=[study.slug])))
    links.append(("raters", "Raters and payments", reverse("dashboard:raters", args=[study.slug])))
    if request.user.is_staff:
        links.append(("admin", "Study in the admin", reverse("admin:annotation_study_change", args=[study.pk])))
    return [{"key": key, "label": label, "url": url, "current": key == current} for key, label, url in links]


def home(request):
    """The landing page: what the platform is; owners see their studies and staff all. Nobody
    else sees a study list, not even an empty one: a study's existence and size are its owners'
    business, and raters arrive through their study's link."""
    studies = selectors.study_summaries(request.user)
    return render(
        request, "dashboard/home.html", {"studies": studies, "show_studies": bool(studies) or request.user.is_staff}
    )


def can_view_dashboard(user, study: Study) -> bool:
    if not (user.is_authenticated and user.is_active):
        return False
    return user.is_staff or study.owners.filter(pk=user.pk).exists()


def _dashboard_study(request, slug) -> Study:
    study = get_object_or_404(Study, slug=slug)
    if not can_view_dashboard(request.user, study):
        raise PermissionDenied("only the study's owners and staff see its dashboard")
    return study


@never_cache
def study_dashboard(request, slug):
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    study = _dashboard_study(request, slug)

    # First: a link to a reference the study lacks fails before the costly figures.
    bt = bt_dashboard_section(study, request.GET.get("reference") or None)
    rows = study_rater_rows(study)
    charts = page_cache.cached(study, "charts", lambda: _dashboard_charts(study, study_image_figures(study), rows))
    context = {
        "study": study,
        "entries": "Judgments" if study.is_pairwise else "Ratings" if study.rating_scale else "Rankings",
        "progress": study_progress_figures(study),
        "charts": charts.value,
        "charts_at": charts.stale_since,
        "rater_rows": rows[:RATER_TABLE_LIMIT],
        "raters_total": len(rows),
        "raters_flagged": sum(q.flagged for _, q in rows),
        "benchmark_runs": study.benchmark_runs.all()[:5],
        "label_import": study.label_imports.order_by("-id").first(),
        "bt": bt,
        "admin_progress_url": (
            reverse("admin:annotation_study_progress", args=[study.pk]) if request.user.is_staff else None
        ),
        "nav": study_nav(request, study, "dashboard"),
    }
    return render(request, "dashboard/dashboard.html", context)


@never_cache
def study_chart(request, slug, chart):
    """One dashboard chart as a file to download: ``?format=png`` (the default) or ``svg``; the
    Bradley–Terry charts take the dashboard's ``?reference=``. The dashboard's access rule."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    study = _dashboard_study(request, slug)
    fmt = request.GET.get("format", "png")
    formats = _plots().FORMATS
    if fmt not in formats:
        return HttpResponseBadRequest(f"unknown format {fmt!r}: use one of {', '.join(formats)}", "text/plain")
    if chart in DASHBOARD_CHARTS:
        images = functools.cache(lambda: study_image_figures(study))
        rater_rows = functools.cache(lambda: study_rater_rows(study))
        key = (chart, fmt)

        def draw() -> bytes:
            return _dashboard_chart(study, chart, fmt, images, rater_rows)

    elif chart in BT_CHARTS:
        bt = bt_dashboard_section(study, request.GET.get("reference") or None)
        if bt["summary"] is None:
            raise Http404(f"study {slug!r} has no Bradley–Terry fit yet: python manage.py fit_bradley_terry {slug}")
        key = (chart, fmt, bt["reference"])

        def draw() -> bytes:
            return _bt_chart(study, bt["summary"], bt["reference"], chart, fmt)

    else:
        raise Http404(f"no chart named {chart!r}; the charts: {', '.join(DASHBOARD_CHARTS + BT_CHARTS)}")
    # A reference's name may hold characters a file name (or the header) should not.
    parts = [study.slug, *(re.sub(r"[^A-Za-z0-9_.-]+", "_", str(part)) for part in key[2:]), chart]
    filename = "-".join(parts) + f".{fmt}"
    return HttpResponse(
        page_cache.cached(study, "chart-file", draw, *key).value,
        content_type=formats[fmt],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- admin pages (StudyAdmin routes these through admin_site.admin_view: staff only) ---


def _admin_study(model_admin, request, object_id) -> Study:
    study = model_admin.get_object(request, unquote(object_id))
    if study is None:
        raise Http404(f"no study with id {object_id!r}")
    if not model_admin.has_view_or_change_permission(request, study):
        raise PermissionDenied
    return study


def admin_study_progress(model_admin, request, object_id):
    study = _admin_study(model_admin, request, object_id)

    def charts() -> dict:
        return {
            "judgments_per_image": png_data_uri(_judgments_per_image_chart(study_image_figures(study))),
            "judgments_per_hour": png_data_uri(_judgments_per_hour_chart(study)),
        }

    cached_charts = page_cache.cached(study, "progress-charts", charts)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "original": study,
        "title": f"Progress of {study.name}",
        "subtitle": study.slug,
        "progress": study_progress_figures(study),
        "charts": cached_charts.value,
        "charts_at": cached_charts.stale_since,
        "csv_url": reverse("admin:annotation_study_mos_csv", args=[study.pk]),
        "generation": generation_figures(study),
        "bt": {"summary": bt_fit_summary(study)},
        "scores": page_cache.cached(study, "score-coverage", lambda: iqa_selectors.score_coverage(study)).value,
        "benchmark_runs": study.benchmark_runs.all()[:5],
        "label_import": study.label_imports.order_by("-id").first(),
    }
    return render(request, "admin/annotation/study/progress.html", context)


def generation_figures(study: Study) -> dict | None:
    made, expected = generation.generation_progress(study)
    if not expected:
        return None
    failures = list(generation.generation_failures(study))
    return {
        "made": made,
        "expected": expected,
        "percent": round(100 * made / expected),
        # Slots that failed are not coming: the page stops refreshing when only they are missing.
        "running": made + len(failures) < expected,
        "failed": generation.failures_summary(failures) if failures else "",
    }


def admin_study_mos_csv(model_admin, request, object_id):
    study = _admin_study(model_admin, request, object_id)
    return HttpResponse(
        mos_csv(study),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{study.slug}-mos.csv"'},
    )
