"""The permission matrix: every URL route x seven identities x the methods it answers.

The identities: anonymous, rater A and rater B (each with their rating session),
a plain signed-in user, the owner of this study, the owner of another study,
and staff. The expected status of every cell is written down once, in ROUTES;
a route the resolver knows but ROUTES does not fails the test, so a new route
cannot arrive without its rule. The written rules:

* admin (every page and action): staff only; anyone else is sent to sign in;
* the owner dashboard, its chart downloads and benchmark reports: the study's owners and staff
  (anyone signed in but not an owner: 403; not signed in: sent to sign in);
* the rater pages: that study's rater session; the rater API: that rater's
  credentials, and a pair only its own rater can vote on;
* public: the home page, the welcome page, sign-in and password-reset pages,
  the API schema and docs, joining a study, and the stimuli under /media/
  (unguessable names); private files are under no public URL at all;
* the owner API (/api/owner/): an owner token only, so every identity here (sessions, no token) is 401.
"""

import io
from importlib import import_module

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotation.models import Assignment, DistortedImage, Judgment, Study
from annotation.rating.authentication import session_key
from annotation.rating.votes import judgment_record
from dashboard.models import OwnerJob
from dashboard.owner_api.tokens import token_create
from iqa.models import BenchmarkRun
from tests.factories import import_folder, make_pipal_folder, plain_study

pytestmark = pytest.mark.django_db
ROLES = ("anonymous", "rater_a", "rater_b", "plain", "owner", "other_owner", "staff")
SIGNED_IN = ("plain", "owner", "other_owner", "staff")


def each(status: int) -> dict:
    return dict.fromkeys(ROLES, status)


def staff_only(ok: int = 200) -> dict:
    """Admin: staff get ``ok``; everyone else is redirected to the admin's sign-in page."""
    return {**each(302), "staff": ok}


def owners(ok: int = 200) -> dict:
    """Owner pages: the study's owners and staff; other signed-in users 403; the rest sign in first."""
    return {**each(302), "plain": 403, "other_owner": 403, "owner": ok, "staff": ok}


def raters(ok: int = 200, others: int = 302) -> dict:
    return {**each(others), "rater_a": ok, "rater_b": ok}


def signed_in(ok: int = 200) -> dict:
    return {**each(302), **dict.fromkeys(SIGNED_IN, ok)}


def with_(base: dict, **changes) -> dict:
    return {**base, **changes}


ADMIN_MODELS = (
    "auth/group",
    "auth/user",
    "annotation/study",
    "annotation/referenceimage",
    "annotation/distortedimage",
    "annotation/distortiontype",
    "annotation/rater",
    "annotation/judgment",
    "annotation/assignment",
    "annotation/controltrial",
    "dashboard/ownertoken",
    "dashboard/ownerjob",
)
# The judgment log, issued pairs and control trials are read-only records: no add, change or
# delete even for staff (403). Raters are made by joining, not in the admin.
# The owner API's tokens and jobs too: tokens are made by owner_token create and revoked, never edited.
LOG_MODELS = {
    "annotation/judgment",
    "annotation/assignment",
    "annotation/controltrial",
    "dashboard/ownertoken",
    "dashboard/ownerjob",
}
NO_ADD = LOG_MODELS | {"annotation/rater"}
# Change forms whose fields are all read-only or optional: an empty POST saves nothing new and redirects.
EMPTY_POST_SAVES = {"annotation/referenceimage", "annotation/distortedimage", "annotation/rater"}


def admin_rows(objects: dict) -> list:
    """(route pattern, path, {method: expected per role}) for the admin's model pages."""
    rows = []
    for model in ADMIN_MODELS:
        pk = objects[model]
        add = staff_only(403 if model in NO_ADD else 200)
        delete = staff_only(403 if model in LOG_MODELS else 200)
        change_post = staff_only(403 if model in LOG_MODELS else 302 if model in EMPTY_POST_SAVES else 200)
        rows += [
            (f"admin/{model}/", f"/admin/{model}/", {"get": staff_only(), "post": staff_only()}),
            (f"admin/{model}/add/", f"/admin/{model}/add/", {"get": add, "post": add}),
            (f"admin/{model}/<path:object_id>/history/", f"/admin/{model}/{pk}/history/", {"get": staff_only()}),
            (
                f"admin/{model}/<path:object_id>/delete/",
                f"/admin/{model}/{pk}/delete/",
                {"get": delete, "post": delete},
            ),
            (
                f"admin/{model}/<path:object_id>/change/",
                f"/admin/{model}/{pk}/change/",
                {"get": staff_only(), "post": change_post},
            ),
            (f"admin/{model}/<path:object_id>/", f"/admin/{model}/{pk}/", {"get": staff_only(302)}),
        ]
    return rows


def routes(world: dict) -> list:
    """Every route: (pattern as the resolver prints it, a concrete path, {method: expected per role})."""
    study, other, run = world["study"], world["other"], world["run"]
    user, study_ct = world["user_pk"], world["study_ct"]
    stimulus, report = world["stimulus"], f"/media/{run.folder}/benchmark.csv"
    return [
        *admin_rows(world["admin_objects"]),
        ("admin/", "/admin/", {"get": staff_only()}),
        ("admin/login/", "/admin/login/", {"get": with_(each(200), staff=302), "post": each(200)}),
        ("admin/logout/", "/admin/logout/", {"get": staff_only(405), "post": staff_only(200)}),
        ("admin/password_change/", "/admin/password_change/", {"get": staff_only(), "post": staff_only()}),
        ("admin/password_change/done/", "/admin/password_change/done/", {"get": staff_only()}),
        ("admin/autocomplete/", "/admin/autocomplete/", {"get": staff_only(403)}),
        ("admin/jsi18n/", "/admin/jsi18n/", {"get": staff_only()}),
        (
            "admin/r/<path:content_type_id>/<path:object_id>/",
            f"/admin/r/{study_ct}/{study.pk}/",
            {"get": staff_only(404)},
        ),
        (
            "admin/auth/user/<id>/password/",
            f"/admin/auth/user/{user}/password/",
            {"get": staff_only(), "post": staff_only()},
        ),
        (
            "admin/annotation/study/<path:object_id>/progress/",
            f"/admin/annotation/study/{study.pk}/progress/",
            {"get": staff_only()},
        ),
        (
            "admin/annotation/study/<path:object_id>/mos.csv",
            f"/admin/annotation/study/{study.pk}/mos.csv",
            {"get": staff_only()},
        ),
        # The catalogue picker: staff see it; a POST ticking nothing says so and comes back.
        (
            "admin/annotation/study/<path:object_id>/catalogue/",
            f"/admin/annotation/study/{study.pk}/catalogue/",
            {"get": staff_only(), "post": staff_only(302)},
        ),
        (
            "admin/annotation/study/<path:object_id>/catalogue/<str:type_id>-<int:level>.png",
            f"/admin/annotation/study/{study.pk}/catalogue/01-1.png",
            {"get": staff_only()},
        ),
        ("admin/^(?P<app_label>auth|annotation|dashboard)/$", "/admin/annotation/", {"get": staff_only()}),
        ("admin/(?P<url>.*)$", "/admin/nowhere/", {"get": staff_only(404)}),
        ("api/schema/", "/api/schema/", {"get": each(200), "post": each(405)}),
        ("api/docs/", "/api/docs/", {"get": each(200)}),
        ("api/studies/<slug:slug>/raters/", "/api/studies/s1/raters/", {"get": each(405), "post": each(201)}),
        (
            "api/studies/<slug:slug>/pairs/next/",
            "/api/studies/s1/pairs/next/",
            {"get": raters(200, 401), "post": raters(405, 401)},
        ),
        # Rater A's pair: nobody else can vote on it (rater A goes last and votes once).
        (
            "api/studies/<slug:slug>/votes/",
            "/api/studies/s1/votes/",
            {"get": raters(405, 401), "post": with_(raters(403, 401), rater_a=201)},
        ),
        (
            "api/studies/<slug:slug>/viewing/",
            "/api/studies/s1/viewing/",
            {"get": raters(405, 401), "post": raters(201, 401)},
        ),
        ("api/studies/<slug:slug>/status/", "/api/studies/s1/status/", {"get": raters(200, 401)}),
        (r"^api(?:/(?P<rest>[\s\S]*))?$", "/api/studies/s1/nothing/", {"get": each(404), "post": each(404)}),
        *owner_api_rows(run),
        ("accounts/login/", "/accounts/login/", {"get": each(200), "post": each(200)}),
        ("accounts/logout/", "/accounts/logout/", {"get": each(405), "post": each(200)}),
        ("accounts/password_change/", "/accounts/password_change/", {"get": signed_in(), "post": signed_in()}),
        ("accounts/password_change/done/", "/accounts/password_change/done/", {"get": signed_in()}),
        ("accounts/password_reset/", "/accounts/password_reset/", {"get": each(200), "post": each(200)}),
        ("accounts/password_reset/done/", "/accounts/password_reset/done/", {"get": each(200)}),
        ("accounts/reset/<uidb64>/<token>/", "/accounts/reset/MQ/bad-token/", {"get": each(200)}),
        ("accounts/reset/done/", "/accounts/reset/done/", {"get": each(200)}),
        ("", "/", {"get": each(200)}),
        ("study/<slug:slug>/", "/study/s1/", {"get": raters(302, 200), "post": raters(302, 303)}),  # PRG
        ("study/<slug:slug>/rate/", "/study/s1/rate/", {"get": raters()}),
        ("study/<slug:slug>/finish/", "/study/s1/finish/", {"get": raters()}),
        ("study/<slug:slug>/dashboard/", "/study/s1/dashboard/", {"get": owners()}),
        (
            "study/<slug:slug>/dashboard/charts/<slug:chart>",
            "/study/s1/dashboard/charts/mos_by_subtype?format=svg",
            {"get": owners()},
        ),
        ("study/<slug:slug>/raters/", "/study/s1/raters/", {"get": owners()}),
        ("study/<slug:slug>/raters.csv", "/study/s1/raters.csv", {"get": owners()}),
        ("study/<slug:slug>/raters/check/", "/study/s1/raters/check/?code=X", {"get": owners()}),
        ("study/<slug:slug>/benchmark/", "/study/s1/benchmark/", {"get": owners()}),
        ("study/<slug:slug>/benchmark/<str:name>", "/study/s1/benchmark/benchmark.csv", {"get": owners()}),
        ("study/<slug:slug>/benchmark/<int:run_id>/", f"/study/s1/benchmark/{run.pk}/", {"get": owners()}),
        (
            "study/<slug:slug>/benchmark/<int:run_id>/<str:name>",
            f"/study/s1/benchmark/{run.pk}/sr_methods.csv",
            {"get": owners()},
        ),
        # The other study's report: its owner and staff only.
        (
            "study/<slug:slug>/benchmark/<str:name>",
            f"/study/{other.slug}/benchmark/benchmark.csv",
            {"get": with_(owners(), owner=403, other_owner=404, staff=404)},
        ),
        ("^media/(?P<path>.*)$", stimulus, {"get": each(200)}),
        ("^media/(?P<path>.*)$", report, {"get": each(404)}),  # private files have no public URL
    ]


def owner_api_rows(run) -> list:
    """The owner API takes an owner token only: every identity of this matrix answers 401."""
    reads = {"get": each(401)}
    writes = {"get": each(401), "post": each(401)}
    return [
        (f"api/owner/{pattern}", f"/api/owner/{path}", methods)
        for pattern, path, methods in (
            ("studies/", "studies/", writes),
            ("studies/<slug:slug>/", "studies/s1/", reads),
            ("studies/<slug:slug>/references/", "studies/s1/references/", writes),
            ("studies/<slug:slug>/distortion-types/", "studies/s1/distortion-types/", writes),
            ("studies/<slug:slug>/images/", "studies/s1/images/", reads),
            ("studies/<slug:slug>/judgments/", "studies/s1/judgments/", reads),
            ("studies/<slug:slug>/mos/", "studies/s1/mos/", reads),
            ("studies/<slug:slug>/scores/", "studies/s1/scores/", reads),
            ("studies/<slug:slug>/benchmarks/", "studies/s1/benchmarks/", reads),
            ("studies/<slug:slug>/benchmarks/<int:run_id>/", f"studies/s1/benchmarks/{run.pk}/", reads),
            (
                "studies/<slug:slug>/benchmarks/<int:run_id>/tables/<slug:name>/",
                f"studies/s1/benchmarks/{run.pk}/tables/benchmark/",
                reads,
            ),
            ("studies/<slug:slug>/jobs/generate/", "studies/s1/jobs/generate/", {"post": each(401)}),
            ("studies/<slug:slug>/jobs/score/", "studies/s1/jobs/score/", {"post": each(401)}),
            ("studies/<slug:slug>/jobs/benchmark/", "studies/s1/jobs/benchmark/", {"post": each(401)}),
            ("jobs/<int:job_id>/", "jobs/1/", reads),
        )
    ]


def resolver_patterns() -> set[str]:
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    return set(walk(get_resolver().url_patterns))


@pytest.fixture
def world(tmp_path, django_user_model):
    study = plain_study("s1", "Study one")
    import_folder(study, make_pipal_folder(tmp_path / "d"))
    other = plain_study("s2", "Study two")
    import_folder(other, make_pipal_folder(tmp_path / "e"))
    images = list(DistortedImage.objects.filter(study=study))
    for a, b in zip(images[::2], images[1::2], strict=False):
        if a.reference_id == b.reference_id:
            judgment_record(study=study, image_a_id=a.id, image_b_id=b.id, a_wins=True)
    call_command("compute_scores", "s1", "--metrics", "psnr", "--device", "cpu", stdout=io.StringIO())
    call_command(
        "run_benchmark", "s1", "--metrics", "psnr", "--resamples", "20", "--min-images", "3", stdout=io.StringIO()
    )
    users = {
        "plain": django_user_model.objects.create_user("plain", password="pw-plain-1"),
        "owner": django_user_model.objects.create_user("owner", password="pw-owner-1"),
        "other_owner": django_user_model.objects.create_user("other", password="pw-other-1"),
        "staff": django_user_model.objects.create_superuser("staff", "staff@example.org", "pw-staff-1"),
    }
    study.owners.add(users["owner"])
    other.owners.add(users["other_owner"])
    from django.contrib.contenttypes.models import ContentType

    return {
        "study": study,
        "other": other,
        "run": BenchmarkRun.objects.get(study=study),
        "users": users,
        "user_pk": users["plain"].pk,
        "study_ct": ContentType.objects.get_for_model(Study).pk,
        "stimulus": images[0].file.url,
        "admin_objects": {
            "auth/group": _group().pk,
            "auth/user": users["plain"].pk,
            "annotation/study": study.pk,
            "annotation/referenceimage": study.references.first().pk,
            "annotation/distortedimage": images[0].pk,
            "annotation/distortiontype": study.distortion_types.first().pk,
            "annotation/rater": None,
            "annotation/judgment": Judgment.objects.filter(study=study).first().pk,
            "annotation/assignment": None,
            "annotation/controltrial": None,
            "dashboard/ownertoken": token_create(username="owner").token.pk,
            "dashboard/ownerjob": OwnerJob.objects.create(kind="score", study=study).pk,
        },
    }


def _group():
    from django.contrib.auth.models import Group

    return Group.objects.create(name="lab")


def clients_for(world) -> dict:
    """A fresh client per identity; raters join through the real form once, then get their session."""
    clients = {"anonymous": Client()}
    for role in ("rater_a", "rater_b"):
        client = Client()
        rater = world["study"].raters.filter(external_id=role).first()
        if rater is None:
            assert client.post("/study/s1/", {"external_id": role, "consent": "on"}).status_code == 302
        else:
            store = import_module(settings.SESSION_ENGINE).SessionStore()
            store[session_key("s1")] = rater.pk
            store.save()
            client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
        clients[role] = client
    for role, user in world["users"].items():
        client = Client()
        client.force_login(user)
        clients[role] = client
    return clients


def test_every_route_answers_each_identity_as_written(world):
    clients = clients_for(world)
    rater_a_pair = clients["rater_a"].get("/api/studies/s1/pairs/next/").json()
    objects = world["admin_objects"]
    objects["annotation/rater"] = world["study"].raters.get(external_id="rater_a").pk
    objects["annotation/assignment"] = Assignment.objects.get(token=rater_a_pair["assignment"]).pk
    clients["rater_b"].get("/api/studies/s1/pairs/next/")
    from annotation.models import ControlTrial, Rater

    objects["annotation/controltrial"] = ControlTrial.objects.create(
        study=world["study"],
        rater=Rater.objects.get(external_id="rater_b"),
        kind="training",
        token="ct",
        reference=world["study"].references.first(),
        correct_side="left",
        issued_at=Assignment.objects.first().issued_at,
        expires_at=Assignment.objects.first().expires_at,
    ).pk
    table = routes(world)
    assert {pattern for pattern, _, _ in table} == resolver_patterns(), "a route without a written rule"
    bodies = {
        "/api/studies/s1/raters/": lambda role: {"external_id": f"join-{role}"},
        "/api/studies/s1/votes/": lambda role: {
            "assignment": rater_a_pair["assignment"],
            "choice": "left",
            "response_ms": 900,
        },
        "/api/studies/s1/viewing/": lambda role: {
            "device_pixel_ratio": 1.0,
            "screen_width": 1920,
            "screen_height": 1080,
            "viewport_width": 1900,
            "viewport_height": 1000,
            "native": True,
            "layout": "side_by_side",
        },
    }
    wrong, unexpected_2xx = [], []
    for pattern, path, methods in table:
        signs_out = "logout" in pattern
        for method, expected in methods.items():
            for role in sorted(ROLES, key=lambda r: r == "rater_a"):  # rater A last: its vote succeeds once
                client = clients_for(world)[role] if signs_out else clients[role]
                send = getattr(client, method)
                if path in bodies:
                    response = send(path, bodies[path](role), content_type="application/json")
                else:
                    response = send(path)
                status = response.status_code
                if status != expected[role]:
                    wrong.append(f"{role} {method.upper()} {path} ({pattern}) -> {status}, written {expected[role]}")
                    if 200 <= status < 300:
                        unexpected_2xx.append(wrong[-1])
    assert unexpected_2xx == [], "\n".join(unexpected_2xx)
    assert wrong == [], "\n".join(wrong)


def test_joining_is_public_and_the_same_id_resumes_unless_the_study_says_no(world):
    clients = clients_for(world)
    for role in ROLES:
        response = clients[role].post(
            "/api/studies/s1/raters/", {"external_id": f"api-{role}"}, content_type="application/json"
        )
        assert response.status_code == 201
    again = clients["anonymous"].post(
        "/api/studies/s1/raters/", {"external_id": "api-staff"}, content_type="application/json"
    )
    assert again.status_code == 200 and again.json()["resumed"] is True
    Study.objects.filter(slug="s1").update(allow_resume=False)
    refused = clients["anonymous"].post(
        "/api/studies/s1/raters/", {"external_id": "api-staff"}, content_type="application/json"
    )
    assert refused.status_code == 409


def test_a_rater_session_does_not_open_another_study(world):
    clients = clients_for(world)
    assert clients["rater_a"].get("/study/s2/rate/").status_code == 302
    assert clients["rater_a"].get("/api/studies/s2/pairs/next/").status_code in (401, 403)
