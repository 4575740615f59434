"""The stored Bradley–Terry fit: which judgments count, what is stored, the command and the export."""

import io
import random

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy.stats import spearmanr

from annotation.analysis import bt_fit
from annotation.models import BradleyTerryFit, DistortedImage, Judgment, Study
from annotation.raters import rater_create, rater_set_excluded
from annotation.rating.votes import judgment_record
from core.errors import ApplicationError
from dashboard.simulation import true_score

pytestmark = pytest.mark.django_db
ELO_COLUMNS = ("elo_a_before", "elo_a_after", "elo_b_before", "elo_b_after")


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def vote_by_truth(study, truth, count, seed=0, rater=None):
    """Judgments between random images of one reference, won with Eq. 1's probability."""
    rng = random.Random(seed)
    images = list(DistortedImage.objects.filter(study=study))
    by_reference = {}
    for image in images:
        by_reference.setdefault(image.reference_id, []).append(image)
    groups = [g for g in by_reference.values() if len(g) > 1]
    for _ in range(count):
        a, b = rng.sample(rng.choice(groups), 2)
        p = 1 / (1 + 10 ** ((truth[b.id] - truth[a.id]) / 400))
        judgment_record(study=study, image_a_id=a.id, image_b_id=b.id, a_wins=rng.random() < p, rater=rater)


def truth_of(study, seed=1):
    return {i.id: true_score(seed, i.name, center=1400, spread=200) for i in DistortedImage.objects.filter(study=study)}


def test_fit_stores_scores_intervals_and_convergence(small_study):
    truth = truth_of(small_study)
    vote_by_truth(small_study, truth, 800)
    fit = bt_fit.study_fit_bradley_terry(study=small_study, seed=3)
    assert (fit.judgments, fit.images, fit.rounds, fit.seed, fit.scope) == (800, 8, 100, 3, "reference")
    images = list(DistortedImage.objects.filter(study=small_study))
    for image in images:
        assert image.bt_ci_low < image.mos_bt < image.bt_ci_high
    for reference in {i.reference_id for i in images}:
        group = [i for i in images if i.reference_id == reference]
        assert np.mean([i.mos_bt for i in group]) == pytest.approx(1400)
        assert spearmanr([i.mos_bt for i in group], [truth[i.id] for i in group])[0] > 0.7
    widths = [i.bt_ci_high - i.bt_ci_low for i in images]
    assert fit.widest_ci == pytest.approx(max(widths)) and fit.median_ci == pytest.approx(np.median(widths))
    assert fit.images_too_wide == sum(w > small_study.target_ci_width for w in widths)
    assert 0 <= fit.kendall < 0.5 and fit.done == (fit.images_too_wide == 0 and fit.kendall <= 0.05)
    assert bt_fit.fit_is_current(small_study)
    # The same seed gives the same intervals.
    again = bt_fit.study_fit_bradley_terry(study=small_study, seed=3)
    assert (again.widest_ci, again.kendall) == (fit.widest_ci, fit.kendall)


def test_excluded_raters_do_not_count_and_make_the_fit_stale(small_study):
    truth = truth_of(small_study)
    vote_by_truth(small_study, truth, 200)
    troll, _ = rater_create(study=small_study, external_id="troll")
    # The troll always picks the truly worse image.
    vote_by_truth(small_study, {k: -v for k, v in truth.items()}, 600, seed=9, rater=troll)
    polluted = bt_fit.study_fit_bradley_terry(study=small_study)
    assert polluted.judgments == 800
    rater_set_excluded(rater=troll, excluded=True, reason="test")
    assert not bt_fit.fit_is_current(small_study)
    clean = bt_fit.study_fit_bradley_terry(study=small_study)
    assert clean.judgments == 200
    images = list(DistortedImage.objects.filter(study=small_study, reference__name="R0001"))
    assert spearmanr([i.mos_bt for i in images], [truth[i.id] for i in images])[0] > 0


def test_unjudged_images_get_no_score_and_keep_the_study_unfinished(small_study):
    images = list(DistortedImage.objects.filter(study=small_study, reference__name="R0001").order_by("id"))
    for i in range(400):
        a, b = images[i % 4], images[(i + 1) % 4]
        judgment_record(study=small_study, image_a_id=a.id, image_b_id=b.id, a_wins=i % 2 == 0)
    fit = bt_fit.study_fit_bradley_terry(study=small_study)
    assert fit.images == 4 and fit.images_too_wide >= 4 and not fit.done
    unjudged = DistortedImage.objects.filter(study=small_study, reference__name="R0002")
    assert set(unjudged.values_list("mos_bt", "bt_ci_low", "bt_ci_high")) == {(None, None, None)}


def test_cross_reference_judgments_count_only_in_a_global_fit(small_study):
    one = DistortedImage.objects.filter(study=small_study, reference__name="R0001").first()
    two = DistortedImage.objects.filter(study=small_study, reference__name="R0002").first()
    vote_by_truth(small_study, truth_of(small_study), 100)
    # The vote engine refuses such pairs; a log written by another tool may hold them.
    for _ in range(10):
        Judgment.objects.create(
            study=small_study, image_a=one, image_b=two, winner=one, **dict.fromkeys(ELO_COLUMNS, 1400.0)
        )
    per_reference = bt_fit.study_fit_bradley_terry(study=small_study)
    assert (per_reference.judgments, per_reference.log_judgments) == (100, 110)
    assert bt_fit.fit_is_current(small_study)  # the pairs left out do not make it look stale
    Study.objects.filter(pk=small_study.pk).update(bt_scope="global")
    small_study.refresh_from_db()
    fit = bt_fit.study_fit_bradley_terry(study=small_study)
    assert fit.judgments == 110 and fit.scope == "global"
    one.refresh_from_db()
    two.refresh_from_db()
    assert one.mos_bt > two.mos_bt  # linked references: R0001's image beat R0002's ten times


def test_a_fit_needs_judgments_and_100_rounds(small_study):
    with pytest.raises(ApplicationError, match="no judgments to fit"):
        bt_fit.study_fit_bradley_terry(study=small_study)
    vote_by_truth(small_study, truth_of(small_study), 50)
    with pytest.raises(ApplicationError, match="at least 100 bootstrap rounds"):
        bt_fit.study_fit_bradley_terry(study=small_study, rounds=50)
    assert not BradleyTerryFit.objects.exists()


def test_fit_bradley_terry_command_reports_convergence(small_study):
    vote_by_truth(small_study, truth_of(small_study), 3000)
    output = run("fit_bradley_terry", "s1", "--rounds", "120", "--seed", "2")
    assert "Bradley–Terry (per reference) over 3000 judgment(s), 8 image(s), 120 bootstrap rounds" in output
    fit = BradleyTerryFit.objects.get()
    assert f"median {fit.median_ci:.1f}, widest {fit.widest_ci:.1f} Elo points" in output
    assert f"Kendall distance between bootstrap replicates {fit.kendall:.4f}" in output
    assert ("precision goal: DONE" in output) == fit.done
    # A loose goal is reached, a strict one is not.
    Study.objects.filter(pk=small_study.pk).update(target_ci_width=10_000, target_kendall=0.5)
    assert "precision goal: DONE" in run("fit_bradley_terry", "s1")
    Study.objects.filter(pk=small_study.pk).update(target_ci_width=1)
    assert "precision goal: not done yet" in run("fit_bradley_terry", "s1")
    with pytest.raises(CommandError, match="at least 100"):
        run("fit_bradley_terry", "s1", "--rounds", "10")
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        run("fit_bradley_terry", "nope")


def test_export_refits_only_when_the_log_changed(small_study):
    vote_by_truth(small_study, truth_of(small_study), 100)
    first = run("export_mos", "s1")
    assert BradleyTerryFit.objects.count() == 1
    assert run("export_mos", "s1") == first and BradleyTerryFit.objects.count() == 1
    vote_by_truth(small_study, truth_of(small_study), 10, seed=5)
    stale = [line.split(",") for line in run("export_mos", "s1", "--no-refit").splitlines()[1:]]
    old = [line.split(",") for line in first.splitlines()[1:]]
    # columns 11-13: mos_bt, ci_low, ci_high; 6-10: elo, mos, mos_sd, judgments, raters; 14: bt_fit
    assert [row[11:14] for row in stale] == [row[11:14] for row in old]  # the stored fit, as asked
    assert {row[14] for row in old} == {"current"} and {row[14] for row in stale} == {"stale"}  # and marked
    assert [row[6:11] for row in stale] != [row[6:11] for row in old]  # while Elo moved on
    assert BradleyTerryFit.objects.count() == 1
    run("export_mos", "s1")
    assert BradleyTerryFit.objects.count() == 2


def test_the_fit_runs_as_a_celery_task(small_study):
    from annotation.tasks import fit_bradley_terry

    vote_by_truth(small_study, truth_of(small_study), 100)
    result = fit_bradley_terry.delay(small_study.id).get()
    fit = BradleyTerryFit.objects.get()
    assert result == {"fit": fit.pk, "judgments": 100, "done": fit.done}


def test_create_study_sets_the_policy_and_the_precision_goal(db):
    output = run(
        "create_study",
        "goal",
        "--pair-policy",
        "active",
        "--bt-rounds",
        "250",
        "--target-ci-width",
        "80",
        "--target-kendall",
        "0.02",
        "--bt-scope",
        "global",
    )
    assert "created study goal" in output
    study = Study.objects.get(slug="goal")
    assert (study.pair_policy, study.bt_rounds, study.target_ci_width, study.target_kendall, study.bt_scope) == (
        "active",
        250,
        80,
        0.02,
        "global",
    )
    with pytest.raises(CommandError, match="greater than or equal to 100"):
        run("create_study", "few", "--bt-rounds", "50")
    assert not Study.objects.filter(slug="few").exists()
