"""Rater pages (welcome and consent, rating, finish) and the landing page.

The rating page is static HTML plus rate.js, which talks to the same rater API
as any client, authenticated by the session the join form opens. Forms follow
POST-redirect-GET, so going back never resubmits one.
"""

from urllib.parse import urlencode

from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from annotation.models import Rater, Study
from annotation.raters import rater_join
from annotation.rating import completion
from annotation.rating.authentication import session_key
from annotation.rating.forms import JoinForm
from core.errors import ApplicationError

# PIPAL §4.1: raters judged perceptual similarity to the ground truth, not
# "quality" (which invites picking the sharper GAN output). SPEC §6.
QUESTION = "Which of the two images is more similar to the reference?"
# RankSRGAN §5.5, first session: "pick the image that is more visually pleasant (more natural and realistic)".
QUESTION_NO_REFERENCE = "Which image is more natural and realistic?"
# RankSRGAN §5.5, second session: rank the versions of an image "according to their visual qualities".
QUESTION_RANKING = "Rank these images from best to worst visual quality"


def protocol_question(study: Study) -> str:
    """What the rater is asked: acr and dcr ask their scale's question."""
    scale = study.rating_scale
    if scale is not None:
        return scale.question
    if study.protocol == Study.Protocol.PAIRWISE_NR:
        return QUESTION_NO_REFERENCE
    if study.protocol == Study.Protocol.RANK_K:
        return QUESTION_RANKING
    return QUESTION


def _protocol_context(study: Study) -> dict:
    """What the welcome and rating pages show for the study's protocol."""
    pairwise = study.is_pairwise
    scale = study.rating_scale
    slider = {}
    if scale is not None and scale.continuous:
        # A slider starts halfway and moves in hundredths of its range: the resolution at which ITU-R BT.500-13
        # reads its continuous quality scale (scores 0-100).
        slider = {"scale_middle": (scale.low + scale.high) / 2, "scale_step": (scale.high - scale.low) / 100}
    return {
        "protocol": study.protocol,
        "pairwise": pairwise,
        "question": protocol_question(study),
        "scale": scale,
        **slider,
        # rank-k: one button per version, numbered from 1 as the keys that pick them.
        "rank_numbers": range(1, study.rank_k + 1) if study.protocol == Study.Protocol.RANK_K else (),
        "trial_noun": "pair" if pairwise else "trial",
        "pictures_phrase": {
            Study.Protocol.PAIRWISE_FR: "three images",
            Study.Protocol.PAIRWISE_NR: "two images",
            Study.Protocol.ACR: "image",
            Study.Protocol.DCR: "two images",
            Study.Protocol.RANK_K: "images",
        }[study.protocol],
    }


def _session_rater(request, study: Study) -> Rater | None:
    rater_id = request.session.get(session_key(study.slug))
    return Rater.objects.filter(pk=rater_id, study=study).first() if rater_id else None


def _join_errors_key(slug: str) -> str:
    return f"pipal-join-form:{slug}"


def _welcome_url(slug: str, external_id: str = "") -> str:
    url = reverse("annotation:welcome", kwargs={"slug": slug})
    return f"{url}?{urlencode({'rater': external_id})}" if external_id else url


@never_cache
@require_http_methods(["GET", "POST"])
def study_welcome(request, slug):
    study = get_object_or_404(Study, slug=slug)
    if study.mos_from_labels:
        # Imported labels are the MOS: no one can join or vote (services refuse it too).
        return render(request, "annotation/welcome.html", {"study": study, "closed": True}, status=409)
    if _session_rater(request, study):
        return redirect("annotation:rate", slug=slug)
    link_id = request.GET.get("rater", "")
    if request.method == "POST":
        return _join(request, study, link_id)
    # A refused form comes back through the session (POST-redirect-GET), with its errors.
    stored = request.session.pop(_join_errors_key(slug), None)
    form = JoinForm(initial={"external_id": link_id})
    if stored:
        form = JoinForm(stored["data"])
        form.is_valid()
        for field, messages in stored["errors"].items():
            for message in messages:
                if message not in form.errors.get(field, []):
                    form.add_error(field if field != "__all__" else None, message)
    context = {"study": study, "form": form, "from_link": bool(link_id), **_protocol_context(study)}
    return render(request, "annotation/welcome.html", context)


def _join(request, study: Study, link_id: str):
    form = JoinForm(request.POST)
    if form.is_valid():
        try:
            joined = rater_join(study=study, external_id=form.cleaned_data["external_id"], consented=True)
        except ApplicationError as error:
            form.add_error("external_id", error.message)
        else:
            request.session.cycle_key()
            request.session[session_key(study.slug)] = joined.rater.id
            return redirect("annotation:rate", slug=study.slug)
    request.session[_join_errors_key(study.slug)] = {
        "data": {key: request.POST.get(key, "") for key in ("external_id", "consent")},
        "errors": {field: list(messages) for field, messages in form.errors.items()},
    }
    response = redirect(_welcome_url(study.slug, link_id))
    response.status_code = 303  # See Other: the browser fetches the page with GET
    return response


@never_cache
def study_rate(request, slug):
    study = get_object_or_404(Study, slug=slug)
    rater = None if study.mos_from_labels else _session_rater(request, study)
    if rater is None:
        return redirect("annotation:welcome", slug=slug)
    if rater.excluded or rater.finished_at:
        return redirect("annotation:finish", slug=slug)
    return render(
        request,
        "annotation/rate.html",
        {
            "study": study,
            **_protocol_context(study),
            "next_url": reverse("api:pair-next", kwargs={"slug": slug}),
            "vote_url": reverse("api:vote", kwargs={"slug": slug}),
            "viewing_url": reverse("api:viewing", kwargs={"slug": slug}),
            "finish_url": reverse("annotation:finish", kwargs={"slug": slug}),
        },
    )


@never_cache
def study_finish(request, slug):
    study = get_object_or_404(Study, slug=slug)
    rater = _session_rater(request, study)
    if rater is None:
        return redirect("annotation:welcome", slug=slug)
    state = completion.rater_completion(study=study, rater=rater)
    return render(request, "annotation/finish.html", {"study": study, "completion": state})
