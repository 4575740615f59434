"""A real Celery worker on a real Redis broker runs the study's tasks."""

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django.db import connection

from annotation import tasks
from annotation.models import DistortedImage
from annotation.rating.votes import judgment_record
from annotation.studies import study_create

from .conftest import import_folder, make_pipal_folder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return (
        f"postgres://{settings['USER']}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{settings['NAME']}"
    )


@contextlib.contextmanager
def celery_worker(redis_url: str, tmp_path: Path, **extra_env: str):
    """A `celery worker` process on its own queue, against the test database; yields
    (a client app of its own, the queue)."""
    queue = f"pipal-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pipal_site.settings.local",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "PIPAL_VAR_DIR": str(tmp_path / "var"),
        **extra_env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "pipal_site", "worker", "-Q", queue, "--pool", "solo", "-l", "warning"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "worker.log", "w"),  # noqa: SIM115
    )
    # A client app of its own: the project's app may hold state from tasks
    # that earlier tests ran in-process.
    client = Celery("pipal-test-client", broker=redis_url, backend=redis_url)
    try:
        yield client, queue
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def worker(redis_url, tmp_path):
    with celery_worker(redis_url, tmp_path) as running:
        yield running


def test_worker_recomputes_mos_from_the_log(worker, tmp_path):
    study = study_create(slug="celery")
    import_folder(study, make_pipal_folder(tmp_path / "d", references=1))
    images = list(DistortedImage.objects.filter(study=study).order_by("id"))
    for i in range(10):
        judgment_record(
            study=study, image_a_id=images[0].id, image_b_id=images[1 + i % 3].id, a_wins=i % 2 == 0
        )
    expected = DistortedImage.objects.get(pk=images[0].id).elo
    DistortedImage.objects.filter(pk=images[0].id).update(elo=999.0)

    client, queue = worker
    result = client.send_task(tasks.recompute_mos.name, args=[study.id], queue=queue).get(timeout=90)

    assert result == {"images": 4, "judgments": 10, "differences": 1}
    assert DistortedImage.objects.get(pk=images[0].id).elo == expected
