"""export_mos per protocol: acr/dcr write the mean score with its t interval and the subject model's
quality, rank-k the mean rank, Plackett–Luce and Borda, each with a sidecar; --raters writes the
screening; a pairwise study's export is the one it always was."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from scipy import stats

from annotation.analysis import synthetic_raters
from annotation.analysis.exports import CSV_COLUMNS, mos_csv, mos_export_metadata
from annotation.analysis.protocol_results import protocol_results, rankings_of, ratings_frame, study_refresh_scores
from annotation.models import DistortedImage, Ranking, Rater, Rating, Study
from annotation.rating.votes import judgment_record
from tests.factories import rater

pytestmark = pytest.mark.django_db

A, B, C, D = "R0001_01_01.png", "R0001_01_02.png", "R0001_02_01.png", "R0001_02_02.png"
IMAGE_COLUMNS = ["reference", "image", "distortion_type", "distortion_name", "category", "subtype", "level"]


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def rows_of(text: str) -> dict[str, dict]:
    return {row["image"]: row for row in csv.DictReader(io.StringIO(text))}


def ids(study, *names) -> list[int]:
    by_name = dict(DistortedImage.objects.filter(study=study).values_list("name", "id"))
    return [by_name[name] for name in names]


def with_protocol(study: Study, protocol: str) -> Study:
    study.protocol = protocol
    study.save()
    return study


def rate(study, scores: list[tuple[str, str, float]]) -> None:
    """Imported ratings (rater id, image, score), then the study's scores from the log."""
    image_ids = dict(DistortedImage.objects.filter(study=study).values_list("name", "id"))
    Rating.objects.bulk_create(
        Rating(study=study, external_rater=who, image_id=image_ids[name], score=score, source="import")
        for who, name, score in scores
    )
    study_refresh_scores(study)


@pytest.fixture
def acr_study(small_study):
    with_protocol(small_study, Study.Protocol.ACR)
    # A: 5, 4, 3 (mean 4, SD 1); B: 2, 2 (SD 0); C: 4, 2, 3, 3; D and R0002's images unrated.
    rate(
        small_study,
        [("r1", A, 5), ("r2", A, 4), ("r3", A, 3), ("r1", B, 2), ("r2", B, 2),
         ("r1", C, 4), ("r2", C, 2), ("r3", C, 3), ("r4", C, 3)],
    )  # fmt: skip
    return small_study


def test_acr_export_gives_mean_sd_t_interval_and_the_subject_models_quality(acr_study):
    text = run("export_mos", "s1")

    header = text.splitlines()[0].split(",")
    assert header == [*IMAGE_COLUMNS, "mos", "sd", "n", "ci_low", "ci_high", "mle_quality", "mle_ci_low", "mle_ci_high"]
    rows = rows_of(text)
    assert list(rows) == sorted(rows)  # by reference, then image name
    a, b, c, d = rows[A], rows[B], rows[C], rows[D]
    assert (a["reference"], a["distortion_type"], a["distortion_name"], a["level"]) == ("R0001", "01", "Type 01", "1")
    assert (a["category"], a["subtype"]) == ("traditional", "sub01")
    # Student's t: 4 ± t(0.975, 2) · 1 / √3 = 4 ± 4.3027 · 0.5774 = 4 ± 2.4841.
    assert [a[key] for key in ("mos", "sd", "n", "ci_low", "ci_high")] == ["4.0000", "1.0000", "3", "1.5159", "6.4841"]
    assert [b[key] for key in ("mos", "sd", "n", "ci_low", "ci_high")] == ["2.0000", "0.0000", "2", "2.0000", "2.0000"]
    # C: 4, 2, 3, 3: mean 3, SD sqrt(2/3) = 0.8165, 3 ± t(0.975, 3) 3.1824 · 0.8165 / 2.
    assert [c[key] for key in ("mos", "sd", "n", "ci_low", "ci_high")] == ["3.0000", "0.8165", "4", "1.7008", "4.2992"]
    # Nine scores are too few for the full subject model; the fit falls back to sureal's P.910 Annex E
    # model (rater bias and inconsistency only), whose quality keeps the MOS order A > C > B.
    quality = {name: float(row["mle_quality"]) for name, row in ((A, a), (B, b), (C, c))}
    assert quality[A] > quality[C] > quality[B]
    assert all(float(row["mle_ci_low"]) <= float(row["mle_quality"]) <= float(row["mle_ci_high"]) for row in (a, b, c))
    blank = rows_of(run("export_mos", "s1", "--no-subject-model"))
    assert {blank[A]["mle_quality"], blank[A]["mos"]} == {"", "4.0000"}
    # An unrated image: no values, n = 0.
    assert [d[key] for key in ("mos", "sd", "n", "ci_low", "mle_quality")] == ["", "", "0", "", ""]


def test_the_subject_models_quality_follows_the_truth_with_raters_enough(small_study):
    with_protocol(small_study, Study.Protocol.ACR)
    names = sorted(DistortedImage.objects.filter(study=small_study).values_list("name", flat=True))
    truth = dict(zip(names, np.linspace(1.5, 4.5, len(names)).tolist(), strict=True))
    panel = [synthetic_raters.SyntheticRater(f"r{i}", bias, 0.3) for i, bias in enumerate([-0.5, 0, 0, 0.5] * 3)]
    frame = synthetic_raters.category_scores(truth, panel, (1, 2, 3, 4, 5), np.random.default_rng(3))
    rate(small_study, list(frame.itertuples(index=False)))

    rows = rows_of(run("export_mos", "s1"))

    quality = [float(rows[name]["mle_quality"]) for name in names]
    assert stats.spearmanr(quality, [truth[name] for name in names]).statistic > 0.95
    for row in rows.values():
        assert float(row["mle_ci_low"]) <= float(row["mle_quality"]) <= float(row["mle_ci_high"])


def test_acr_sidecar_says_protocol_scale_and_counts(acr_study, tmp_path):
    left_out = rater(acr_study, "live")
    Rater.objects.filter(pk=left_out.pk).update(excluded=True)
    Rating.objects.create(study=acr_study, rater=left_out, image_id=ids(acr_study, D)[0], score=1)
    out = tmp_path / "out" / "mos.csv"
    run("export_mos", "s1", "--out", str(out))

    meta = json.loads((tmp_path / "out" / "mos.csv.json").read_text())
    assert (meta["protocol"], meta["scale"]["name"], meta["entries"]) == ("acr", "acr-5", "ratings")
    assert [c["value"] for c in meta["scale"]["categories"]] == [1, 2, 3, 4, 5]
    assert (meta["counted"], meta["excluded"], meta["live"], meta["imported"]) == (9, 1, 1, 9)
    assert (meta["raters"], meta["images"], meta["images_measured"], meta["level"]) == (4, 8, 3, 0.95)
    assert meta["exported_at"] and "mle_quality" in meta["columns"]
    # The excluded rater's rating of D is not counted.
    assert rows_of(out.read_text())[D]["n"] == "0"


def test_the_export_is_the_same_twice(acr_study, tmp_path):
    assert run("export_mos", "s1") == run("export_mos", "s1")


def test_raters_writes_the_screening_table(acr_study, tmp_path):
    path = tmp_path / "raters.csv"
    run("export_mos", "s1", "--raters", str(path))

    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    assert list(rows[0]) == [
        "rater", "n", "bt500_p", "bt500_q", "bt500_rejected", "pcc", "pcc_rejected", "bias", "bias_std",
        "inconsistency", "inconsistency_std", "bias_outlier", "inconsistency_outlier", "flagged", "reason",
    ]  # fmt: skip
    assert [(row["rater"], row["n"]) for row in rows] == [("r1", "3"), ("r2", "3"), ("r3", "2"), ("r4", "1")]
    assert {row["bt500_rejected"] for row in rows} <= {"true", "false"}


def test_ratings_frame_names_live_raters_by_their_id_and_leaves_excluded_ones_out(acr_study):
    live = rater(acr_study, "prolific-7")
    Rating.objects.create(study=acr_study, rater=live, image_id=ids(acr_study, D)[0], score=5)
    assert ratings_frame(acr_study).iloc[-1].tolist() == ["prolific-7", D, 5.0]
    Rater.objects.filter(pk=live.pk).update(excluded=True)
    assert "prolific-7" not in set(ratings_frame(acr_study)["rater"])
    assert "prolific-7" in set(ratings_frame(acr_study, counted_only=False)["rater"])


# --- rank-k -------------------------------------------------------------------------------------


@pytest.fixture
def rank_study(small_study):
    with_protocol(small_study, Study.Protocol.RANK_K)
    orders = [(A, B, C, D), (A, B, C, D), (A, B, D, C), (B, A, C, D), (A, C)]
    reference = small_study.references.get(name="R0001")
    Ranking.objects.bulk_create(
        Ranking(study=small_study, external_rater=f"r{i}", reference=reference, order=ids(small_study, *order))
        for i, order in enumerate(orders)
    )
    study_refresh_scores(small_study)
    return small_study


def test_rank_k_export_gives_mean_rank_plackett_luce_and_borda(rank_study):
    text = run("export_mos", "s1")

    assert text.splitlines()[0].split(",") == [
        *IMAGE_COLUMNS, "mean_rank", "n", "pl_score", "pl_ci_low", "pl_ci_high", "borda",
    ]  # fmt: skip
    rows = rows_of(text)
    a, b, c, d = rows[A], rows[B], rows[C], rows[D]
    # A: positions 1, 1, 1, 2 in the 4-rankings, 1 in the pair.
    assert (a["mean_rank"], a["n"]) == (f"{(1 + 1 + 1 + 2 + 1) / 5:.4f}", "5")
    assert a["borda"] == f"{(1 + 1 + 1 + 2 / 3 + 1) / 5:.4f}"
    # C: positions 3, 3, 4, 3, then 2 of 2.
    assert (c["mean_rank"], c["n"]) == (f"{(3 + 3 + 4 + 3 + 2) / 5:.4f}", "5")
    assert c["borda"] == f"{(1 / 3 + 1 / 3 + 0 + 1 / 3 + 0) / 5:.4f}"
    assert (d["mean_rank"], d["n"], d["borda"]) == ("3.7500", "4", f"{(0 + 0 + 1 / 3 + 0) / 4:.4f}")
    scores = [float(row["pl_score"]) for row in (a, b, c, d)]
    assert scores == sorted(scores, reverse=True)
    for row in (a, b, c, d):
        assert float(row["pl_ci_low"]) <= float(row["pl_score"]) <= float(row["pl_ci_high"])
    assert [rows["R0002_01_01.png"][key] for key in ("mean_rank", "n", "pl_score", "borda")] == ["", "0", "", ""]


def test_rank_k_stored_scores_match_the_export(rank_study):
    results = protocol_results(rank_study).set_index("image")
    for image in DistortedImage.objects.filter(study=rank_study, judgment_count__gt=0):
        assert image.judgment_count == results.at[image.name, "n"]
        assert image.mos == pytest.approx(results.at[image.name, "borda"])
        assert image.mos_bt == pytest.approx(results.at[image.name, "pl_score"])
        assert (image.bt_ci_low, image.bt_ci_high) == pytest.approx(
            (results.at[image.name, "pl_ci_low"], results.at[image.name, "pl_ci_high"])
        )
    assert rankings_of(rank_study)[-1] == [A, C]


def test_rank_k_screening_gives_each_raters_agreement_with_the_plackett_luce_order(rank_study, tmp_path):
    path = tmp_path / "raters.csv"
    run("export_mos", "s1", "--raters", str(path), "--out", str(tmp_path / "mos.csv"))
    rows = {row["rater"]: row for row in csv.DictReader(io.StringIO(path.read_text()))}
    assert list(rows["r0"]) == ["rater", "n", "agreement", "min_agreement"]
    # r0 ranks in the fitted order (tau 1); r2 swaps C and D, r3 swaps A and B: 5 of 6 pairs agree.
    assert (rows["r0"]["n"], rows["r0"]["agreement"]) == ("1", "1.0000")
    assert rows["r2"]["agreement"] == rows["r3"]["agreement"] == f"{(5 - 1) / 6:.4f}"
    meta = json.loads((tmp_path / "mos.csv.json").read_text())
    assert (meta["protocol"], meta["scale"], meta["entries"], meta["counted"]) == ("rank-k", None, "rankings", 5)
    assert (meta["pl_rounds"], meta["pl_seed"]) == (rank_study.bt_rounds, 0)


# --- pairwise: unchanged ------------------------------------------------------------------------


def test_a_pairwise_export_is_unchanged(small_study, tmp_path):
    alice = rater(small_study, "alice")
    images = list(DistortedImage.objects.filter(study=small_study).order_by("id"))
    for i in range(12):
        a, b = images[i % 4], images[(i + 1) % 4]
        judgment_record(study=small_study, image_a_id=a.id, image_b_id=b.id, a_wins=i % 3 == 0, rater=alice)
    out = tmp_path / "mos.csv"
    run("export_mos", "s1", "--out", str(out))

    text = out.read_text()
    assert text == mos_csv(small_study)
    assert text.splitlines()[0].split(",") == list(CSV_COLUMNS)
    meta = json.loads((tmp_path / "mos.csv.json").read_text())
    assert set(meta) == set(mos_export_metadata(small_study))
    assert "protocol" not in meta
    with pytest.raises(CommandError, match="is pairwise; rater screening is for acr, dcr and rank-k"):
        run("export_mos", "s1", "--raters", str(tmp_path / "raters.csv"))
