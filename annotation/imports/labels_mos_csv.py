"""Reading a MOS table (``import_labels --format mos-csv``): reference,image,mos[,std][,distortion_type]
(TID2013, KADID-10k, LIVE…), stored higher = better."""


from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from annotation.imports.folders import (
    DISTORTED_NAME,
    ListedImage,
    TypeRow,
    dataset_file,
    read_type_csv,
)
from annotation.imports.label_files import (
    MOS_COLUMNS,
    MOS_OPTIONAL,
    UNKNOWN_TYPE,
    LabelOptions,
    LabelPlan,
    csv_rows,
    label_fields,
    named_files,
    parse_float,
)


def _image_roots(csv_path: Path, images: Path | None, errors: list[str]) -> tuple[Path, Path, Path]:
    """The dataset folder every named file must stay in, and where reference and distorted files
    are named from: its Ref/ and Dis/ when both exist, else the folder itself."""
    root = Path(images) if images is not None else csv_path.parent
    if not root.is_dir():
        errors.append(f"{root}: --images must be a folder")
    if (root / "Ref").is_dir() and (root / "Dis").is_dir():
        return root, root / "Ref", root / "Dis"
    return root, root, root


def read_mos_csv(source: Path, options: LabelOptions, errors: list[str]) -> LabelPlan:
    plan = LabelPlan(format="mos-csv", source=source)
    if not source.is_file():
        errors.append(f"{source}: --format mos-csv takes the CSV file (reference,image,mos[,std][,distortion_type])")
        return plan
    root, ref_root, dis_root = _image_roots(source, options.images, errors)
    header, rows = csv_rows(source, source.name, errors, MOS_COLUMNS, MOS_OPTIONAL)
    plan.label_files = [source.name]
    low, high = options.range or (None, None)
    names: dict[str, int] = {}  # image name -> line
    reference_paths: dict[str, Path] = {}
    groups: dict[tuple[str, str], list[tuple[int, str, re.Match | None]]] = defaultdict(list)
    rows_by_name: dict[str, tuple] = {}
    for line, row in rows:
        where = f"{source.name} line {line}"
        problems = []
        value = parse_float(row["mos"])
        if not row["reference"] or not row["image"]:
            problems.append("reference and image must not be empty")
        if value is None:
            problems.append(f"mos {row['mos']!r} is not a finite number")
        elif options.range is not None and not low <= value <= high:
            problems.append(f"mos {value:g} is outside --range {low:g} {high:g}")
        std = None
        if row.get("std"):
            std = parse_float(row["std"])
            if std is None or std < 0:
                problems.append(f"std {row['std']!r} is not a number >= 0")
                std = None
        code = row.get("distortion_type", "")
        if len(code) > 32 or "/" in code:
            problems.append(f"distortion_type {code!r} must be at most 32 characters without '/'")
        if problems:
            errors.append(f"{where}: {'; '.join(problems)}")
            continue
        paths = named_files(root, row, {"reference": ref_root, "image": dis_root}, where, errors)
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
            plan.labels[name] = label_fields(_platform_mos(value, options), value, std)
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
