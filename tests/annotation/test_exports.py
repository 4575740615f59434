"""The MOS export says what it is: spread and rater count per image, a sidecar of the
settings that shaped it, and whether its Bradley–Terry columns come from a current fit."""

import csv
import io
import json
import statistics

import pytest
from django.core.management import call_command

from annotation.analysis import bt_fit
from annotation.analysis.exports import mos_csv, mos_export_metadata, mos_records
from annotation.models import DistortedImage, Rater
from annotation.raters import rater_create
from annotation.rating.votes import judgment_record

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def rows_of(text: str) -> dict[str, dict]:
    return {row["image"]: row for row in csv.DictReader(io.StringIO(text))}


def judge_reference_one(study, raters, rounds=3):
    """Each rater judges the R0001 images in a ring, ``rounds`` times round."""
    images = list(DistortedImage.objects.filter(study=study, reference__name="R0001").order_by("id"))
    for rater in raters:
        for i in range(rounds * len(images)):
            a, b = images[i % len(images)], images[(i + 1) % len(images)]
            judgment_record(study=study, image_a_id=a.id, image_b_id=b.id, a_wins=i % 3 == 0, rater=rater)
    return images


def test_records_give_the_spread_of_the_last_elo_values_and_distinct_raters(small_study):
    alice, _ = rater_create(study=small_study, external_id="alice")
    bob, _ = rater_create(study=small_study, external_id="bob")
    left_out, _ = rater_create(study=small_study, external_id="left-out")
    images = judge_reference_one(small_study, [alice, bob, left_out])
    Rater.objects.filter(pk=left_out.pk).update(excluded=True)
    call_command("recompute_mos", "s1", stdout=io.StringIO())
    # A replayed judgment names no rater: it counts as a judgment, not as a rater.
    judgment_record(study=small_study, image_a_id=images[0].id, image_b_id=images[1].id, a_wins=True)

    records = {record["image"]: record for record in mos_records(small_study)}
    first = DistortedImage.objects.get(pk=images[0].id)
    record = records[first.name]
    assert list(record) == [
        "reference", "image", "distortion_type", "category", "subtype", "level", "elo", "mos", "mos_sd",
        "judgments", "raters", "mos_bt", "ci_low", "ci_high",
    ]  # fmt: skip
    assert len(first.recent_elo) == small_study.mos_window
    assert record["mos_sd"] == pytest.approx(statistics.stdev(first.recent_elo))
    assert (record["elo"], record["mos"], record["judgments"]) == (first.elo, first.mos, first.judgment_count)
    assert record["raters"] == 2  # alice and bob; the excluded rater's votes are not counted
    unjudged = records["R0002_01_01.png"]
    assert (unjudged["mos_sd"], unjudged["raters"], unjudged["judgments"], unjudged["mos_bt"]) == (None, 0, 0, None)


def test_one_judgment_has_no_spread(small_study):
    images = list(DistortedImage.objects.filter(study=small_study).order_by("id"))
    judgment_record(study=small_study, image_a_id=images[0].id, image_b_id=images[1].id, a_wins=True)
    assert mos_records(small_study)[0]["mos_sd"] is None


def test_records_take_a_constant_number_of_queries(small_study, django_assert_max_num_queries):
    alice, _ = rater_create(study=small_study, external_id="alice")
    judge_reference_one(small_study, [alice])
    # Two: the images, the raters per image (never one per image).
    with django_assert_max_num_queries(2):
        assert len(mos_records(small_study)) == 8


def test_csv_keeps_its_columns_in_order_and_adds_spread_raters_and_fit_state(small_study):
    header = mos_csv(small_study).splitlines()[0].split(",")
    assert header == [
        "reference", "image", "distortion_type", "category", "subtype", "level", "elo", "mos", "mos_sd",
        "judgments", "raters", "mos_bt", "ci_low", "ci_high", "bt_fit",
    ]  # fmt: skip
    old = ["reference", "image", "distortion_type", "category", "subtype", "level", "elo", "mos", "judgments",
           "mos_bt", "ci_low", "ci_high"]  # fmt: skip
    assert [column for column in header if column in old] == old


def test_a_stale_fit_is_marked_per_row_and_in_the_sidecar_unless_refitted(small_study, tmp_path):
    alice, _ = rater_create(study=small_study, external_id="alice")
    images = judge_reference_one(small_study, [alice])
    assert {row["bt_fit"] for row in rows_of(mos_csv(small_study)).values()} == {"none"}  # no fit yet

    bt_fit.study_fit_bradley_terry(study=small_study, rounds=100)
    rows = rows_of(mos_csv(small_study))
    assert rows["R0001_01_01.png"]["bt_fit"] == "current" and rows["R0001_01_01.png"]["mos_bt"]
    # Never judged: a current fit has nothing to say about it.
    assert (rows["R0002_01_01.png"]["bt_fit"], rows["R0002_01_01.png"]["mos_bt"]) == ("none", "")

    # R0002 judged after the fit: its BT columns are blank, and now the rows say why.
    r2 = list(DistortedImage.objects.filter(study=small_study, reference__name="R0002").order_by("id"))
    judgment_record(study=small_study, image_a_id=r2[0].id, image_b_id=r2[1].id, a_wins=True, rater=alice)
    out = tmp_path / "mos.csv"
    run("export_mos", "s1", "--no-refit", "--out", str(out))
    rows = rows_of(out.read_text())
    assert {row["bt_fit"] for row in rows.values()} == {"stale"}
    assert rows[r2[0].name]["mos_bt"] == "" and rows[images[0].name]["mos_bt"] != ""
    sidecar = json.loads((tmp_path / "mos.csv.json").read_text())
    fit = small_study.bt_fits.first()
    assert sidecar["bt_stale"] is True and sidecar["bt_fit"] == "stale"
    assert sidecar["bt_fitted_at"] == fit.created_at.isoformat()
    assert (sidecar["bt_fit_judgments"], sidecar["judgments"]) == (12, 13)

    # The default refits first: every row current again, R0002's judged pair now measured.
    run("export_mos", "s1", "--out", str(out))
    rows = rows_of(out.read_text())
    assert rows[r2[0].name]["bt_fit"] == "current" and rows[r2[0].name]["mos_bt"] != ""
    sidecar = json.loads((tmp_path / "mos.csv.json").read_text())
    assert sidecar["bt_stale"] is False and sidecar["bt_fit_judgments"] == sidecar["judgments"] == 13


def test_excluding_a_rater_after_the_fit_makes_it_stale(small_study):
    alice, _ = rater_create(study=small_study, external_id="alice")
    bob, _ = rater_create(study=small_study, external_id="bob")
    judge_reference_one(small_study, [alice, bob])
    bt_fit.study_fit_bradley_terry(study=small_study, rounds=100)
    assert mos_export_metadata(small_study)["bt_stale"] is False
    Rater.objects.filter(pk=bob.pk).update(excluded=True)
    assert mos_export_metadata(small_study)["bt_stale"] is True


def test_sidecar_holds_the_settings_that_shaped_the_mos(small_study):
    small_study.elo_k, small_study.mos_window = 32, 5
    small_study.save()
    meta = mos_export_metadata(small_study)
    assert {key: meta[key] for key in ("slug", "name", "elo_m", "elo_k", "elo_initial", "mos_window")} == {
        "slug": "s1", "name": "Study one", "elo_m": 400, "elo_k": 32, "elo_initial": 1400, "mos_window": 5,
    }  # fmt: skip
    assert (meta["mos_source"], meta["bt_scope"], meta["bt_rounds"]) == ("elo", "reference", small_study.bt_rounds)
    assert (meta["judgments"], meta["images"], meta["bt_fitted_at"], meta["bt_stale"]) == (0, 8, None, False)
    assert meta["exported_at"]
    json.dumps(meta)  # the sidecar is plain JSON


def test_export_mos_out_into_a_folder_that_does_not_exist(small_study, tmp_path):
    out = tmp_path / "exports" / "2026" / "mos.csv"
    run("export_mos", "s1", "--out", str(out))
    assert out.read_text().startswith("reference,image,")
    assert json.loads((out.parent / "mos.csv.json").read_text())["slug"] == "s1"


def test_a_labels_study_gives_the_spread_its_labels_carried(small_study):
    small_study.mos_source = small_study.MosSource.LABELS
    small_study.save()
    DistortedImage.objects.filter(study=small_study, name="R0001_01_01.png").update(mos_std=0.3, recent_elo=[4.2])
    records = {record["image"]: record for record in mos_records(small_study)}
    assert records["R0001_01_01.png"]["mos_sd"] == 0.3 and records["R0001_01_02.png"]["mos_sd"] is None
