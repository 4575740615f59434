"""Rater pages (welcome and consent, rating, finish) and the landing page.

The rating page is static HTML plus rate.js, which talks to the same rater API
as any client, authenticated by the session the join form opens.
"""

from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from . import selectors, services
from .authentication import session_key
from .exceptions import ApplicationError
from .forms import JoinForm
from .models import Rater, Study

# PIPAL §4.1: raters judged perceptual similarity to the ground truth, not
# "quality" (which invites picking the sharper GAN output). SPEC §6.
QUESTION = "Which of the two images is more similar to the reference?"


def home(request):
    studies = [(study, selectors.study_progress(study)) for study in selectors.study_summaries()]
    return render(request, "annotation/home.html", {"studies": studies})


def _session_rater(request, study: Study) -> Rater | None:
    rater_id = request.session.get(session_key(study.slug))
    return Rater.objects.filter(pk=rater_id, study=study).first() if rater_id else None


@require_http_methods(["GET", "POST"])
def study_welcome(request, slug):
    study = get_object_or_404(Study, slug=slug)
    if study.mos_from_labels:
        # Imported labels are the MOS: no one can join or vote (services refuse it too).
        return render(request, "annotation/welcome.html", {"study": study, "closed": True}, status=409)
    if _session_rater(request, study):
        return redirect("annotation:rate", slug=slug)
    form = JoinForm(request.POST or None, initial={"external_id": request.GET.get("rater", "")})
    if request.method == "POST" and form.is_valid():
        try:
            rater, _ = services.rater_create(study=study, external_id=form.cleaned_data["external_id"], consented=True)
        except ApplicationError as error:
            form.add_error("external_id", error.message)
        else:
            request.session.cycle_key()
            request.session[session_key(slug)] = rater.id
            return redirect("annotation:rate", slug=slug)
    context = {"study": study, "form": form, "question": QUESTION, "from_link": bool(request.GET.get("rater"))}
    return render(request, "annotation/welcome.html", context)


def study_rate(request, slug):
    study = get_object_or_404(Study, slug=slug)
    if study.mos_from_labels or not _session_rater(request, study):
        return redirect("annotation:welcome", slug=slug)
    return render(
        request,
        "annotation/rate.html",
        {
            "study": study,
            "question": QUESTION,
            "next_url": reverse("api:pair-next", kwargs={"slug": slug}),
            "vote_url": reverse("api:vote", kwargs={"slug": slug}),
            "finish_url": reverse("annotation:finish", kwargs={"slug": slug}),
        },
    )


def study_finish(request, slug):
    study = get_object_or_404(Study, slug=slug)
    rater = _session_rater(request, study)
    if rater is None:
        return redirect("annotation:welcome", slug=slug)
    progress = services.rater_progress(rater)
    return render(
        request,
        "annotation/finish.html",
        {"study": study, "rater": rater, "done": progress.rated, "valid": not rater.excluded},
    )
