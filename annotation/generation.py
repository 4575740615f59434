"""Generating a study's distorted images from the distortion registry.

A study's generated types carry their generator family and parameters per
level (installed from a catalogue). One job makes one (reference, type, level)
image: deterministic (the seed derives from the reference's content and the
slot), stored losslessly as PNG under its content hash, recorded with its
provenance, and idempotent — the (reference, type, level) unique constraint
means a repeated or concurrent job creates nothing twice. New images join a
running study at elo_initial.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connections, transaction

from annotation import generation_job, tasks
from annotation.models import DistortedImage, DistortionType, ReferenceImage, Study
from core.errors import ApplicationError
from sr_models import distortions

Job = tuple[int, int, int]  # (reference id, distortion type id, level)


@dataclass(frozen=True)
class CatalogueInstall:
    created: int
    updated: int


def catalogue_install(
    *, study: Study, type_ids: Iterable[str] | None = None, path: Path | str = distortions.DEFAULT_CATALOGUE
) -> CatalogueInstall:
    """Create (or update the generator settings of) the study's distortion
    types from a catalogue; ``type_ids`` picks some of them."""
    try:
        entries = distortions.load_catalogue(path)
    except distortions.CatalogueError as error:
        raise ApplicationError(str(error)) from None
    wanted = set(type_ids) if type_ids else None
    known = {entry.type_id for entry in entries}
    if wanted and wanted - known:
        raise ApplicationError(f"unknown type id(s) {', '.join(sorted(wanted - known))} in {path}")
    by_type: dict[str, list[distortions.CatalogueEntry]] = {}
    for entry in entries:
        if wanted is None or entry.type_id in wanted:
            by_type.setdefault(entry.type_id, []).append(entry)
    created = updated = 0
    with transaction.atomic():
        for code, rows in by_type.items():
            first = rows[0]
            fields = {
                "name": first.name,
                "category": first.category,
                "subtype": first.subtype,
                "generator": first.family,
                "levels": {str(int(row.level)): row.params for row in rows},
            }
            kind, made = DistortionType.objects.get_or_create(study=study, code=code, defaults=fields)
            if made:
                created += 1
            elif any(getattr(kind, key) != value for key, value in fields.items()):
                if kind.images.exists() and (kind.generator, kind.levels) != (fields["generator"], fields["levels"]):
                    raise ApplicationError(
                        f"type {code} of study {study.slug} already has images made with other settings; "
                        "give the new settings a new type id"
                    )
                for key, value in fields.items():
                    setattr(kind, key, value)
                kind.save()
                updated += 1
    return CatalogueInstall(created=created, updated=updated)


def unready_types(study: Study, type_codes: Sequence[str] | None = None) -> dict[str, str]:
    """Generated types that cannot run on this machine (an SR network's weight file is
    missing, say): code -> the reason, which names the files and how to install them."""
    types = DistortionType.objects.filter(study=study).exclude(generator="").order_by("code")
    if type_codes:
        types = types.filter(code__in=type_codes)
    reasons = {}
    for kind in types:
        try:
            family = distortions.get_family(kind.generator)
            for params in kind.levels.values():
                family.check_ready(params)
        except distortions.DistortionError as error:
            reasons[kind.code] = f"type {kind.code} ({kind.name}): {error}"
    return reasons


def generation_plan(
    *, study: Study, type_codes: Sequence[str] | None = None, reference_names: Sequence[str] | None = None
) -> list[Job]:
    """The (reference, type, level) slots of generated types that have no image yet. Types
    asked for by code must be ready to run (else an error says why); without codes, types that
    are not ready are left out (``unready_types`` says which and why)."""
    types = DistortionType.objects.filter(study=study).exclude(generator="").order_by("code")
    references = ReferenceImage.objects.filter(study=study).order_by("name")
    if type_codes:
        missing = set(type_codes) - set(types.filter(code__in=type_codes).values_list("code", flat=True))
        if missing:
            raise ApplicationError(f"study {study.slug} has no generated type(s) {', '.join(sorted(missing))}")
        types = types.filter(code__in=type_codes)
    unready = unready_types(study, type_codes)
    if unready and type_codes:
        raise ApplicationError(" ".join(unready.values()))
    types = types.exclude(code__in=unready)
    if reference_names:
        missing = set(reference_names) - set(references.filter(name__in=reference_names).values_list("name", flat=True))
        if missing:
            raise ApplicationError(f"study {study.slug} has no reference(s) {', '.join(sorted(missing))}")
        references = references.filter(name__in=reference_names)
    done = set(DistortedImage.objects.filter(study=study).values_list("reference_id", "distortion_type_id", "level"))
    return [
        (reference.id, kind.id, int(level))
        for reference in references
        for kind in types
        for level in sorted(kind.levels, key=int)
        if (reference.id, kind.id, int(level)) not in done
    ]


def generation_progress(study: Study) -> tuple[int, int]:
    """(images made, images expected) over the study's generated types that can run here."""
    unready = unready_types(study)
    types = list(DistortionType.objects.filter(study=study).exclude(generator="").exclude(code__in=unready))
    expected = sum(len(kind.levels) for kind in types) * ReferenceImage.objects.filter(study=study).count()
    made = DistortedImage.objects.filter(study=study, distortion_type__in=types).count()
    return made, expected


def generation_enqueue(jobs: Sequence[Job], *, chunk: int = 4) -> int:
    """Send the jobs to Celery in small chunks (in-process without a broker);
    returns the number of tasks sent."""
    # Jobs that run a network go to the GPU workers' queue when one is configured.
    gpu_queue = settings.PIPAL_GPU_QUEUE
    if gpu_queue:
        accelerated = {
            kind.id
            for kind in DistortionType.objects.filter(pk__in={type_id for _, type_id, _ in jobs})
            if kind.generator and distortions.get_family(kind.generator).accelerated
        }
        groups = [
            ([job for job in jobs if job[1] not in accelerated], None),
            ([job for job in jobs if job[1] in accelerated], gpu_queue),
        ]
    else:
        groups = [(list(jobs), None)]
    sent = 0
    for group, queue in groups:
        # Every n-th job into the same task: the plan is sorted by type, so this
        # mixes cheap and expensive types in each task and keeps workers evenly busy.
        count = -(-len(group) // chunk)
        for i in range(count):
            part = [list(job) for job in group[i::count]]
            tasks.generate_distortions.apply_async(args=[part], **({"queue": queue} if queue else {}))
            sent += 1
    return sent


def checked_levels(generator: str, levels: dict) -> dict[str, dict]:
    """A type's generator settings, validated against the registry: level
    numbers from 1 up, each with the family's parameters."""
    try:
        family = distortions.get_family(generator)
    except distortions.DistortionError as error:
        raise ApplicationError(str(error)) from None
    if not isinstance(levels, dict) or not levels:
        raise ApplicationError('levels must be an object like {"1": {...}, "2": {...}}')
    checked = {}
    for key, params in levels.items():
        if not str(key).isdigit() or int(key) < 1:
            raise ApplicationError(f"level {key!r} is not a positive whole number")
        try:
            checked[str(int(key))] = family.validate(params)
        except distortions.DistortionError as error:
            raise ApplicationError(f"level {key}: {error}") from None
    return checked


def generation_start(*, study: Study, type_ids: Sequence[str] | None = None, install: bool = True) -> int:
    """Install the catalogue's types (all, or ``type_ids``; ``install=False``
    uses the study's own generated types as they are) and start making every
    missing image; returns how many. With a broker the jobs go to the Celery
    workers once this commits; in the embedded default they run in a thread
    of this process (PIPAL_GENERATE_IN_THREAD), so a web request returns at once."""
    if install:
        catalogue_install(study=study, type_ids=type_ids)
    jobs = generation_plan(study=study, type_codes=type_ids)
    if not jobs:
        return 0
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        transaction.on_commit(lambda: generation_enqueue(jobs))
    elif settings.PIPAL_GENERATE_IN_THREAD:
        transaction.on_commit(lambda: threading.Thread(target=_generate_in_thread, args=(jobs,), daemon=True).start())
    else:
        for reference_id, type_id, level in jobs:
            generation_job.distortion_generate(reference_id=reference_id, distortion_type_id=type_id, level=level)
    return len(jobs)


def _generate_in_thread(jobs: Sequence[Job]) -> None:
    try:
        for reference_id, type_id, level in jobs:
            generation_job.distortion_generate(reference_id=reference_id, distortion_type_id=type_id, level=level)
    finally:
        connections.close_all()
