"""Reading BAPPS 2AFC triplets (``import_labels --format 2afc``): ref/, p0/, p1/, judge/ folders,
a folder of such subsets, or a CSV; each triplet becomes votes replayed through the Elo engine."""


from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from annotation.analysis.replay import ReplayRow
from annotation.imports.folders import (
    ListedImage,
    TypeRow,
    folder_files,
)
from annotation.imports.label_files import (
    AFC_COLUMNS,
    AFC_CSV_TYPE,
    AFC_FOLDERS,
    BAPPS_CATEGORIES,
    VOTE_TOLERANCE,
    LabelOptions,
    LabelPlan,
    csv_rows,
    named_files,
    parse_float,
    shown_path,
)


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


def read_2afc(source: Path, options: LabelOptions, errors: list[str]) -> LabelPlan:
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
            plan.label_files.append(shown_path(folder / "judge", source))
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
            errors.append(f"{shown_path(files[stem], source)}: no {stem} in {shown_path(folder / 'ref', source)}/")
    triplets = []
    for stem, ref in sorted(refs.items()):
        missing = [name for name in ("p0", "p1", "judge") if stem not in parts[name]]
        if missing:
            errors.append(f"{shown_path(ref, source)}: no {stem} in {', '.join(m + '/' for m in missing)}")
            continue
        judge_path = parts["judge"][stem]
        where = shown_path(judge_path, source)
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
    header, rows = csv_rows(source, source.name, errors, AFC_COLUMNS, ("votes",))
    triplets = []
    for line, row in rows:
        where = f"{source.name} line {line}"
        judge = parse_float(row["judge"])
        count = votes
        if row.get("votes"):
            count = int(row["votes"]) if row["votes"].isdigit() else 0
            if count < 1:
                errors.append(f"{where}: votes {row['votes']!r} is not a whole number >= 1")
                continue
        if judge is None:
            errors.append(f"{where}: judge {row['judge']!r} is not a finite number")
            continue
        paths = named_files(root, row, dict.fromkeys(("reference", "p0", "p1"), root), where, errors)
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
