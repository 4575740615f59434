"""simulate_study on the acr, dcr and rank-k protocols: synthetic raters with known biases and
inconsistencies answer through the real scheduler and vote service, and the analysis recovers the
truth (issue 19)."""

import re

import pytest
from django.core.management import call_command

from annotation.models import Ranking, Rater, Rating
from annotation.studies import study_create
from dashboard.protocol_simulation import simulate_protocol_study
from tests.factories import import_folder, make_pipal_folder, type_levels

pytestmark = pytest.mark.django_db


def simulated_study(tmp_path, protocol: str, **options):
    study = study_create(
        slug=f"sim-{protocol}",
        protocol=protocol,
        training_trials=1,
        gold_every=4,
        min_vote_interval_ms=0,
        trials_per_rater=12,
        **options,
    )
    # 3 references x 6 versions = 18 images
    import_folder(study, make_pipal_folder(tmp_path / protocol, references=3, combos=type_levels(6)))
    return study


def test_acr_simulation_recovers_the_truth_and_the_rater_biases(tmp_path):
    study = simulated_study(tmp_path, "acr")
    report = simulate_protocol_study(study=study, per_image=12, seed=1, bias=0.6, inconsistency=0.5)
    assert report.entries_added == Rating.objects.filter(study=study).count() == 12 * 18
    # Each rater rates 12 of 18 images: an incomplete design, yet both estimates follow the truth.
    assert report.mos.srcc > 0.8
    assert report.model is not None and report.model.srcc > 0.8
    # Biases planted N(0, 0.6²) on a 5-point scale come back within 0.25 on average (measured: ~0.1).
    assert report.bias_error is not None and report.bias_error < 0.25
    assert report.excluded == 0  # good raters answer the checks right


def test_random_raters_are_screened_out_by_the_hidden_checks(tmp_path):
    study = simulated_study(tmp_path, "dcr")
    report = simulate_protocol_study(study=study, per_image=6, seed=2, random_share=0.5, raters=12)
    random_raters = Rater.objects.filter(study=study, synthetic=True).exclude(external_id__in=report.planted)
    assert random_raters.exists()
    # A random rater passes a practice trial by chance but fails a trap 60% of the time (3 of 5 categories).
    assert report.excluded >= 1
    assert not Rater.objects.filter(external_id__in=report.planted, excluded=True).exists()


def test_rank_k_simulation_recovers_the_order_with_plackett_luce(tmp_path):
    study = simulated_study(tmp_path, "rank-k", rank_k=3)
    report = simulate_protocol_study(study=study, per_image=15, seed=3, inconsistency=0.7)
    assert report.entries_added == Ranking.objects.filter(study=study).count() == 15 * 18 // 3
    assert report.model is not None and report.model.srcc_per_group > 0.7
    assert report.mos.srcc_per_group > 0.7


def test_the_command_prints_both_agreements(tmp_path, capsys):
    simulated_study(tmp_path, "acr", scale="real-fake-4")
    call_command("simulate_study", "sim-acr", "--judgments-per-image", "6", "--seed", "4")
    out = capsys.readouterr().out
    assert re.search(r"108 rating\(s\) added over 18 image\(s\)", out)
    assert "plain MOS: SRCC" in out and "subject model (sureal MLE): SRCC" in out
    assert "rater biases recovered" in out
