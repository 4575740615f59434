"""A study written out as a dataset other tools read unchanged (``export_dataset``).

The images leave MEDIA_ROOT's content-addressed names for readable ones beside their labels,
in one of two layouts:

* ``pipal``: PIPAL's own release, ``Train_Ref/<ref>.bmp``, ``Train_Dis/<ref>_<type>_<level>.bmp``
  and ``Train_Label/<ref>.txt`` with lines ``<image>,<mos>``, plus ``distortion_types.csv``
  (``id,name,category,subtype``) so ``import_labels --format pipal`` gets the types back.
* ``pyiqa``: pyiqa's ``datasets/`` folder as its PIPAL options name it: ``PIPAL/Train_Ref/``,
  ``PIPAL/Dist_Imgs/`` and ``meta_info/meta_info_PIPALDataset.csv`` with
  ``hq_name,dist_name,elo_score,official_split``. pyiqa's ``GeneralFRDataset`` reads the
  first three columns by position and takes the split from the column that its
  ``split_index: official_split`` names; ``meta_info/pipal_official_split.pkl`` holds the
  same split as the ``split_file`` older pyiqa versions load (``{split_index: {phase: [row
  indices]}}``). The split is by reference (no reference in two phases), shuffled with
  ``seed``, in the ``split`` proportions of train, val and test.

Pixels are never re-encoded lossily. PIPAL names its files ``.bmp`` (and pyiqa's scripts assume
it), so an image whose file decodes losslessly (PNG, BMP, uncompressed or LZW/deflate TIFF,
lossless WebP) with 8-bit grey, palette or RGB pixels is written as BMP, the same pixels. Any
other (JPEG, lossy WebP, 16-bit or transparent pixels) is copied byte for byte under its own
extension, and the label files name it so.

The MOS written is the study's ``mos`` (Elo, or the imported labels), four decimals as PIPAL
writes them; images with fewer than ``min_judgments`` counted judgments (never-judged ones sit
at the starting rating) are left out.
"""

from __future__ import annotations

import csv
import io
import pickle
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.core.files.storage import default_storage
from PIL import Image

from annotation.imports.folders import DISTORTED_NAME, REFERENCE_NAME
from annotation.models import DistortedImage, DistortionType, ReferenceImage, Study
from core.errors import ApplicationError

LAYOUTS = ("pipal", "pyiqa")
PHASES = ("train", "val", "test")
PYIQA_META = Path("meta_info") / "meta_info_PIPALDataset.csv"
PYIQA_SPLIT_FILE = Path("meta_info") / "pipal_official_split.pkl"
PYIQA_SPLIT_INDEX = "official_split"
PYIQA_COLUMNS = ("hq_name", "dist_name", "elo_score", PYIQA_SPLIT_INDEX)
# Modes a BMP holds exactly (8 bits per channel, no alpha).
BMP_MODES = frozenset({"1", "L", "P", "RGB"})
LOSSLESS_TIFF = frozenset({"raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits"})


@dataclass(frozen=True)
class DatasetExport:
    folder: Path
    layout: str
    references: int
    images: int
    left_out: int  # images with too few judgments
    converted: int  # files written as BMP from another lossless format
    copied: int  # files kept in their own (lossy or non-BMP) format
    splits: dict[str, int]  # pyiqa: images per phase
    label_file: Path | None  # pyiqa: the meta CSV


@dataclass(frozen=True)
class _Item:
    stored: str  # the file's name in storage
    stem: str  # the readable name without extension


def _stem(image_name: str, reference: str, code: str, level: int) -> str:
    """The image's own name when it already says its reference, type and level; else built from them."""
    match = DISTORTED_NAME.match(image_name)
    if match and (match["reference"], match["type"], int(match["level"])) == (reference, code, level):
        return Path(image_name).stem
    return f"{reference}_{code}_{level:02d}"


def _check_names(references: list[str], stems: list[str]) -> None:
    bad = [name for name in references if not REFERENCE_NAME.match(f"{name}.bmp")]
    bad += [stem for stem in stems if not DISTORTED_NAME.match(f"{stem}.bmp")]
    if bad:
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ApplicationError(
            f"{len(bad)} name(s) cannot be written in PIPAL's layout (<ref>.bmp with no '_', "
            f"<ref>_<type>_<level>.bmp): {shown}"
        )


def split_references(references: list[str], *, split: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Each reference's phase: the names shuffled with ``seed``, cut in the ``split`` proportions
    (largest remainders; a phase with a share above 0 gets at least one reference when there
    are enough)."""
    if len(split) != 3 or any(share < 0 for share in split) or abs(sum(split) - 1) > 1e-6:
        raise ApplicationError(f"--split takes three shares (train val test) >= 0 that sum to 1, got {split}")
    order = sorted(references)
    random.Random(seed).shuffle(order)
    total = len(order)
    exact = [share * total for share in split]
    counts = [int(value) for value in exact]
    for index in sorted(range(3), key=lambda i: exact[i] - counts[i], reverse=True)[: total - sum(counts)]:
        counts[index] += 1
    for index in range(3):
        if split[index] > 0 and counts[index] == 0:
            donor = max(range(3), key=lambda i: counts[i])
            if counts[donor] > 1:
                counts[donor] -= 1
                counts[index] += 1
    phases, start = {}, 0
    for phase, count in zip(PHASES, counts, strict=True):
        phases.update(dict.fromkeys(order[start : start + count], phase))
        start += count
    return phases


def _lossless_to_bmp(image: Image.Image, data: bytes) -> bool:
    if image.mode not in BMP_MODES:
        return False
    if image.format in ("PNG", "BMP"):
        return True
    if image.format == "TIFF":
        return image.info.get("compression", "raw") in LOSSLESS_TIFF
    if image.format == "WEBP":
        return _webp_chunks(data) & {b"VP8L", b"VP8 "} == {b"VP8L"}
    return False


def _webp_chunks(data: bytes) -> set[bytes]:
    """The chunk names of a RIFF WebP file: VP8L holds lossless pixels, "VP8 " lossy ones."""
    names, position = set(), 12
    while position + 8 <= len(data):
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        names.add(data[position : position + 4])
        position += 8 + size + (size & 1)
    return names


def _write_image(stored: str, folder: Path, stem: str) -> tuple[str, bool]:
    """Write one stored file as ``folder/stem.<ext>``; its file name and whether it became BMP."""
    with default_storage.open(stored, "rb") as handle:
        data = handle.read()
    with Image.open(io.BytesIO(data)) as image:
        if image.format == "BMP":
            name = f"{stem}.bmp"
            (folder / name).write_bytes(data)
            return name, False
        if _lossless_to_bmp(image, data):
            name = f"{stem}.bmp"
            image.save(folder / name, format="BMP")
            return name, True
        extension = Path(stored).suffix.lower() or f".{(image.format or 'bin').lower()}"
    name = f"{stem}{extension}"
    (folder / name).write_bytes(data)
    return name, False


def _prepare_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ApplicationError(f"--out {out} exists and is not an empty folder: give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)


def study_export_dataset(
    *,
    study: Study,
    out: Path,
    layout: str,
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    min_judgments: int = 1,
    progress: Callable[[int], object] | None = None,
) -> DatasetExport:
    """Write the study's images and labels into the empty (or new) folder ``out`` in ``layout``.
    Reads the database only; on a failure the folder's partial contents are removed."""
    if layout not in LAYOUTS:
        raise ApplicationError(f"unknown layout {layout!r} (known: {', '.join(LAYOUTS)})")
    out = Path(out)
    rows = list(
        DistortedImage.objects.filter(study=study)
        .order_by("reference__name", "name")
        .values_list("name", "file", "reference__name", "distortion_type__code", "level", "mos", "judgment_count")
    )
    kept = [row for row in rows if row[6] >= min_judgments]
    if not kept:
        raise ApplicationError(
            f"study {study.slug!r} has no image with at least {min_judgments} judgment(s) to export"
            + (f" ({len(rows)} image(s) in all)" if rows else "")
        )
    references = dict(
        ReferenceImage.objects.filter(study=study, name__in={row[2] for row in kept}).values_list("name", "file")
    )
    images = [
        (_Item(stored, _stem(name, reference, code, level)), reference, mos)
        for name, stored, reference, code, level, mos, _ in kept
    ]
    _check_names(list(references), [item.stem for item, _, _ in images])
    phases = split_references(list(references), split=split, seed=seed) if layout == "pyiqa" else {}
    _prepare_folder(out)
    try:
        return _write(study, out, layout, references, images, phases, len(rows) - len(kept), progress)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _write(study, out, layout, references, images, phases, left_out, progress) -> DatasetExport:
    root = out / "PIPAL" if layout == "pyiqa" else out
    ref_dir = root / "Train_Ref"
    dis_dir = root / ("Dist_Imgs" if layout == "pyiqa" else "Train_Dis")
    ref_dir.mkdir(parents=True)
    dis_dir.mkdir(parents=True)
    converted = copied = 0
    ref_names = {}
    for reference, stored in sorted(references.items()):
        ref_names[reference], as_bmp = _write_image(stored, ref_dir, reference)
        converted += as_bmp
        copied += not ref_names[reference].endswith(".bmp")
        if progress:
            progress(1)
    labelled = []  # (reference, image file name, mos)
    for item, reference, mos in images:
        name, as_bmp = _write_image(item.stored, dis_dir, item.stem)
        converted += as_bmp
        copied += not name.endswith(".bmp")
        labelled.append((reference, name, mos))
        if progress:
            progress(1)

    label_file, splits = None, {}
    if layout == "pipal":
        _write_pipal_labels(out / "Train_Label", labelled)
    else:
        label_file = out / PYIQA_META
        splits = _write_pyiqa_meta(out, labelled, ref_names, phases)
    _write_types(study, out / "distortion_types.csv")
    return DatasetExport(
        folder=out,
        layout=layout,
        references=len(references),
        images=len(images),
        left_out=left_out,
        converted=converted,
        copied=copied,
        splits=splits,
        label_file=label_file,
    )


def _write_pipal_labels(folder: Path, labelled: list[tuple[str, str, float]]) -> None:
    folder.mkdir()
    by_reference: dict[str, list[str]] = {}
    for reference, name, mos in labelled:
        by_reference.setdefault(reference, []).append(f"{name},{mos:.4f}\n")
    for reference, lines in by_reference.items():
        (folder / f"{reference}.txt").write_text("".join(lines), encoding="utf-8", newline="")


def _write_pyiqa_meta(out: Path, labelled, ref_names: dict[str, str], phases: dict[str, str]) -> dict[str, int]:
    (out / PYIQA_META).parent.mkdir()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(PYIQA_COLUMNS)
    indices: dict[str, list[int]] = {phase: [] for phase in PHASES}
    for index, (reference, name, mos) in enumerate(labelled):
        phase = phases[reference]
        writer.writerow((ref_names[reference], name, f"{mos:.4f}", phase))
        indices[phase].append(index)
    (out / PYIQA_META).write_text(buffer.getvalue(), encoding="utf-8", newline="")
    with open(out / PYIQA_SPLIT_FILE, "wb") as handle:
        pickle.dump({PYIQA_SPLIT_INDEX: indices}, handle)
    return {phase: len(rows) for phase, rows in indices.items()}


def _write_types(study: Study, path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("id", "name", "category", "subtype"))
    for row in (
        DistortionType.objects.filter(study=study).order_by("code").values_list("code", "name", "category", "subtype")
    ):
        writer.writerow(row)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")
