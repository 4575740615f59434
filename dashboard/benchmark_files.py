"""The benchmark report in the web app: owners and staff read a study's reports."""

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.cache import never_cache

from annotation.models import Study
from core.private_media import private_file_response
from dashboard.views import can_view_dashboard
from iqa.models import BenchmarkRun


@never_cache
def benchmark_file(request, slug, run_id=None, name="index.html"):
    """A file of a benchmark report (the newest when no run id is given); the HTML page
    links its CSV and plots by relative names, so they resolve under the same URL.
    Reports are private files: this permission check is the only way to them."""
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
    return private_file_response(f"{run.folder}/{name}")
