"""The vote path at the database's pace (issue 22): few statements per request, counters on
rows instead of COUNT queries, persistent connections. Counts, not timings: the timings are
in bench/vote_load.py and docs/benchmarks.md. Runs on SQLite and PostgreSQL alike."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from annotation.analysis.replay import raters_recount, study_recompute_mos
from annotation.models import Assignment, Judgment, Rater
from annotation.rating.control_trials import prepare_study_controls
from annotation.rating.issued import rater_progress
from tests.factories import import_folder, join, make_pipal_folder, plain_study, rater

pytestmark = pytest.mark.django_db

# The goals: about 3 data statements to issue a pair, about 4 to record a vote.
# A vote's answer carries the next pair, so one vote request does both.
NEXT_STATEMENTS = 5
VOTE_WITH_NEXT_STATEMENTS = 9


def data_statements(captured) -> list[str]:
    """The SQL a request sent, without transaction bookkeeping (savepoints)."""
    return [
        query["sql"]
        for query in captured.captured_queries
        if not query["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"))
    ]


@pytest.fixture
def hot(tmp_path):
    study = plain_study("hot", trials_per_rater=1000)
    import_folder(study, make_pipal_folder(tmp_path / "d", references=3, types=("01", "02", "03"), levels=(1, 2, 3)))
    prepare_study_controls(study)  # as import_images does: every stimulus made ahead of time
    client = join(APIClient(), "hot", "rater")
    client.get("/api/studies/hot/pairs/next/")  # warm: the displays of the first pair are made once
    return study, client


def test_issuing_a_pair_takes_a_few_statements(hot):
    study, client = hot
    Assignment.objects.update(status="voted")  # no trial open: the next call issues one
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/studies/hot/pairs/next/")
    assert response.status_code == 200
    statements = data_statements(captured)
    assert len(statements) <= NEXT_STATEMENTS, "\n".join(statements)


def test_reserving_the_open_pair_takes_fewer(hot):
    study, client = hot
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/studies/hot/pairs/next/")
    assert response.status_code == 200
    statements = data_statements(captured)
    assert len(statements) <= 3, "\n".join(statements)


def test_a_vote_and_the_next_pair_take_a_few_statements(hot):
    study, client = hot
    trial = client.get("/api/studies/hot/pairs/next/").json()
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/api/studies/hot/votes/",
            {"assignment": trial["assignment"], "choice": "left", "response_ms": 900, "native": True},
            format="json",
        )
    assert response.status_code == 201 and response.json()["next"] is not None
    statements = data_statements(captured)
    assert len(statements) <= VOTE_WITH_NEXT_STATEMENTS, "\n".join(statements)
    # Progress comes from counters on the rater's row, not from counting the log or the trials.
    counting = [
        sql for sql in statements if re.search(r'COUNT\(.*FROM "?annotation_(judgment|controltrial)', sql, re.I)
    ]
    assert not counting, counting


def test_the_rater_row_counts_what_progress_used_to_count(hot):
    study, client = hot
    trial = client.get("/api/studies/hot/pairs/next/").json()
    for _ in range(5):
        body = client.post(
            "/api/studies/hot/votes/",
            {"assignment": trial["assignment"], "choice": "left", "response_ms": 100, "native": True},
            format="json",
        ).json()
        trial = body["next"]
    rater = Rater.objects.get(external_id="rater")
    assert rater.trials_done == 5 == Judgment.objects.filter(rater=rater).count() == body["progress"]["done"]
    assert rater_progress(rater).rated == 5


def test_authentication_and_the_study_are_one_narrow_query(hot):
    study, client = hot
    with CaptureQueriesContext(connection) as captured:
        client.get("/api/studies/hot/pairs/next/")
    first = data_statements(captured)[0]
    assert "annotation_study" in first and "annotation_rater" in first and "token_hash" in first
    assert '"annotation_study"."description"' not in first and '"annotation_rater"."exclusion_reason"' not in first


def test_connections_persist_by_default_with_health_checks():
    from django.conf import settings

    database = settings.DATABASES["default"]
    assert database["CONN_MAX_AGE"] >= 60 and database["CONN_HEALTH_CHECKS"] is True


def test_the_invariants_hold_on_the_fast_path(hot):
    study, client = hot
    other = join(APIClient(), "hot", "second")
    trials = {
        "a": client.get("/api/studies/hot/pairs/next/").json(),
        "b": other.get("/api/studies/hot/pairs/next/").json(),
    }
    clients = {"a": client, "b": other}
    for _ in range(30):
        for name in ("a", "b"):
            payload = {"assignment": trials[name]["assignment"], "choice": "right", "response_ms": 700}
            response = clients[name].post("/api/studies/hot/votes/", payload, format="json")
            assert response.status_code == 201
            again = clients[name].post("/api/studies/hot/votes/", payload, format="json")
            assert again.status_code == 409 and again.json()["error"]["code"] == "already_voted"
            trials[name] = response.json()["next"]
    assert Judgment.objects.filter(study=study).count() == 60
    assert study_recompute_mos(study=study, write=False).differences == []
    pairs = Assignment.objects.values_list("rater_id", "image_low_id", "image_high_id")
    assert len(list(pairs)) == len(set(pairs))  # never the same pair twice for a rater


def test_the_counters_the_vote_paths_keep_equal_a_recount_from_the_log(hot):
    study, client = hot
    study.allow_ties = True
    study.save()
    trial = client.get("/api/studies/hot/pairs/next/").json()
    for index in range(12):
        choice = ("left", "right", "tie")[index % 3]
        payload = {"assignment": trial["assignment"], "choice": choice, "response_ms": 300 + 100 * index}
        if index % 4:
            payload["native"] = index % 2 == 0
        trial = client.post("/api/studies/hot/votes/", payload, format="json").json()["next"]
    fields = ("trials_done", "practice_done", "votes_cast", "votes_left", "votes_tied", "votes_timed", "votes_fast",
              "votes_native", "votes_clear", "votes_agreed",
              "votes_native_known")  # fmt: skip
    kept = Rater.objects.filter(external_id="rater").values(*fields).get()
    assert kept["trials_done"] == 12 and kept["votes_tied"] == 4 and kept["votes_fast"] == 2
    raters_recount(raters=list(Rater.objects.filter(external_id="rater")))
    assert Rater.objects.filter(external_id="rater").values(*fields).get() == kept


def test_the_candidates_come_in_queue_order_whatever_the_database_plans(hot):
    """The head and the partners are read in (judgment count, shuffle key) order, so the random
    tie-breaks drawn over them do not follow the query plan: two identical seeded studies are
    scheduled alike on PostgreSQL too (its joins keep no order)."""
    from django.utils import timezone

    from annotation.models import DistortedImage
    from annotation.rating import hot_path

    study, _ = hot
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the plan a large study gets: hash joins, which keep no order
            cursor.execute("SET LOCAL enable_nestloop = off")
            cursor.execute("SET LOCAL enable_mergejoin = off")
    now = timezone.now()
    queue = list(DistortedImage.objects.filter(study=study).order_by("judgment_count", "shuffle_key"))
    head = hot_path._head(study.id, 0, now)
    assert [row[0] for row in head] == [image.id for image in queue[: hot_path.FIRST_POOL]]
    first = queue[0]
    new_rater = rater(study, "order")
    partners = hot_path._partners(study.id, new_rater.id, first.reference_id, first.id, now)
    same_reference = [i.id for i in queue if i.reference_id == first.reference_id and i.id != first.id]
    assert [row[0] for row in partners] == same_reference[: hot_path.PARTNER_POOL]
