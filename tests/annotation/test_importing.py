"""import_images: the PIPAL folder layout, all-or-nothing, bad files refused."""

import pytest
from PIL import Image

from annotation.imports.folders import ImportFailed
from annotation.models import DistortedImage, DistortionType, ReferenceImage
from annotation.rating.votes import judgment_record
from tests.factories import import_folder, make_pipal_folder, png_bytes


def stored_files(media_root):
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


def test_import_creates_references_types_and_images(study, tmp_path, media_root):
    report = import_folder(study, make_pipal_folder(tmp_path / "d"))
    assert (report.references, report.distorted, report.types_created) == (2, 8, 2)
    image = DistortedImage.objects.get(name="R0001_02_01.png")
    assert (image.reference.name, image.distortion_type.code, image.level) == ("R0001", "02", 1)
    assert image.distortion_type.category == "super_resolution"
    assert (image.elo, image.mos, image.judgment_count) == (1400, 1400, 0)
    # Stored under server-chosen content-addressed names, not the uploaded ones.
    assert image.file.name == f"studies/s1/{image.sha256}.png"
    assert len(stored_files(media_root)) == 10


def test_rerun_adds_only_new_images_at_initial_rating(study, tmp_path):
    folder = make_pipal_folder(tmp_path / "d")
    import_folder(study, folder)
    first = DistortedImage.objects.get(name="R0001_01_01.png")
    second = DistortedImage.objects.get(name="R0001_01_02.png")
    judgment_record(study=study, image_a_id=first.id, image_b_id=second.id, a_wins=True)
    (folder / "Dis" / "R0001_03_01.png").write_bytes(png_bytes(999))
    report = import_folder(study, folder)
    assert (report.distorted, report.references, report.skipped) == (1, 0, 10)
    assert DistortionType.objects.get(study=study, code="03").name == "type 03"
    new = DistortedImage.objects.get(name="R0001_03_01.png")
    assert new.elo == 1400 and new.judgment_count == 0
    first.refresh_from_db()
    assert first.elo == pytest.approx(1408) and first.judgment_count == 1


def assert_refused(study, folder, media_root, *fragments):
    with pytest.raises(ImportFailed) as error:
        import_folder(study, folder)
    for fragment in fragments:
        assert fragment in error.value.message
    assert ReferenceImage.objects.count() == 0 and DistortedImage.objects.count() == 0
    assert DistortionType.objects.count() == 0
    assert stored_files(media_root) == []
    return error.value


def test_corrupt_image_refuses_the_whole_import(study, tmp_path, media_root):
    folder = make_pipal_folder(tmp_path / "d")
    data = (folder / "Dis" / "R0002_02_02.png").read_bytes()
    (folder / "Dis" / "R0002_02_02.png").write_bytes(data[: len(data) // 2])
    assert_refused(study, folder, media_root, "R0002_02_02.png", "corrupt or truncated")


def test_non_image_file_is_named(study, tmp_path, media_root):
    folder = make_pipal_folder(tmp_path / "d")
    (folder / "Dis" / "R0001_01_03.png").write_text("not an image at all")
    assert_refused(study, folder, media_root, "R0001_01_03.png", "not an image")


def test_bad_names_missing_references_and_size_mismatch(study, tmp_path, media_root):
    folder = make_pipal_folder(tmp_path / "d")
    (folder / "Dis" / "oops.png").write_bytes(png_bytes(1))
    (folder / "Dis" / "R0009_01_01.png").write_bytes(png_bytes(2))
    (folder / "Dis" / "R0001_01_07.png").write_bytes(png_bytes(3, size=(40, 32)))
    error = assert_refused(study, folder, media_root, "oops.png", "R0009", "40x32 does not match")
    assert len(error.errors) == 3


def test_malformed_type_csv_names_the_line(study, tmp_path, media_root):
    folder = make_pipal_folder(tmp_path / "d")
    (folder / "distortion_types.csv").write_text("id,name,category,subtype\n01,Blur,traditional,x\n02,Noise,weird,y\n")
    assert_refused(study, folder, media_root, "line 3", "'weird'")


def test_changed_content_under_a_stored_name_is_refused(study, tmp_path, media_root):
    folder = make_pipal_folder(tmp_path / "d")
    import_folder(study, folder)
    before = stored_files(media_root)
    (folder / "Dis" / "R0001_01_01.png").write_bytes(png_bytes(4242))
    (folder / "Dis" / "R0001_01_05.png").write_bytes(png_bytes(4243))
    with pytest.raises(ImportFailed, match="different content"):
        import_folder(study, folder)
    assert DistortedImage.objects.count() == 8 and stored_files(media_root) == before


def test_disallowed_format_and_pixel_limit(study, tmp_path, media_root, settings):
    folder = make_pipal_folder(tmp_path / "d")
    Image.new("RGB", (32, 32)).save(folder / "Dis" / "R0001_01_04.gif")
    assert_refused(study, folder, media_root, "format GIF is not allowed")
    (folder / "Dis" / "R0001_01_04.gif").unlink()
    settings.PIPAL_MAX_IMAGE_PIXELS = 100
    assert_refused(study, folder, media_root, "over the limit of 100")


def test_decompression_bomb_is_refused_from_its_header(study, tmp_path, media_root):
    folder = make_pipal_folder(tmp_path / "d")
    # 20000 x 20000 pixels of one colour compress to a few kilobytes.
    Image.new("1", (20000, 20000)).save(folder / "Dis" / "R0001_01_05.png")
    assert (folder / "Dis" / "R0001_01_05.png").stat().st_size < 1_000_000
    assert_refused(study, folder, media_root, "R0001_01_05.png")


def test_folder_without_pipal_layout(study, tmp_path, media_root):
    (tmp_path / "empty").mkdir()
    assert_refused(study, tmp_path / "empty", media_root, "Ref/ and Dis/")


def test_a_truncated_stored_copy_is_written_again(study, tmp_path, media_root):
    from annotation.imaging import check_image
    from annotation.imports.folders import store_image

    data = png_bytes(77)
    checked = check_image(data, label="x", formats=("PNG",), max_bytes=10**6, max_pixels=10**6)
    path = f"studies/{study.slug}/{checked.sha256}.png"
    (media_root / "studies" / study.slug).mkdir(parents=True)
    (media_root / path).write_bytes(data[:40])  # what a killed writer leaves behind
    written = []
    assert store_image(study, checked, written) == path and written == [path]
    assert (media_root / path).read_bytes() == data
    assert store_image(study, checked, []) == path  # an intact copy is reused
    assert sorted(p.name for p in (media_root / "studies" / study.slug).iterdir()) == [f"{checked.sha256}.png"]
