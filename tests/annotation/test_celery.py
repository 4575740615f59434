"""A real Celery worker on a real Redis broker runs the study's tasks."""


import pytest

from annotation import tasks
from annotation.models import DistortedImage
from annotation.rating.votes import judgment_record
from annotation.studies import study_create
from tests.factories import celery_worker, import_folder, make_pipal_folder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.slow]


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
