"""Rater quality control: flags, gold pairs, exclusion and its effect on the MOS."""

import random

import pytest

from annotation import selectors
from annotation.analysis import quality
from annotation.analysis.replay import replayed_states, study_recompute_mos
from annotation.models import DistortedImage, Rater
from annotation.raters import rater_set_excluded
from annotation.studies import study_create
from dashboard.simulation import GOOD, RaterMix, mos_agreement, simulate_study
from tests.factories import import_folder, make_pipal_folder

pytestmark = pytest.mark.django_db

TYPES = ("01", "02", "03", "04", "05", "06")


def vote(left=True, ms=1500, winner_mos=1450.0, loser_mos=1350.0):
    return quality.Vote(left, ms, winner_mos, loser_mos)


def test_flags_need_enough_trials():
    lazy = [vote(left=True, ms=100, winner_mos=1300, loser_mos=1500)] * 19
    assert quality.assess(lazy, gold_failed=0, thresholds=quality.Thresholds()).flags == []


def test_each_flag():
    t = quality.Thresholds()
    one_side = [vote(left=True)] * 17 + [vote(left=False)] * 3
    assert quality.assess(one_side, gold_failed=0, thresholds=t).flags == ["one side in 85% of trials"]
    fast = [vote(left=i % 2 == 0, ms=300 if i < 5 else 2000) for i in range(20)]
    assert quality.assess(fast, gold_failed=0, thresholds=t).flags == ["25% of votes faster than 500 ms"]
    contrary = [vote(left=i % 2 == 0, winner_mos=1300, loser_mos=1500 - 100 * (i % 3 == 0)) for i in range(20)]
    assert quality.assess(contrary, gold_failed=0, thresholds=t).flags == [
        "agrees with the consensus on 0% of clear pairs"
    ]
    close_calls = [vote(left=i % 2 == 0, winner_mos=1400, loser_mos=1420) for i in range(20)]
    assert quality.assess(close_calls, gold_failed=0, thresholds=t).agreement is None
    assert quality.assess([], gold_failed=1, thresholds=t).flags == ["failed gold pair"]


def run_study(seed, folder, capture):
    """One synthetic study with 20% random and 20% one-side clickers; returns
    (behaviours, qualities, SRCC/KRCC per reference with every vote, after excluding the flagged)."""
    random.seed(seed)  # the images' shuffle keys: the run is deterministic
    study = study_create(slug=f"qc{seed}", trials_per_rater=40, min_vote_interval_ms=0)
    import_folder(study, folder)
    with capture(execute=True):  # a failed gold pair excludes its rater and rebuilds the MOS after commit
        report = simulate_study(study=study, judgments_per_image=40, seed=seed, mix=RaterMix(random=0.2, one_side=0.2))
    qualities = selectors.rater_qualities(study)
    images = list(DistortedImage.objects.filter(study=study))
    with_everyone, _ = replayed_states(study, images, include_excluded=True)
    before = mos_agreement(study, report.truth, {i: s.mos(study.elo_initial) for i, s in with_everyone.items()})
    flagged = Rater.objects.filter(pk__in=[r for r, q in qualities.items() if q.flagged])
    newly = flagged.filter(excluded=False, judgments__isnull=False).distinct().count()
    with capture(execute=True) as callbacks:
        for rater in flagged:
            rater_set_excluded(rater=rater, excluded=True, reason="flagged")
    # Raters who failed a gold pair were excluded when they failed it; the others now.
    assert bool(callbacks) == bool(newly), "excluding a rater with votes schedules the MOS recompute"
    assert study_recompute_mos(study=study, write=False).differences == []
    return report.behaviours, qualities, before, mos_agreement(study, report.truth)


@pytest.mark.slow
def test_bad_raters_are_flagged_and_excluding_them_does_not_hurt_the_mos(tmp_path, django_capture_on_commit_callbacks):
    folder = make_pipal_folder(tmp_path / "d", references=3, types=TYPES, levels=(1, 2))
    bad, good, before, after = [], [], [], []
    for seed in range(3):
        behaviours, qualities, with_everyone, cleaned = run_study(seed, folder, django_capture_on_commit_callbacks)
        # Judge raters who finished enough trials for the flags to apply, or failed gold.
        for rater, q in qualities.items():
            if q.trials >= 20 or q.gold_failed:
                (good if behaviours[rater] == GOOD else bad).append(q.flagged)
        before.append(with_everyone.srcc_per_group)
        after.append(cleaned.srcc_per_group)
    print(f"\n{len(bad)} bad raters, {sum(bad) / len(bad):.0%} flagged; {len(good)} good, {sum(good) / len(good):.0%}")
    print(f"SRCC per reference, mean of 3 studies: {sum(before) / 3:.4f} with every vote, {sum(after) / 3:.4f} after")
    assert len(bad) >= 20 and len(good) >= 40
    assert sum(bad) / len(bad) >= 0.9
    assert sum(good) / len(good) <= 0.05
    # Per study the difference is noisy (36 images); on average exclusion must not hurt.
    assert sum(after) >= sum(before)
