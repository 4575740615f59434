"""import_labels: labelled datasets (PIPAL label files, MOS CSVs, BAPPS 2AFC triplets) become studies whose
MOS comes from the labels; all or nothing, errors with file and line, the export -> import round trip."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from annotation.imports import label_files, labels
from annotation.imports.folders import ImportFailed
from annotation.models import (
    DistortedImage,
    DistortionType,
    Judgment,
    LabelImport,
    Rater,
    ReferenceImage,
    Study,
    hash_token,
)
from annotation.rating.votes import judgment_record
from annotation.studies import LabelsStudy
from tests.factories import label_value, make_pipal_folder, pipal_set, png_bytes

pytestmark = pytest.mark.django_db


# --- helpers: small labelled sets built on the fly ------------------------------------


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def stored_files(media_root: Path) -> list[Path]:
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


def refused(*args, match: str | None = None) -> str:
    with pytest.raises(CommandError) as error:
        run(*args)
    if match:
        assert match in str(error.value), str(error.value)
    return str(error.value)


def assert_nothing_stored(media_root, slug="lab"):
    assert not Study.objects.filter(slug=slug).exists()
    assert ReferenceImage.objects.count() == DistortedImage.objects.count() == DistortionType.objects.count() == 0
    assert stored_files(media_root) == []


# --- pipal ------------------------------------------------------------------------------


def test_pipal_labels_become_the_mos(tmp_path):
    folder = pipal_set(tmp_path / "PIPAL")
    output = run("import_labels", "lab", str(folder), "--format", "pipal", "--name", "PIPAL labels")
    assert "imported 2 reference(s) and 8 image(s) into lab: MOS from the labels" in output
    study = Study.objects.get(slug="lab")
    assert (study.name, study.mos_source, study.mos_from_labels) == ("PIPAL labels", "labels", True)
    for image in DistortedImage.objects.filter(study=study):
        value = label_value(image.name)
        assert (image.mos, image.elo, image.recent_elo, image.label_value) == (value, value, [value], value)
        assert image.judgment_count == 1 and image.mos_std is None
    image = DistortedImage.objects.get(name="R0002_02_01.png")
    assert (image.reference.name, image.distortion_type.code, image.level) == ("R0002", "02", 1)
    assert image.distortion_type.category == "super_resolution"  # from distortion_types.csv
    record = LabelImport.objects.get(study=study)
    assert (record.format, record.references, record.images, record.judgments, record.left_out) == (
        "pipal",
        2,
        8,
        0,
        0,
    )
    assert record.label_files == ["Train_Label/R0001.txt", "Train_Label/R0002.txt"]
    assert Judgment.objects.count() == 0


def test_export_then_import_gives_back_the_same_numbers(small_study, tmp_path):
    images = list(DistortedImage.objects.filter(study=small_study).order_by("id"))
    for a, b, a_wins in [(0, 1, True), (1, 2, False), (2, 3, True), (4, 5, True), (6, 7, False), (0, 3, False)]:
        judgment_record(study=small_study, image_a_id=images[a].id, image_b_id=images[b].id, a_wins=a_wins)
    folder = tmp_path / "data"  # the folder small_study was imported from
    run("export_mos", "s1", "--format", "pipal", "--out", str(folder / "Train_Label"))
    run("import_labels", "copy", str(folder), "--format", "pipal")
    run("export_mos", "copy", "--format", "pipal", "--out", str(tmp_path / "again"))
    for path in sorted((folder / "Train_Label").iterdir()):
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes()
    original = {image.name: image.mos for image in DistortedImage.objects.filter(study=small_study)}
    copied = {image.name: image.mos for image in DistortedImage.objects.filter(study__slug="copy")}
    assert copied.keys() == original.keys()
    assert all(copied[name] == pytest.approx(original[name], abs=5e-5) for name in original)
    assert len({round(value, 4) for value in copied.values()}) > 2  # real Elo values, not all 1400


def test_the_real_download_layout_and_mos_scores_train(tmp_path):
    """NTIRE's PIPAL training split: Train_Ref/ (or Reference_train/), Distortion_1/ … (nested in
    Distortion/ in the authors' layout) and MOS_Scores_train/."""
    folder = pipal_set(tmp_path / "p", label_folder="MOS_Scores_train", type_csv=False)
    (folder / "Ref").rename(folder / "Reference_train")
    (folder / "Distortion" / "Distortion_1").mkdir(parents=True)
    (folder / "Distortion_2").mkdir()
    for n, path in enumerate(sorted((folder / "Dis").iterdir())):
        path.rename(folder / ("Distortion/Distortion_1" if n % 2 else "Distortion_2") / path.name)
    (folder / "Dis").rmdir()
    run("import_labels", "lab", str(folder), "--format", "pipal")
    assert DistortedImage.objects.filter(study__slug="lab").count() == 8
    assert DistortionType.objects.get(code="01").name == "type 01"
    assert LabelImport.objects.get().label_files[0] == "MOS_Scores_train/R0001.txt"


def test_pyiqa_flattened_csv(tmp_path):
    folder = make_pipal_folder(tmp_path / "p")
    rows = ["hq_name,dist_name,elo_score"]
    rows += [f"{p.name.split('_')[0]}.bmp,{p.name},{label_value(p.name)}" for p in sorted((folder / "Dis").iterdir())]
    (tmp_path / "meta_info_PIPALDataset.csv").write_text("\n".join(rows) + "\n")
    run(
        "import_labels",
        "lab",
        str(folder),
        "--format",
        "pipal",
        "--labels",
        str(tmp_path / "meta_info_PIPALDataset.csv"),
    )
    image = DistortedImage.objects.get(name="R0001_02_02.png")
    assert image.mos == label_value(image.name)
    (tmp_path / "bad.csv").write_text("hq_name,dist_name,elo_score\nR0002.bmp,R0001_01_01.png,1400\n")
    refused(
        "import_labels",
        "lab2",
        str(folder),
        "--format",
        "pipal",
        "--labels",
        str(tmp_path / "bad.csv"),
        match="bad.csv line 2: R0001_01_01.png belongs to reference R0001, not R0002",
    )


def test_malformed_label_lines_refuse_everything_naming_file_and_line(tmp_path, media_root):
    folder = pipal_set(tmp_path / "p")
    label = folder / "Train_Label" / "R0001.txt"
    lines = label.read_text().splitlines()
    lines[1] = "R0001_01_02.png;1400"  # no comma
    lines[2] = "R0001_02_01.png,high"  # not a number
    lines.append("R0001_09_01.png,1400.5")  # no such image
    lines.append("R0002_01_01.png,1400.5")  # another reference's image
    lines.append(lines[0])  # labelled twice
    label.write_text("\n".join(lines) + "\n")
    message = refused("import_labels", "lab", str(folder), "--format", "pipal", match="nothing was stored")
    for fragment in (
        "Train_Label/R0001.txt line 2: expected <image>,<mos>",
        "Train_Label/R0001.txt line 3: MOS 'high' is not a finite number",
        "Train_Label/R0001.txt line 5: R0001_09_01.png is not in Dis/",
        "Train_Label/R0001.txt line 6: R0002_01_01.png belongs to reference R0002, not R0001",
        "Train_Label/R0001.txt line 7: R0001_01_01.png is labelled twice (also Train_Label/R0001.txt line 1)",
    ):
        assert fragment in message, message
    assert_nothing_stored(media_root)


def test_a_corrupt_image_refuses_the_whole_import(tmp_path, media_root):
    folder = pipal_set(tmp_path / "p")
    data = (folder / "Dis" / "R0002_01_02.png").read_bytes()
    (folder / "Dis" / "R0002_01_02.png").write_bytes(data[: len(data) // 2])
    refused("import_labels", "lab", str(folder), "--format", "pipal", match="R0002_01_02.png: corrupt or truncated")
    assert_nothing_stored(media_root)


def test_a_failure_while_writing_leaves_no_study_and_no_files(tmp_path, media_root, monkeypatch):
    folder = pipal_set(tmp_path / "p")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(LabelImport.objects, "create", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run("import_labels", "lab", str(folder), "--format", "pipal")
    assert_nothing_stored(media_root)


def test_unlabelled_images_are_an_error_unless_allowed(tmp_path, media_root):
    folder = pipal_set(tmp_path / "p")
    (folder / "Dis" / "R0001_03_01.png").write_bytes(png_bytes(500))
    refused(
        "import_labels",
        "lab",
        str(folder),
        "--format",
        "pipal",
        match="Dis/R0001_03_01.png: has no label; give --allow-unlabelled",
    )
    assert_nothing_stored(media_root)
    output = run("import_labels", "lab", str(folder), "--format", "pipal", "--allow-unlabelled")
    assert "1 image(s) without a label left out" in output
    assert not DistortedImage.objects.filter(name="R0001_03_01.png").exists()
    assert LabelImport.objects.get().left_out == 1


def test_rerunning_an_import_is_refused_and_changes_nothing(tmp_path):
    folder = pipal_set(tmp_path / "p")
    run("import_labels", "lab", str(folder), "--format", "pipal")
    before = list(DistortedImage.objects.values_list("name", "mos"))
    refused("import_labels", "lab", str(folder), "--format", "pipal", match="already holds 8 image(s)")
    assert list(DistortedImage.objects.values_list("name", "mos")) == before
    assert LabelImport.objects.count() == 1
    # An empty study made beforehand (own name, Elo settings) is filled.
    run("create_study", "empty", "--name", "Made first")
    run("import_labels", "empty", str(folder), "--format", "pipal")
    assert Study.objects.get(slug="empty").mos_source == "labels"
    refused("import_labels", "Not a slug!", str(folder), "--format", "pipal", match="not a valid study slug")


def test_flags_that_do_not_fit_the_format_are_refused(tmp_path):
    folder = pipal_set(tmp_path / "p")
    refused("import_labels", "lab", str(folder), "--format", "pipal", "--votes", "2", match="--votes do(es) not apply")
    refused("import_labels", "lab", str(folder), "--format", "mos-csv", match="needs the score's direction")
    refused(
        "import_labels",
        "lab",
        str(folder),
        "--format",
        "mos-csv",
        "--higher-is-better",
        "--range",
        "5",
        "1",
        match="LOW must be below HIGH",
    )
    refused("import_labels", "lab", str(folder / "nope"), "--format", "pipal", match="no such file or folder")
    assert not Study.objects.exists()


# --- a labels study: no votes, no replays; benchmarks and trainers take it --------------


@pytest.fixture
def labels_study(tmp_path):
    run("import_labels", "lab", str(pipal_set(tmp_path / "p")), "--format", "pipal")
    return Study.objects.get(slug="lab")


def test_raters_cannot_join_or_vote_on_a_labels_study(labels_study, api, client):
    response = api.post("/api/studies/lab/raters/", {"external_id": "r1"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "imported_labels"
    assert "takes no votes: its MOS comes from imported labels" in response.json()["error"]["message"]
    # A rater row that exists anyway (made by hand) gets no pair and cannot vote.
    token = "t" * 40
    Rater.objects.create(study=labels_study, external_id="x", token_hash=hash_token(token))
    rater = APIClient()
    rater.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert rater.get("/api/studies/lab/pairs/next/").status_code == 409
    response = rater.post(
        "/api/studies/lab/votes/", {"assignment": "abc", "choice": "left", "response_ms": 900}, format="json"
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "imported_labels"
    images = list(labels_study.images.order_by("id")[:2])
    with pytest.raises(LabelsStudy):
        judgment_record(study=labels_study, image_a_id=images[0].id, image_b_id=images[1].id, a_wins=True)
    # The rater pages say so instead of showing the consent form.
    page = client.get("/study/lab/")
    assert page.status_code == 409 and "takes no ratings" in page.content.decode()
    assert client.post("/study/lab/", {"external_id": "r2", "consent": "on"}).status_code == 409
    assert client.get("/study/lab/rate/").status_code == 302
    assert Rater.objects.filter(study=labels_study).count() == 1 and Judgment.objects.count() == 0


def test_recompute_replay_and_simulation_refuse_a_labels_study(labels_study, tmp_path):
    refused("recompute_mos", "lab", match="has no judgment log to recompute: its MOS comes from imported labels")
    refused("recompute_mos", "lab", "--check", match="has no judgment log")
    log = tmp_path / "log.csv"
    log.write_text("image_a,image_b,winner\nR0001_01_01.png,R0001_01_02.png,a\n")
    refused("replay_judgments", "lab", str(log), match="takes no judgments")
    refused("simulate_study", "lab", "--judgments-per-image", "2", match="takes no votes")
    assert DistortedImage.objects.get(name="R0001_01_01.png").mos == label_value("R0001_01_01.png")


def test_admin_and_dashboard_show_that_the_mos_is_imported(labels_study, admin_client):
    listing = admin_client.get("/admin/annotation/study/").content.decode()
    assert "Imported labels" in listing
    change = admin_client.get(f"/admin/annotation/study/{labels_study.pk}/change/").content.decode()
    assert "Label imports (import_labels)" in change and "Train_Label/R0001.txt" in change
    progress = admin_client.get(f"/admin/annotation/study/{labels_study.pk}/progress/").content.decode()
    assert "MOS imported</strong> from labels" in progress and "no live Elo" in progress
    dashboard = admin_client.get("/study/lab/dashboard/").content.decode()
    assert "MOS imported</strong> from labels" in dashboard
    assert "MOS imported from labels" in admin_client.get("/").content.decode()


def test_a_labels_study_goes_through_compute_scores_run_benchmark_and_the_trainers_data(labels_study, tmp_path):
    from iqa.learned_data import study_mos_images
    from iqa.models import BenchmarkRun
    from iqa.services.rank_dataset_inputs import study_references

    call_command("compute_scores", "lab", "--metrics", "psnr", "--device", "cpu", stdout=io.StringIO())
    out = run("run_benchmark", "lab", "--metrics", "psnr", "--min-images", "3", "--resamples", "20")
    assert "psnr" in out
    assert BenchmarkRun.objects.get(study=labels_study).images == 8
    mos = {image.name: image.mos for image in study_mos_images(labels_study, min_judgments=1)}
    assert mos == {name: label_value(name) for name in mos} and len(mos) == 8
    assert [name for name, _ in study_references(labels_study)] == ["R0001", "R0002"]


# --- mos-csv ------------------------------------------------------------------------------


def mos_set(root: Path, *, live_style: bool = False) -> Path:
    """A TID2013-like set in one flat folder (or LIVE-like, images in per-distortion subfolders)."""
    root.mkdir(parents=True)
    rows = ["reference,image,mos,std,distortion_type"]
    seed = 0
    for ref in ("I01", "I02"):
        (root / f"{ref}.bmp").write_bytes(png_bytes(seed := seed + 1))
        for code in ("01", "02"):
            for level in (1, 2, 3):
                name = f"{code}/{ref.lower()}img{4 - level}.png" if live_style else f"{ref.lower()}_{code}_{level}.png"
                (root / name).parent.mkdir(exist_ok=True)
                (root / name).write_bytes(png_bytes(seed := seed + 1))
                rows.append(f"{ref}.bmp,{name},{10 * level + int(code)},{level / 10},{code}")
    (root / "mos.csv").write_text("\n".join(rows) + "\n")
    return root


def test_mos_csv_dmos_is_turned_round_within_its_range(tmp_path):
    folder = mos_set(tmp_path / "tid")
    (folder / "distortion_types.csv").write_text("id,name,category,subtype\n01,Gaussian noise,traditional,noise\n")
    run(
        "import_labels",
        "tid",
        str(folder / "mos.csv"),
        "--format",
        "mos-csv",
        "--lower-is-better",
        "--range",
        "0",
        "100",
    )
    image = DistortedImage.objects.get(name="i01_02_3.png")
    assert (image.label_value, image.mos, image.elo, image.mos_std) == (32, 100 - 32, 68, pytest.approx(0.3))
    assert (image.reference.name, image.distortion_type.code, image.level, image.judgment_count) == ("I01", "02", 3, 1)
    noise = DistortionType.objects.get(code="01")
    assert (noise.name, noise.category, noise.subtype) == ("Gaussian noise", "traditional", "noise")
    assert DistortionType.objects.get(code="02").name == "type 02"
    record = LabelImport.objects.get()
    assert record.options["direction"] == "lower_is_better" and record.options["stored_as"] == "0 + 100 - x"
    assert Study.objects.get(slug="tid").mos_source == "labels"
    # Without a range a DMOS is negated; a MOS is kept as it is.
    run("import_labels", "neg", str(folder / "mos.csv"), "--format", "mos-csv", "--lower-is-better")
    assert DistortedImage.objects.get(study__slug="neg", name="i01_02_3.png").mos == -32
    run("import_labels", "up", str(folder / "mos.csv"), "--format", "mos-csv", "--higher-is-better")
    assert DistortedImage.objects.get(study__slug="up", name="i01_02_3.png").mos == 32


def test_mos_csv_with_live_style_subfolders_and_ref_dis_layout(tmp_path):
    folder = mos_set(tmp_path / "live", live_style=True)
    run("import_labels", "live", str(folder / "mos.csv"), "--format", "mos-csv", "--higher-is-better")
    names = sorted(DistortedImage.objects.filter(study__slug="live").values_list("name", "level"))
    # Names that do not say the level: 1, 2, 3 in the CSV's order.
    assert names[:3] == [("01-i01img1.png", 3), ("01-i01img2.png", 2), ("01-i01img3.png", 1)]
    # Ref/ + Dis/ below --images, the CSV elsewhere.
    layout = tmp_path / "layout"
    (layout / "Ref").mkdir(parents=True)
    shutil.copytree(folder, layout / "Dis", ignore=shutil.ignore_patterns("*.bmp", "*.csv"))
    for ref in folder.glob("*.bmp"):
        shutil.copy(ref, layout / "Ref" / ref.name)
    run(
        "import_labels",
        "live2",
        str(folder / "mos.csv"),
        "--format",
        "mos-csv",
        "--higher-is-better",
        "--images",
        str(layout),
    )
    assert DistortedImage.objects.filter(study__slug="live2").count() == 12


def test_mos_csv_errors_name_the_line(tmp_path, media_root):
    folder = mos_set(tmp_path / "tid")
    rows = (folder / "mos.csv").read_text().splitlines()
    rows[2] = rows[2].replace(",21,", ",121,")  # out of range
    rows[3] = rows[3].replace(",0.3,", ",-1,")  # negative std
    rows[4] = rows[4].replace("i01_02_1.png", "missing.png")
    rows[5] = "I01.bmp,i01_02_2.png"  # too few fields
    rows.append(rows[6])  # labelled twice
    (folder / "mos.csv").write_text("\n".join(rows) + "\n")
    message = refused(
        "import_labels",
        "tid",
        str(folder / "mos.csv"),
        "--format",
        "mos-csv",
        "--higher-is-better",
        "--range",
        "0",
        "100",
    )
    for fragment in (
        "mos.csv line 3: mos 121 is outside --range 0 100",
        "mos.csv line 4: std '-1' is not a number >= 0",
        "mos.csv line 5: image file",
        "mos.csv line 6: expected 5 fields",
        "mos.csv line 14: image i01_02_3.png already labelled on line 7",
    ):
        assert fragment in message, message
    assert_nothing_stored(media_root, slug="tid")
    (folder / "other.csv").write_text("reference,image,dmos\nI01.bmp,i01_01_1.png,3\n")
    refused(
        "import_labels",
        "tid",
        str(folder / "other.csv"),
        "--format",
        "mos-csv",
        "--lower-is-better",
        match="other.csv line 1: the header must be reference,image,mos[,std][,distortion_type] (missing: mos; "
        "unknown: dmos)",
    )


# --- 2afc -----------------------------------------------------------------------------------


def bapps_subset(root: Path, judges: list[float], *, seed: int = 0) -> Path:
    for name in label_files.AFC_FOLDERS:
        (root / name).mkdir(parents=True)
    for n, judge in enumerate(judges):
        stem = f"{n:06d}"
        for offset, name in enumerate(("ref", "p0", "p1")):
            (root / name / f"{stem}.png").write_bytes(png_bytes(seed + 3 * n + offset, (16, 16)))
        np.save(root / "judge" / f"{stem}.npy", np.array([judge], dtype=np.float32))
    return root


def test_bapps_folders_become_judgments_through_the_elo_engine(tmp_path):
    from iqa.learned_data import study_triplets

    val = tmp_path / "2afc" / "val"
    bapps_subset(val / "traditional", [0.6, 0.0, 1.0])
    bapps_subset(val / "superres", [0.2, 0.8], seed=100)
    output = run("import_labels", "bapps", str(val), "--format", "2afc", "--votes", "5")
    assert "imported 5 reference(s) and 10 image(s) into bapps: 25 judgment(s) replayed" in output
    study = Study.objects.get(slug="bapps")
    assert study.mos_source == "elo"  # the judgments are the data; votes and recompute stay possible
    assert DistortionType.objects.get(study=study, code="superres").category == "super_resolution"
    triplets = {(t.reference, t.p0, t.p1): (t.judge, t.votes) for t in study_triplets(study)}
    assert triplets[
        ("traditional-000000", "traditional-000000_traditional_00.png", "traditional-000000_traditional_01.png")
    ] == (pytest.approx(0.6), 5)
    assert triplets[("superres-000001", "superres-000001_superres_00.png", "superres-000001_superres_01.png")] == (
        pytest.approx(0.8),
        5,
    )
    p0 = DistortedImage.objects.get(name="traditional-000002_traditional_00.png")
    p1 = DistortedImage.objects.get(name="traditional-000002_traditional_01.png")
    assert p1.mos > p0.mos and p0.judgment_count == p1.judgment_count == 5
    assert "live ratings equal the replay" in run("recompute_mos", "bapps", "--check")
    record = LabelImport.objects.get(study=study)
    assert record.judgments == 25 and record.label_files == ["superres/judge", "traditional/judge"]


def test_bapps_shares_that_votes_cannot_express_are_refused(tmp_path, media_root):
    subset = bapps_subset(tmp_path / "traditional", [0.5, 1.0, 1.5])
    (subset / "p1" / "000001.png").unlink()
    message = refused("import_labels", "lab", str(subset), "--format", "2afc")
    for fragment in (
        "judge/000000.npy: judge 0.5 x 1 vote(s) is not a whole number of votes; give --votes N",
        "judge/000002.npy: judge 1.5 is not in [0, 1]",
        "ref/000001.png: no 000001 in p1/",
    ):
        assert fragment in message, message
    assert_nothing_stored(media_root)


def test_2afc_csv_with_votes_and_shared_references(tmp_path):
    root = tmp_path / "pairs"
    root.mkdir()
    for n, name in enumerate(("ref.png", "a.png", "b.png", "c.png")):
        (root / name).write_bytes(png_bytes(n, (16, 16)))
    (root / "triplets.csv").write_text(
        "reference,p0,p1,judge,votes\nref.png,a.png,b.png,0.25,4\nref.png,b.png,c.png,1,2\nref.png,a.png,c.png,0,\n"
    )
    output = run("import_labels", "pairs", str(root / "triplets.csv"), "--format", "2afc")
    assert "imported 1 reference(s) and 3 image(s) into pairs: 7 judgment(s)" in output
    names = list(DistortedImage.objects.order_by("level").values_list("name", flat=True))
    assert names == ["ref_2afc_00.png", "ref_2afc_01.png", "ref_2afc_02.png"]
    wins = {}
    for judgment in Judgment.objects.select_related("winner"):
        wins[judgment.winner.name] = wins.get(judgment.winner.name, 0) + 1
    assert wins == {"ref_2afc_00.png": 4, "ref_2afc_01.png": 1, "ref_2afc_02.png": 2}
    (root / "bad.csv").write_text("reference,p0,p1,judge,votes\nref.png,a.png,a.png,0.5,2\nref.png,a.png,x.png,1,0\n")
    message = refused("import_labels", "pairs2", str(root / "bad.csv"), "--format", "2afc")
    assert "bad.csv line 2: p0 and p1 are the same file" in message
    assert "bad.csv line 3: votes '0' is not a whole number >= 1" in message


def test_reading_is_pure_and_lists_every_problem(tmp_path):
    """labels_read touches no database: what a test or another tool can call on its own."""
    folder = pipal_set(tmp_path / "p")
    (folder / "Train_Label" / "R0002.txt").write_text("R0002_01_01.png\n")
    with pytest.raises(ImportFailed) as error:
        labels.labels_read(folder, label_files.LabelOptions(format="pipal"))
    assert error.value.errors[0] == "Train_Label/R0002.txt line 1: expected <image>,<mos>, got 'R0002_01_01.png'"
    assert len(error.value.errors) == 5  # the bad line and R0002's four images without a label now


def test_a_pipal_download_is_a_table3_report_in_two_commands(db, tmp_path, monkeypatch, settings):
    """import_labels, then run_benchmark --metrics table3 --compute-missing (issue 10's 'done when')."""
    from pyiqa.utils import download_util

    monkeypatch.setattr(download_util, "DEFAULT_CACHE_DIR", str(tmp_path / "pyiqa-cache"))  # no cached weights
    settings.PIPAL_WEIGHTS_DIR = tmp_path / "weights"
    folder = pipal_set(tmp_path / "PIPAL", references=2, size=(176, 176))
    run("import_labels", "pipal", str(folder), "--format", "pipal")
    out, err = io.StringIO(), io.StringIO()
    call_command(
        "run_benchmark", "pipal", "--metrics", "table3", "--compute-missing", "--min-images", "3",
        "--resamples", "20", "--out", str(tmp_path / "report"), stdout=out, stderr=err,
    )
    assert "left out: lpips:" in err.getvalue() and "alexnet-owt-7be5be79.pth" in err.getvalue()
    report = (tmp_path / "report" / "benchmark.md").read_text()
    for name in ("psnr", "ssim", "ms_ssim", "vif", "fsim_gray", "fsim", "vsi"):
        assert f"| {name} ↑ | 8 |" in report, name
    assert "lpips" not in report
