"""Concurrent votes lose nothing, on whichever database the suite runs against
(test.sh runs the suite on SQLite and on PostgreSQL)."""

import random
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from rest_framework.test import APIClient

from annotation.analysis.replay import study_recompute_mos
from annotation.models import Assignment, DistortedImage, Judgment, Study
from annotation.rating.votes import judgment_record
from annotation.studies import study_create
from tests.factories import import_folder, join, make_pipal_folder, plain_study

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

THREADS = 50
VOTES = 10_000


def run_threads(worker, count):
    """Run worker(i) in ``count`` threads; each closes its own connection."""

    def wrapped(index):
        try:
            return worker(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(wrapped, range(count)))


def test_ten_thousand_votes_from_fifty_threads_lose_nothing(tmp_path):
    study = study_create(slug="hot")
    # One reference with three images: every vote contends for the same rows.
    import_folder(study, make_pipal_folder(tmp_path / "d", references=1, types=("01",), levels=(1, 2, 3)))
    ids = list(DistortedImage.objects.filter(study=study).values_list("id", flat=True))
    start_sum = sum(DistortedImage.objects.values_list("elo", flat=True))
    per_thread = VOTES // THREADS
    recorded = defaultdict(int)
    lock = threading.Lock()

    def worker(index):
        rng = random.Random(index)
        study_here = Study.objects.get(pk=study.pk)
        for _ in range(per_thread):
            a, b = rng.sample(ids, 2)
            judgment = judgment_record(study=study_here, image_a_id=a, image_b_id=b, a_wins=rng.random() < 0.5)
            with lock:
                recorded[judgment.id] += 1
        return per_thread

    assert sum(run_threads(worker, THREADS)) == VOTES
    log = list(Judgment.objects.filter(study=study).order_by("id"))
    # Every accepted vote is in the log exactly once.
    assert len(log) == VOTES and sorted(recorded) == [j.id for j in log] and set(recorded.values()) == {1}
    # Zero-sum Elo: the study's rating sum is unchanged.
    images = {image.id: image for image in DistortedImage.objects.filter(study=study)}
    assert sum(image.elo for image in images.values()) == pytest.approx(start_sum, abs=1e-6)
    assert sum(image.judgment_count for image in images.values()) == 2 * VOTES
    # Each image's before/after chain is unbroken, ending at its live rating.
    last = {image_id: 1400.0 for image_id in images}
    for judgment in log:
        assert judgment.elo_a_before == last[judgment.image_a_id]
        assert judgment.elo_b_before == last[judgment.image_b_id]
        last[judgment.image_a_id], last[judgment.image_b_id] = judgment.elo_a_after, judgment.elo_b_after
    assert last == {image_id: image.elo for image_id, image in images.items()}
    # And the live ratings equal a replay of the log.
    assert study_recompute_mos(study=study, write=False).differences == []


def test_concurrent_api_votes_each_count_once(tmp_path):
    study = plain_study("api")
    import_folder(study, make_pipal_folder(tmp_path / "d", references=2, types=("01", "02", "03"), levels=(1, 2)))
    raters = [join(APIClient(), "api", f"rater-{i}") for i in range(THREADS)]
    statuses = defaultdict(int)
    lock = threading.Lock()

    def worker(index):
        client = raters[index]
        for _ in range(6):
            pair = client.get("/api/studies/api/pairs/next/").json()
            payload = {"assignment": pair["assignment"], "choice": "left", "response_ms": 700}
            # The same vote sent twice: the second must be refused.
            for _ in range(2):
                response = client.post("/api/studies/api/votes/", payload, format="json")
                with lock:
                    statuses[response.status_code] += 1

    run_threads(worker, THREADS)
    assert dict(statuses) == {201: THREADS * 6, 409: THREADS * 6}
    assert Judgment.objects.filter(study=study).count() == THREADS * 6
    assert Assignment.objects.filter(study=study, status="voted").count() == THREADS * 6
    assert study_recompute_mos(study=study, write=False).differences == []


def test_the_same_assignment_raced_by_many_threads_counts_once(tmp_path):
    study = plain_study("race")
    import_folder(study, make_pipal_folder(tmp_path / "d", references=1))
    client = join(APIClient(), "race", "racer")
    pair = client.get("/api/studies/race/pairs/next/").json()
    payload = {"assignment": pair["assignment"], "choice": "right", "response_ms": 800}
    barrier = threading.Barrier(20)

    def worker(index):
        barrier.wait()
        return client.post("/api/studies/race/votes/", payload, format="json").status_code

    codes = run_threads(worker, 20)
    assert sorted(codes) == [201] + [409] * 19
    assert Judgment.objects.filter(study=study).count() == 1


def test_simultaneous_next_calls_of_one_rater_get_one_open_pair(tmp_path):
    # Issue 15, finding 5: 20 simultaneous GET next from one rater left 5 pairs open against a
    # limit of 2. Now one trial is open at a time (issue 16): all twenty get that one.
    study = plain_study("limit", trials_per_rater=30)
    import_folder(study, make_pipal_folder(tmp_path / "d", references=3, types=("01", "02", "03"), levels=(1, 2, 3)))
    client = join(APIClient(), "limit", "eager")
    barrier = threading.Barrier(20)

    def worker(index):
        barrier.wait()
        return client.get("/api/studies/limit/pairs/next/")

    responses = run_threads(worker, 20)
    assert {response.status_code for response in responses} == {200}
    assert len({response.json()["assignment"] for response in responses}) == 1
    assert Assignment.objects.filter(study=study).count() == 1


def test_simultaneous_votes_and_next_calls_never_pass_the_quota(tmp_path):
    study = plain_study("quota", trials_per_rater=3)
    import_folder(study, make_pipal_folder(tmp_path / "d", references=3, types=("01", "02", "03"), levels=(1, 2, 3)))
    client = join(APIClient(), "quota", "eager")
    barrier = threading.Barrier(10)

    def worker(index):
        barrier.wait()
        for _ in range(5):
            response = client.get("/api/studies/quota/pairs/next/")
            if response.status_code == 204:
                return
            payload = {"assignment": response.json()["assignment"], "choice": "left", "response_ms": 900}
            client.post("/api/studies/quota/votes/", payload, format="json")

    run_threads(worker, 10)
    assert Assignment.objects.filter(study=study, status="voted").count() == 3
    assert Assignment.objects.filter(study=study).exclude(status="retired").count() == 3
    assert client.get("/api/studies/quota/pairs/next/").status_code == 204
