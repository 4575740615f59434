"""The benchmark report in the web app: owners and staff read a study's reports."""

import mimetypes
from pathlib import Path

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache

from annotation.dashboard import can_view_dashboard
from annotation.models import Study

from .models import BenchmarkRun


@never_cache
def benchmark_file(request, slug, run_id=None, name="index.html"):
    """A file of a benchmark report (the newest when no run id is given); the HTML page
    links its CSV and plots by relative names, so they resolve under the same URL."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    study = get_object_or_404(Study, slug=slug)
    if not can_view_dashboard(request.user, study):
        raise PermissionDenied("only the study's owners and staff see its benchmarks")
    runs = BenchmarkRun.objects.filter(study=study)
    run = runs.filter(pk=run_id).first() if run_id is not None else runs.first()
    if run is None:
        raise Http404(f"no benchmark for {slug} yet: run python manage.py run_benchmark {slug} --metrics ...")
    if name not in run.files:
        raise Http404(f"{name} is not part of this report")
    path = Path(settings.MEDIA_ROOT) / run.folder / name
    if not path.is_file():
        raise Http404(f"{name} is gone from {run.folder}")
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if name.endswith((".md", ".csv")):
        content_type = "text/plain; charset=utf-8"
    return FileResponse(open(path, "rb"), content_type=content_type)
