"""Imports read only inside the dataset folder they were given, and size an image file before reading it.

A name in a dataset (a label CSV's column, a file found in ``Dis/``, a patch in a rank dataset's
``labels.csv``) that is absolute, has a ``..`` component or is a symlink out of the folder is
refused with its file and line, through the all-or-nothing error list; a symlink that stays inside
is fine. Files and folders named on the command line are taken as given. An image file's size
comes from ``stat()`` before any read, its format and pixel count from its header before decoding,
and its SHA-256 is streamed."""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image, ImageFile, TiffImagePlugin, WebPImagePlugin

from annotation import imaging
from annotation.imports.folders import ImportFailed, _check_file, check_upload
from annotation.models import DistortedImage, ReferenceImage, Study
from core.dataset_paths import OutsideDataset, dataset_files, inside
from tests.factories import import_folder, make_pipal_folder, png_bytes

pytestmark = pytest.mark.django_db

SECRET = png_bytes(4242, (16, 16))  # the outside file: its content must never reach the media folder


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as error:
        run(*args)
    return str(error.value)


def stored_files(media_root: Path) -> list[Path]:
    return sorted(p for p in media_root.rglob("*") if p.is_file()) if media_root.exists() else []


def assert_secret_not_stored(media_root: Path) -> None:
    assert hashlib.sha256(SECRET).hexdigest() not in {p.stem for p in stored_files(media_root)}


def outside_file(tmp_path: Path) -> Path:
    """``tmp_path/outside/secret.png``: a readable image beside the dataset folders, not in them."""
    (tmp_path / "outside").mkdir(exist_ok=True)
    secret = tmp_path / "outside" / "secret.png"
    secret.write_bytes(SECRET)
    return secret


# --- the rule ------------------------------------------------------------------------------------------


def test_inside_refuses_parent_components_absolute_paths_and_links_out(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(b"x")
    secret = outside_file(tmp_path)
    (root / "out.png").symlink_to(secret)
    (root / "in.png").symlink_to("sub/a.png")
    (root / "loop").symlink_to("loop")
    assert inside(root, "sub/a.png") == root / "sub" / "a.png"
    assert inside(root, "in.png") == root / "in.png"  # a link that stays inside
    assert inside(root, "a.png", base=root / "sub") == root / "sub" / "a.png"
    cases = {
        "../outside/secret.png": f"'../outside/secret.png' is outside the dataset folder {root} (a '..' component)",
        "sub/../../x.png": "(a '..' component)",
        "sub\\..\\..\\x.png": "(a '..' component)",
        str(secret): f"{str(secret)!r} is outside the dataset folder {root} (an absolute path)",
        "out.png": f"'out.png' is outside the dataset folder {root} (it links to {secret})",
        "loop": "cannot be resolved",
        "": "names no file",
    }
    for name, message in cases.items():
        with pytest.raises(OutsideDataset) as error:
            inside(root, name)
        assert message in str(error.value), (name, str(error.value))
        assert isinstance(error.value, ValueError)
    with pytest.raises(OutsideDataset, match=r"'\.\./a\.png' is outside"):
        inside(root, "../a.png", base=root / "sub")  # inside the root, but named with '..'


def test_folder_scans_refuse_links_out_by_name_and_keep_links_within(tmp_path):
    root = tmp_path / "data"
    (root / "Dis" / "deep").mkdir(parents=True)
    secret = outside_file(tmp_path)
    (root / "Dis" / "a.png").write_bytes(b"a")
    (root / "Dis" / "deep" / "b.png").write_bytes(b"b")
    (root / "Dis" / "alias.png").symlink_to("a.png")
    (root / "Dis" / "deep" / "evil.png").symlink_to(secret)
    (root / "Dis" / "outdir").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "Dis" / ".hidden.png").symlink_to(secret)  # hidden names are never read
    files, problems = dataset_files(root / "Dis", root=root, recursive=True)
    assert files == [root / "Dis" / "a.png", root / "Dis" / "alias.png", root / "Dis" / "deep" / "b.png"]
    assert sorted(problems) == [
        f"'Dis/deep/evil.png' is outside the dataset folder {root} (it links to {secret})",
        f"'Dis/outdir' is outside the dataset folder {root} (it links to {tmp_path / 'outside'})",
    ]
    (root / "Link").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert dataset_files(root / "Link", root=root) == (
        [],
        [f"'Link' is outside the dataset folder {root} (it links to {tmp_path / 'outside'})"],
    )


# --- import_labels --format mos-csv -------------------------------------------------------------------------


def mos_folder(root: Path) -> Path:
    """Two references with two images each, and mos.csv naming them (lines 2-5)."""
    root.mkdir(parents=True)
    rows = ["reference,image,mos"]
    seed = 0
    for ref in ("I01", "I02"):
        (root / f"{ref}.png").write_bytes(png_bytes(seed := seed + 1, (16, 16)))
        for level in (1, 2):
            name = f"{ref.lower()}_01_{level}.png"
            (root / name).write_bytes(png_bytes(seed := seed + 1, (16, 16)))
            rows.append(f"{ref}.png,{name},{level}")
    (root / "mos.csv").write_text("\n".join(rows) + "\n")
    return root


def mos_csv(folder: Path, *rows: str) -> Path:
    path = folder / "mos.csv"
    path.write_text(path.read_text() + "".join(row + "\n" for row in rows))
    return path


def test_mos_csv_names_that_leave_the_folder_are_refused_with_file_and_line(tmp_path, media_root):
    folder = mos_folder(tmp_path / "data")
    secret = outside_file(tmp_path)
    (folder / "sub").mkdir()
    (folder / "sub" / "link.png").symlink_to(secret)
    csv = mos_csv(
        folder,
        "I01.png,../outside/secret.png,3",  # line 6
        "../outside/secret.png,i01_01_1.png,3",  # line 7
        f"I01.png,{secret},3",  # line 8
        "I01.png,sub/link.png,3",  # line 9
    )
    message = refused("import_labels", "lab", str(csv), "--format", "mos-csv", "--higher-is-better")
    for fragment in (
        f"mos.csv line 6: image '../outside/secret.png' is outside the dataset folder {folder} (a '..' component)",
        f"mos.csv line 7: reference '../outside/secret.png' is outside the dataset folder {folder}",
        f"mos.csv line 8: image '{secret}' is outside the dataset folder {folder} (an absolute path)",
        f"mos.csv line 9: image 'sub/link.png' is outside the dataset folder {folder} (it links to {secret})",
    ):
        assert fragment in message, message
    assert "4 problem(s)" in message
    assert not Study.objects.filter(slug="lab").exists() and stored_files(media_root) == []


def test_mos_csv_with_ref_and_dis_folders_is_confined_to_the_images_folder(tmp_path, media_root):
    images = tmp_path / "images"
    (images / "Ref").mkdir(parents=True)
    (images / "Dis").mkdir()
    (images / "Ref" / "A.png").write_bytes(png_bytes(1, (16, 16)))
    (images / "Dis" / "a_01_1.png").write_bytes(png_bytes(2, (16, 16)))
    outside_file(tmp_path)
    (tmp_path / "mos.csv").write_text("reference,image,mos\nA.png,a_01_1.png,1\nA.png,../../outside/secret.png,2\n")
    message = refused(
        "import_labels", "lab", str(tmp_path / "mos.csv"), "--format", "mos-csv", "--higher-is-better",
        "--images", str(images),
    )  # fmt: skip
    assert f"mos.csv line 3: image '../../outside/secret.png' is outside the dataset folder {images}" in message
    assert_secret_not_stored(media_root)


def test_mos_csv_links_that_stay_inside_the_folder_are_imported(tmp_path):
    folder = mos_folder(tmp_path / "data")
    (folder / "sub").mkdir()
    (folder / "i02_01_1.png").rename(folder / "sub" / "real.png")
    (folder / "i02_01_1.png").symlink_to("sub/real.png")
    run("import_labels", "lab", str(folder / "mos.csv"), "--format", "mos-csv", "--higher-is-better")
    assert DistortedImage.objects.filter(study__slug="lab").count() == 4


# --- import_labels --format 2afc ----------------------------------------------------------------------------


def afc_folder(root: Path) -> Path:
    root.mkdir(parents=True)
    for n, name in enumerate(("ref.png", "a.png", "b.png")):
        (root / name).write_bytes(png_bytes(n, (16, 16)))
    (root / "pairs.csv").write_text("reference,p0,p1,judge\nref.png,a.png,b.png,1\n")
    return root


def test_2afc_csv_names_that_leave_the_folder_are_refused(tmp_path, media_root):
    folder = afc_folder(tmp_path / "data")
    secret = outside_file(tmp_path)
    (folder / "link.png").symlink_to(secret)
    with open(folder / "pairs.csv", "a") as handle:
        handle.write("ref.png,a.png,../outside/secret.png,0\n")  # line 3
        handle.write(f"{secret},a.png,b.png,0\n")  # line 4
        handle.write("ref.png,link.png,b.png,0\n")  # line 5
        handle.write("../outside/secret.png,../outside/secret.png,b.png,0\n")  # line 6: both named
    message = refused("import_labels", "lab", str(folder / "pairs.csv"), "--format", "2afc")
    for fragment in (
        f"pairs.csv line 3: p1 '../outside/secret.png' is outside the dataset folder {folder} (a '..' component)",
        f"pairs.csv line 4: reference '{secret}' is outside the dataset folder {folder} (an absolute path)",
        f"pairs.csv line 5: p0 'link.png' is outside the dataset folder {folder} (it links to {secret})",
        "pairs.csv line 6: reference '../outside/secret.png' is outside the dataset folder",
        "; p0 '../outside/secret.png' is outside the dataset folder",
    ):
        assert fragment in message, message
    assert not Study.objects.filter(slug="lab").exists() and stored_files(media_root) == []


def test_2afc_csv_link_inside_the_folder_is_imported(tmp_path):
    folder = afc_folder(tmp_path / "data")
    (folder / "same-as-b.png").symlink_to("b.png")
    (folder / "pairs.csv").write_text("reference,p0,p1,judge\nref.png,a.png,same-as-b.png,1\n")
    assert "imported 1 reference(s) and 2 image(s)" in run(
        "import_labels", "lab", str(folder / "pairs.csv"), "--format", "2afc"
    )


def test_2afc_folder_with_a_link_out_of_the_dataset_is_refused(tmp_path, media_root):
    subset = tmp_path / "val" / "traditional"
    for part in ("ref", "p0", "p1", "judge"):
        (subset / part).mkdir(parents=True)
    for offset, part in enumerate(("ref", "p0", "p1")):
        (subset / part / "000000.png").write_bytes(png_bytes(offset, (16, 16)))
    np.save(subset / "judge" / "000000.npy", np.array([1.0], dtype=np.float32))
    secret = outside_file(tmp_path)
    (subset / "p1" / "000000.png").unlink()
    (subset / "p1" / "000000.png").symlink_to(secret)
    message = refused("import_labels", "lab", str(tmp_path / "val"), "--format", "2afc")
    root = tmp_path / "val"
    assert f"'traditional/p1/000000.png' is outside the dataset folder {root} (it links to {secret})" in message
    assert_secret_not_stored(media_root)


# --- import_labels --format pipal ---------------------------------------------------------------------------


def pipal_labelled(root: Path) -> Path:
    make_pipal_folder(root)
    (root / "Train_Label").mkdir()
    for ref in ("R0001", "R0002"):
        names = sorted(p.name for p in (root / "Dis").iterdir() if p.name.startswith(ref + "_"))
        (root / "Train_Label" / f"{ref}.txt").write_text(
            "".join(f"{name},{1400 + i}\n" for i, name in enumerate(names))
        )
    return root


def test_pipal_distorted_file_linked_out_of_the_dataset_is_refused(tmp_path, media_root):
    folder = pipal_labelled(tmp_path / "PIPAL")
    secret = outside_file(tmp_path)
    (folder / "Dis" / "R0001_01_01.png").unlink()
    (folder / "Dis" / "R0001_01_01.png").symlink_to(secret)
    message = refused("import_labels", "lab", str(folder), "--format", "pipal")
    assert f"'Dis/R0001_01_01.png' is outside the dataset folder {folder} (it links to {secret})" in message
    assert not Study.objects.filter(slug="lab").exists() and stored_files(media_root) == []


def test_pipal_layout_folders_may_link_within_the_dataset_but_not_out_of_it(tmp_path, media_root):
    folder = pipal_labelled(tmp_path / "PIPAL")
    (folder / "Dis").rename(folder / "distorted images")
    (folder / "Dis").symlink_to("distorted images", target_is_directory=True)  # README: link another layout's folders
    run("import_labels", "lab", str(folder), "--format", "pipal")
    assert DistortedImage.objects.filter(study__slug="lab").count() == 8
    other = pipal_labelled(tmp_path / "other")
    (other / "Dis").rename(tmp_path / "elsewhere")
    (other / "Dis").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    message = refused("import_labels", "lab2", str(other), "--format", "pipal")
    assert f"'Dis' is outside the dataset folder {other} (it links to {tmp_path / 'elsewhere'})" in message


def test_pipal_labels_named_on_the_command_line_may_be_anywhere_but_label_files_found_may_not(tmp_path):
    """--labels is an argument the user typed, like the dataset folder itself: a pyiqa CSV usually
    lives in a meta-info folder of its own. Names inside it are image names, never paths."""
    folder = make_pipal_folder(tmp_path / "PIPAL")
    meta = tmp_path / "meta_info"
    meta.mkdir()
    rows = ["hq_name,dist_name,elo_score"]
    rows += [f"{p.name.split('_')[0]}.png,{p.name},1500" for p in sorted((folder / "Dis").iterdir())]
    (meta / "meta_info_PIPAL.csv").write_text("\n".join(rows) + "\n")
    run("import_labels", "lab", str(folder), "--format", "pipal", "--labels", str(meta / "meta_info_PIPAL.csv"))
    assert DistortedImage.objects.filter(study__slug="lab").count() == 8
    (meta / "meta_info_PIPAL.csv").write_text("hq_name,dist_name,elo_score\nR0001.png,../outside/secret.png,1\n")
    outside_file(tmp_path)
    message = refused(
        "import_labels", "lab2", str(folder), "--format", "pipal", "--labels", str(meta / "meta_info_PIPAL.csv")
    )
    assert "line 2: '../outside/secret.png' is not a PIPAL image name" in message
    labelled = pipal_labelled(tmp_path / "labelled")
    (tmp_path / "outside" / "R0001.txt").write_text("R0001_01_01.png,1\n")
    (labelled / "Train_Label" / "R0001.txt").unlink()
    (labelled / "Train_Label" / "R0001.txt").symlink_to(tmp_path / "outside" / "R0001.txt")
    message = refused("import_labels", "lab3", str(labelled), "--format", "pipal")
    assert f"'Train_Label/R0001.txt' is outside the dataset folder {labelled}" in message


# --- import_images, import_references --------------------------------------------------------------------------


def test_import_images_refuses_a_distorted_file_linked_out_of_the_folder(study, tmp_path, media_root):
    folder = make_pipal_folder(tmp_path / "d")
    secret = outside_file(tmp_path)
    (folder / "Dis" / "R0001_01_03.png").symlink_to(secret)
    (folder / "distortion_types.csv").unlink()
    (folder / "distortion_types.csv").symlink_to(tmp_path / "outside" / "types.csv")
    (tmp_path / "outside" / "types.csv").write_text("id,name,category,subtype\n01,Secret,traditional,x\n")
    with pytest.raises(ImportFailed) as error:
        import_folder(study, folder)
    assert f"'Dis/R0001_01_03.png' is outside the dataset folder {folder} (it links to {secret})" in error.value.message
    assert f"'distortion_types.csv' is outside the dataset folder {folder}" in error.value.message
    assert ReferenceImage.objects.count() == DistortedImage.objects.count() == 0 and stored_files(media_root) == []


def test_import_images_takes_a_link_that_stays_inside_the_folder(study, tmp_path):
    folder = make_pipal_folder(tmp_path / "d", types=("01",), levels=(1,))
    (folder / "Dis" / "R0001_01_02.png").symlink_to("R0001_01_01.png")
    assert import_folder(study, folder).distorted == 3


def test_import_references_folder_links_out_are_refused_but_named_files_are_taken(tmp_path, media_root):
    folder = tmp_path / "refs"
    folder.mkdir()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(folder / "a.png")
    secret = outside_file(tmp_path)
    (folder / "b.png").symlink_to(secret)
    (folder / "notes.txt").symlink_to("/etc/hostname")  # not an image: never read, not refused
    run("create_study", "refs")
    message = refused("import_references", "refs", str(folder), "--crop", "0")
    assert f"'b.png' is outside the dataset folder {folder} (it links to {secret})" in message
    assert ReferenceImage.objects.count() == 0 and stored_files(media_root) == []
    (folder / "b.png").unlink()
    # A file named on the command line is the user's choice, wherever it is.
    assert "imported 2 reference(s)" in run("import_references", "refs", str(folder), str(secret), "--crop", "0")


# --- build_rank_dataset ---------------------------------------------------------------------------------------


def test_rank_dataset_hr_folder_and_patch_list_are_confined(tmp_path):
    from iqa.learned import rank_dataset as rd
    from iqa.services import rank_dataset_inputs as rank_datasets

    hr = tmp_path / "hr"
    hr.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(hr / f"{name}.png")
    secret = outside_file(tmp_path)
    (hr / "c.png").symlink_to(secret)
    with pytest.raises(rd.RankDatasetError, match=re.escape(f"'c.png' is outside the dataset folder {hr}")):
        rank_datasets.hr_folder_images(hr)
    (hr / "c.png").unlink()
    images = rank_datasets.hr_folder_images(hr)
    rd.build_distortion(tmp_path / "ds", images, kind="noise", options=rd.PatchOptions(size=16, stride=8))
    labels = tmp_path / "ds" / rd.LABELS_FILE
    text = labels.read_text()
    first = text.splitlines()[1].split(",")[0]
    (tmp_path / "ds" / rd.PATCH_FOLDER / "evil.png").symlink_to(secret)
    labels.write_text(text.replace(first + ",", "evil.png,", 1))
    patches = tmp_path / "ds" / rd.PATCH_FOLDER
    message = f"labels.csv line 2: patch 'evil.png' is outside the dataset folder {patches} (it links to {secret})"
    with pytest.raises(rd.RankDatasetError, match=re.escape(message)):
        rd.load(tmp_path / "ds")
    labels.write_text(text.replace(first + ",", "../labels.csv,", 1))
    with pytest.raises(rd.RankDatasetError, match=r"line 2: patch '\.\./labels\.csv' is outside .* \(a '\.\.' comp"):
        rd.load(tmp_path / "ds")


# --- sizes from stat() before any read; hashing streams --------------------------------------------------------


def test_a_1_gib_file_is_refused_from_its_size_without_being_read(study, tmp_path, media_root, settings):
    folder = make_pipal_folder(tmp_path / "d")
    huge = folder / "Dis" / "R0001_01_03.png"
    with open(huge, "wb") as handle:
        handle.truncate(1 << 30)  # sparse: no disk, no memory
    tracemalloc.start()
    try:
        with pytest.raises(ImportFailed) as error:
            import_folder(study, folder)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"{huge}: {1 << 30} bytes is over the limit of {settings.PIPAL_MAX_IMAGE_BYTES}" in error.value.message
    assert peak < 16 << 20, f"peak {peak / 2**20:.0f} MiB while refusing a 1 GiB file"
    assert stored_files(media_root) == []


def test_checking_a_file_streams_it_and_hashes_in_1_mib_chunks(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (1100, 1100, 3), dtype=np.uint8)).save(path, compress_level=0)
    assert path.stat().st_size > 3 << 20
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    reads = []
    real_open = open

    class Counting(io.BufferedReader):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    def counting_open(file, mode="r", *args, **kwargs):
        if mode == "rb" and isinstance(file, str | os.PathLike) and Path(file) == path:
            return Counting(real_open(file, "rb", buffering=0))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail(f"{self} read whole"))
    monkeypatch.setattr("builtins.open", counting_open)
    errors: list[str] = []
    checked = _check_file(path, errors)
    assert errors == [] and checked.sha256 == expected and (checked.width, checked.height) == (1100, 1100)
    assert reads and all(0 <= size <= 1 << 20 for size in reads), sorted(set(reads))
    with real_open(path, "rb") as handle:
        assert imaging.sha256_of(handle) == expected


def test_stored_bytes_are_sized_again_before_they_are_read(tmp_path, settings):
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(1))
    checked = _check_file(path, [])
    assert checked.data == path.read_bytes()
    settings.PIPAL_MAX_IMAGE_BYTES = path.stat().st_size + 10
    with open(path, "ab") as handle:
        handle.write(b"\0" * 100)  # grew after the check
    with pytest.raises(ImportFailed) as error:
        _ = checked.data
    assert f"{path}: {path.stat().st_size} bytes is over the limit of {settings.PIPAL_MAX_IMAGE_BYTES}" in str(
        error.value.message
    )


# --- decompression bombs: refused from the header, never decoded ----------------------------------------------


def bmp_claiming(width: int, height: int) -> bytes:
    pixels = b"\0" * 64
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return struct.pack("<2sIHHI", b"BM", 14 + 40 + len(pixels), 0, 0, 54) + info + pixels


def tiff_claiming(width: int, height: int) -> bytes:
    """A one-strip 8-bit grey TIFF whose ImageWidth and ImageLength say ``width`` x ``height``."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 0), (277, 3, 1),
            (278, 4, height), (279, 4, 16)]  # fmt: skip
    data_offset = 8 + 2 + 12 * len(tags) + 4
    entries = b"".join(
        struct.pack("<HHI", tag, kind, 1)
        + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", data_offset if tag == 273 else value))
        for tag, kind, value in tags
    )
    return b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(tags)) + entries + struct.pack("<I", 0) + b"\0" * 16


def webp_claiming(width: int, height: int) -> bytes:
    """An extended WebP (VP8X) whose canvas is ``width`` x ``height``, with a lossless frame header
    of that size when the format can express it, and no pixel data."""

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return tag + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)

    canvas = bytes(4) + struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3]
    body = chunk(b"VP8X", canvas)
    if width <= 1 << 14 and height <= 1 << 14:
        body += chunk(b"VP8L", b"\x2f" + struct.pack("<I", (width - 1) | ((height - 1) << 14)) + bytes(8))
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


BOMBS = {"BMP": (bmp_claiming, "bmp"), "TIFF": (tiff_claiming, "tif"), "WEBP": (webp_claiming, "webp")}


@pytest.fixture
def no_decoding(monkeypatch):
    """Any pixel decode fails the test."""

    def load(self):
        raise AssertionError(f"{type(self).__name__}.load() decoded a bomb")

    for cls in (Image.Image, ImageFile.ImageFile, TiffImagePlugin.TiffImageFile, WebPImagePlugin.WebPImageFile):
        if "load" in vars(cls):
            monkeypatch.setattr(cls, "load", load)


@pytest.mark.parametrize("image_format", BOMBS)
def test_a_header_claiming_a_huge_image_is_refused_before_decoding(image_format, tmp_path, no_decoding):
    make, extension = BOMBS[image_format]
    data = make(100_000, 100_000)
    assert len(data) < 200
    path = tmp_path / f"bomb.{extension}"
    path.write_bytes(data)
    tracemalloc.start()
    try:
        errors: list[str] = []
        assert _check_file(path, errors) is None
        with pytest.raises(imaging.ImageRejected) as bytes_error:  # the admin's bytes path: the same rule
            check_upload(data, "upload.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert errors[0].startswith(f"{path}: refused from its header as a decompression bomb"), errors
    assert "10000000000 pixels" in errors[0]  # the size the header claims
    assert str(bytes_error.value).startswith("upload.bin: refused from its header") and "10000000000 pixels" in str(
        bytes_error.value
    )
    assert peak < 4 << 20


@pytest.mark.parametrize("image_format", BOMBS)
def test_a_header_over_the_pixel_limit_is_refused_with_its_size(image_format, tmp_path, settings, no_decoding):
    make, extension = BOMBS[image_format]
    settings.PIPAL_MAX_IMAGE_PIXELS = 1_000_000
    path = tmp_path / f"big.{extension}"
    path.write_bytes(make(4000, 3000))
    errors: list[str] = []
    assert _check_file(path, errors) is None
    assert errors == [f"{path}: 4000x3000 pixels is over the limit of 1000000"]


def test_a_real_tiff_webp_and_bmp_still_pass(tmp_path):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for image_format, extension in (("TIFF", "tif"), ("WEBP", "webp"), ("BMP", "bmp")):
        path = tmp_path / f"ok.{extension}"
        Image.fromarray(pixels).save(path, format=image_format, **({"lossless": True} if extension == "webp" else {}))
        errors: list[str] = []
        checked = _check_file(path, errors)
        assert errors == [] and (checked.format, checked.width, checked.height) == (image_format, 30, 20)
        assert checked.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert checked.data == path.read_bytes()
