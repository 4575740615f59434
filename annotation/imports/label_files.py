"""What every label format shares: the options, the plan a reader fills, the constants of
the formats and the helpers that read their files (pure: no database)."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from annotation.analysis.replay import ReplayRow
from annotation.imports.folders import (
    ListedImage,
    TypeRow,
)
from annotation.models import Category, LabelImport, Study
from core.dataset_paths import OutsideDataset, inside
from core.errors import ApplicationError

FORMATS = tuple(choice.value for choice in LabelImport.Format)
REF_FOLDERS = ("Ref", "Train_Ref", "Reference_train")
DIS_FOLDERS = ("Dis", "Train_Dis", "Distortion", "Dist_Imgs")  # Dist_Imgs: pyiqa's datasets/PIPAL/
DIS_PARTS = re.compile(r"^Distortion_?\d+$")  # the real download's Distortion_1 … Distortion_4
LABEL_FOLDERS = ("Train_Label", "MOS_Scores_train")
PYIQA_COLUMNS = ("hq_name", "dist_name", "elo_score")
# pyiqa's datasets/ folder: PIPAL/ holds the images, meta_info/ the CSV its PIPAL options name.
PYIQA_IMAGES = "PIPAL"
PYIQA_META = "meta_info/meta_info_PIPALDataset.csv"
MOS_COLUMNS = ("reference", "image", "mos")
MOS_OPTIONAL = ("std", "distortion_type")
AFC_COLUMNS = ("reference", "p0", "p1", "judge")
AFC_FOLDERS = ("ref", "p0", "p1", "judge")
AFC_CSV_TYPE = "2afc"
UNKNOWN_TYPE = "na"  # mos-csv rows with no distortion_type and a name that does not say it
BAPPS_CATEGORIES = {"traditional": Category.TRADITIONAL.value, "superres": Category.SUPER_RESOLUTION.value}
# A judge share times the votes must be a whole number of votes (BAPPS stores float32 shares).
VOTE_TOLERANCE = 1e-3
# A labelled image counts as judged once: run_benchmark and the trainers keep
# images with judgment_count >= --min-judgments (default 1), and a published
# MOS does not say how many votes are behind it.
LABEL_JUDGMENTS = 1


@dataclass(frozen=True)
class LabelOptions:
    """What import_labels was asked; ``check_options`` says which apply to which format."""

    format: str
    labels: Path | None = None  # pipal: a label folder or a pyiqa CSV instead of Train_Label/
    images: Path | None = None  # mos-csv, 2afc CSV: where the image files are (default: the CSV's folder)
    allow_unlabelled: bool = False  # pipal: leave images without a label out instead of refusing
    higher_is_better: bool | None = None  # mos-csv: the score's direction (required)
    range: tuple[float, float] | None = None  # mos-csv: the score's range (validated, used to turn a DMOS round)
    votes: int | None = None  # 2afc: judgments per triplet where the CSV has no votes column (default 1)


@dataclass
class LabelPlan:
    """Everything read from the label files, checked, before any image is opened."""

    format: str
    source: Path
    references: dict[str, Path] = field(default_factory=dict)
    distorted: list[ListedImage] = field(default_factory=list)
    types: dict[str, TypeRow] = field(default_factory=dict)
    labels: dict[str, dict] = field(default_factory=dict)  # image name -> fields of DistortedImage
    judgments: list[ReplayRow] = field(default_factory=list)
    label_files: list[str] = field(default_factory=list)
    options: dict = field(default_factory=dict)
    left_out: int = 0

    @property
    def file_count(self) -> int:
        return len(self.references) + len(self.distorted)

    @property
    def mos_source(self) -> str:
        # 2AFC judgments go through the Elo engine like any votes; other labels are the MOS itself.
        return Study.MosSource.ELO if self.format == "2afc" else Study.MosSource.LABELS


# --- options and the target study ------------------------------------------------


def check_options(options: LabelOptions) -> None:
    """Refuse flags that do not apply to the format (a flag silently ignored is a wrong import)."""
    if options.format not in FORMATS:
        raise ApplicationError(f"unknown format {options.format!r} (known: {', '.join(FORMATS)})")
    given = {
        "--labels": options.labels is not None,
        "--images": options.images is not None,
        "--allow-unlabelled": options.allow_unlabelled,
        "--higher-is-better/--lower-is-better": options.higher_is_better is not None,
        "--range": options.range is not None,
        "--votes": options.votes is not None,
    }
    allowed = {
        "pipal": {"--labels", "--allow-unlabelled"},
        "mos-csv": {"--images", "--higher-is-better/--lower-is-better", "--range"},
        "2afc": {"--images", "--votes"},
    }[options.format]
    wrong = [flag for flag, present in given.items() if present and flag not in allowed]
    if wrong:
        raise ApplicationError(f"{', '.join(wrong)} do(es) not apply to --format {options.format}")
    if options.format == "mos-csv" and options.higher_is_better is None:
        raise ApplicationError(
            "--format mos-csv needs the score's direction: --higher-is-better (MOS) or --lower-is-better (DMOS)"
        )
    if options.range is not None:
        low, high = options.range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ApplicationError(f"--range {low:g} {high:g}: LOW must be below HIGH (both finite)")
    if options.votes is not None and options.votes < 1:
        raise ApplicationError(f"--votes must be at least 1, not {options.votes}")


def shown_path(path: Path, root: Path) -> str:
    """A path as error messages show it: relative to the source folder when inside it."""
    try:
        return str(path.relative_to(root)) if root.is_dir() else str(path)
    except ValueError:
        return str(path)


def parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_text(path: Path, errors: list[str]) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        errors.append(f"{path}: cannot be read as UTF-8 text ({error})")
        return None


def csv_rows(
    path: Path, shown: str, errors: list[str], required, optional=(), *, other_columns: bool = False
) -> tuple[list[str], list[tuple[int, dict]]]:
    """A CSV's header and its rows as (line number, {column: stripped value}); header problems and
    rows with the wrong number of fields go to ``errors``, naming the file as ``shown``. Columns
    beyond ``required`` and ``optional`` are refused unless ``other_columns`` (then read along)."""
    text = read_text(path, errors)
    if text is None:
        return [], []
    reader = csv.reader(text.splitlines())
    header = [name.strip() for name in next(reader, [])]
    missing = [column for column in required if column not in header]
    unknown = [column for column in header if column not in (*required, *optional)] if not other_columns else []
    if missing or unknown or len(set(header)) != len(header):
        expected = ",".join(required) + "".join(f"[,{column}]" for column in optional)
        problems = [f"missing: {', '.join(missing)}"] if missing else []
        problems += [f"unknown: {', '.join(unknown)}"] if unknown else []
        problems += ["a column appears twice"] if len(set(header)) != len(header) else []
        errors.append(f"{shown} line 1: the header must be {expected} ({'; '.join(problems)})")
        return header, []
    rows = []
    for line, values in enumerate(reader, start=2):
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            errors.append(f"{shown} line {line}: expected {len(header)} fields ({','.join(header)}), got {len(values)}")
            continue
        rows.append((line, {column: value.strip() for column, value in zip(header, values, strict=True)}))
    return header, rows


def one_folder(root: Path, names: tuple[str, ...], what: str, errors: list[str]) -> Path | None:
    found = [root / name for name in names if (root / name).is_dir()]
    if len(found) == 1:
        return found[0]
    listed = "/, ".join(names) + "/"
    if found:
        errors.append(f"{root}: several {what} folders ({', '.join(p.name for p in found)}); keep one")
    else:
        errors.append(f"{root}: no {what} folder (expected one of {listed})")
    return None


def named_files(root: Path, row: dict, bases: dict[str, Path], where: str, errors: list[str]) -> dict | None:
    """The files a CSV row names in ``bases``' columns (each relative to its base folder, which
    lies in ``root``), or None when one leaves ``root`` (every such column in ``errors``)."""
    paths, outside = {}, []
    for column, base in bases.items():
        if not row[column]:
            continue
        try:
            paths[column] = inside(root, row[column], base=base)
        except OutsideDataset as error:
            outside.append(f"{column} {error}")
    if outside:
        errors.append(f"{where}: {'; '.join(outside)}")
        return None
    return paths


def label_fields(mos: float, written: float, std: float | None = None) -> dict:
    """A labelled image's fields: MOS and Elo both the label (no live Elo), one judgment."""
    return {
        "elo": mos,
        "mos": mos,
        "recent_elo": [mos],
        "judgment_count": LABEL_JUDGMENTS,
        "label_value": written,
        "mos_std": std,
    }
