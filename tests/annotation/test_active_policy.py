"""The active pair policy through the real scheduler and vote service."""

import random
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.models import Assignment, DistortedImage, Study
from annotation.raters import rater_create, rater_set_excluded
from annotation.rating import scheduler
from annotation.rating.trials import pair_next
from annotation.rating.votes import judgment_record, vote_submit
from tests.factories import import_folder, make_pipal_folder, plain_study

pytestmark = pytest.mark.django_db


def active_study(slug, tmp_path, **folder):
    study = plain_study(slug, pair_policy=Study.PairPolicy.ACTIVE)
    import_folder(study, make_pipal_folder(tmp_path / slug, **folder))
    return study


def test_active_pairs_stay_in_one_reference_and_never_repeat_for_a_rater(tmp_path):
    study = active_study("act", tmp_path, references=3, types=("01", "02"), levels=(1, 2, 3))
    rng = random.Random(0)
    for r in range(4):
        rater, _ = rater_create(study=study, external_id=f"r{r}")
        issued = 0
        while (trial := pair_next(study=study, rater=rater, rng=rng)) is not None:
            assignment = trial.assignment
            assert assignment.left.reference_id == assignment.right.reference_id == assignment.reference_id
            vote_submit(
                study=study,
                rater=rater,
                assignment_token=trial.token,
                choice=rng.choice(["left", "right"]),
                response_ms=900,
            )
            issued += 1
        # 3 references x C(6, 2) pairs: a rater gets each pair once, then nothing (the quota is 60 in all).
        pairs = Assignment.objects.filter(rater=rater).values_list("image_low_id", "image_high_id")
        assert len(pairs) == len(set(pairs)) == issued == min(study.trials_per_rater, 45)


def test_the_partner_follows_the_information_gain(tmp_path):
    """One image is settled far below the rest: an image near the middle is rarely paired with it."""
    study = active_study("gain", tmp_path, references=1, types=("01", "02", "03"), levels=(1, 2))
    images = list(DistortedImage.objects.filter(study=study).order_by("id"))
    worst, first, *others = images
    for _ in range(40):  # the worst image lost to everyone, many times
        for other in [first, *others]:
            judgment_record(study=study, image_a_id=other.id, image_b_id=worst.id, a_wins=True)
    rng = random.Random(1)
    drawn = Counter(scheduler.informative_partner(study, first.reference_id, first.id, set(), rng) for _ in range(300))
    assert worst.id not in drawn or drawn[worst.id] < 300 / len(others) / 4
    assert set(drawn) >= {o.id for o in others}  # every close, unsettled image gets drawn
    # A rater's seen partners are never drawn.
    seen = {o.id for o in others}
    assert {scheduler.informative_partner(study, first.reference_id, first.id, seen, rng) for _ in range(20)} == {
        worst.id
    }
    assert scheduler.informative_partner(study, first.reference_id, first.id, seen | {worst.id}, rng) is None


def test_excluded_raters_do_not_steer_the_active_policy(tmp_path):
    study = active_study("excl", tmp_path, references=1, types=("01", "02"), levels=(1, 2))
    images = list(DistortedImage.objects.filter(study=study).order_by("id"))
    troll, _ = rater_create(study=study, external_id="troll")
    for _ in range(60):
        judgment_record(
            study=study, image_a_id=images[1].id, image_b_id=images[0].id, a_wins=True, rater=troll
        )
    rater_set_excluded(rater=troll, excluded=True, reason="test")
    # Without the troll's votes nothing is known: every partner is as informative as any other.
    rng = random.Random(2)
    drawn = Counter(
        scheduler.informative_partner(study, images[0].reference_id, images[2].id, set(), rng) for _ in range(300)
    )
    assert set(drawn) == {images[0].id, images[1].id, images[3].id}
    assert min(drawn.values()) > 60


def test_active_next_pair_reads_one_reference_only(tmp_path):
    """The active policy's queries do not grow with the number of references."""

    def queries(references, slug):
        study = active_study(slug, tmp_path, references=references, types=("01", "02"), levels=(1, 2))
        rater, _ = rater_create(study=study, external_id="q")
        pair_next(study=study, rater=rater)
        with CaptureQueriesContext(connection) as captured:
            pair_next(study=study, rater=rater)
        return len(captured)

    assert queries(1, "one") == queries(6, "six")
