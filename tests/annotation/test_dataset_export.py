"""export_dataset: a study written as PIPAL's release or as pyiqa's datasets/ folder, read back
unchanged by pyiqa's own loader and by import_labels; import_labels reads pyiqa's layout."""

from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from annotation.analysis.dataset_export import split_references
from annotation.models import DistortedImage, LabelImport, Study
from annotation.rating.votes import judgment_record
from core.errors import ApplicationError
from tests.factories import import_folder, label_value, make_pipal_folder, plain_study

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def judge_everything(study) -> None:
    """A ring of judgments within each reference, so every image has a MOS of its own."""
    for reference in study.references.all():
        images = list(DistortedImage.objects.filter(study=study, reference=reference).order_by("id"))
        for i in range(3 * len(images)):
            a, b = images[i % len(images)], images[(i + 1) % len(images)]
            judgment_record(study=study, image_a_id=a.id, image_b_id=b.id, a_wins=i % 3 != 1)


def pixels(path_or_file) -> np.ndarray:
    with Image.open(path_or_file) as image:
        return np.asarray(image.convert("RGB"))


def stored_pixels(image: DistortedImage) -> np.ndarray:
    with image.file.open("rb") as handle:
        return pixels(io.BytesIO(handle.read()))


def pyiqa_dataset(root: Path, phase: str, **extra):
    from pyiqa.data.general_fr_dataset import GeneralFRDataset

    return GeneralFRDataset(
        {
            "name": "PIPAL",
            "type": "GeneralFRDataset",
            "dataroot_target": str(root / "PIPAL" / "Dist_Imgs"),
            "dataroot_ref": str(root / "PIPAL" / "Train_Ref"),
            "meta_info_file": str(root / "meta_info" / "meta_info_PIPALDataset.csv"),
            "split_index": "official_split",
            "mos_range": [0, 1],
            "lower_better": False,
            "phase": phase,
            **extra,
        }
    )


def test_pyiqa_reads_the_export_with_its_own_pipal_loader(small_study, tmp_path):
    judge_everything(small_study)
    out = tmp_path / "datasets"
    output = run("export_dataset", "s1", "--layout", "pyiqa", "--out", str(out), "--split", "0.5", "0.5", "0")
    assert "wrote 2 reference(s) and 8 image(s)" in output and "(10 converted losslessly to BMP, 0 kept" in output
    assert "split_index: official_split" in output

    meta = list(csv.DictReader((out / "meta_info" / "meta_info_PIPALDataset.csv").open()))
    assert list(meta[0]) == ["hq_name", "dist_name", "elo_score", "official_split"]
    phases = {row["hq_name"]: row["official_split"] for row in meta}
    assert sorted(phases) == ["R0001.bmp", "R0002.bmp"] and sorted(phases.values()) == ["train", "val"]
    assert not list((tmp_path / "datasets").rglob("*.png"))  # no SHA-256 names, no PNG left

    images = {image.name.replace(".png", ".bmp"): image for image in DistortedImage.objects.filter(study=small_study)}
    seen = 0
    for phase in ("train", "val"):
        dataset = pyiqa_dataset(out, phase)
        assert len(dataset) == 4
        for index in range(len(dataset)):
            item = dataset[index]
            image = images[Path(item["img_path"]).name]
            assert phases[Path(item["ref_img_path"]).name] == phase
            assert float(item["mos_label"]) == pytest.approx(image.mos, abs=1e-4)
            # The same pixels as stored (PNG -> BMP is lossless), scaled to [0, 1] by pyiqa.
            expected = stored_pixels(image).astype(np.float32) / 255
            assert np.allclose(item["img"].permute(1, 2, 0).numpy(), expected, atol=1e-6)
            assert tuple(item["ref_img"].shape) == (3, 32, 32)
            seen += 1
    assert seen == 8
    assert len(pyiqa_dataset(out, "test")) == 0

    # The pickled split file older pyiqa versions load gives the same split.
    split_file = out / "meta_info" / "pipal_official_split.pkl"
    with open(split_file, "rb") as handle:
        assert set(pickle.load(handle)["official_split"]) == {"train", "val", "test"}
    by_file = pyiqa_dataset(out, "train", split_file=str(split_file))
    by_column = pyiqa_dataset(out, "train")
    assert [row[1] for row in by_file.paths_mos] == [row[1] for row in by_column.paths_mos]


def test_pipal_layout_is_the_release_layout_and_imports_back(small_study, tmp_path):
    judge_everything(small_study)
    DistortedImage.objects.filter(study=small_study, name="R0002_02_02.png").update(judgment_count=0)
    out = tmp_path / "pipal"
    output = run("export_dataset", "s1", "--layout", "pipal", "--out", str(out))
    assert "1 image(s) with fewer than 1 judgment(s) left out" in output
    assert sorted(p.name for p in (out / "Train_Ref").iterdir()) == ["R0001.bmp", "R0002.bmp"]
    assert len(list((out / "Train_Dis").iterdir())) == 7
    line = (out / "Train_Label" / "R0001.txt").read_text().splitlines()[0]
    image = DistortedImage.objects.get(study=small_study, name="R0001_01_01.png")
    assert line == f"R0001_01_01.bmp,{image.mos:.4f}"
    assert np.array_equal(pixels(out / "Train_Dis" / "R0001_01_01.bmp"), stored_pixels(image))
    with Image.open(out / "Train_Dis" / "R0001_01_01.bmp") as written:
        assert written.format == "BMP"

    run("import_labels", "copy", str(out), "--format", "pipal")
    copied = {Path(i.name).stem: i for i in DistortedImage.objects.filter(study__slug="copy")}
    original = {Path(i.name).stem: i for i in DistortedImage.objects.filter(study=small_study, judgment_count__gte=1)}
    assert copied.keys() == original.keys()
    for stem, image in original.items():
        assert copied[stem].mos == pytest.approx(image.mos, abs=5e-5)
        assert (copied[stem].distortion_type.code, copied[stem].level) == (image.distortion_type.code, image.level)
        assert copied[stem].sha256 != image.sha256 and np.array_equal(stored_pixels(copied[stem]), stored_pixels(image))
    assert copied["R0001_02_01"].distortion_type.name == "Type 02"  # distortion_types.csv came along


def test_a_lossy_file_is_copied_as_it_is(tmp_path):
    folder = make_pipal_folder(tmp_path / "data")
    source = folder / "Dis" / "R0001_01_01.png"
    with Image.open(source) as image:
        image.save(folder / "Dis" / "R0001_01_01.jpg", format="JPEG", quality=80)
    source.unlink()
    study = plain_study("lossy")
    import_folder(study, folder)
    judge_everything(study)
    out = tmp_path / "out"
    assert "1 kept in their own format" in run("export_dataset", "lossy", "--layout", "pipal", "--out", str(out))
    assert (out / "Train_Dis" / "R0001_01_01.jpg").read_bytes() == (folder / "Dis" / "R0001_01_01.jpg").read_bytes()
    assert (out / "Train_Label" / "R0001.txt").read_text().startswith("R0001_01_01.jpg,")


def test_refusals_are_clear_and_leave_nothing(small_study, tmp_path):
    with pytest.raises(CommandError, match="has no image with at least 1 judgment"):
        run("export_dataset", "s1", "--layout", "pipal", "--out", str(tmp_path / "none"))
    assert not (tmp_path / "none").exists()
    judge_everything(small_study)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.txt").write_text("x")
    with pytest.raises(CommandError, match="is not an empty folder"):
        run("export_dataset", "s1", "--layout", "pyiqa", "--out", str(tmp_path / "full"))
    with pytest.raises(CommandError, match="sum to 1"):
        run("export_dataset", "s1", "--layout", "pyiqa", "--out", str(tmp_path / "x"), "--split", "0.5", "0.6", "0")
    assert not (tmp_path / "x").exists()


def test_the_split_is_by_reference_seeded_and_fills_every_asked_phase():
    names = [f"R{i:04d}" for i in range(10)]
    phases = split_references(names, split=(0.8, 0.1, 0.1), seed=3)
    assert sorted(phases.values()).count("train") == 8 and set(phases.values()) == {"train", "val", "test"}
    assert phases == split_references(list(reversed(names)), split=(0.8, 0.1, 0.1), seed=3)
    assert phases != split_references(names, split=(0.8, 0.1, 0.1), seed=4)
    small = split_references(["A", "B", "C"], split=(0.9, 0.05, 0.05), seed=0)
    assert sorted(small.values()) == ["test", "train", "val"]
    with pytest.raises(ApplicationError, match="sum to 1"):
        split_references(names, split=(0.5, 0.2, 0.2), seed=0)


# --- import_labels reads pyiqa's layout unchanged -------------------------------------------


def test_import_labels_reads_the_pyiqa_export(small_study, tmp_path):
    judge_everything(small_study)
    out = tmp_path / "datasets"
    run("export_dataset", "s1", "--layout", "pyiqa", "--out", str(out))
    output = run("import_labels", "copy", str(out), "--format", "pipal")
    assert "imported 2 reference(s) and 8 image(s) into copy" in output
    record = LabelImport.objects.get(study__slug="copy")
    assert record.label_files == ["meta_info/meta_info_PIPALDataset.csv"]
    assert record.options["ignored_columns"] == ["official_split"]
    for image in DistortedImage.objects.filter(study=small_study):
        copied = DistortedImage.objects.get(study__slug="copy", name=image.name.replace(".png", ".bmp"))
        assert copied.mos == pytest.approx(image.mos, abs=5e-5)
    # The images folder and the CSV given apart, as pyiqa's options name them.
    run(
        "import_labels", "apart", str(out / "PIPAL"), "--format", "pipal",
        "--labels", str(out / "meta_info" / "meta_info_PIPALDataset.csv"),
    )  # fmt: skip
    assert DistortedImage.objects.filter(study__slug="apart").count() == 8


def write_pyiqa_folder(root: Path, header: str, row) -> Path:
    """pyiqa's datasets/ folder by hand: PIPAL/Train_Ref, PIPAL/Dist_Imgs, meta_info/ with its CSV."""
    source = make_pipal_folder(root / "src", type_csv=False)
    (root / "PIPAL").mkdir(parents=True)
    (source / "Ref").rename(root / "PIPAL" / "Train_Ref")
    (source / "Dis").rename(root / "PIPAL" / "Dist_Imgs")
    (root / "meta_info").mkdir()
    names = sorted(p.name for p in (root / "PIPAL" / "Dist_Imgs").iterdir())
    lines = [header] + [row(name) for name in names]
    (root / "meta_info" / "meta_info_PIPALDataset.csv").write_text("\n".join(lines) + "\n")
    # Other datasets' files beside it are not read.
    (root / "meta_info" / "meta_info_KADID10kDataset.csv").write_text("ref_name,dist_name,mos\n")
    return root


def test_import_labels_keeps_going_past_pyiqas_extra_columns(tmp_path):
    root = write_pyiqa_folder(
        tmp_path / "datasets",
        "hq_name,dist_name,elo_score,official_split,ratio802_seed123_split_01",
        lambda name: f"{name.split('_')[0]}.bmp,{name},{label_value(name)},train,val",
    )
    output = run("import_labels", "lab", str(root), "--format", "pipal")
    assert "imported 2 reference(s) and 8 image(s) into lab" in output
    assert Study.objects.get(slug="lab").mos_from_labels
    image = DistortedImage.objects.get(name="R0002_01_02.png")
    assert image.mos == label_value(image.name)
    assert LabelImport.objects.get().options["ignored_columns"] == ["official_split", "ratio802_seed123_split_01"]


def test_a_pyiqa_folder_without_its_csv_or_with_bad_rows_is_refused_whole(tmp_path, media_root):
    root = write_pyiqa_folder(
        tmp_path / "datasets",
        "hq_name,dist_name,elo_score,official_split",
        lambda name: f"{name.split('_')[0]}.bmp,{name},{'oops' if name.endswith('02_02.png') else 1500},train",
    )
    with pytest.raises(CommandError) as error:
        run("import_labels", "lab", str(root), "--format", "pipal")
    message = str(error.value)
    # Every problem listed: the two bad rows, and so the two images they leave without a label.
    assert "4 problem(s)" in message and "line 5: elo_score 'oops' is not a finite number" in message
    assert "line 9: elo_score 'oops'" in message and "Dist_Imgs/R0002_02_02.png: has no label" in message
    assert not Study.objects.filter(slug="lab").exists() and DistortedImage.objects.count() == 0
    (root / "meta_info" / "meta_info_PIPALDataset.csv").unlink()
    with pytest.raises(CommandError, match="without its label file meta_info/meta_info_PIPALDataset.csv"):
        run("import_labels", "lab", str(root), "--format", "pipal")
