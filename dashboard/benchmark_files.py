"""The benchmark reports in the web app: owners and staff read a study's reports.

A run's page is drawn here, around the tables and plots the run wrote (its ``report.json``),
with the owner pages' stylesheet and navigation; every file the run wrote (the standalone
``index.html`` included) stays downloadable under the page's URL."""

import json

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from annotation.models import Study
from core.private_media import private_file_response, private_path
from dashboard.views import can_view_dashboard, study_nav
from iqa.models import BenchmarkRun
from iqa.report import PAGE_DATA

RUNS_LISTED = 20  # the newest runs the page links to


def _study_run(request, slug, run_id) -> tuple[Study, BenchmarkRun]:
    """The study and its run (the newest when no run id is given), for its owners and staff only."""
    study = get_object_or_404(Study, slug=slug)
    if not can_view_dashboard(request.user, study):
        raise PermissionDenied("only the study's owners and staff see its benchmarks")
    runs = BenchmarkRun.objects.filter(study=study)
    run = runs.filter(pk=run_id).first() if run_id is not None else runs.first()
    if run is None:
        raise Http404(f"no benchmark for {slug} yet: run python manage.py run_benchmark {slug} --metrics ...")
    return study, run


@never_cache
def benchmark_page(request, slug, run_id=None):
    """A benchmark run's report page (the newest run when no run id is given)."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    study, run = _study_run(request, slug, run_id)
    # Reports written before report.json existed have only their own page: the template links to it.
    content = None
    if PAGE_DATA in run.files:
        path = private_path(f"{run.folder}/{PAGE_DATA}")
        if path.is_file():
            content = json.loads(path.read_text(encoding="utf-8"))

    def file_url(name: str) -> str:
        return reverse("dashboard:benchmark-run-file", args=[study.slug, run.pk, name])

    context = {
        "study": study,
        "run": run,
        "report": content,
        "plots": [
            {"name": plot["png"], "png": file_url(plot["png"]), "svg": file_url(plot["svg"])}
            for plot in (content or {}).get("plots", [])
        ],
        "downloads": [
            {"name": name, "url": file_url(name)} for name in run.files if not name.endswith((".png", ".svg"))
        ],
        "runs": [
            {"run": other, "url": reverse("dashboard:benchmark-run", args=[study.slug, other.pk])}
            for other in study.benchmark_runs.all()[:RUNS_LISTED]
        ],
        "nav": study_nav(request, study, "benchmark"),
    }
    return render(request, "dashboard/benchmark.html", context)


@never_cache
def benchmark_file(request, slug, name, run_id=None):
    """A file a benchmark run wrote (of the newest run when no run id is given); the written
    index.html links its CSV and plots by relative names, so they resolve under the same URL.
    Reports are private files: this permission check is the only way to them."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    _, run = _study_run(request, slug, run_id)
    if name not in run.files:
        raise Http404(f"{name} is not part of this report")
    return private_file_response(f"{run.folder}/{name}")
