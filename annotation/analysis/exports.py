"""MOS exports: the per-image records, a flat CSV with a sidecar of the settings that shaped
it, and PIPAL's per-reference label files.

Output is deterministic (rows sorted by reference and image name, fixed float
formatting, '\\n' line ends), so exporting an unchanged study twice gives
byte-identical files (the sidecar's ``exported_at`` aside).

Per image, beside the MOS:

* ``mos_sd``: the sample standard deviation (n - 1) of the Elo values the MOS averages
  (``recent_elo``, the last ``mos_window`` of them). They are a few draws from the rating's
  wandering, not the whole of it, hence the sample SD; empty with fewer than two values. A
  study whose MOS comes from imported labels gives the standard deviation its labels carried.
* ``raters``: distinct raters among the counted judgments of the image (those the MOS and
  the fit use: excluded raters' votes left out). Replayed judgments without a rater id
  count towards ``judgments`` but name no rater.
* ``bt_fit``: where ``mos_bt``/``ci_low``/``ci_high`` come from. ``current``: the latest
  Bradley–Terry fit saw exactly the judgments counted now. ``stale``: judgments changed
  since that fit (new votes, a rater excluded or let back in), so every fitted value may
  have moved and images judged only since have none yet. ``none``: no value to give: the
  study has no fit, or the image had no counted judgment (a current fit leaves it blank).

acr, dcr and rank-k studies export their own columns instead (``protocol_csv``, from
``protocol_results``), with a sidecar of their own (``protocol_export_metadata``) and a table of
the raters' screening (``rater_screening_csv``); the pairwise export above is unchanged.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from importlib import metadata
from pathlib import Path

import numpy as np
from django.db import connection
from django.db.models import F
from django.utils import timezone

from annotation.analysis import bt_fit, protocol_results
from annotation.models import DistortedImage, Study

RECORD_KEYS = (
    "reference",
    "image",
    "distortion_type",
    "category",
    "subtype",
    "level",
    "elo",
    "mos",
    "mos_sd",
    "judgments",
    "raters",
    "mos_bt",
    "ci_low",
    "ci_high",
)

# The CSV keeps the columns it always had in their order (users read it by header); the
# spread and rater count sit beside the MOS and judgment count they describe, and bt_fit
# after the Bradley–Terry columns it qualifies.
CSV_COLUMNS = (*RECORD_KEYS, "bt_fit")


# What the derived columns mean, for readers of the sidecar (the module docstring says why).
COLUMN_NOTES = {
    "mos_sd": "sample standard deviation (n - 1) of the last mos_window Elo values (labels: the imported SD)",
    "raters": "distinct raters among the image's counted judgments (excluded raters left out)",
    "bt_fit": "current: the fit saw the judgments counted now; stale: judgments changed since; none: no value",
}


class BtFit:
    """How the stored Bradley–Terry values stand against the judgments counted now."""

    CURRENT = "current"
    STALE = "stale"
    NONE = "none"


def _fmt(value: float | None) -> str:
    # PIPAL's label files carry four decimals (e.g. A0001_00_00.bmp,1520.0648).
    return "" if value is None else f"{value:.4f}"


def _spread(recent: list[float]) -> float | None:
    return statistics.stdev(recent) if len(recent) >= 2 else None


def _raters_per_image(study: Study) -> dict[int, int]:
    """Distinct raters per image over the counted judgments, counted in the database: an image
    is either side of a pair, so both sides are stacked (UNION ALL) and grouped once."""
    counted = bt_fit.counted_judgments(study).order_by()
    sides = [
        counted.values(image_id=F(side), voter_id=F("rater_id")).query.sql_with_params()
        for side in ("image_a_id", "image_b_id")
    ]
    sql = (
        "SELECT image_id, COUNT(DISTINCT voter_id) FROM "
        f"({sides[0][0]} UNION ALL {sides[1][0]}) AS sides GROUP BY image_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*sides[0][1], *sides[1][1]))
        return dict(cursor.fetchall())


def bt_fit_state(study: Study) -> str:
    """``current``, ``stale`` or ``none`` (no fit) for the study's latest Bradley–Terry fit."""
    fit = study.bt_fits.first()
    if fit is None:
        return BtFit.NONE
    return BtFit.CURRENT if bt_fit.fit_is_current(study, fit) else BtFit.STALE


def mos_records(study: Study) -> list[dict]:
    """One dict per image (keys ``RECORD_KEYS``), sorted by reference and image name; numbers
    unformatted, None where there is no value. One query for the images, one for the raters."""
    raters = _raters_per_image(study)
    rows = (
        DistortedImage.objects.filter(study=study)
        .order_by("reference__name", "name")
        .values_list(
            "id", "reference__name", "name", "distortion_type__code", "distortion_type__category",
            "distortion_type__subtype", "level", "elo", "mos", "recent_elo", "mos_std", "judgment_count", "mos_bt",
            "bt_ci_low", "bt_ci_high",
        )
    )  # fmt: skip
    return [
        {
            "reference": reference,
            "image": image,
            "distortion_type": code,
            "category": category,
            "subtype": subtype,
            "level": level,
            "elo": elo,
            "mos": mos,
            "mos_sd": label_sd if study.mos_from_labels else _spread(recent),
            "judgments": judgments,
            "raters": raters.get(image_id, 0),
            "mos_bt": bt,
            "ci_low": low,
            "ci_high": high,
        }
        for image_id, reference, image, code, category, subtype, level, elo, mos, recent, label_sd, judgments, bt, low,
        high in rows.iterator(chunk_size=10_000)
    ]  # fmt: skip


def _software_version() -> str | None:
    try:
        return metadata.version("pipal-platform")
    except metadata.PackageNotFoundError:  # run from a checkout, not an installed package
        return None


def mos_export_metadata(study: Study) -> dict:
    """The settings and state that shaped the study's MOS, for the sidecar beside a MOS export
    (and the owner API): Elo and Bradley–Terry settings, the counted log's size and the fit used."""
    fit = study.bt_fits.first()
    state = bt_fit_state(study)
    return {
        "slug": study.slug,
        "name": study.name,
        "mos_source": study.mos_source,
        "elo_m": study.elo_m,
        "elo_k": study.elo_k,
        "elo_initial": study.elo_initial,
        "mos_window": study.mos_window,
        "bt_scope": study.bt_scope,
        "bt_rounds": study.bt_rounds,
        "target_ci_width": study.target_ci_width,
        "target_kendall": study.target_kendall,
        "judgments": bt_fit.counted_judgments(study).count(),
        "images": study.images.count(),
        "bt_fitted_at": fit.created_at.isoformat() if fit else None,
        "bt_fit_judgments": fit.log_judgments if fit else None,
        "bt_fit_rounds": fit.rounds if fit else None,
        "bt_fit_seed": fit.seed if fit else None,
        "bt_fit": state,
        "bt_stale": state == BtFit.STALE,
        "exported_at": timezone.now().isoformat(),
        "software_version": _software_version(),
        "columns": COLUMN_NOTES,
    }


def mos_rows(study: Study) -> list[tuple]:
    """The CSV's rows (``CSV_COLUMNS``), numbers formatted."""
    state = bt_fit_state(study)
    rows = []
    for record in mos_records(study):
        fitted = record["mos_bt"] is not None
        rows.append(
            (
                record["reference"],
                record["image"],
                record["distortion_type"],
                record["category"],
                record["subtype"],
                record["level"],
                _fmt(record["elo"]),
                _fmt(record["mos"]),
                _fmt(record["mos_sd"]),
                record["judgments"],
                record["raters"],
                _fmt(record["mos_bt"]),
                _fmt(record["ci_low"]),
                _fmt(record["ci_high"]),
                BtFit.NONE if state == BtFit.CURRENT and not fitted else state,
            )
        )
    return rows


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
    rows = DistortedImage.objects.filter(study=study).order_by("reference__name", "name")
    for reference, image, mos in rows.values_list("reference__name", "name", "mos").iterator(chunk_size=10_000):
        by_reference.setdefault(reference, []).append(f"{image},{_fmt(mos)}\n")
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


# --- the single-stimulus and ranking protocols (acr, dcr, rank-k) ----------------------------

# What each protocol's columns mean, for readers of the sidecar.
PROTOCOL_COLUMN_NOTES = {
    "acr": {
        "mos": "mean of the image's counted scores (excluded raters left out)",
        "sd": "sample standard deviation (n - 1) of those scores",
        "n": "counted scores",
        "ci_low/ci_high": "Student-t 95% confidence interval of the mean (ITU-R BT.500-13 §2.2.1)",
        "mle_quality": "the subject model's maximum-likelihood quality (sureal), rater bias and inconsistency "
        "removed; mle_ci_low/mle_ci_high its 95% confidence interval",
    },
    "rank-k": {
        "mean_rank": "mean position in the rankings the image is in (1 = best), as RankSRGAN reports it",
        "n": "counted rankings the image is in",
        "pl_score": "Plackett–Luce score (choix; higher = better), pl_ci_low/pl_ci_high its bootstrap 95% CI",
        "borda": "mean normalised Borda score (k - position) / (k - 1): 1 best, 0 worst; the image's stored MOS",
    },
}
PROTOCOL_COLUMN_NOTES["dcr"] = PROTOCOL_COLUMN_NOTES["acr"]
SCREENING_COLUMN_NOTES = {
    "acr": {
        "bt500_p/bt500_q": "ITU-R BT.500-13 Annex 2 §2.3.1: scores above / below the image's mean by 2 SD (normal "
        "scores) or sqrt(20) SD",
        "bt500_rejected": "BT.500's rule: (P + Q) / n > 0.05 and |P - Q| / (P + Q) < 0.3",
        "pcc": "Pearson correlation of the rater's scores with the panel's MOS; pcc_rejected below 0.75 (P.808)",
        "bias/inconsistency": "the subject model's (sureal) per-rater bias and inconsistency",
        "rejected": "rejected by BT.500 or by the correlation; reason says which",
    },
    "rank-k": {
        "agreement": "mean Kendall tau of the rater's rankings with the Plackett–Luce order (1: always agrees)",
        "min_agreement": "their lowest",
    },
}
SCREENING_COLUMN_NOTES["dcr"] = SCREENING_COLUMN_NOTES["acr"]


def _cell(value) -> str:
    """One table cell: numbers with four decimals (as the pairwise export), booleans in lower case,
    blank where there is no value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | np.bool_):
        return _flag(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return _fmt(float(value))
    return str(value)


def _table_csv(frame, columns) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in frame[list(columns)].itertuples(index=False):
        writer.writerow([_cell(value) for value in row])
    return buffer.getvalue()


def protocol_csv(study: Study, *, subject_model: bool = True) -> str:
    """acr, dcr, rank-k: the per-image results (``protocol_results``), a row per image sorted
    by reference and image name."""
    columns = (*protocol_results.IMAGE_COLUMNS, *protocol_results.result_columns(study))
    return _table_csv(protocol_results.protocol_results(study, subject_model=subject_model), columns)


def rater_screening_csv(study: Study) -> str:
    """acr, dcr, rank-k: a row per counted rater (``rater_screening``), sorted by rater id."""
    return _table_csv(protocol_results.rater_screening(study), protocol_results.screening_columns(study))


def protocol_export_metadata(study: Study) -> dict:
    """What shaped an acr, dcr or rank-k export, for its sidecar: protocol, scale, the log's size
    (counted, excluded, live and imported), the confidence level and the Plackett–Luce bootstrap."""
    rank_k = study.protocol == Study.Protocol.RANK_K
    log = study.rankings if rank_k else study.ratings
    counted = protocol_results.counted_rankings(study) if rank_k else protocol_results.counted_ratings(study)
    raters = counted.order_by().values_list("rater_id", "external_rater").distinct().count()
    scale = study.rating_scale
    return {
        "slug": study.slug,
        "name": study.name,
        "protocol": study.protocol,
        "scale": scale.to_json() if scale else None,
        "rank_k": study.rank_k if rank_k else None,
        "entries": "rankings" if rank_k else "ratings",
        "counted": counted.count(),
        "excluded": log.filter(rater__excluded=True).count(),
        "live": log.filter(source="live").count(),
        "imported": log.filter(source="import").count(),
        "raters": raters,
        "images": study.images.count(),
        "images_measured": study.images.filter(judgment_count__gt=0).count(),
        "level": protocol_results.LEVEL,
        "pl_rounds": study.bt_rounds if rank_k else None,
        "pl_seed": protocol_results.PL_SEED if rank_k else None,
        "exported_at": timezone.now().isoformat(),
        "software_version": _software_version(),
        "columns": PROTOCOL_COLUMN_NOTES[study.protocol],
    }
