"""Reading a judgment log file: ``image_a,image_b,winner[,rater]``.

``winner`` is ``a``, ``b`` or ``tie`` (S = 0.5 each, PIPAL Eq. 2); images are named by file name. Every row is
checked and every problem reported with its line number before anything is
applied.
"""

from __future__ import annotations

import csv
from pathlib import Path

from annotation.analysis.replay import ReplayRow
from annotation.imports.folders import ImportFailed

REQUIRED = ("image_a", "image_b", "winner")


def read_judgment_csv(path: Path) -> list[ReplayRow]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ImportFailed([f"{path}: cannot be read as UTF-8 text ({error})"]) from None
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED if column not in header]
    if missing:
        raise ImportFailed(
            [f"{path}: header must have columns image_a,image_b,winner[,rater] (missing: {', '.join(missing)})"]
        )
    reader.fieldnames = header
    rows, errors = [], []
    for line, row in enumerate(reader, start=2):
        if None in row or any(value is None for value in row.values()):
            errors.append(f"line {line}: expected {len(header)} fields")
            continue
        image_a, image_b = row["image_a"].strip(), row["image_b"].strip()
        winner = row["winner"].strip().lower()
        if not image_a or not image_b:
            errors.append(f"line {line}: image_a and image_b must not be empty")
        elif winner not in ("a", "b", "tie"):
            errors.append(f"line {line}: winner must be 'a', 'b' or 'tie', got {row['winner']!r}")
        else:
            rater = (row.get("rater") or "").strip() or None
            rows.append(
                ReplayRow(
                    line=line, image_a=image_a, image_b=image_b, a_wins=winner == "a", rater=rater, tie=winner == "tie"
                )
            )
    if errors:
        raise ImportFailed(errors)
    if not rows:
        raise ImportFailed([f"{path}: no judgments in the file"])
    return rows
