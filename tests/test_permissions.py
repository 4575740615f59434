"""Every route x {anonymous, rater A, rater B, staff}: no unexpected 2xx.

Admin and exports need staff, the dashboard staff (or an owner), raters reach
only their own pairs, and each rater page needs that rater's session.
"""

import pytest
from django.test import Client

from annotation.models import DistortedImage, Study

from .conftest import import_folder, make_pipal_folder, plain_study

pytestmark = pytest.mark.django_db
ROLES = ("anonymous", "rater_a", "rater_b", "staff")


@pytest.fixture
def clients(tmp_path, admin_client):
    study = plain_study("s1", "Study one")
    import_folder(study, make_pipal_folder(tmp_path / "d"))
    raters = {}
    for role in ("rater_a", "rater_b"):
        client = Client()
        assert client.post("/study/s1/", {"external_id": role, "consent": "on"}).status_code == 302
        raters[role] = client
    return {"anonymous": Client(), **raters, "staff": admin_client}


def routes(study: Study, assignment: str, image_url: str):
    """(method, path, body, roles allowed a 2xx)."""
    everyone, raters, staff = set(ROLES), {"rater_a", "rater_b"}, {"staff"}
    admin = "/admin/annotation"
    return [
        ("get", "/", None, everyone),
        ("get", "/study/s1/", None, {"anonymous", "staff"}),  # a rater is sent on to the rating page
        ("get", "/study/s1/rate/", None, raters),
        ("get", "/study/s1/finish/", None, raters),
        ("get", "/study/s1/dashboard/", None, staff),
        ("get", "/accounts/login/", None, everyone),
        ("get", "/admin/", None, staff),
        ("get", f"{admin}/study/", None, staff),
        ("get", f"{admin}/study/{study.pk}/change/", None, staff),
        ("get", f"{admin}/study/{study.pk}/progress/", None, staff),
        ("get", f"{admin}/study/{study.pk}/mos.csv", None, staff),
        ("get", f"{admin}/referenceimage/", None, staff),
        ("get", f"{admin}/referenceimage/add/", None, staff),
        ("get", f"{admin}/distortedimage/", None, staff),
        ("get", f"{admin}/distortiontype/", None, staff),
        ("get", f"{admin}/rater/", None, staff),
        ("get", f"{admin}/judgment/", None, staff),
        ("get", f"{admin}/assignment/", None, staff),
        ("get", f"{admin}/controltrial/", None, staff),
        ("get", "/api/schema/", None, everyone),
        ("get", "/api/docs/", None, everyone),
        ("get", "/api/studies/s1/pairs/next/", None, raters),
        ("get", image_url, None, everyone),  # media: public, at unguessable content-hash names
        # Rater A's pair: nobody else can vote on it (A votes last).
        (
            "post",
            "/api/studies/s1/votes/",
            {"assignment": assignment, "choice": "left", "response_ms": 900},
            {"rater_a"},
        ),
    ]


def test_no_route_gives_an_unexpected_2xx(clients):
    study = Study.objects.get(slug="s1")
    pair = clients["rater_a"].get("/api/studies/s1/pairs/next/").json()
    image_url = "/media/" + DistortedImage.objects.first().file.name
    unexpected, refused = [], []
    for method, path, body, allowed in routes(study, pair["assignment"], image_url):
        for role in sorted(ROLES, key=lambda r: r == "rater_a"):  # rater A last: its vote succeeds once
            send = getattr(clients[role], method)
            response = send(path, body, content_type="application/json") if body else send(path)
            ok = 200 <= response.status_code < 300
            if ok and role not in allowed:
                unexpected.append(f"{role} {method.upper()} {path} -> {response.status_code}")
            if not ok and role in allowed:
                refused.append(f"{role} {method.upper()} {path} -> {response.status_code}")
    assert unexpected == []
    assert refused == []


def test_joining_is_public_but_one_id_joins_once(clients):
    for role in ROLES:
        response = clients[role].post(
            "/api/studies/s1/raters/", {"external_id": f"api-{role}"}, content_type="application/json"
        )
        assert response.status_code == 201
    again = clients["anonymous"].post(
        "/api/studies/s1/raters/", {"external_id": "api-staff"}, content_type="application/json"
    )
    assert again.status_code == 409


def test_a_rater_session_does_not_open_another_study(clients, tmp_path):
    other = plain_study("s2")
    import_folder(other, make_pipal_folder(tmp_path / "other"))
    assert clients["rater_a"].get("/study/s2/rate/").status_code == 302
    assert clients["rater_a"].get("/api/studies/s2/pairs/next/").status_code in (401, 403)
