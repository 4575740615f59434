"""Reading PIPAL's label layout (``import_labels --format pipal``): Ref/, Dis/ and Train_Label/
(and the real download's folder names), or one pyiqa CSV; or pyiqa's datasets/ folder as its
PIPAL options name it (PIPAL/Train_Ref/, PIPAL/Dist_Imgs/, meta_info/meta_info_PIPALDataset.csv)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from annotation.imports.folders import (
    DISTORTED_NAME,
    ListedImage,
    dataset_file,
    folder_files,
    read_type_csv,
    reference_name,
)
from annotation.imports.label_files import (
    DIS_FOLDERS,
    DIS_PARTS,
    LABEL_FOLDERS,
    PYIQA_COLUMNS,
    PYIQA_IMAGES,
    PYIQA_META,
    REF_FOLDERS,
    LabelOptions,
    LabelPlan,
    csv_rows,
    label_fields,
    one_folder,
    parse_float,
    read_text,
    shown_path,
)


@dataclass(frozen=True)
class _PipalLabel:
    image: str
    reference: str | None  # the reference the label file says (file stem or hq_name), None: not said
    value: float
    where: str  # "Train_Label/A0001.txt line 3"


def read_pipal(source: Path, options: LabelOptions, errors: list[str]) -> LabelPlan:
    plan = LabelPlan(format="pipal", source=source)
    if not source.is_dir():
        errors.append(f"{source}: --format pipal takes the dataset's folder (with Ref/, Dis/ and Train_Label/)")
        return plan
    images, given_labels = source, options.labels
    if _is_pyiqa_datasets(source):
        # pyiqa's datasets/ folder: the images in PIPAL/, the labels in its meta CSV (both inside source).
        images = source / PYIQA_IMAGES
        if given_labels is None:
            given_labels = dataset_file(source, PYIQA_META, errors)
            if given_labels is None:
                errors.append(f"{source}: pyiqa's layout without its label file {PYIQA_META} (or give --labels)")
                return plan
    ref_dir = one_folder(images, REF_FOLDERS, "reference", errors)
    dis_dirs = [images / name for name in DIS_FOLDERS if (images / name).is_dir()]
    dis_dirs += [path for path in sorted(images.iterdir()) if path.is_dir() and DIS_PARTS.match(path.name)]
    if not dis_dirs:
        errors.append(
            f"{images}: no distorted-image folder (expected Dis/, Train_Dis/, Dist_Imgs/, Distortion/ or "
            "Distortion_1/…)"
        )
    labels = _pipal_labels(source, given_labels, plan, errors)
    if ref_dir is None or not dis_dirs:
        return plan

    references: dict[str, Path] = {}
    for path in folder_files(ref_dir, errors, root=source):
        name = reference_name(path, errors)
        if name is not None and references.setdefault(name, path) != path:
            errors.append(f"{shown_path(path, source)}: reference {name} appears twice in {ref_dir.name}/")
    distorted: dict[str, Path] = {}
    for folder in dis_dirs:
        for path in folder_files(folder, errors, root=source, recursive=True):
            if distorted.setdefault(path.name, path) != path:
                other = shown_path(distorted[path.name], source)
                errors.append(f"{shown_path(path, source)}: {path.name} is also {other}")

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
            plan.labels[label.image] = label_fields(label.value, label.value)
    unlabelled = sorted(set(distorted) - {label.image for label in labels})
    if unlabelled and not options.allow_unlabelled:
        errors += [
            f"{shown_path(distorted[name], source)}: has no label; give --allow-unlabelled to leave such images out"
            for name in unlabelled
        ]
    plan.left_out = len(unlabelled)
    used = {item.reference for item in plan.distorted}
    plan.references = {name: path for name, path in references.items() if name in used}
    types_csv = dataset_file(source, "distortion_types.csv", errors)
    if types_csv is not None:
        plan.types, type_errors = read_type_csv(types_csv)
        errors += type_errors
    plan.options = {
        "allow_unlabelled": options.allow_unlabelled,
        "direction": "higher_is_better (Elo MOS)",
        **plan.options,
    }
    return plan


def _is_pyiqa_datasets(source: Path) -> bool:
    """pyiqa's datasets/ folder (PIPAL/ beside meta_info/) rather than PIPAL's own release."""
    return (source / PYIQA_IMAGES).is_dir() and not any((source / name).is_dir() for name in REF_FOLDERS)


def _pipal_labels(source: Path, given: Path | None, plan: LabelPlan, errors: list[str]) -> list[_PipalLabel]:
    # --labels is named on the command line, so it may be anywhere; the files in it (or in the
    # dataset's own label folder) must stay inside that folder.
    where = Path(given) if given is not None else one_folder(source, LABEL_FOLDERS, "label", errors)
    if where is None:
        return []
    if where.is_file():
        plan.label_files = [shown_path(where, source)]
        return _read_pyiqa_csv(where, source, plan, errors)
    if not where.is_dir():
        errors.append(f"{where}: --labels must be a folder of <ref>.txt files or a pyiqa CSV (no such file)")
        return []
    root = where if given is not None else source
    files = [path for path in folder_files(where, errors, root=root) if path.suffix.lower() == ".txt"]
    if not files:
        errors.append(f"{where}: no <ref>.txt label file")
    plan.label_files = [shown_path(path, source) for path in files]
    labels = []
    for path in files:
        text = read_text(path, errors)
        shown = shown_path(path, source)
        for line, content in enumerate((text or "").splitlines(), start=1):
            if not content.strip():
                continue
            fields = [value.strip() for value in content.split(",")]
            value = parse_float(fields[1]) if len(fields) == 2 else None
            if len(fields) != 2 or not fields[0]:
                errors.append(f"{shown} line {line}: expected <image>,<mos>, got {content.strip()!r}")
            elif value is None:
                errors.append(f"{shown} line {line}: MOS {fields[1]!r} is not a finite number")
            else:
                labels.append(_PipalLabel(fields[0], path.stem, value, f"{shown} line {line}"))
    return labels


def _read_pyiqa_csv(path: Path, source: Path, plan: LabelPlan, errors: list[str]) -> list[_PipalLabel]:
    """pyiqa's meta CSV; its other columns (official_split, ratio…_split_…) say how pyiqa splits
    the images for training, nothing about them: read past, and named in the import's record."""
    shown = shown_path(path, source)
    header, rows = csv_rows(path, shown, errors, PYIQA_COLUMNS, other_columns=True)
    ignored = [column for column in header if column not in PYIQA_COLUMNS]
    if ignored:
        plan.options["ignored_columns"] = ignored
    labels = []
    for line, row in rows:
        value = parse_float(row["elo_score"])
        if not row["hq_name"] or not row["dist_name"]:
            errors.append(f"{shown} line {line}: hq_name and dist_name must not be empty")
        elif value is None:
            errors.append(f"{shown} line {line}: elo_score {row['elo_score']!r} is not a finite number")
        else:
            labels.append(_PipalLabel(row["dist_name"], Path(row["hq_name"]).stem, value, f"{shown} line {line}"))
    return labels
