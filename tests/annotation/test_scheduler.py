"""Pair scheduling: same reference, least-judged first, cost independent of study size."""

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import DistortedImage
from annotation.raters import rater_create
from annotation.rating.trials import pair_next
from annotation.rating.votes import judgment_record, vote_submit
from tests.factories import import_folder, make_pipal_folder, plain_study, png_bytes

pytestmark = pytest.mark.django_db


def test_pairs_never_cross_references(small_study):
    rater, _ = rater_create(study=small_study, external_id="r")
    for _ in range(12):
        assignment = pair_next(study=small_study, rater=rater).assignment
        assert assignment.left.reference_id == assignment.right.reference_id == assignment.reference_id


def test_least_judged_images_come_first_and_new_types_catch_up(study, tmp_path):
    folder = make_pipal_folder(tmp_path / "d", references=1, types=("01", "02"), levels=(1, 2, 3))
    import_folder(study, folder)
    old = list(DistortedImage.objects.filter(study=study).order_by("id"))
    rng = random.Random(0)
    for _ in range(60):
        a, b = rng.sample(old, 2)
        judgment_record(study=study, image_a_id=a.id, image_b_id=b.id, a_wins=rng.random() < 0.5)
    # A new distortion type joins the running study.
    for level in (1, 2, 3):
        (folder / "Dis" / f"R0001_03_{level:02d}.png").write_bytes(png_bytes(500 + level))
    import_folder(study, folder)
    new_ids = set(DistortedImage.objects.filter(distortion_type__code="03").values_list("id", flat=True))
    old_counts = dict(DistortedImage.objects.exclude(id__in=new_ids).values_list("id", "judgment_count"))
    rater, _ = rater_create(study=study, external_id="r")
    for _ in range(3):
        assignment = pair_next(study=study, rater=rater).assignment
        assert {assignment.left_id, assignment.right_id} & new_ids, "new images must be served first"
        vote_submit(
            study=study, rater=rater, assignment_token=assignment.token, choice="left", response_ms=500
        )
    # The new images were compared among themselves; the old ones were not re-rated.
    assert dict(DistortedImage.objects.exclude(id__in=new_ids).values_list("id", "judgment_count")) == old_counts


def queries_for_next_pair(study, external_id) -> int:
    rater, _ = rater_create(study=study, external_id=external_id)
    pair_next(study=study, rater=rater)  # warm caches
    with CaptureQueriesContext(connection) as captured:
        pair_next(study=study, rater=rater)
    return len(captured)


def test_next_pair_cost_does_not_grow_with_the_study(tmp_path):
    small = plain_study("small")
    import_folder(small, make_pipal_folder(tmp_path / "a", references=1, types=("01",), levels=(1, 2, 3)))
    large = plain_study("large")
    import_folder(large, make_pipal_folder(tmp_path / "b", references=12, types=("01", "02", "03"), levels=(1, 2, 3)))
    assert queries_for_next_pair(small, "a") == queries_for_next_pair(large, "b")
