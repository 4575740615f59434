"""MOS exports: a flat CSV and PIPAL's per-reference label files.

Output is deterministic (rows sorted by reference and image name, fixed float
formatting, '\\n' line ends), so exporting an unchanged study twice gives
byte-identical files.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from annotation.models import DistortedImage, Study

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
    rows = (
        DistortedImage.objects.filter(study=study)
        .order_by("reference__name", "name")
        .values_list(
            "reference__name", "name", "distortion_type__code", "distortion_type__category",
            "distortion_type__subtype", "level", "elo", "mos", "judgment_count", "mos_bt", "bt_ci_low", "bt_ci_high",
        )
    )  # fmt: skip
    return [
        (reference, image, code, category, subtype, level, _fmt(elo), _fmt(mos), judgments, _fmt(bt), _fmt(low),
         _fmt(high))
        for reference, image, code, category, subtype, level, elo, mos, judgments, bt, low, high in rows.iterator(
            chunk_size=10_000
        )
    ]  # fmt: skip


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


JUDGMENT_COLUMNS = (
    # replay_judgments reads the first four: a log exported here replays into a study.
    "image_a",
    "image_b",
    "winner",
    "rater",
    "response_ms",
    "visible_ms",
    "native",
    "device_pixel_ratio",
    "viewport",
    "px_per_degree",
    "excluded",
    "source",
    "created_at",
)


def _flag(value: bool | None) -> str:
    return "" if value is None else str(value).lower()


def write_judgments_csv(study: Study, out) -> int:
    """The judgment log in order, with how each pair was seen (issue 16): ``winner`` is a, b or
    tie; native, visible time and the rater's viewing conditions at the time. Streams the
    rows to the text file ``out``; returns how many."""
    from annotation.models import Judgment  # the log; kept apart from the MOS rows above

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JUDGMENT_COLUMNS)
    rows = (
        Judgment.objects.filter(study=study)
        .order_by("id")
        .values_list(
            "image_a__name",
            "image_b__name",
            "winner_id",
            "image_a_id",
            "tie",
            "rater__external_id",
            "response_ms",
            "visible_ms",
            "native",
            "viewing__device_pixel_ratio",
            "viewing__viewport_width",
            "viewing__viewport_height",
            "viewing__px_per_degree",
            "rater__excluded",
            "source",
            "created_at",
        )
    )
    count = 0
    for (
        a,
        b,
        winner,
        a_id,
        tie,
        rater,
        response,
        visible,
        native,
        dpr,
        width,
        height,
        ppd,
        excluded,
        source,
        at,
    ) in rows.iterator(chunk_size=10_000):
        writer.writerow(
            (
                a,
                b,
                "tie" if tie else "a" if winner == a_id else "b",
                rater or "",
                "" if response is None else response,
                "" if visible is None else visible,
                _flag(native),
                "" if dpr is None else f"{dpr:g}",
                f"{width}x{height}" if width else "",
                "" if ppd is None else f"{ppd:.1f}",
                _flag(excluded),
                source,
                at.isoformat(timespec="milliseconds"),
            )
        )
        count += 1
    return count
