"""The management commands: their arguments, outputs and refusals are a contract."""

import io
import statistics

import pytest
from django.core.management import CommandError, call_command

from annotation.analysis import elo
from annotation.models import DistortedImage, Judgment, Rater, Study
from annotation.raters import rater_create
from annotation.rating.votes import judgment_record
from annotation.studies import study_create
from tests.factories import make_pipal_folder

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_study_with_custom_elo():
    assert "M=300, K=32, start=1500, MOS window=5" in run(
        "create_study", "x", "--elo-m", "300", "--elo-k", "32", "--elo-initial", "1500", "--mos-window", "5"
    )
    study = Study.objects.get(slug="x")
    assert (study.elo_m, study.elo_k, study.elo_initial, study.mos_window) == (300, 32, 1500, 5)
    with pytest.raises(CommandError, match="already exists"):
        run("create_study", "x")
    with pytest.raises(CommandError, match="must be positive"):
        run("create_study", "y", "--elo-k", "0")


def test_import_images_command(tmp_path):
    run("create_study", "x", "--elo-initial", "1500")
    output = run("import_images", "x", str(make_pipal_folder(tmp_path / "d")))
    assert "imported 2 reference(s) and 8 distorted image(s)" in output
    assert set(DistortedImage.objects.values_list("elo", flat=True)) == {1500}
    assert "0 distorted image(s)" in run("import_images", "x", str(tmp_path / "d"))
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        run("import_images", "nope", str(tmp_path / "d"))
    with pytest.raises(CommandError, match="is not a folder"):
        run("import_images", "x", str(tmp_path / "missing"))


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_replay_judgments_goes_through_the_engine(small_study, tmp_path):
    log = write(
        tmp_path,
        "log.csv",
        "image_a,image_b,winner,rater\n"
        "R0001_01_01.png,R0001_01_02.png,a,lab-1\n"
        "R0001_01_02.png,R0001_02_01.png,b,lab-2\n"
        "R0002_02_02.png,R0002_01_01.png,a,\n",
    )
    assert "applied 3 judgment(s)" in run("replay_judgments", "s1", str(log))
    names = dict(DistortedImage.objects.values_list("name", "id"))
    expected = elo.replay(
        [
            (names["R0001_01_01.png"], names["R0001_01_02.png"], True),
            (names["R0001_01_02.png"], names["R0001_02_01.png"], False),
            (names["R0002_02_02.png"], names["R0002_01_01.png"], True),
        ],
        names.values(),
        small_study.elo_params,
    )
    for image in DistortedImage.objects.all():
        assert (image.elo, image.judgment_count, image.recent_elo) == (
            expected[image.id].elo,
            expected[image.id].judgments,
            expected[image.id].recent,
        )
    assert list(Judgment.objects.values_list("rater__external_id", flat=True)) == ["lab-1", "lab-2", None]
    assert Rater.objects.filter(study=small_study).count() == 2


def test_replay_judgments_refuses_bad_files_whole(small_study, tmp_path):
    bad = write(
        tmp_path,
        "bad.csv",
        "image_a,image_b,winner\n"
        "R0001_01_01.png,R0001_01_02.png,a\n"
        "R0001_01_01.png,R0001_01_02.png,c\n"
        "R0001_01_01.png\n",
    )
    with pytest.raises(CommandError) as error:
        run("replay_judgments", "s1", str(bad))
    assert "line 3: winner must be 'a', 'b' or 'tie'" in str(error.value) and "line 4: expected 3 fields" in str(
        error.value
    )
    unknown = write(
        tmp_path,
        "unknown.csv",
        "image_a,image_b,winner\nR0001_01_01.png,R0001_01_02.png,a\nR0001_01_01.png,nope.png,b\n"
        "R0001_01_01.png,R0002_01_01.png,a\n",
    )
    with pytest.raises(CommandError) as error:
        run("replay_judgments", "s1", str(unknown))
    assert "line 3: image_b 'nope.png' is not an image" in str(error.value)
    assert "line 4: R0001_01_01.png and R0002_01_01.png have different references" in str(error.value)
    header = write(tmp_path, "header.csv", "left,right,winner\n")
    with pytest.raises(CommandError, match="missing: image_a, image_b"):
        run("replay_judgments", "s1", str(header))
    assert Judgment.objects.count() == 0
    assert set(DistortedImage.objects.values_list("elo", flat=True)) == {1400}


def record_some(study, count=20):
    images = list(DistortedImage.objects.filter(study=study, reference__name="R0001").order_by("id"))
    for i in range(count):
        a, b = images[i % len(images)], images[(i + 1) % len(images)]
        judgment_record(study=study, image_a_id=a.id, image_b_id=b.id, a_wins=i % 3 == 0)


def test_recompute_mos_reports_and_repairs_differences(small_study):
    record_some(small_study)
    assert "no difference" in run("recompute_mos", "s1")
    DistortedImage.objects.filter(name="R0001_01_01.png").update(elo=1234.5)
    check = run("recompute_mos", "s1", "--check")
    assert "1 image(s) differ" in check and "R0001_01_01.png: live 1234.5000" in check and "nothing changed" in check
    assert DistortedImage.objects.get(name="R0001_01_01.png").elo == 1234.5
    assert "were replaced" in run("recompute_mos", "s1")
    assert "no difference" in run("recompute_mos", "s1")


def test_recompute_leaves_out_excluded_raters(small_study):
    images = list(DistortedImage.objects.filter(reference__name="R0001").order_by("id"))
    good, _ = rater_create(study=small_study, external_id="good")
    bad, _ = rater_create(study=small_study, external_id="bad")
    judgment_record(study=small_study, image_a_id=images[0].id, image_b_id=images[1].id, a_wins=True, rater=good)
    judgment_record(study=small_study, image_a_id=images[0].id, image_b_id=images[1].id, a_wins=False, rater=bad)
    Rater.objects.filter(pk=bad.pk).update(excluded=True)
    run("recompute_mos", "s1")
    first = DistortedImage.objects.get(pk=images[0].id)
    assert (first.elo, first.judgment_count) == (1408, 1)


def test_export_mos_csv_is_deterministic(small_study, tmp_path):
    record_some(small_study)
    text = run("export_mos", "s1")
    lines = text.splitlines()
    assert lines[0] == (
        "reference,image,distortion_type,category,subtype,level,elo,mos,mos_sd,judgments,raters,mos_bt,ci_low,"
        "ci_high,bt_fit"
    )
    assert len(lines) == 9 and lines[1].startswith("R0001,R0001_01_01.png,01,traditional,sub01,1,")
    image = DistortedImage.objects.get(name="R0001_01_01.png")
    assert lines[1].split(",")[6:11] == [
        f"{image.elo:.4f}", f"{image.mos:.4f}", f"{statistics.stdev(image.recent_elo):.4f}",
        str(image.judgment_count), "0",  # judgment_record names no rater
    ]  # fmt: skip
    # The export fitted Bradley–Terry first (the log had changed); R0002 was never judged: no BT score.
    assert lines[1].split(",")[11:] == [
        f"{image.mos_bt:.4f}", f"{image.bt_ci_low:.4f}", f"{image.bt_ci_high:.4f}", "current"
    ]  # fmt: skip
    assert lines[-1].endswith(",,,,none")
    run("export_mos", "s1", "--out", str(tmp_path / "a.csv"))
    run("export_mos", "s1", "--out", str(tmp_path / "b.csv"))
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes() == text.encode()


def test_export_mos_pipal_labels(small_study, tmp_path):
    record_some(small_study)
    run("export_mos", "s1", "--format", "pipal", "--out", str(tmp_path / "labels"))
    files = sorted(p.name for p in (tmp_path / "labels").iterdir())
    assert files == ["R0001.txt", "R0002.txt"]
    lines = (tmp_path / "labels" / "R0001.txt").read_text().splitlines()
    image = DistortedImage.objects.get(name=lines[0].split(",")[0])
    assert len(lines) == 4 and lines[0] == f"{image.name},{image.mos:.4f}"
    with pytest.raises(CommandError, match="give --out DIR"):
        run("export_mos", "s1", "--format", "pipal")


def test_simulate_study_prints_agreement_with_truth(small_study):
    output = run("simulate_study", "s1", "--judgments-per-image", "10", "--seed", "3")
    assert "80 judgment(s) added; 80 in all over 8 image(s) (10.0 per image)" in output
    assert "SRCC" in output and "KRCC" in output and "mean over 2 references" in output
    # Re-running with the same N adds nothing: the target is N x images in total.
    assert "0 judgment(s) added" in run("simulate_study", "s1", "--judgments-per-image", "10", "--seed", "3")


def test_simulated_raters_can_follow_a_metric(small_study):
    """--truth-metric: the hidden scores order each reference's images as the metric does."""
    from dashboard.simulation import metric_truth
    from iqa.models import MetricScore

    with pytest.raises(CommandError, match="8 image\\(s\\) of study 's1' have no psnr score.*compute_scores s1"):
        run("simulate_study", "s1", "--judgments-per-image", "5", "--truth-metric", "psnr")
    with pytest.raises(CommandError, match="unknown metric 'psnrr'"):
        run("simulate_study", "s1", "--judgments-per-image", "5", "--truth-metric", "psnrr")
    call_command("compute_scores", "s1", "--metrics", "psnr", stdout=io.StringIO())
    truth = metric_truth(small_study, "psnr", spread=150)
    psnr = {score.image_sha256: score.value for score in MetricScore.objects.filter(metric="psnr")}
    for reference in small_study.references.all():
        images = list(reference.distorted.all())
        assert sorted(images, key=lambda i: truth[i.id]) == sorted(images, key=lambda i: psnr[i.sha256])
        assert sum(truth[i.id] for i in images) / len(images) == pytest.approx(small_study.elo_initial)
    output = run("simulate_study", "s1", "--judgments-per-image", "30", "--truth-metric", "psnr")
    assert "240 judgment(s) added" in output


def test_simulate_study_never_mixes_with_real_raters(small_study):
    record_some(small_study, count=1)
    with pytest.raises(CommandError, match="judgments from real raters"):
        run("simulate_study", "s1", "--judgments-per-image", "5")


def test_simulation_recovers_the_truth(tmp_path):
    from dashboard.simulation import simulate_study
    from tests.factories import import_folder

    study = study_create(slug="sim")
    types = ("01", "02", "03", "04", "05", "06")
    import_folder(study, make_pipal_folder(tmp_path / "d", references=3, types=types, levels=(1, 2)))
    report = simulate_study(study=study, judgments_per_image=39, seed=1)
    assert report.judgments_total == 39 * 36
    # A pure-Python Elo run with random pairs averages SRCC 0.93 within a
    # reference of 12 images at this depth (bench/simulate_accuracy.py); the
    # threshold leaves room for the run-to-run spread of 3 references.
    assert report.agreement.srcc_per_group > 0.75


def test_seed_demo_is_idempotent():
    assert "4 reference(s) and 48 image(s) added" in run("seed_demo")
    assert "0 reference(s) and 0 image(s) added, 52 already present" in run("seed_demo")
    assert Study.objects.get(slug="demo").images.filter(distortion_type__category="super_resolution").count() == 16
