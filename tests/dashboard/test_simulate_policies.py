"""simulate_study's imperfect raters, Bradley–Terry agreement, QC recovery and
the pair-policy comparison on scratch copies."""

import io
import math
import random

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from annotation.analysis import elo
from annotation.analysis.replay import study_recompute_mos
from annotation.models import ControlPicture, DistortedImage, Judgment, Rater, ReferenceImage, Study
from annotation.studies import study_create
from dashboard import simulation
from dashboard.simulation import (
    GOOD,
    ONE_SIDE,
    RANDOM,
    RaterMix,
    RaterProfile,
    apply_qc,
    judgments_to_reach,
    simulate_study,
)
from tests.factories import import_folder, make_pipal_folder, plain_study

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def make_study(slug, folder, *, shuffle_seed=0, **fields):
    """A plain study of the folder's images with shuffle keys fixed by ``shuffle_seed``,
    so two studies of the same folder are scheduled alike."""
    study = plain_study(slug, **fields)
    random.seed(shuffle_seed)
    import_folder(study, folder)
    return study


def judgment_sequence(study):
    return [
        (j.image_a.name, j.image_b.name, j.winner.name, j.response_ms)
        for j in Judgment.objects.filter(study=study).select_related("image_a", "image_b", "winner").order_by("id")
    ]


# --- the choices before noise and bias existed, verbatim -------------------------------------


def old_draw(mix, rng):
    x = rng.random()
    return RANDOM if x < mix.random else ONE_SIDE if x < mix.random + mix.one_side else GOOD


def old_choose(behaviour, trial, truth, m, rng):
    if behaviour == ONE_SIDE:
        return "left"
    if behaviour == RANDOM:
        return rng.choice(["left", "right"])
    if trial.control is not None:
        wrong = "right" if trial.control.correct_side == "left" else "left"
        return trial.control.correct_side if rng.random() < simulation.GOOD_CONTROL_ACCURACY else wrong
    p_left = elo.win_probability(truth[trial.assignment.left_id], truth[trial.assignment.right_id], m)
    return "left" if rng.random() < p_left else "right"


def test_without_noise_and_bias_the_choices_are_the_old_ones(tmp_path, monkeypatch):
    # Training pairs but no gold pairs: a gold pair's slot depends on the rater's id, which differs between studies.
    folder = make_pipal_folder(tmp_path / "d", references=2, types=("01", "02", "03"))
    mix = RaterMix(random=0.3, one_side=0.2, noise=0.0, bias=0.0)
    assert mix == RaterMix(random=0.3, one_side=0.2)
    new = make_study("new", folder, trials_per_rater=25, training_trials=2)
    simulate_study(study=new, judgments_per_image=6, seed=11, mix=mix)
    with monkeypatch.context() as patch:
        patch.setattr(RaterMix, "draw_profile", lambda self, rng, perception: RaterProfile(old_draw(self, rng)))
        patch.setattr(
            simulation,
            "_choose",
            lambda profile, trial, truth, m, rng, perception: old_choose(profile.behaviour, trial, truth, m, rng),
        )
        old = make_study("old", folder, trials_per_rater=25, training_trials=2)
        simulate_study(study=old, judgments_per_image=6, seed=11, mix=mix)
    sequence = judgment_sequence(new)
    assert len(sequence) == 72 and sequence == judgment_sequence(old)
    assert {r.external_id: r.excluded for r in new.raters.all()} == {
        r.external_id: r.excluded for r in old.raters.all()
    }


def test_good_raters_draw_noise_and_bias_only_when_asked(tmp_path):
    rng = random.Random(5)
    profiles = [RaterMix(noise=100, bias=50).draw_profile(rng) for _ in range(400)]
    noise = [p.noise for p in profiles]
    assert min(noise) > 0 and len(set(noise)) == 400
    assert math.exp(sum(math.log(n / 100) for n in noise) / 400) == pytest.approx(1.0, abs=0.1)  # median ~ noise
    assert sum(p.bias for p in profiles) / 400 == pytest.approx(0.0, abs=10)
    assert (sum(p.bias**2 for p in profiles) / 400) ** 0.5 == pytest.approx(50, rel=0.15)
    bad = RaterMix(random=1.0, noise=100, bias=50).draw_profile(random.Random(1))
    assert bad == RaterProfile(RANDOM)  # bad raters have no perception to be noisy
    with pytest.raises(Exception, match="cannot be negative"):
        RaterMix(noise=-1)


def accuracy(study, truth) -> float:
    """The share of the study's votes that prefer the image with the higher true score."""
    votes = Judgment.objects.filter(study=study).values_list("image_a_id", "image_b_id", "winner_id")
    return sum(truth[w] > truth[b if w == a else a] for a, b, w in votes) / len(votes)


def test_noisy_and_biased_raters_agree_less_with_the_truth(tmp_path):
    # 2 references x 10 images; short quotas, so many raters and their noise levels and biases average out.
    folder = make_pipal_folder(tmp_path / "d", references=2, types=("01", "02", "03", "04", "05"))
    reports = {}
    for name, mix in (("clean", RaterMix()), ("noisy", RaterMix(noise=1000)), ("biased", RaterMix(bias=1000))):
        study = make_study(name, folder, trials_per_rater=10)
        reports[name] = simulate_study(study=study, judgments_per_image=10, seed=1, mix=mix)
    clean = reports["clean"]
    assert clean.raters == 20 and all(p == RaterProfile(GOOD) for p in clean.profiles.values())
    assert all(p.noise > 0 and p.bias == 0 for p in reports["noisy"].profiles.values())
    assert all(p.noise == 0 and p.bias != 0 for p in reports["biased"].profiles.values())
    pairs = [sequence[:2] for sequence in judgment_sequence(Study.objects.get(slug="clean"))]
    for name in ("noisy", "biased"):
        worse = reports[name]
        study = Study.objects.get(slug=name)
        # Noise and bias draw from a stream of their own: the same pairs as the clean run, vote for vote.
        assert [sequence[:2] for sequence in judgment_sequence(study)] == pairs
        assert accuracy(study, worse.truth) < accuracy(Study.objects.get(slug="clean"), clean.truth) - 0.05, name
        assert clean.agreement.srcc_per_group - worse.agreement.srcc_per_group > 0.1, name
        assert clean.agreement_bt.srcc_per_group - worse.agreement_bt.srcc_per_group > 0.1, name


def test_the_report_and_command_give_the_bradley_terry_agreement(small_study, tmp_path):
    output = run("simulate_study", "s1", "--judgments-per-image", "6", "--seed", "3", "--rater-noise", "50")
    assert "48 judgment(s) added" in output
    assert "Elo MOS: SRCC" in output and "Bradley–Terry: SRCC" in output
    report = simulate_study(study=small_study, judgments_per_image=6, seed=3)
    assert report.judgments_added == 0
    assert -1 <= report.agreement_bt.srcc <= 1 and report.agreement_bt.groups == 2
    # Images never judged get the prior's center, elo_initial.
    empty = make_study("empty", make_pipal_folder(tmp_path / "e"), elo_initial=1500)
    assert set(simulation.bt_scores(empty).values()) == {1500}
    with pytest.raises(CommandError, match="cannot be negative"):
        run("simulate_study", "s1", "--judgments-per-image", "6", "--rater-bias", "-5")


def test_apply_qc_excludes_one_side_raters_and_does_not_hurt(tmp_path):
    # Good raters see large differences (spread 600), so their votes alone rank well and the one-side
    # clickers' coin flips (60% of raters) are what costs agreement: in seeds 0-5 QC raised the mean
    # SRCC per reference by 0.06-0.30 for both estimators.
    folder = make_pipal_folder(tmp_path / "d", references=2, types=("01", "02", "03", "04", "05"))
    study = make_study("qc", folder, trials_per_rater=30)
    report = simulate_study(study=study, judgments_per_image=15, seed=1, mix=RaterMix(one_side=0.6), spread=600)
    one_side = [r for r, b in report.behaviours.items() if b == ONE_SIDE]
    assessed = [r for r in one_side if Judgment.objects.filter(rater_id=r).count() >= study.flag_min_trials]
    assert len(assessed) >= 3
    qc = apply_qc(study=study, report=report)
    excluded = set(Rater.objects.filter(study=study, excluded=True).values_list("id", flat=True))
    assert set(assessed) <= excluded and qc.excluded_bad >= len(assessed)
    assert qc.bad_raters == len(one_side) and qc.excluded_good == 0 and qc.flagged == len(excluded)
    assert qc.elo_after.srcc_per_group >= qc.elo_before.srcc_per_group
    assert qc.bt_after.srcc_per_group >= qc.bt_before.srcc_per_group
    assert Rater.objects.get(pk=assessed[0]).exclusion_reason == simulation.QC_REASON
    # The Elo MOS is the one rebuilt from the log without them.
    assert study_recompute_mos(study=study, write=False).differences == []


def test_apply_qc_command(tmp_path):
    folder = make_pipal_folder(tmp_path / "d", references=2, types=("01", "02", "03"))
    make_study("qcc", folder, trials_per_rater=30)
    output = run(
        "simulate_study", "qcc", "--judgments-per-image", "12", "--seed", "4", "--one-side-raters", "0.4", "--apply-qc"
    )
    assert "QC: excluded" in output and "bad" in output
    assert "QC Elo MOS: SRCC" in output and "QC Bradley–Terry: SRCC" in output


def test_judgments_to_reach_interpolates():
    curve = [(5, 0.5), (10, 0.7), (20, 0.9)]
    assert judgments_to_reach(curve, 0.8) == (pytest.approx(15.0), False)
    assert judgments_to_reach(curve, 0.7) == (10, False)
    assert judgments_to_reach(curve, 0.4) == (5, True)
    assert judgments_to_reach(curve, 0.95) == (None, False)
    assert judgments_to_reach([(5, float("nan")), (10, 0.6), (20, 0.8)], 0.7) == (pytest.approx(15.0), False)


def snapshot(study):
    images = DistortedImage.objects.filter(study=study).order_by("id")
    return (
        list(Judgment.objects.filter(study=study).order_by("id").values_list("id", "image_a_id", "winner_id")),
        list(images.values_list("id", "name", "file", "elo", "mos", "judgment_count", "recent_elo", "shuffle_key")),
        list(ReferenceImage.objects.filter(study=study).values_list("id", "file", "display")),
        list(Rater.objects.filter(study=study).values_list("id", "excluded")),
    )


def test_compare_policies_leaves_the_study_alone(small_study):
    run("simulate_study", "s1", "--judgments-per-image", "2", "--seed", "1")
    before, studies = snapshot(small_study), set(Study.objects.values_list("slug", flat=True))
    output = run(
        "simulate_study", "s1", "--compare-policies", "--judgments-per-image", "4", "--checkpoints", "2", "--seed", "5"
    )
    assert "Pair policies on scratch copies of s1 (8 image(s), 2 reference(s); seed 5)" in output
    rows = [line.split() for line in output.splitlines() if line.split()[:1] in (["2"], ["4"])]
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("2", "balanced", "16"),
        ("4", "balanced", "32"),
        ("2", "active", "16"),
        ("4", "active", "32"),
    ]
    assert "random pairing (balanced, Elo MOS) reaches SRCC" in output and "at N=4; active + BT " in output
    assert "balanced + BT (the baseline)" in output
    assert snapshot(small_study) == before
    assert set(Study.objects.values_list("slug", flat=True)) == studies
    assert DistortedImage.objects.count() == 8 and Judgment.objects.count() == 16
    for image in DistortedImage.objects.all():
        assert default_storage.exists(image.file.name)
    for reference in ReferenceImage.objects.all():
        assert default_storage.exists(reference.file.name)


def test_compare_policies_with_controls_cleans_its_own_control_pictures(tmp_path, media_root):
    folder = make_pipal_folder(tmp_path / "d", references=2, types=("01", "02"))
    study = study_create(slug="ctl", trials_per_rater=12, training_trials=1, gold_every=4)
    import_folder(study, folder)
    files = sorted(p.relative_to(media_root) for p in media_root.rglob("*") if p.is_file())
    result = simulation.compare_policies(study=study, checkpoints=[3], seed=2)
    assert [(p.policy, p.judgments) for p in result.points] == [("balanced", 24), ("active", 24)]
    assert len(result.headlines()) == 3 and all("at N=3;" in line for line in result.headlines())
    # The copies made control pictures of their own and deleted them; the study's files are all there.
    assert sorted(p.relative_to(media_root) for p in media_root.rglob("*") if p.is_file()) == files
    assert Study.objects.count() == 1 and not ControlPicture.objects.exists()


def test_compare_policies_refusals(small_study):
    with pytest.raises(CommandError, match="--compare-policies cannot use --truth-metric"):
        run("simulate_study", "s1", "--compare-policies", "--judgments-per-image", "4", "--truth-metric", "psnr")
    with pytest.raises(CommandError, match="--checkpoints applies to --compare-policies only"):
        run("simulate_study", "s1", "--judgments-per-image", "4", "--checkpoints", "2")
    with pytest.raises(CommandError, match="at most N=4"):
        run("simulate_study", "s1", "--compare-policies", "--judgments-per-image", "4", "--checkpoints", "2,5")
    with pytest.raises(CommandError, match="do not combine"):
        run("simulate_study", "s1", "--compare-policies", "--judgments-per-image", "4", "--apply-qc")
    assert Study.objects.count() == 1
