"""MOS exports: a flat CSV and PIPAL's per-reference label files.

Output is deterministic (rows sorted by reference and image name, fixed float
formatting, '\\n' line ends), so exporting an unchanged study twice gives
byte-identical files.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .models import DistortedImage, Study

CSV_COLUMNS = (
    "reference",
    "image",
    "distortion_type",
    "category",
    "subtype",
    "level",
    "elo",
    "mos",
    "judgments",
    # The latest Bradley–Terry fit (fit_bradley_terry); empty for an image it did not measure.
    "mos_bt",
    "ci_low",
    "ci_high",
)


def _fmt(value: float | None) -> str:
    # PIPAL's label files carry four decimals (e.g. A0001_00_00.bmp,1520.0648).
    return "" if value is None else f"{value:.4f}"


def mos_rows(study: Study) -> list[tuple]:
    images = (
        DistortedImage.objects.filter(study=study)
        .select_related("reference", "distortion_type")
        .order_by("reference__name", "name")
    )
    return [
        (
            image.reference.name,
            image.name,
            image.distortion_type.code,
            image.distortion_type.category,
            image.distortion_type.subtype,
            image.level,
            _fmt(image.elo),
            _fmt(image.mos),
            image.judgment_count,
            _fmt(image.mos_bt),
            _fmt(image.bt_ci_low),
            _fmt(image.bt_ci_high),
        )
        for image in images
    ]


def mos_csv(study: Study) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(mos_rows(study))
    return buffer.getvalue()


def write_pipal_labels(study: Study, folder: Path) -> list[Path]:
    """One ``<ref>.txt`` per reference with lines ``<image>,<mos>`` (PIPAL's label format)."""
    folder.mkdir(parents=True, exist_ok=True)
    by_reference: dict[str, list[str]] = {}
    for reference, image, *_, mos, _judgments, _bt, _low, _high in mos_rows(study):
        by_reference.setdefault(reference, []).append(f"{image},{mos}\n")
    written = []
    for reference, lines in by_reference.items():
        path = folder / f"{reference}.txt"
        path.write_text("".join(lines), encoding="utf-8", newline="")
        written.append(path)
    return written
