"""Rater pages with Django's test client: join, consent, session API, finish."""

import pytest
from django.test import Client

from annotation.analysis.replay import study_recompute_mos
from annotation.models import ControlTrial, Judgment, Rater
from annotation.raters import rater_create
from annotation.rating.trials import pair_next
from annotation.rating.votes import TooFast, vote_submit
from annotation.studies import study_create
from tests.factories import import_folder, make_pipal_folder

pytestmark = pytest.mark.django_db


@pytest.fixture
def web_study(tmp_path):
    study = study_create(slug="web", trials_per_rater=4, training_trials=1, gold_every=0, completion_code="")
    import_folder(study, make_pipal_folder(tmp_path / "d"))
    return study


def join_page(client, external_id="w1", consent=True, slug="web"):
    data = {"external_id": external_id, **({"consent": "on"} if consent else {})}
    return client.post(f"/study/{slug}/", data)


def test_welcome_explains_the_task_and_prefills_the_link_id(web_study, client):
    page = client.get("/study/web/?rater=prolific-77").content.decode()
    assert "Which of the two images is more similar to the reference?" in page
    assert 'value="prolific-77"' in page and "readonly" in page and "csrfmiddlewaretoken" in page


def test_joining_needs_consent_and_the_same_id_resumes(web_study, client):
    response = join_page(client, consent=False)
    assert response.status_code == 303  # POST-redirect-GET: the page shows the error
    assert "Please give your consent" in client.get(response.url).content.decode()
    assert Rater.objects.count() == 0
    assert join_page(client).url == "/study/web/rate/"
    rater = Rater.objects.get()
    assert rater.consented_at is not None and rater.completion_code
    other = Client()
    assert join_page(other).url == "/study/web/rate/"  # the same id in another browser continues
    assert Rater.objects.count() == 1


def test_rating_page_needs_a_session(web_study, client):
    assert client.get("/study/web/rate/").url == "/study/web/"
    assert client.get("/study/web/finish/").url == "/study/web/"
    join_page(client)
    assert client.get("/study/web/").url == "/study/web/rate/"
    page = client.get("/study/web/rate/").content.decode()
    assert 'aria-label="Choose the left image"' in page and "rate.js" in page


def test_session_flow_training_then_pairs_then_finish(web_study, client):
    join_page(client)
    training = client.get("/api/studies/web/pairs/next/").json()
    assert training["phase"] == "training" and len(training["left"]["id"]) == 22
    correct = ControlTrial.objects.get(token=training["assignment"]).correct_side
    wrong = "right" if correct == "left" else "left"
    voted = client.post(
        "/api/studies/web/votes/",
        {"assignment": training["assignment"], "choice": wrong, "response_ms": 900},
        content_type="application/json",
    ).json()
    assert voted["feedback"]["correct"] is False and correct in voted["feedback"]["message"]
    assert voted["feedback"]["correct_side"] == correct
    for _ in range(4):
        trial = client.get("/api/studies/web/pairs/next/").json()
        assert trial["phase"] == "rating"
        Rater.objects.update(last_vote_at=None)  # the rate limit is tested elsewhere
        client.post(
            "/api/studies/web/votes/",
            {"assignment": trial["assignment"], "choice": "left", "response_ms": 900},
            content_type="application/json",
        )
    assert client.get("/api/studies/web/pairs/next/").status_code == 204
    assert Judgment.objects.count() == 4
    finish = client.get("/study/web/finish/").content.decode()
    assert Rater.objects.get().completion_code in finish and "4 comparisons" in finish


def test_session_votes_need_the_csrf_token(web_study):
    client = Client(enforce_csrf_checks=True)
    client.get("/study/web/")
    token = client.cookies["csrftoken"].value
    client.post("/study/web/", {"external_id": "w1", "consent": "on", "csrfmiddlewaretoken": token})
    trial = client.get("/api/studies/web/pairs/next/").json()
    payload = {"assignment": trial["assignment"], "choice": "left", "response_ms": 900}
    refused = client.post("/api/studies/web/votes/", payload, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    accepted = client.post(
        "/api/studies/web/votes/", payload, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert accepted.status_code == 201


def test_a_failed_gold_pair_ends_the_session_without_a_code(tmp_path, client, django_capture_on_commit_callbacks):
    study = study_create(slug="gold", training_trials=0, gold_every=2, min_vote_interval_ms=0)
    import_folder(study, make_pipal_folder(tmp_path / "d"))
    join_page(client, slug="gold")
    seen_gold = False
    with django_capture_on_commit_callbacks(execute=True):
        while (response := client.get("/api/studies/gold/pairs/next/")).status_code == 200:
            trial = response.json()
            control = ControlTrial.objects.filter(token=trial["assignment"]).first()
            choice = "left"
            if control:
                seen_gold = True
                choice = "right" if control.correct_side == "left" else "left"
            client.post(
                "/api/studies/gold/votes/",
                {"assignment": trial["assignment"], "choice": choice, "response_ms": 900},
                content_type="application/json",
            )
    rater = Rater.objects.get(study=study)
    assert seen_gold and rater.excluded and rater.exclusion_reason == "failed a gold pair"
    assert Judgment.objects.filter(rater=rater).count() <= 2
    page = client.get("/study/gold/finish/").content.decode()
    assert "session has ended" in page and rater.completion_code not in page
    assert study_recompute_mos(study=study, write=False).differences == []


def test_votes_faster_than_the_study_allows_are_refused(tmp_path):
    study = study_create(slug="fast", training_trials=0, gold_every=0, min_vote_interval_ms=60_000)
    import_folder(study, make_pipal_folder(tmp_path / "d"))
    rater, _ = rater_create(study=study, external_id="speedy")
    first = pair_next(study=study, rater=rater)
    outcome = vote_submit(
        study=study, rater=rater, assignment_token=first.token, choice="left", response_ms=600
    )
    with pytest.raises(TooFast, match="one per 60000 ms"):
        vote_submit(
            study=study, rater=rater, assignment_token=outcome.next.token, choice="left", response_ms=600
        )
    assert Judgment.objects.count() == 1


def test_the_quota_caps_trials(tmp_path):
    study = study_create(slug="cap", trials_per_rater=3, training_trials=0, gold_every=0)
    import_folder(study, make_pipal_folder(tmp_path / "d"))
    rater, _ = rater_create(study=study, external_id="r")
    for _ in range(3):
        trial = pair_next(study=study, rater=rater)
        Rater.objects.update(last_vote_at=None)
        vote_submit(study=study, rater=rater, assignment_token=trial.token, choice="left", response_ms=700)
    assert pair_next(study=study, rater=rater) is None  # 3 rated = the quota
    rater.refresh_from_db()
    assert rater.finished_at is not None
