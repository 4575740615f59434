"""Importing labelled datasets: a study whose MOS comes from the labels.

Three formats (``import_labels --format``):

* ``pipal``: PIPAL's layout — references in ``Ref/`` (also ``Train_Ref/``,
  ``Reference_train/``), distorted images in ``Dis/`` (also ``Train_Dis/``,
  ``Distortion/`` and ``Distortion_1/``… of the real download, searched
  recursively), labels in ``Train_Label/<ref>.txt`` (also
  ``MOS_Scores_train/``) with lines ``<image>,<elo mos>``, or one pyiqa CSV
  ``hq_name,dist_name,elo_score`` given as ``labels``.
* ``mos-csv``: ``reference,image,mos[,std][,distortion_type]`` (TID2013,
  KADID-10k, LIVE…); the score's direction is required and a range optional.
  The MOS is stored higher = better: a lower-is-better score (DMOS) ``x``
  becomes ``low + high - x`` with a range, ``-x`` without one; the value as
  written is kept in ``label_value``.
* ``2afc``: BAPPS triplets — ``ref/``, ``p0/``, ``p1/``, ``judge/`` folders
  with same-named files (``judge/*.npy``: the share of raters who preferred
  p1), or a folder of such subsets, or a CSV ``reference,p0,p1,judge[,votes]``.
  Each triplet becomes ``votes`` judgments replayed through the Elo engine
  (the study stays an Elo study); the others mark the study ``labels``.

Reading (``labels_read``) touches no database and reports every problem with
its file and line; checking the images (``labels_check_images``) reuses the
image import's checks; ``labels_import`` writes everything in one
transaction into a new or empty study, or nothing.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.validators import validate_slug
from django.db import transaction

from annotation import services
from annotation.exceptions import ApplicationError, Conflict
from annotation.importing import (
    DISTORTED_NAME,
    ImportFailed,
    ImportPlan,
    ListedImage,
    TypeRow,
    dataset_file,
    folder_files,
    plan_listed_import,
    read_type_csv,
    reference_name,
    write_plan,
)
from annotation.models import Category, LabelImport, ReferenceImage, Study
from annotation.services import ReplayRow
from core.dataset_paths import OutsideDataset, inside

FORMATS = tuple(choice.value for choice in LabelImport.Format)
REF_FOLDERS = ("Ref", "Train_Ref", "Reference_train")
DIS_FOLDERS = ("Dis", "Train_Dis", "Distortion")
DIS_PARTS = re.compile(r"^Distortion_?\d+$")  # the real download's Distortion_1 … Distortion_4
LABEL_FOLDERS = ("Train_Label", "MOS_Scores_train")
PYIQA_COLUMNS = ("hq_name", "dist_name", "elo_score")
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


def study_for_labels(slug: str) -> Study | None:
    """The study labels go into: an existing empty one, or None when the slug is new.

    Labels fill a new or empty study only: re-running an import (or importing
    into a study that holds images or raters) is refused and changes nothing.
    """
    study = Study.objects.filter(slug=slug).first()
    if study is None:
        try:
            validate_slug(slug)
        except ValidationError:
            raise ApplicationError(f"{slug!r} is not a valid study slug (letters, digits, '-' and '_' only)") from None
        return None
    _require_empty(study)
    return study


def _require_empty(study: Study) -> None:
    previous = study.label_imports.order_by("-id").first()
    images, references, raters = study.images.count(), study.references.count(), study.raters.count()
    if previous is None and not (images or references or raters):
        return
    held = f"{images} image(s), {references} reference(s) and {raters} rater(s)"
    if previous is not None:
        held += f", imported from {previous.source} ({previous.format}) on {previous.created_at:%Y-%m-%d %H:%M}"
    raise Conflict(
        f"study {study.slug!r} already holds {held}: import_labels fills a new or empty study only, so nothing "
        "was changed; choose a new slug (the study is created) or delete this one first",
        code="study_not_empty",
    )


# --- reading: pure, every problem with its file and line ---------------------------


def labels_read(source: Path, options: LabelOptions) -> LabelPlan:
    """Read and check the label files; raise ImportFailed listing every problem."""
    check_options(options)
    source = Path(source)
    if not source.exists():
        raise ImportFailed([f"{source}: no such file or folder"])
    reader = {"pipal": _read_pipal, "mos-csv": _read_mos_csv, "2afc": _read_2afc}[options.format]
    errors: list[str] = []
    plan = reader(source, options, errors)
    if errors:
        raise ImportFailed(errors)
    if not plan.distorted:
        raise ImportFailed([f"{source}: no labelled image found"])
    return plan


def _shown(path: Path, root: Path) -> str:
    """A path as error messages show it: relative to the source folder when inside it."""
    try:
        return str(path.relative_to(root)) if root.is_dir() else str(path)
    except ValueError:
        return str(path)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _read_text(path: Path, errors: list[str]) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        errors.append(f"{path}: cannot be read as UTF-8 text ({error})")
        return None


def _csv_rows(
    path: Path, shown: str, errors: list[str], required, optional=()
) -> tuple[list[str], list[tuple[int, dict]]]:
    """A CSV's header and its rows as (line number, {column: stripped value}); header problems and
    rows with the wrong number of fields go to ``errors``, naming the file as ``shown``."""
    text = _read_text(path, errors)
    if text is None:
        return [], []
    reader = csv.reader(text.splitlines())
    header = [name.strip() for name in next(reader, [])]
    missing = [column for column in required if column not in header]
    unknown = [column for column in header if column not in (*required, *optional)]
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


def _one_folder(root: Path, names: tuple[str, ...], what: str, errors: list[str]) -> Path | None:
    found = [root / name for name in names if (root / name).is_dir()]
    if len(found) == 1:
        return found[0]
    listed = "/, ".join(names) + "/"
    if found:
        errors.append(f"{root}: several {what} folders ({', '.join(p.name for p in found)}); keep one")
    else:
        errors.append(f"{root}: no {what} folder (expected one of {listed})")
    return None


def _named_files(root: Path, row: dict, bases: dict[str, Path], where: str, errors: list[str]) -> dict | None:
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


# --- pipal ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _PipalLabel:
    image: str
    reference: str | None  # the reference the label file says (file stem or hq_name), None: not said
    value: float
    where: str  # "Train_Label/A0001.txt line 3"


def _read_pipal(source: Path, options: LabelOptions, errors: list[str]) -> LabelPlan:
    plan = LabelPlan(format="pipal", source=source)
    if not source.is_dir():
        errors.append(f"{source}: --format pipal takes the dataset's folder (with Ref/, Dis/ and Train_Label/)")
        return plan
    ref_dir = _one_folder(source, REF_FOLDERS, "reference", errors)
    dis_dirs = [source / name for name in DIS_FOLDERS if (source / name).is_dir()]
    dis_dirs += [path for path in sorted(source.iterdir()) if path.is_dir() and DIS_PARTS.match(path.name)]
    if not dis_dirs:
        errors.append(f"{source}: no distorted-image folder (expected Dis/, Train_Dis/, Distortion/ or Distortion_1/…)")
    labels = _pipal_labels(source, options.labels, plan, errors)
    if ref_dir is None or not dis_dirs:
        return plan

    references: dict[str, Path] = {}
    for path in folder_files(ref_dir, errors, root=source):
        name = reference_name(path, errors)
        if name is not None and references.setdefault(name, path) != path:
            errors.append(f"{_shown(path, source)}: reference {name} appears twice in {ref_dir.name}/")
    distorted: dict[str, Path] = {}
    for folder in dis_dirs:
        for path in folder_files(folder, errors, root=source, recursive=True):
            if distorted.setdefault(path.name, path) != path:
                errors.append(f"{_shown(path, source)}: {path.name} is also {_shown(distorted[path.name], source)}")

    seen: dict[str, str] = {}
    for label in labels:
        match = DISTORTED_NAME.match(label.image)
        if label.image in seen:
            errors.append(f"{label.where}: {label.image} is labelled twice (also {seen[label.image]})")
        elif not match:
            errors.append(f"{label.where}: {label.image!r} is not a PIPAL image name <ref>_<type>_<level>.<ext>")
        elif label.reference is not None and match["reference"] != label.reference:
            errors.append(
                f"{label.where}: {label.image} belongs to reference {match['reference']}, not {label.reference}"
            )
        elif label.image not in distorted:
            errors.append(f"{label.where}: {label.image} is not in {', '.join(d.name + '/' for d in dis_dirs)}")
        elif match["reference"] not in references:
            errors.append(f"{label.where}: its reference {match['reference']} is not in {ref_dir.name}/")
        else:
            seen[label.image] = label.where
            plan.distorted.append(
                ListedImage(label.image, distorted[label.image], match["reference"], match["type"], int(match["level"]))
            )
            plan.labels[label.image] = _label_fields(label.value, label.value)
    unlabelled = sorted(set(distorted) - {label.image for label in labels})
    if unlabelled and not options.allow_unlabelled:
        errors += [
            f"{_shown(distorted[name], source)}: has no label; give --allow-unlabelled to leave such images out"
            for name in unlabelled
        ]
    plan.left_out = len(unlabelled)
    used = {item.reference for item in plan.distorted}
    plan.references = {name: path for name, path in references.items() if name in used}
    types_csv = dataset_file(source, "distortion_types.csv", errors)
    if types_csv is not None:
        plan.types, type_errors = read_type_csv(types_csv)
        errors += type_errors
    plan.options = {"allow_unlabelled": options.allow_unlabelled, "direction": "higher_is_better (Elo MOS)"}
    return plan


def _pipal_labels(source: Path, given: Path | None, plan: LabelPlan, errors: list[str]) -> list[_PipalLabel]:
    # --labels is named on the command line, so it may be anywhere; the files in it (or in the
    # dataset's own label folder) must stay inside that folder.
    where = Path(given) if given is not None else _one_folder(source, LABEL_FOLDERS, "label", errors)
    if where is None:
        return []
    if where.is_file():
        plan.label_files = [_shown(where, source)]
        return _read_pyiqa_csv(where, source, errors)
    if not where.is_dir():
        errors.append(f"{where}: --labels must be a folder of <ref>.txt files or a pyiqa CSV (no such file)")
        return []
    root = where if given is not None else source
    files = [path for path in folder_files(where, errors, root=root) if path.suffix.lower() == ".txt"]
    if not files:
        errors.append(f"{where}: no <ref>.txt label file")
    plan.label_files = [_shown(path, source) for path in files]
    labels = []
    for path in files:
        text = _read_text(path, errors)
        shown = _shown(path, source)
        for line, content in enumerate((text or "").splitlines(), start=1):
            if not content.strip():
                continue
            fields = [value.strip() for value in content.split(",")]
            value = _float(fields[1]) if len(fields) == 2 else None
            if len(fields) != 2 or not fields[0]:
                errors.append(f"{shown} line {line}: expected <image>,<mos>, got {content.strip()!r}")
            elif value is None:
                errors.append(f"{shown} line {line}: MOS {fields[1]!r} is not a finite number")
            else:
                labels.append(_PipalLabel(fields[0], path.stem, value, f"{shown} line {line}"))
    return labels


def _read_pyiqa_csv(path: Path, source: Path, errors: list[str]) -> list[_PipalLabel]:
    shown = _shown(path, source)
    _, rows = _csv_rows(path, shown, errors, PYIQA_COLUMNS)
    labels = []
    for line, row in rows:
        value = _float(row["elo_score"])
        if not row["hq_name"] or not row["dist_name"]:
            errors.append(f"{shown} line {line}: hq_name and dist_name must not be empty")
        elif value is None:
            errors.append(f"{shown} line {line}: elo_score {row['elo_score']!r} is not a finite number")
        else:
            labels.append(_PipalLabel(row["dist_name"], Path(row["hq_name"]).stem, value, f"{shown} line {line}"))
    return labels


def _label_fields(mos: float, written: float, std: float | None = None) -> dict:
    """A labelled image's fields: MOS and Elo both the label (no live Elo), one judgment."""
    return {
        "elo": mos,
        "mos": mos,
        "recent_elo": [mos],
        "judgment_count": LABEL_JUDGMENTS,
        "label_value": written,
        "mos_std": std,
    }


# --- mos-csv ---------------------------------------------------------------------------


def _image_roots(csv_path: Path, images: Path | None, errors: list[str]) -> tuple[Path, Path, Path]:
    """The dataset folder every named file must stay in, and where reference and distorted files
    are named from: its Ref/ and Dis/ when both exist, else the folder itself."""
    root = Path(images) if images is not None else csv_path.parent
    if not root.is_dir():
        errors.append(f"{root}: --images must be a folder")
    if (root / "Ref").is_dir() and (root / "Dis").is_dir():
        return root, root / "Ref", root / "Dis"
    return root, root, root


def _read_mos_csv(source: Path, options: LabelOptions, errors: list[str]) -> LabelPlan:
    plan = LabelPlan(format="mos-csv", source=source)
    if not source.is_file():
        errors.append(f"{source}: --format mos-csv takes the CSV file (reference,image,mos[,std][,distortion_type])")
        return plan
    root, ref_root, dis_root = _image_roots(source, options.images, errors)
    header, rows = _csv_rows(source, source.name, errors, MOS_COLUMNS, MOS_OPTIONAL)
    plan.label_files = [source.name]
    low, high = options.range or (None, None)
    names: dict[str, int] = {}  # image name -> line
    reference_paths: dict[str, Path] = {}
    groups: dict[tuple[str, str], list[tuple[int, str, re.Match | None]]] = defaultdict(list)
    rows_by_name: dict[str, tuple] = {}
    for line, row in rows:
        where = f"{source.name} line {line}"
        problems = []
        value = _float(row["mos"])
        if not row["reference"] or not row["image"]:
            problems.append("reference and image must not be empty")
        if value is None:
            problems.append(f"mos {row['mos']!r} is not a finite number")
        elif options.range is not None and not low <= value <= high:
            problems.append(f"mos {value:g} is outside --range {low:g} {high:g}")
        std = None
        if row.get("std"):
            std = _float(row["std"])
            if std is None or std < 0:
                problems.append(f"std {row['std']!r} is not a number >= 0")
                std = None
        code = row.get("distortion_type", "")
        if len(code) > 32 or "/" in code:
            problems.append(f"distortion_type {code!r} must be at most 32 characters without '/'")
        if problems:
            errors.append(f"{where}: {'; '.join(problems)}")
            continue
        paths = _named_files(root, row, {"reference": ref_root, "image": dis_root}, where, errors)
        if paths is None:
            continue
        ref_path, image_path = paths["reference"], paths["image"]
        reference = Path(row["reference"]).stem.replace("_", "-")
        name = re.sub(r"[/\\]+", "-", row["image"].strip("/\\"))
        if not ref_path.is_file():
            errors.append(f"{where}: reference file {ref_path} not found")
            continue
        if not image_path.is_file():
            errors.append(f"{where}: image file {image_path} not found")
            continue
        if reference_paths.setdefault(reference, ref_path) != ref_path:
            errors.append(f"{where}: reference {row['reference']} has the same name ({reference}) as another file")
            continue
        if name in names:
            errors.append(f"{where}: image {name} already labelled on line {names[name]}")
            continue
        names[name] = line
        match = DISTORTED_NAME.match(image_path.name)
        if not code:
            code = match["type"] if match else UNKNOWN_TYPE
        groups[(reference, code)].append((line, name, match if match and match["type"] == code else None))
        rows_by_name[name] = (image_path, reference, code, value, std)

    for (reference, code), members in groups.items():
        levels = _levels(members, source.name, errors)
        for (_, name, _), level in zip(members, levels, strict=True):
            image_path, _, _, value, std = rows_by_name[name]
            plan.distorted.append(ListedImage(name, image_path, reference, code, level))
            plan.labels[name] = _label_fields(_platform_mos(value, options), value, std)
    plan.references = {name: reference_paths[name] for name in sorted({item.reference for item in plan.distorted})}
    types_csv = dataset_file(source.parent, "distortion_types.csv", errors) if "distortion_type" in header else None
    if types_csv is not None:
        plan.types, type_errors = read_type_csv(types_csv)
        errors += type_errors
    if UNKNOWN_TYPE in {item.type_code for item in plan.distorted}:
        plan.types.setdefault(UNKNOWN_TYPE, TypeRow(UNKNOWN_TYPE, "distortion type not given", "", ""))
    plan.options = {
        "direction": "higher_is_better" if options.higher_is_better else "lower_is_better",
        "range": list(options.range) if options.range else None,
        "stored_as": _mapping(options),
        "images": str(options.images or source.parent),
    }
    return plan


def _levels(members: list[tuple[int, str, re.Match | None]], shown: str, errors: list[str]) -> list[int]:
    """Levels of one (reference, type)'s images: from their names when every name
    says it (<ref>_<type>_<level>.<ext>), else 1, 2, … in file order."""
    if not all(match for _, _, match in members):
        return list(range(1, len(members) + 1))
    levels, taken = [], {}
    for line, name, match in members:
        level = int(match["level"])
        if level in taken:
            errors.append(f"{shown} line {line}: {name} has the same reference, type and level as line {taken[level]}")
        taken.setdefault(level, line)
        levels.append(level)
    return levels


def _mapping(options: LabelOptions) -> str:
    if options.higher_is_better:
        return "x"
    return f"{options.range[0]:g} + {options.range[1]:g} - x" if options.range else "-x"


def _platform_mos(value: float, options: LabelOptions) -> float:
    """The platform's convention is higher = better (more similar to the reference)."""
    if options.higher_is_better:
        return value
    if options.range is not None:
        return options.range[0] + options.range[1] - value
    return -value


# --- 2afc ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Triplet:
    reference: Path
    p0: Path
    p1: Path
    judge: float
    votes: int
    code: str
    reference_name: str
    where: str


def _read_2afc(source: Path, options: LabelOptions, errors: list[str]) -> LabelPlan:
    plan = LabelPlan(format="2afc", source=source)
    votes = options.votes or 1
    votes_column = False
    if source.is_file():
        triplets, votes_column = _afc_csv(source, options, votes, errors)
        plan.label_files = [source.name]
        types = {AFC_CSV_TYPE: TypeRow(AFC_CSV_TYPE, "2AFC triplet image", "", "")}
    else:
        subsets = [source] if _is_subset(source) else [path for path in sorted(source.iterdir()) if _is_subset(path)]
        if not subsets:
            errors.append(f"{source}: expected BAPPS folders ref/, p0/, p1/, judge/ (or subfolders that have them)")
            return plan
        triplets, types = [], {}
        for folder in subsets:
            code = _code(folder.name)
            if code in types:
                errors.append(f"{folder}: two subsets named {code}")
                continue
            types[code] = TypeRow(code, f"BAPPS {folder.name}", BAPPS_CATEGORIES.get(code, ""), code)
            triplets += _afc_folder(folder, code, source, votes, errors)
            plan.label_files.append(_shown(folder / "judge", source))
    plan.types = types
    _afc_plan(plan, triplets, errors)
    plan.options = {
        "votes": votes,
        "votes_column": votes_column,
        "images": str(options.images or source.parent) if source.is_file() else None,
        "judgments": "judge x votes wins for p1 (the rest for p0), spread evenly, replayed through the Elo engine",
    }
    return plan


def _is_subset(folder: Path) -> bool:
    return folder.is_dir() and all((folder / name).is_dir() for name in AFC_FOLDERS)


def _code(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", text)[:32] or "2afc"


def _judgment_votes(judge: float, votes: int) -> int | None:
    """How many of ``votes`` preferred p1, or None when ``judge`` is not a whole share of them."""
    wins = judge * votes
    return round(wins) if abs(wins - round(wins)) <= VOTE_TOLERANCE else None


def _afc_folder(folder: Path, code: str, source: Path, votes: int, errors: list[str]) -> list[_Triplet]:
    import numpy as np

    refs = {path.stem: path for path in folder_files(folder / "ref", errors, root=source)}
    parts = {
        name: {path.stem: path for path in folder_files(folder / name, errors, root=source)}
        for name in ("p0", "p1", "judge")
    }
    for files in parts.values():
        for stem in sorted(set(files) - set(refs)):
            errors.append(f"{_shown(files[stem], source)}: no {stem} in {_shown(folder / 'ref', source)}/")
    triplets = []
    for stem, ref in sorted(refs.items()):
        missing = [name for name in ("p0", "p1", "judge") if stem not in parts[name]]
        if missing:
            errors.append(f"{_shown(ref, source)}: no {stem} in {', '.join(m + '/' for m in missing)}")
            continue
        judge_path = parts["judge"][stem]
        where = _shown(judge_path, source)
        try:
            array = np.load(judge_path, allow_pickle=False)
        except (OSError, ValueError) as error:
            errors.append(f"{where}: not a NumPy .npy file ({error})")
            continue
        if array.size != 1 or not np.issubdtype(array.dtype, np.number):
            errors.append(f"{where}: expected one number (the share preferring p1), got shape {array.shape}")
            continue
        triplet = _triplet(
            _Triplet(
                reference=ref,
                p0=parts["p0"][stem],
                p1=parts["p1"][stem],
                judge=float(array.reshape(-1)[0]),
                votes=votes,
                code=code,
                reference_name=f"{code}-{stem.replace('_', '-')}",
                where=where,
            ),
            errors,
        )
        if triplet:
            triplets.append(triplet)
    return triplets


def _triplet(triplet: _Triplet, errors: list[str]) -> _Triplet | None:
    """The triplet if its judge is a share in [0, 1] that its votes can express, else None (and why in ``errors``)."""
    judge, votes = triplet.judge, triplet.votes
    if not (math.isfinite(judge) and 0 <= judge <= 1):
        errors.append(f"{triplet.where}: judge {judge:g} is not in [0, 1]")
        return None
    if _judgment_votes(judge, votes) is None:
        errors.append(
            f"{triplet.where}: judge {judge:g} x {votes} vote(s) is not a whole number of votes; give --votes N "
            "with the number of judgments per triplet (BAPPS: 2 in train, 5 in val) or a votes column"
        )
        return None
    return triplet


def _afc_csv(source: Path, options: LabelOptions, votes: int, errors: list[str]) -> tuple[list[_Triplet], bool]:
    root = Path(options.images) if options.images is not None else source.parent
    if not root.is_dir():
        errors.append(f"{root}: --images must be a folder")
    header, rows = _csv_rows(source, source.name, errors, AFC_COLUMNS, ("votes",))
    triplets = []
    for line, row in rows:
        where = f"{source.name} line {line}"
        judge = _float(row["judge"])
        count = votes
        if row.get("votes"):
            count = int(row["votes"]) if row["votes"].isdigit() else 0
            if count < 1:
                errors.append(f"{where}: votes {row['votes']!r} is not a whole number >= 1")
                continue
        if judge is None:
            errors.append(f"{where}: judge {row['judge']!r} is not a finite number")
            continue
        paths = _named_files(root, row, dict.fromkeys(("reference", "p0", "p1"), root), where, errors)
        if paths is None:
            continue
        missing = [
            f"{column} {paths.get(column, row[column] or '(empty)')}"
            for column in ("reference", "p0", "p1")
            if column not in paths or not paths[column].is_file()
        ]
        if missing:
            errors.append(f"{where}: file not found: {', '.join(missing)}")
            continue
        if paths["p0"] == paths["p1"]:
            errors.append(f"{where}: p0 and p1 are the same file")
            continue
        name = re.sub(r"[^A-Za-z0-9.-]", "-", Path(row["reference"]).with_suffix("").as_posix().replace("/", "-"))
        triplet = _triplet(
            _Triplet(
                reference=paths["reference"],
                p0=paths["p0"],
                p1=paths["p1"],
                judge=judge,
                votes=count,
                code=AFC_CSV_TYPE,
                reference_name=name,
                where=where,
            ),
            errors,
        )
        if triplet:
            triplets.append(triplet)
    return triplets, "votes" in header


def _afc_plan(plan: LabelPlan, triplets: list[_Triplet], errors: list[str]) -> None:
    """Images and judgments of the triplets: each image file is one image of its
    reference (levels 0, 1, … in order of appearance: p0 before p1), each
    triplet ``votes`` judgments with the p1 wins spread evenly among them."""
    reference_files: dict[str, Path] = {}
    images: dict[Path, tuple[str, str]] = {}  # file -> (image name, reference name)
    next_level: dict[tuple[str, str], int] = defaultdict(int)
    for triplet in triplets:
        if reference_files.setdefault(triplet.reference_name, triplet.reference) != triplet.reference:
            errors.append(f"{triplet.where}: reference {triplet.reference} has the same name as another file")
            continue
        names = []
        for path in (triplet.p0, triplet.p1):
            if path in images:
                name, reference = images[path]
                if reference != triplet.reference_name:
                    errors.append(f"{triplet.where}: {path} appears with two references")
            else:
                level = next_level[(triplet.reference_name, triplet.code)]
                next_level[(triplet.reference_name, triplet.code)] += 1
                name = f"{triplet.reference_name}_{triplet.code}_{level:02d}{path.suffix.lower()}"
                images[path] = (name, triplet.reference_name)
                plan.distorted.append(ListedImage(name, path, triplet.reference_name, triplet.code, level))
            names.append(name)
        wins = _judgment_votes(triplet.judge, triplet.votes)
        for vote in range(triplet.votes):
            p1_wins = (vote + 1) * wins // triplet.votes - vote * wins // triplet.votes == 1
            plan.judgments.append(
                ReplayRow(line=len(plan.judgments) + 1, image_a=names[0], image_b=names[1], a_wins=not p1_wins)
            )
    plan.references = dict(sorted(reference_files.items()))


# --- checking the images and writing ------------------------------------------------


def labels_check_images(
    study: Study | None, plan: LabelPlan, *, progress: Callable[[int], object] | None = None
) -> ImportPlan:
    """Open, hash and decode every image file the labels name (the image import's
    checks: formats, limits, corrupt files, sizes); raise ImportFailed listing every problem."""
    return plan_listed_import(
        study, references=plan.references, distorted=plan.distorted, types=plan.types, progress=progress
    )


@dataclass(frozen=True)
class LabelReport:
    study: Study
    record: LabelImport
    references: int
    images: int
    judgments: int
    left_out: int


def labels_import(
    *,
    slug: str,
    plan: LabelPlan,
    images: ImportPlan,
    name: str = "",
    progress: Callable[[int], object] | None = None,
) -> LabelReport:
    """Write a checked label import in one transaction: the study (created when
    the slug is new), its images with their labels, the 2AFC judgments and the
    record of the import. On any error nothing is kept, files included."""
    written: list[str] = []
    try:
        with transaction.atomic():
            study = Study.objects.select_for_update().filter(slug=slug).first()
            if study is None:
                study = services.study_create(slug=slug, name=name)
            else:
                _require_empty(study)
            study.mos_source = plan.mos_source
            study.save(update_fields=["mos_source"])
            report = write_plan(study, images, written, image_fields=plan.labels, progress=progress)
            judgments = services.judgments_replay(study=study, rows=plan.judgments) if plan.judgments else 0
            record = LabelImport.objects.create(
                study=study,
                format=plan.format,
                source=str(plan.source)[:500],
                label_files=plan.label_files,
                options=plan.options,
                references=ReferenceImage.objects.filter(study=study).count(),
                images=report.distorted,
                judgments=judgments,
                left_out=plan.left_out,
            )
    except BaseException:
        for path in written:
            default_storage.delete(path)
        raise
    return LabelReport(
        study=study,
        record=record,
        references=record.references,
        images=record.images,
        judgments=judgments,
        left_out=plan.left_out,
    )
