"""The rater API: join, next pair, vote; every refusal clear and harmless."""

from datetime import timedelta
from itertools import combinations

import pytest
from django.utils import timezone

from annotation.models import Assignment, DistortedImage, Judgment
from tests.factories import import_folder, join, make_pipal_folder, plain_study

pytestmark = pytest.mark.django_db


def next_pair(client, slug="s1"):
    response = client.get(f"/api/studies/{slug}/pairs/next/")
    assert response.status_code == 200, response.content
    return response.json()


def vote(client, assignment, choice="left", response_ms=900, slug="s1"):
    return client.post(
        f"/api/studies/{slug}/votes/",
        {"assignment": assignment, "choice": choice, "response_ms": response_ms},
        format="json",
    )


def test_join_returns_rater_and_token(small_study, api):
    response = api.post("/api/studies/s1/raters/", {"external_id": "prolific-123"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"rater", "token", "resumed"} and len(body["token"]) > 30 and body["resumed"] is False


def test_join_refusals_name_the_problem(small_study, api):
    assert api.post("/api/studies/s1/raters/", {}, format="json").json()["error"]["fields"] == {
        "external_id": ["This field is required."]
    }
    join(api, "s1", "same")
    small_study.allow_resume = False
    small_study.save()
    duplicate = api.post("/api/studies/s1/raters/", {"external_id": "same"}, format="json")
    assert duplicate.status_code == 409 and "already taken part" in duplicate.json()["error"]["message"]
    assert api.post("/api/studies/nope/raters/", {"external_id": "x"}, format="json").status_code == 404


def test_pair_is_two_distortions_of_one_reference_without_scores(small_study, api):
    client = join(api, "s1", "r1")
    pair = next_pair(client)
    assert set(pair) == {
        "assignment",
        "protocol",
        "phase",
        "reference",
        "left",
        "right",
        "expires_at",
        "allow_tie",
        "progress",
    }
    assert pair["phase"] == "rating" and pair["progress"] == {"done": 0, "quota": 10_000}
    assert set(pair["left"]) == {"id", "url"}  # raters never see scores or names
    assignment = Assignment.objects.get(token=pair["assignment"])
    left, right = assignment.left, assignment.right
    assert left != right and left.reference_id == right.reference_id == assignment.reference_id
    # Every picture: an opaque id of its own and a keyed PNG name (not the file's hash).
    ids = {pair[part]["id"] for part in ("reference", "left", "right")}
    assert len(ids) == 3 and not ids & {str(left.pk), str(right.pk), str(assignment.reference_id)}
    assert (
        pair["left"]["url"] == "http://testserver/media/" + left.display.name and left.sha256 not in pair["left"]["url"]
    )
    image = client.get(pair["left"]["url"].removeprefix("http://testserver"))
    assert image.status_code == 200 and image["Content-Type"] == "image/png"


def test_vote_updates_elo_and_logs_everything(small_study, api):
    client = join(api, "s1", "r1")
    pair = next_pair(client)
    issued = Assignment.objects.get(token=pair["assignment"])
    response = vote(client, pair["assignment"], "right", 1234)
    assert response.status_code == 201
    body = response.json()
    assert body["progress"] == {"done": 1, "quota": 10_000} and body["feedback"] is None
    assert body["next"]["assignment"] != pair["assignment"]  # the answer carries the next trial
    judgment = Judgment.objects.get()
    assert (judgment.image_a_id, judgment.image_b_id, judgment.winner_id) == (
        issued.left_id,
        issued.right_id,
        issued.right_id,
    )
    assert (judgment.elo_a_before, judgment.elo_a_after, judgment.elo_b_after) == (1400, 1392, 1408)
    assert judgment.response_ms == 1234 and judgment.rater.external_id == "r1" and judgment.issued_at
    winner = DistortedImage.objects.get(pk=issued.right_id)
    assert (winner.elo, winner.judgment_count, winner.recent_elo, winner.mos) == (1408, 1, [1408], 1408)


def test_replayed_vote_is_refused_and_changes_nothing(small_study, api):
    client = join(api, "s1", "r1")
    pair = next_pair(client)
    assert vote(client, pair["assignment"]).status_code == 201
    snapshot = list(DistortedImage.objects.values_list("id", "elo", "judgment_count").order_by("id"))
    again = vote(client, pair["assignment"], "right")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_voted"
    assert list(DistortedImage.objects.values_list("id", "elo", "judgment_count").order_by("id")) == snapshot
    assert Judgment.objects.count() == 1


def test_unknown_foreign_and_expired_assignments(small_study, api):
    alice, bob = join(api, "s1", "alice"), join(api, "s1", "bob")
    pair = next_pair(alice)
    unknown = vote(alice, "no-such-token")
    assert unknown.status_code == 404 and unknown.json()["error"]["fields"] == {"assignment": ["unknown"]}
    foreign = vote(bob, pair["assignment"])
    assert foreign.status_code == 403 and "another rater" in foreign.json()["error"]["message"]
    Assignment.objects.filter(token=pair["assignment"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = vote(alice, pair["assignment"])
    assert expired.status_code == 410 and "expired" in expired.json()["error"]["message"]
    assert Judgment.objects.count() == 0


def test_token_of_another_study_is_refused(small_study, api, tmp_path):
    other = plain_study("s2")
    import_folder(other, make_pipal_folder(tmp_path / "other"))
    client = join(api, "s1", "r1")
    pair = next_pair(client)
    assert client.get("/api/studies/s2/pairs/next/").status_code == 403
    assert vote(client, pair["assignment"], slug="s2").status_code == 403


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"choice": "left", "response_ms": 5}, "assignment"),
        ({"assignment": "x", "response_ms": 5}, "choice"),
        ({"assignment": "x", "choice": "up", "response_ms": 5}, "choice"),
        ({"assignment": "x", "choice": "left", "response_ms": -1}, "response_ms"),
        ({"assignment": "x", "choice": "left", "response_ms": "soon"}, "response_ms"),
    ],
)
def test_malformed_votes_name_the_field(small_study, api, payload, field):
    client = join(api, "s1", "r1")
    response = client.post("/api/studies/s1/votes/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_requests_without_a_rater_token(small_study, api):
    assert api.get("/api/studies/s1/pairs/next/").status_code in (401, 403)
    assert vote(api, "x").status_code in (401, 403)
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    response = api.get("/api/studies/s1/pairs/next/")
    assert response.status_code == 401 and response.json()["error"]["message"] == "unknown rater token"


def test_rater_never_gets_the_same_pair_twice_then_204(small_study, api):
    client = join(api, "s1", "r1")
    seen = []
    while (response := client.get("/api/studies/s1/pairs/next/")).status_code == 200:
        pair = Assignment.objects.get(token=response.json()["assignment"])
        seen.append(frozenset((pair.left_id, pair.right_id)))
        assert vote(client, response.json()["assignment"]).status_code == 201
    assert response.status_code == 204
    per_reference = {}
    for image in DistortedImage.objects.all():
        per_reference.setdefault(image.reference_id, []).append(image.id)
    expected = {frozenset(p) for ids in per_reference.values() for p in combinations(ids, 2)}
    assert len(seen) == len(set(seen)) and set(seen) == expected


def test_one_trial_is_open_at_a_time(small_study, api):
    client = join(api, "s1", "r1")
    first, again = next_pair(client), next_pair(client)
    assert first["assignment"] == again["assignment"]
    assert Assignment.objects.filter(status="open").count() == 1
    assert vote(client, first["assignment"]).status_code == 201


def test_openapi_schema_documents_the_endpoints(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {
        "/api/studies/{slug}/raters/",
        "/api/studies/{slug}/pairs/next/",
        "/api/studies/{slug}/votes/",
    } <= set(paths)
    assert api.get("/api/docs/").status_code == 200


def test_the_home_page_lists_studies_to_their_owners_only(small_study, client, django_user_model, admin_client):
    anonymous = client.get("/")
    assert anonymous.status_code == 200 and b"Study one" not in anonymous.content and b"sign in" in anonymous.content
    assert b"Study one" in admin_client.get("/").content  # staff see every study
    owner = django_user_model.objects.create_user("owner", password="pw-owner-1")
    client.force_login(owner)
    assert b"Study one" not in client.get("/").content
    small_study.owners.add(owner)
    page = client.get("/").content.decode()
    assert "Study one" in page and '<td class="num">8</td>' in page


def test_openapi_schema_is_valid_and_warning_free(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = (tmp_path / "schema.yaml").read_text()
    assert "bearer" in schema and all(shape in schema for shape in ("AnyVote", "PairVote", "ScoreVote", "OrderVote"))
