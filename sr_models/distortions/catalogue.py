"""The default PIPAL-style catalogue: distortion types x levels, read from a CSV.

One row per (type, level): ``type_id,name,family,category,subtype,level,params_json``.
Type ids and levels are two digits from 01 (``00`` is the reference in PIPAL's
``A0001_TT_LL`` file names); a higher level is a stronger degradation. PIPAL never
published its own 40 types and levels (SPEC §1), so these are ours, chosen to
cover Table 2 and to stay "comparable to the IR results" (PIPAL §3.1).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sr_models.distortions.base import DistortionError
from sr_models.distortions.families import get_family

DEFAULT_CATALOGUE = Path(__file__).resolve().parents[2] / "fixtures" / "distortion_catalogue.csv"
COLUMNS = ("type_id", "name", "family", "category", "subtype", "level", "params_json")
_TWO_DIGITS = re.compile(r"^(0[1-9]|[1-9][0-9])$")


class CatalogueError(DistortionError):
    """A catalogue file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class CatalogueEntry:
    type_id: str
    name: str
    family: str
    category: str
    subtype: str
    level: str
    params: dict[str, Any]

    @property
    def code(self) -> str:
        """The ``TT_LL`` part of a PIPAL file name."""
        return f"{self.type_id}_{self.level}"

    def apply(self, image: np.ndarray, seed: int) -> np.ndarray:
        return get_family(self.family).apply(image, self.params, seed)


def load_catalogue(path: str | Path = DEFAULT_CATALOGUE) -> list[CatalogueEntry]:
    """Read and validate a catalogue; every problem is a CatalogueError naming its row."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise CatalogueError(f"{path.name}: header must be {','.join(COLUMNS)}, got {reader.fieldnames}")
        entries = [_parse_row(row, f"{path.name} line {reader.line_num}") for row in reader]
    if not entries:
        raise CatalogueError(f"{path.name}: no rows")
    _check_types(entries, path.name)
    return entries


def _parse_row(row: dict[str, str], where: str) -> CatalogueEntry:
    if None in row or any(value is None for value in row.values()):
        raise CatalogueError(f"{where}: expected {len(COLUMNS)} columns")
    row = {key: value.strip() for key, value in row.items()}
    where = f"{where} (type {row['type_id']!r} level {row['level']!r})"
    for column in ("type_id", "level"):
        if not _TWO_DIGITS.match(row[column]):
            raise CatalogueError(f"{where}: {column} must be two digits from 01, got {row[column]!r}")
    try:
        family = get_family(row["family"])
        params = json.loads(row["params_json"])
        if not isinstance(params, dict):
            raise CatalogueError(f"{where}: params_json must be a JSON object, got {row['params_json']!r}")
        family.validate(params)
    except json.JSONDecodeError as error:
        raise CatalogueError(f"{where}: params_json is not valid JSON ({error})") from None
    except CatalogueError:
        raise
    except DistortionError as error:
        raise CatalogueError(f"{where}: {error}") from None
    for column in ("category", "subtype"):
        if row[column] != getattr(family, column):
            raise CatalogueError(
                f"{where}: {column} {row[column]!r} does not match family {family.name!r} ({getattr(family, column)!r})"
            )
    if not row["name"]:
        raise CatalogueError(f"{where}: empty name")
    return CatalogueEntry(
        row["type_id"], row["name"], family.name, family.category, family.subtype, row["level"], params
    )


def _check_types(entries: list[CatalogueEntry], source: str) -> None:
    """Each type: one name and family on every row, levels 01..n without gaps or repeats; names unique."""
    by_type: dict[str, list[CatalogueEntry]] = {}
    for entry in entries:
        by_type.setdefault(entry.type_id, []).append(entry)
    names: dict[str, str] = {}
    for type_id, rows in by_type.items():
        first = rows[0]
        for entry in rows[1:]:
            if (entry.name, entry.family) != (first.name, first.family):
                raise CatalogueError(f"{source}: type {type_id} level {entry.level} changes its name or family")
        levels = [entry.level for entry in rows]
        expected = [f"{n:02d}" for n in range(1, len(rows) + 1)]
        if levels != expected:
            raise CatalogueError(f"{source}: type {type_id} has levels {levels}; expected {expected} in order")
        if first.name in names:
            raise CatalogueError(f"{source}: types {names[first.name]} and {type_id} share the name {first.name!r}")
        names[first.name] = type_id
