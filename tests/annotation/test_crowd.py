"""A crowd study you can pay for and trust (issue 16), through the API and the pages:
completion only when finished, checks that look like any pair, no skipping by reload,
resume, POST-redirect-GET, payment reconciliation, viewing conditions, ties.
(The page itself in Chromium: tests/browser/test_browser_crowd.py.)"""

import csv
import io
import re

import pytest
from django.test import Client
from django.utils import timezone

from annotation.analysis.replay import study_recompute_mos
from annotation.models import Assignment, ControlTrial, Judgment, Rater, ViewingReport
from annotation.raters import rater_create
from annotation.rating.votes import judgment_record
from tests.factories import import_folder, join, make_pipal_folder, plain_study

pytestmark = pytest.mark.django_db

URL = re.compile(r"^http://testserver/media/studies/crowd/[0-9a-f]{32}\.png$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")
CANDIDATE_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


@pytest.fixture
def crowd(tmp_path):
    """A paid-crowd study: 6 trials a rater, a gold pair in every 3, one practice pair."""
    study = plain_study("crowd", trials_per_rater=6, training_trials=1, gold_every=3)
    import_folder(study, make_pipal_folder(tmp_path / "d", references=3, types=("01", "02", "03"), levels=(1, 2, 3)))
    return study


def web_rater(external_id="worker-1", slug="crowd") -> Client:
    client = Client()
    response = client.post(f"/study/{slug}/", {"external_id": external_id, "consent": "on"})
    assert response.status_code == 302 and response["Location"].endswith(f"/study/{slug}/rate/"), response
    return client


def next_trial(client, slug="crowd"):
    response = client.get(f"/api/studies/{slug}/pairs/next/")
    return response.json() if response.status_code == 200 else None


def vote(client, trial, choice="left", slug="crowd", **extra):
    body = {"assignment": trial["assignment"], "choice": choice, "response_ms": 900, **extra}
    return client.post(f"/api/studies/{slug}/votes/", body, content_type="application/json")


def answer(client, trial, slug="crowd"):
    """Answer a trial, passing gold and practice pairs (the test knows which side is right)."""
    control = ControlTrial.objects.filter(token=trial["assignment"]).first()
    return vote(client, trial, control.correct_side if control else "left", slug=slug)


# --- 1. completion that means completion -----------------------------------------------


def test_the_finish_page_shows_no_code_before_the_quota(crowd):
    rater = web_rater()
    page = rater.get("/study/crowd/finish/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "0 of 6" in text and 'id="completion-code"' not in text
    worker = Rater.objects.get(external_id="worker-1")
    assert worker.completion_code not in text
    for _ in range(4):  # practice + 3 rated
        trial = next_trial(rater)
        assert answer(rater, trial).status_code == 201
    page = rater.get("/study/crowd/finish/").content.decode()
    assert "3 of 6" in page and worker.completion_code not in page and "Continue rating" in page
    while (trial := next_trial(rater)) is not None:
        assert answer(rater, trial).status_code == 201
    page = rater.get("/study/crowd/finish/").content.decode()
    worker.refresh_from_db()
    assert worker.finished_at is not None
    assert re.search(rf'id="completion-code">{worker.completion_code}<', page)


def test_per_rater_codes_are_unique_and_unguessable(crowd):
    codes = {rater_create(study=crowd, external_id=f"w{i}")[0].completion_code for i in range(200)}
    assert len(codes) == 200
    assert all(re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{12}", code) for code in codes)  # 60 bits, Crockford base32


def test_a_study_code_and_a_completion_url_send_the_rater_back_to_the_platform(crowd):
    crowd.completion_code = "C1A2B3C4"
    crowd.completion_url = "https://app.prolific.com/submissions/complete?cc={code}"
    crowd.save()
    rater = web_rater()
    while (trial := next_trial(rater)) is not None:
        answer(rater, trial)
    page = rater.get("/study/crowd/finish/").content.decode()
    assert "C1A2B3C4" in page
    assert 'href="https://app.prolific.com/submissions/complete?cc=C1A2B3C4"' in page


def test_a_rater_screened_out_by_a_check_gets_the_screen_out_code_not_the_completion_code(crowd):
    crowd.completion_code = "DONE1234"
    crowd.screen_out_code = "SCREENED"
    crowd.screen_out_url = "https://app.prolific.com/submissions/complete?cc={code}"
    crowd.save()
    rater = web_rater()
    while (trial := next_trial(rater)) is not None:
        control = ControlTrial.objects.filter(token=trial["assignment"], kind="gold").first()
        if control:  # fail the gold pair on purpose
            wrong = "left" if control.correct_side == "right" else "right"
            assert vote(rater, trial, wrong).status_code == 201
        else:
            answer(rater, trial)
    page = rater.get("/study/crowd/finish/").content.decode()
    assert "DONE1234" not in page and "SCREENED" in page
    assert "https://app.prolific.com/submissions/complete?cc=SCREENED" in page


# --- 2. hidden checks ---------------------------------------------------------------------


def shape(value):
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, str):
        if URL.match(value):
            return "stimulus-url"
        if TOKEN.match(value):
            return "token"
        if CANDIDATE_ID.match(value):
            return "candidate-id"
        return "str"
    return type(value).__name__


def test_a_gold_pair_and_a_real_pair_look_alike_in_every_field(crowd, api):
    client = join(api, "crowd", "prober")
    seen = {}
    while (trial := next_trial(client)) is not None:
        control = ControlTrial.objects.filter(token=trial["assignment"]).first()
        kind = control.kind if control else "real"
        trial.pop("expires_at")  # a datetime string
        seen.setdefault(kind, trial)
        answer(client, trial | {"expires_at": ""})
    assert {"real", "gold", "training"} <= set(seen)
    assert shape(seen["gold"]) == shape(seen["real"])
    gold, real = seen["gold"], seen["real"]
    assert gold["phase"] == real["phase"] == "rating"
    assert set(shape(gold)["left"].values()) == {"candidate-id", "stimulus-url"}
    # Ids are per assignment: nothing links a candidate to an image across pairs.
    assert gold["left"]["id"] != gold["right"]["id"] and real["left"]["id"] != real["right"]["id"]


def served_pixels(client, url: str) -> bytes:
    """The RGB pixels of a stimulus as the media URL serves it."""
    from PIL import Image

    response = client.get(url.removeprefix("http://testserver"))
    return Image.open(io.BytesIO(b"".join(response.streaming_content))).convert("RGB").tobytes()


def test_no_candidate_of_a_gold_pair_is_the_reference_itself(crowd, api):
    from PIL import Image

    from annotation.models import DistortedImage

    client = join(api, "crowd", "pixel-prober")
    golds = 0
    while (trial := next_trial(client)) is not None:
        control = ControlTrial.objects.filter(token=trial["assignment"], kind="gold").first()
        if control:
            golds += 1
            reference = served_pixels(client, trial["reference"]["url"])
            left, right = (served_pixels(client, trial[side]["url"]) for side in ("left", "right"))
            assert reference not in (left, right)
            # The correct side is one of the study's own images, as in any real pair.
            correct = served_pixels(client, trial[control.correct_side]["url"])
            own = [Image.open(image.file.path).convert("RGB").tobytes() for image in DistortedImage.objects.all()]
            assert correct in own
        answer(client, trial)
    assert golds >= 1


# --- 3. no skipping by reload ---------------------------------------------------------------


def test_a_reload_or_a_second_tab_gets_the_open_pair_again(crowd, api):
    client = join(api, "crowd", "skipper")
    trial = next_trial(client)
    again = next_trial(client)
    assert again["assignment"] == trial["assignment"]
    assert again["left"] == trial["left"] and again["right"] == trial["right"]
    assert Assignment.objects.filter(status="open").count() + ControlTrial.objects.filter(status="open").count() == 1
    assert answer(client, trial).status_code == 201
    assert next_trial(client)["assignment"] != trial["assignment"]


def test_an_expired_pair_gives_way_to_a_new_one(crowd, api):
    client = join(api, "crowd", "slow")
    trial = next_trial(client)
    Assignment.objects.update(expires_at=timezone.now())
    ControlTrial.objects.update(expires_at=timezone.now())
    assert next_trial(client)["assignment"] != trial["assignment"]
    assert vote(client, trial).status_code == 410


def test_the_vote_answer_carries_the_next_pair(crowd, api):
    client = join(api, "crowd", "fast")
    trial = next_trial(client)
    body = answer(client, trial).json()
    assert body["next"]["assignment"] == next_trial(client)["assignment"]
    while body["next"] is not None:
        body = answer(client, body["next"]).json()
    assert body["progress"]["done"] == 6 and next_trial(client) is None


# --- 4. resume ---------------------------------------------------------------------------------


def test_the_same_id_in_a_new_browser_resumes_where_it_stopped(crowd):
    first = web_rater("worker-7")
    for _ in range(3):
        answer(first, next_trial(first))
    open_trial = next_trial(first)
    second = Client()  # cookies cleared, another browser
    response = second.post("/study/crowd/?rater=worker-7", {"external_id": "worker-7", "consent": "on"})
    assert response.status_code == 302 and response["Location"].endswith("/study/crowd/rate/")
    assert Rater.objects.filter(external_id="worker-7").count() == 1
    resumed = next_trial(second)
    assert resumed["assignment"] == open_trial["assignment"] and resumed["progress"]["done"] == 2


def test_the_api_join_again_resumes_with_a_new_token(crowd, api):
    client = join(api, "crowd", "api-worker")
    answer(client, next_trial(client))
    again = api.post("/api/studies/crowd/raters/", {"external_id": "api-worker"}, format="json")
    assert again.status_code == 200 and again.json()["rater"] == Rater.objects.get(external_id="api-worker").pk
    assert again.json()["resumed"] is True
    assert client.get("/api/studies/crowd/pairs/next/").status_code == 401  # the old token is replaced


def test_a_study_without_resume_refuses_a_second_join_clearly(crowd):
    crowd.allow_resume = False
    crowd.save()
    web_rater("once")
    response = Client().post("/study/crowd/", {"external_id": "once", "consent": "on"}, follow=True)
    assert "already taken part" in response.content.decode()


# --- 6. POST-redirect-GET ---------------------------------------------------------------------


def test_a_join_form_error_redirects_to_a_page_that_shows_it(crowd):
    client = Client()
    response = client.post("/study/crowd/", {"external_id": "   "})
    assert response.status_code == 303 and response["Location"].endswith("/study/crowd/")
    page = client.get("/study/crowd/").content.decode()
    assert "Please give your consent" in page or "This field is required" in page
    assert not Rater.objects.exists()


# --- payment reconciliation -----------------------------------------------------------------------


def test_owners_reconcile_payments_by_code_and_external_id(crowd, django_user_model):
    finished = web_rater("paid-1")
    while (trial := next_trial(finished)) is not None:
        answer(finished, trial)
    half = web_rater("half-2")
    answer(half, next_trial(half))
    owner = django_user_model.objects.create_user("owner", password="pw-owner-1")
    crowd.owners.add(owner)
    client = Client()
    client.force_login(owner)
    code = Rater.objects.get(external_id="paid-1").completion_code
    page = client.get("/study/crowd/raters/").content.decode()
    assert "paid-1" in page and "half-2" in page and "finished" in page and "in progress" in page
    assert "paid-1" in client.get(f"/study/crowd/raters/?q={code}").content.decode()
    assert "half-2" not in client.get(f"/study/crowd/raters/?q={code}").content.decode()
    rows = list(csv.DictReader(io.StringIO(client.get("/study/crowd/raters.csv").content.decode())))
    by_id = {row["external_id"]: row for row in rows}
    assert by_id["paid-1"]["status"] == "finished" and by_id["paid-1"]["completion_code"] == code
    assert by_id["paid-1"]["trials"] == "6" and by_id["paid-1"]["finished_at"]
    assert by_id["half-2"]["status"] == "in progress" and by_id["half-2"]["completion_code"] == ""
    # The check: a valid code, a forged one, a code of a rater who has not finished, another study's code.
    check = lambda code: client.get("/study/crowd/raters/check/", {"code": code}).json()  # noqa: E731
    assert check(code) == {
        "valid": True,
        "external_id": "paid-1",
        "status": "finished",
        "finished_at": check(code)["finished_at"],
    }
    assert check("ZZZZZZZZZZZZ")["valid"] is False and "no rater" in check("ZZZZZZZZZZZZ")["reason"]
    stale = Rater.objects.get(external_id="half-2").completion_code
    assert check(stale)["valid"] is False and "not finished" in check(stale)["reason"]
    other = plain_study("other")
    foreign, _ = rater_create(study=other, external_id="x")
    assert check(foreign.completion_code)["valid"] is False
    assert Client().get("/study/crowd/raters/").status_code == 302  # sign in first
    stranger = django_user_model.objects.create_user("stranger", password="pw-stranger-1")
    client.force_login(stranger)
    assert client.get("/study/crowd/raters.csv").status_code == 403


# --- viewing conditions -------------------------------------------------------------------------


GOOD_VIEWING = {
    "device_pixel_ratio": 1.25,
    "screen_width": 1536,
    "screen_height": 864,
    "viewport_width": 1500,
    "viewport_height": 780,
    "zoom": 1.0,
    "user_agent": "Mozilla/5.0 test",
    "native": True,
    "layout": "side_by_side",
}


def test_viewing_conditions_are_recorded_with_each_judgment(crowd, api):
    client = join(api, "crowd", "viewer")
    report = client.post("/api/studies/crowd/viewing/", GOOD_VIEWING, format="json")
    assert report.status_code == 201
    viewing = report.json()["id"]
    trial = next_trial(client)
    while ControlTrial.objects.filter(token=trial["assignment"]).exists():
        trial = answer(client, trial).json()["next"]
    assert vote(client, trial, viewing=viewing, native=True, visible_ms=850).status_code == 201
    judgment = Judgment.objects.get()
    assert judgment.viewing_id == viewing and judgment.native is True and judgment.visible_ms == 850
    assert ViewingReport.objects.get(pk=viewing).device_pixel_ratio == 1.25


@pytest.mark.parametrize(
    "field,value",
    [
        ("device_pixel_ratio", 0),
        ("device_pixel_ratio", -1),
        ("screen_width", -5),
        ("viewport_height", 10**7),
        ("user_agent", "x" * 5000),
        ("native", "yes"),
        ("zoom", 0),
        ("px_per_mm", -3),
    ],
)
def test_absurd_viewing_reports_are_refused_naming_the_field(crowd, api, field, value):
    client = join(api, "crowd", "liar")
    response = client.post("/api/studies/crowd/viewing/", {**GOOD_VIEWING, field: value}, format="json")
    assert response.status_code == 400 and field in response.json()["error"]["fields"]
    assert not ViewingReport.objects.exists()
    trial = next_trial(client)  # voting still works
    assert answer(client, trial).status_code == 201


def test_a_viewing_report_of_another_rater_cannot_be_attached_to_a_vote(crowd, api):
    other = join(api, "crowd", "other")
    foreign = other.post("/api/studies/crowd/viewing/", GOOD_VIEWING, format="json").json()["id"]
    client = join(api, "crowd", "me")
    trial = next_trial(client)
    response = vote(client, trial, viewing=foreign)
    assert response.status_code == 404 and "viewing" in response.json()["error"]["fields"]


# --- ties ------------------------------------------------------------------------------------------


def test_a_tie_is_refused_unless_the_study_allows_it(crowd, api):
    client = join(api, "crowd", "tie")
    trial = next_trial(client)
    refused = vote(client, trial, "tie")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ties_not_allowed"
    crowd.allow_ties = True
    crowd.save()
    while ControlTrial.objects.filter(token=trial["assignment"]).exists():
        trial = answer(client, trial).json()["next"]
    assert vote(client, trial, "tie").status_code == 201
    judgment = Judgment.objects.get()
    assert judgment.tie and judgment.winner_id is None
    # Eq. 2 with S = 0.5: equal ratings stay equal.
    assert judgment.elo_a_after == judgment.elo_a_before == 1400 and judgment.elo_b_after == 1400
    assert study_recompute_mos(study=crowd, write=False).differences == []


def test_ties_count_half_a_win_in_bradley_terry():
    import numpy as np

    from annotation.analysis import bradley_terry

    # Two images, ten ties: equal scores; ten ties plus one win each way: still equal.
    table = bradley_terry.PairTable.from_judgments(np.zeros(10, int), np.ones(10, int), 2, np.ones(10, bool))
    first, second = table.wins()
    assert first.tolist() == [5.0] and second.tolist() == [5.0]
    scores = bradley_terry.fit(table)
    assert scores[0] == pytest.approx(scores[1])
    # Wins for image 0 and ties: 0 ahead, less than with wins only.
    wins_only = bradley_terry.fit(bradley_terry.PairTable.from_judgments(np.zeros(6, int), np.ones(6, int), 2))
    with_ties = bradley_terry.fit(
        bradley_terry.PairTable.from_judgments(np.zeros(12, int), np.ones(12, int), 2, np.arange(12) >= 6)
    )
    assert wins_only[0] - wins_only[1] > with_ties[0] - with_ties[1] > 0


def test_the_judgment_export_replays_into_a_fresh_study_ties_included(crowd, tmp_path):
    from django.core.management import call_command

    crowd.allow_ties = True
    crowd.save()
    images = list(crowd.images.order_by("id"))
    same = [image for image in images if image.reference_id == images[0].reference_id]
    rater, _ = rater_create(study=crowd, external_id="exported")
    judgment_record(study=crowd, image_a_id=same[0].id, image_b_id=same[1].id, a_wins=True, rater=rater)
    judgment_record(study=crowd, image_a_id=same[1].id, image_b_id=same[2].id, a_wins=False, tie=True)
    judgment_record(study=crowd, image_a_id=same[2].id, image_b_id=same[0].id, a_wins=False)
    out = tmp_path / "log.csv"
    call_command("export_judgments", "crowd", "--out", str(out), stderr=io.StringIO())
    rows = list(csv.DictReader(out.open()))
    assert [row["winner"] for row in rows] == ["a", "tie", "b"] and rows[0]["rater"] == "exported"
    copy = plain_study("copy")
    import_folder(copy, make_pipal_folder(tmp_path / "d2", references=3, types=("01", "02", "03"), levels=(1, 2, 3)))
    call_command("replay_judgments", "copy", str(out), stdout=io.StringIO())
    replayed = {image.name: image.elo for image in copy.images.all()}
    assert replayed == {image.name: image.elo for image in crowd.images.all()}
    assert Judgment.objects.filter(study=copy, tie=True).count() == 1


def test_votes_not_shown_at_native_size_flag_the_rater(crowd, api):
    from annotation import selectors

    crowd.gold_every = 0
    crowd.training_trials = 0
    crowd.save()
    careful, careless = join(api, "crowd", "careful"), join(api, "crowd", "careless")
    for client, native in ((careful, True), (careless, False)):
        trial = next_trial(client)
        for _ in range(3):
            trial = vote(client, trial, native=native, visible_ms=900).json()["next"]
    qualities = selectors.rater_qualities(crowd)
    by_id = {rater.external_id: qualities[rater.id] for rater in crowd.raters.all()}
    assert by_id["careful"].flags == [] and by_id["careful"].non_native_share == 0
    assert by_id["careless"].flags == ["100% of votes on images not shown at native size"]


def test_a_calibrated_screen_below_the_studys_pixels_per_degree_is_flagged(crowd, api):
    from annotation import selectors

    crowd.min_px_per_degree = 30
    crowd.save()
    near, far = join(api, "crowd", "near"), join(api, "crowd", "far")
    near.post("/api/studies/crowd/viewing/", {**GOOD_VIEWING, "px_per_degree": 45.0}, format="json")
    far.post("/api/studies/crowd/viewing/", {**GOOD_VIEWING, "px_per_degree": 22.5}, format="json")
    qualities = selectors.rater_qualities(crowd)
    by_id = {rater.external_id: qualities[rater.id] for rater in crowd.raters.all()}
    assert by_id["near"].flags == []
    assert by_id["far"].flags == ["22 pixels per degree, under 30"]


def test_the_admin_rater_list_reconciles_payments(crowd, admin_client):
    paid = web_rater("admin-paid")
    while (trial := next_trial(paid)) is not None:
        answer(paid, trial)
    web_rater("admin-half")
    code = Rater.objects.get(external_id="admin-paid").completion_code
    page = admin_client.get("/admin/annotation/rater/", {"q": code.lower()}).content.decode()
    assert "admin-paid" in page and "admin-half" not in page and code in page and "finished" in page
    page = admin_client.get("/admin/annotation/rater/").content.decode()
    assert "in progress" in page
    ids = list(Rater.objects.values_list("pk", flat=True))
    response = admin_client.post(
        "/admin/annotation/rater/", {"action": "download_reconciliation", "_selected_action": ids}
    )
    rows = {row["external_id"]: row for row in csv.DictReader(io.StringIO(response.content.decode()))}
    assert rows["admin-paid"]["completion_code"] == code and rows["admin-half"]["status"] == "in progress"
    detail = admin_client.get(f"/admin/annotation/rater/{Rater.objects.get(external_id='admin-paid').pk}/change/")
    assert detail.status_code == 200
