"""Importing a PIPAL-layout folder of images into a study.

Layout (PIPAL / NTIRE): ``<dir>/Ref/A0001.bmp`` for references,
``<dir>/Dis/A0001_10_02.bmp`` for distorted images (reference, type id,
level), and optionally ``<dir>/distortion_types.csv`` with columns
``id,name,category,subtype``. The reference of a distorted image is the part
of its name before the first ``_``.

Everything is checked first (planning touches nothing), then written in one
transaction; files written for a failed import are removed again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from annotation.imaging import (
    EXTENSIONS,
    CheckedImage,
    ImageRejected,
    check_image,
    check_image_file,
    checked_png,
    read_image_bytes,
    sha256_of,
)
from annotation.models import Category, DistortedImage, DistortionType, ReferenceImage, Study
from core.dataset_paths import OutsideDataset, dataset_files, inside
from core.errors import ApplicationError

DISTORTED_NAME = re.compile(r"^(?P<reference>[^_/\\]+)_(?P<type>[^_/\\]+)_(?P<level>\d+)\.(?P<ext>[A-Za-z0-9]+)$")
REFERENCE_NAME = re.compile(r"^(?P<reference>[^_/\\.]+)\.(?P<ext>[A-Za-z0-9]+)$")
TYPE_COLUMNS = ("id", "name", "category", "subtype")


class ImportFailed(ApplicationError):
    """An import refused as a whole; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]):
        shown = errors[:25]
        more = f"\n… and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        super().__init__(f"import refused, nothing was stored ({len(errors)} problem(s)):\n" + "\n".join(shown) + more)
        self.errors = errors


@dataclass(frozen=True)
class TypeRow:
    code: str
    name: str
    category: str
    subtype: str


@dataclass
class ImportPlan:
    references: dict[str, tuple[Path, CheckedFile]] = field(default_factory=dict)
    distorted: dict[str, tuple[Path, CheckedFile, str, str, int]] = field(default_factory=dict)
    types: dict[str, TypeRow] = field(default_factory=dict)
    skipped: int = 0


@dataclass(frozen=True)
class ImportReport:
    references: int
    distorted: int
    types_created: int
    types_updated: int
    skipped: int


def read_type_csv(path: Path) -> tuple[dict[str, TypeRow], list[str]]:
    errors: list[str] = []
    rows: dict[str, TypeRow] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return {}, [f"{path}: cannot be read as UTF-8 text ({error})"]
    reader = csv.DictReader(text.splitlines())
    missing = [column for column in ("id", "name", "category") if column not in (reader.fieldnames or [])]
    if missing:
        return {}, [f"{path}: header must have columns {','.join(TYPE_COLUMNS)} (missing: {', '.join(missing)})"]
    valid_categories = {choice.value for choice in Category}
    for line, row in enumerate(reader, start=2):
        if None in row or any(value is None for value in row.values()):
            errors.append(f"{path.name} line {line}: wrong number of fields")
            continue
        code, name = row["id"].strip(), row["name"].strip()
        category, subtype = row["category"].strip(), (row.get("subtype") or "").strip()
        if not code or not name:
            errors.append(f"{path.name} line {line}: id and name must not be empty")
        elif category and category not in valid_categories:
            errors.append(
                f"{path.name} line {line}: category {category!r} is not one of {', '.join(sorted(valid_categories))}"
            )
        elif code in rows:
            errors.append(f"{path.name} line {line}: type id {code!r} appears twice")
        else:
            rows[code] = TypeRow(code, name, category, subtype)
    return rows, errors


def _limits() -> dict:
    return {
        "formats": settings.PIPAL_IMAGE_FORMATS,
        "max_bytes": settings.PIPAL_MAX_IMAGE_BYTES,
        "max_pixels": settings.PIPAL_MAX_IMAGE_PIXELS,
    }


def check_upload(data: bytes, label: str) -> CheckedImage:
    """Check image bytes from outside against the configured formats and limits
    (raises ImageRejected naming ``label``)."""
    return check_image(data, label=label, **_limits())


@dataclass(frozen=True)
class CheckedFile:
    """A checked image file that is read again when stored, so a plan of
    thousands of images (PIPAL: 23,200) does not hold every file in memory.
    The bytes must still have the hash they were checked with."""

    path: Path
    format: str
    width: int
    height: int
    sha256: str

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]

    @property
    def data(self) -> bytes:
        """The whole file (checked to be under the byte limit, which is checked again before reading)."""
        try:
            data = read_image_bytes(self.path, max_bytes=settings.PIPAL_MAX_IMAGE_BYTES)
        except ImageRejected as error:
            raise ImportFailed([f"{error}; the file changed while it was being imported"]) from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ImportFailed([f"{self.path}: the file changed while it was being imported"])
        return data


def _check_file(path: Path, errors: list[str]) -> CheckedFile | None:
    """Check one image file (size from stat() before any read, header before decoding, hash
    streamed); None with the problem appended to ``errors``."""
    try:
        checked = check_image_file(path, **_limits())
    except ImageRejected as error:
        errors.append(str(error))
        return None
    return CheckedFile(path, checked.format, checked.width, checked.height, checked.sha256)


def folder_files(folder: Path, errors: list[str], *, root: Path | None = None, recursive: bool = False) -> list[Path]:
    """The files in ``folder`` (below it with ``recursive``), sorted, hidden names left out; an entry
    that resolves outside ``root`` (default: ``folder``), through a symlink, is refused in ``errors``."""
    files, problems = dataset_files(folder, root=root, recursive=recursive)
    errors += problems
    return files


def dataset_file(root: Path, name: str, errors: list[str]) -> Path | None:
    """``root / name`` when it exists and stays inside ``root``; a link out of it is refused in ``errors``."""
    try:
        path = inside(root, name)
    except OutsideDataset as error:
        errors.append(str(error))
        return None
    return path if path.exists() else None


@dataclass(frozen=True)
class ListedImage:
    """A distorted image to import whose name, reference, type and level its
    caller decided (a label file lists it), rather than its folder."""

    name: str
    path: Path
    reference: str
    type_code: str
    level: int


def plan_folder_import(study: Study, folder: Path) -> ImportPlan:
    """Check a PIPAL-layout folder against a study; raise ImportFailed listing
    every problem, or return what is new."""
    folder = Path(folder)
    errors: list[str] = []
    ref_dir, dis_dir = folder / "Ref", folder / "Dis"
    if not ref_dir.is_dir() and not dis_dir.is_dir():
        raise ImportFailed([f"{folder}: expected the PIPAL layout with folders Ref/ and Dis/"])
    types: dict[str, TypeRow] = {}
    types_csv = dataset_file(folder, "distortion_types.csv", errors)
    if types_csv is not None:
        types, type_errors = read_type_csv(types_csv)
        errors += type_errors
    references: dict[str, Path] = {}
    for path in folder_files(ref_dir, errors, root=folder) if ref_dir.is_dir() else []:
        name = reference_name(path, errors)
        if name is None:
            continue
        if name in references:
            errors.append(f"{path}: reference {name} appears twice in Ref/")
            continue
        references[name] = path
    distorted = []
    for path in folder_files(dis_dir, errors, root=folder) if dis_dir.is_dir() else []:
        match = DISTORTED_NAME.match(path.name)
        if not match:
            errors.append(f"{path}: a distorted image must be named <ref>_<type>_<level>.<ext> (e.g. A0001_10_02.bmp)")
            continue
        distorted.append(ListedImage(path.name, path, match["reference"], match["type"], int(match["level"])))
    return plan_listed_import(study, references=references, distorted=distorted, types=types, errors=errors)


def reference_name(path: Path, errors: list[str]) -> str | None:
    """The reference id of a file in Ref/ (its name without extension), or None
    with the problem appended to ``errors``."""
    match = REFERENCE_NAME.match(path.name)
    if not match:
        errors.append(f"{path}: a reference must be named <id>.<ext> with no '_' (e.g. A0001.bmp)")
        return None
    return match["reference"]


def plan_listed_import(
    study: Study | None,
    *,
    references: dict[str, Path],
    distorted: list[ListedImage],
    types: dict[str, TypeRow] | None = None,
    errors: list[str] | None = None,
    progress: Callable[[int], object] | None = None,
) -> ImportPlan:
    """Check named image files against a study (``None``: a study still to be
    made) and return what is new, or raise ImportFailed listing every problem
    (``errors`` found by the caller included). Every file is read, hashed and
    fully decoded; ``progress(1)`` is called per file."""
    errors = [] if errors is None else errors
    plan = ImportPlan(types=dict(types or {}))
    saved = study is not None and study.pk is not None
    stored_refs = {ref.name: ref for ref in ReferenceImage.objects.filter(study=study)} if saved else {}
    stored_images = dict(DistortedImage.objects.filter(study=study).values_list("name", "sha256")) if saved else {}
    tick = progress or (lambda count: None)

    for name, path in references.items():
        checked = _check_file(path, errors)
        tick(1)
        if checked is None:
            continue
        if name in stored_refs:
            if stored_refs[name].sha256 != checked.sha256:
                errors.append(f"{path}: reference {name} is already stored with different content; refusing to replace")
            else:
                plan.skipped += 1
            continue
        plan.references[name] = (path, checked)

    sizes = {name: (ref.width, ref.height) for name, ref in stored_refs.items()}
    sizes.update({name: (c.width, c.height) for name, (_, c) in plan.references.items()})
    for item in distorted:
        path, reference = item.path, item.reference
        if reference not in sizes:
            tick(1)
            errors.append(f"{path}: its reference {reference} is neither in Ref/ nor already in the study")
            continue
        checked = _check_file(path, errors)
        tick(1)
        if checked is None:
            continue
        if item.name in stored_images:
            if stored_images[item.name] != checked.sha256:
                errors.append(f"{path}: already stored with different content; refusing to replace")
            else:
                plan.skipped += 1
            continue
        if (checked.width, checked.height) != sizes[reference]:
            ref_w, ref_h = sizes[reference]
            errors.append(
                f"{path}: {checked.width}x{checked.height} does not match its reference {reference} ({ref_w}x{ref_h})"
            )
            continue
        plan.distorted[item.name] = (path, checked, reference, item.type_code, item.level)
    if errors:
        raise ImportFailed(errors)
    return plan


def _stored_sha256(path: str) -> str | None:
    if not default_storage.exists(path):
        return None
    with default_storage.open(path, "rb") as handle:
        return sha256_of(handle)


def store_image(study: Study, checked: CheckedImage | CheckedFile, written: list[str]) -> str:
    """Store image bytes under their content hash and return the path.

    Server-chosen, content-addressed names: uploads never pick paths, and
    raters cannot read the distortion type from a URL. A file already there is
    kept only if its content matches: a copy cut short by a killed process is
    written again rather than trusted by its name.
    """
    path = f"studies/{study.slug}/{checked.sha256}.{checked.extension}"
    if _stored_sha256(path) == checked.sha256:
        return path
    if default_storage.exists(path):
        default_storage.delete(path)
    saved = default_storage.save(path, ContentFile(checked.data))
    if saved != path:
        # Another writer stored the same content meanwhile; keep one copy.
        default_storage.delete(saved)
        if _stored_sha256(path) != checked.sha256:
            raise OSError(f"{path}: stored content does not match its hash")
    else:
        written.append(path)
    return path


def joining_image(
    study: Study,
    reference: ReferenceImage,
    distortion_type: DistortionType,
    level: int,
    name: str,
    checked: CheckedImage | CheckedFile,
    written: list[str],
) -> DistortedImage:
    """An unsaved image whose file is stored. New images join a running study
    at the initial rating (PIPAL's extensibility argument); old ones keep theirs."""
    return DistortedImage(
        study=study,
        reference=reference,
        distortion_type=distortion_type,
        level=level,
        name=name,
        file=store_image(study, checked, written),
        sha256=checked.sha256,
        width=checked.width,
        height=checked.height,
        elo=study.elo_initial,
        mos=study.elo_initial,
        judgment_count=0,
        recent_elo=[],
    )


def images_import(*, study: Study, plan: ImportPlan) -> ImportReport:
    """Write a checked plan: all rows in one transaction, files removed on failure."""
    written: list[str] = []
    try:
        with transaction.atomic():
            report = write_plan(study, plan, written)
    except BaseException:
        for path in written:
            default_storage.delete(path)
        raise
    return report


def write_plan(
    study: Study,
    plan: ImportPlan,
    written: list[str],
    *,
    image_fields: Mapping[str, Mapping[str, object]] | None = None,
    progress: Callable[[int], object] | None = None,
) -> ImportReport:
    """Store a checked plan inside the caller's transaction; the paths of files
    written are appended to ``written`` (the caller removes them if the
    transaction fails). ``image_fields`` sets fields of new images by name
    (imported labels: their MOS) instead of the initial rating."""
    tick = progress or (lambda count: None)
    types = {t.code: t for t in DistortionType.objects.select_for_update(no_key=True).filter(study=study)}
    created = updated = 0
    for row in plan.types.values():
        existing = types.get(row.code)
        if existing is None:
            types[row.code] = DistortionType.objects.create(
                study=study, code=row.code, name=row.name, category=row.category, subtype=row.subtype
            )
            created += 1
        elif (existing.name, existing.category, existing.subtype) != (row.name, row.category, row.subtype):
            existing.name, existing.category, existing.subtype = row.name, row.category, row.subtype
            existing.save(update_fields=["name", "category", "subtype"])
            updated += 1
    for _, _, _, code, _ in plan.distorted.values():
        if code not in types:
            types[code] = DistortionType.objects.create(study=study, code=code, name=f"type {code}")
            created += 1

    references = {ref.name: ref for ref in ReferenceImage.objects.filter(study=study)}
    for name, (path, checked) in sorted(plan.references.items()):
        references[name] = ReferenceImage.objects.create(
            study=study,
            name=name,
            file=store_image(study, checked, written),
            original_filename=path.name,
            sha256=checked.sha256,
            width=checked.width,
            height=checked.height,
        )
        tick(1)
    new_images = []
    for name, (_, checked, reference, code, level) in sorted(plan.distorted.items()):
        image = joining_image(study, references[reference], types[code], level, name, checked, written)
        for key, value in (image_fields or {}).get(name, {}).items():
            setattr(image, key, value)
        new_images.append(image)
        tick(1)
    duplicate_levels = _duplicate_levels(new_images)
    if duplicate_levels:
        raise ImportFailed(duplicate_levels)
    DistortedImage.objects.bulk_create(new_images, batch_size=1000)
    return ImportReport(
        references=len(plan.references),
        distorted=len(new_images),
        types_created=created,
        types_updated=updated,
        skipped=plan.skipped,
    )


def _duplicate_levels(new_images: list[DistortedImage]) -> list[str]:
    seen: dict[tuple, str] = {}
    errors = []
    existing = set(
        DistortedImage.objects.filter(reference__in={image.reference_id for image in new_images}).values_list(
            "reference_id", "distortion_type_id", "level"
        )
    )
    for image in new_images:
        key = (image.reference_id, image.distortion_type_id, image.level)
        if key in existing or key in seen:
            errors.append(
                f"{image.name}: reference, type and level already taken{f' by {seen[key]}' if key in seen else ''}"
            )
        seen.setdefault(key, image.name)
    return errors


@dataclass(frozen=True)
class ReferencePatch:
    name: str
    source: Path
    checked: CheckedImage | CheckedFile
    box: tuple[int, int, int, int]  # left, top, right, bottom in the source


REFERENCE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def reference_files(paths: list[Path]) -> list[Path]:
    """The image files ``import_references`` was given: files as named, and the image files
    directly in each folder named, where a symlink must not lead out of that folder; raise
    ImportFailed listing every problem."""
    errors: list[str] = []
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found, problems = dataset_files(path, suffixes=REFERENCE_SUFFIXES)
            files += found
            errors += problems
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path} does not exist")
    if errors:
        raise ImportFailed(errors)
    return files


def plan_reference_patches(study: Study, files: list[Path], *, crop: int, select: str) -> list[ReferencePatch]:
    """Check source images and choose one patch each (``crop`` 0 keeps the whole
    image); raise ImportFailed naming every problem. Names come from the file
    stems, with '_' (the PIPAL name separator) replaced by '-'."""
    import numpy as np
    from PIL import Image

    from sr_models.patches import select_patch

    errors: list[str] = []
    patches: list[ReferencePatch] = []
    taken = set(ReferenceImage.objects.filter(study=study).values_list("name", flat=True))
    for path in files:
        checked = _check_file(path, errors)
        if checked is None:
            continue
        name = re.sub(r"[^A-Za-z0-9.-]", "-", path.stem.replace("_", "-"))
        if name in taken:
            errors.append(f"{path}: a reference named {name} is already in the study or in this import")
            continue
        with Image.open(io.BytesIO(checked.data)) as image:
            pixels = np.asarray(image.convert("RGB"))
        if crop:
            try:
                top, left = select_patch(pixels, crop, select)
            except ValueError as error:
                errors.append(f"{path}: {error}")
                continue
            box = (left, top, left + crop, top + crop)
            checked = checked_png(np.ascontiguousarray(pixels[top : top + crop, left : left + crop]))
        else:
            box = (0, 0, checked.width, checked.height)
        taken.add(name)
        patches.append(ReferencePatch(name=name, source=path, checked=checked, box=box))
    if errors:
        raise ImportFailed(errors)
    if not patches:
        raise ImportFailed(["no image files given"])
    return patches


def references_import(*, study: Study, patches: list[ReferencePatch]) -> list[ReferenceImage]:
    """Store checked patches as references: one transaction, files removed on failure."""
    written: list[str] = []
    try:
        with transaction.atomic():
            return [
                ReferenceImage.objects.create(
                    study=study,
                    name=patch.name,
                    file=store_image(study, patch.checked, written),
                    original_filename=f"{patch.source.name} {patch.box}",
                    sha256=patch.checked.sha256,
                    width=patch.checked.width,
                    height=patch.checked.height,
                )
                for patch in patches
            ]
    except BaseException:
        for path in written:
            default_storage.delete(path)
        raise
