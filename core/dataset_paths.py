"""Which files an import may read: only those inside the dataset folder it was given (no Django here).

A dataset names its files relative to a folder: a label CSV's ``image`` column, the files
found in ``Dis/``, the patches a rank dataset's ``labels.csv`` lists. Such a name is refused
when it is absolute, has a ``..`` component, or resolves — symlinks followed — outside the
folder; a symlink that stays inside the folder is fine. Files and folders the user names on
the command line are not names inside a dataset and are taken as given.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePath

_SEPARATORS = re.compile(r"[/\\]")


class OutsideDataset(ValueError):
    """A name that leaves its dataset folder; the message names it, the folder and why."""


def inside(root: Path, name: str | PurePath, *, base: Path | None = None) -> Path:
    """``base / name`` (``base``: ``root`` or a folder in it), or OutsideDataset when ``name`` is
    empty, absolute, has a ``..`` component, or resolves outside ``root``."""
    root = Path(root)
    text = os.fspath(name)
    if not text.strip() or text == ".":
        raise OutsideDataset(f"{text!r} names no file in the dataset folder {root}")
    if PurePath(text).is_absolute():
        raise OutsideDataset(f"{text!r} is outside the dataset folder {root} (an absolute path)")
    if ".." in _SEPARATORS.split(text):
        raise OutsideDataset(f"{text!r} is outside the dataset folder {root} (a '..' component)")
    path = Path(base if base is not None else root) / text
    try:
        resolved, home = path.resolve(), root.resolve()
    except (OSError, RuntimeError) as error:  # a symlink loop
        raise OutsideDataset(f"{text!r} in the dataset folder {root} cannot be resolved ({error})") from None
    if not resolved.is_relative_to(home):
        raise OutsideDataset(f"{text!r} is outside the dataset folder {root} (it links to {resolved})")
    return path


def dataset_files(
    folder: Path, *, root: Path | None = None, recursive: bool = False, suffixes: Iterable[str] | None = None
) -> tuple[list[Path], list[str]]:
    """The files in ``folder`` (below it with ``recursive``; names starting with '.' left out; only
    ``suffixes`` when given, lower case with the dot), sorted, and the problems: every entry that
    resolves outside ``root`` (default: ``folder``; ``folder`` must lie in it) is refused by name."""
    folder = Path(folder)
    root = folder if root is None else Path(root)
    if folder != root:
        try:
            inside(root, folder.relative_to(root))
        except OutsideDataset as error:
            return [], [str(error)]
    wanted = None if suffixes is None else {suffix.lower() for suffix in suffixes}
    files, problems = [], []
    for path in folder.rglob("*") if recursive else folder.iterdir():
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if wanted is not None and path.suffix.lower() not in wanted:
            continue
        if not (path.is_symlink() or path.is_file()):
            continue  # folders are walked (links to folders are checked above), other kinds never read
        try:
            inside(root, path.relative_to(root))
        except OutsideDataset as error:
            problems.append(str(error))
            continue
        if path.is_file():
            files.append(path)
    return sorted(files), problems
