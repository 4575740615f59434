"""Generating a study's distorted images from the distortion registry.

A study's generated types carry their generator family and parameters per
level (installed from a catalogue). One job makes one (reference, type, level)
image: deterministic (the seed derives from the reference's content and the
slot), stored losslessly as PNG under its content hash, recorded with its
provenance, and idempotent — the (reference, type, level) unique constraint
means a repeated or concurrent job creates nothing twice. New images join a
running study at elo_initial. A catalogue type keeps the catalogue's code
unless the study uses that code for other settings; then it gets a free code,
and the install says which.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Count

from annotation import tasks
from annotation.models import DistortedImage, DistortionType, GenerationFailure, ReferenceImage, Study
from core.errors import ApplicationError, Conflict
from core.tasks import RecordedFailure
from sr_models import distortions

Job = tuple[int, int, int]  # (reference id, distortion type id, level)


@dataclass(frozen=True)
class InstalledType:
    """One catalogue type as the study holds it after an install."""

    catalogue_id: str
    code: str  # the study's code: the catalogue's, or a free one when that was taken
    name: str
    outcome: str  # "created", "updated" (settings or names refreshed), "unchanged"
    note: str = ""  # why the code differs from the catalogue's

    @property
    def moved(self) -> bool:
        return self.code != self.catalogue_id


@dataclass(frozen=True)
class CatalogueInstall:
    types: tuple[InstalledType, ...]

    @property
    def created(self) -> int:
        return sum(kind.outcome == "created" for kind in self.types)

    @property
    def updated(self) -> int:
        return sum(kind.outcome == "updated" for kind in self.types)

    @property
    def codes(self) -> dict[str, str]:
        """Catalogue type id -> the study's code."""
        return {kind.catalogue_id: kind.code for kind in self.types}

    def moved_summary(self) -> str:
        """One sentence naming the types installed under another code than the catalogue's ('' if none)."""
        moved = [kind for kind in self.types if kind.moved]
        if not moved:
            return ""
        return "Installed under other codes: " + "; ".join(
            f"catalogue type {kind.catalogue_id} ({kind.name}) as {kind.code}, since {kind.note}" for kind in moved
        )


def catalogue_types(path: Path | str = distortions.DEFAULT_CATALOGUE) -> dict[str, list[distortions.CatalogueEntry]]:
    """The catalogue's rows by type id, in the file's order."""
    try:
        entries = distortions.load_catalogue(path)
    except distortions.CatalogueError as error:
        raise ApplicationError(str(error)) from None
    by_type: dict[str, list[distortions.CatalogueEntry]] = {}
    for entry in entries:
        by_type.setdefault(entry.type_id, []).append(entry)
    return by_type


def catalogue_unready(rows: Sequence[distortions.CatalogueEntry]) -> str:
    """Why a catalogue type cannot run on this machine (the missing weight files and how to
    install them), or '' when every level can."""
    for row in rows:
        try:
            distortions.get_family(row.family).check_ready(row.params)
        except distortions.DistortionError as error:
            return f"type {row.type_id} ({row.name}): {error}"
    return ""


def catalogue_install(
    *, study: Study, type_ids: Iterable[str] | None = None, path: Path | str = distortions.DEFAULT_CATALOGUE
) -> CatalogueInstall:
    """Create (or refresh) the study's distortion types from a catalogue; ``type_ids`` picks some.

    A catalogue type keeps its code unless the study holds another type there (one with images,
    or of another family): then it is reused if some type of the study has its exact generator
    settings, else it gets the first two-digit code that neither the study nor the catalogue uses.
    Types picked by id must be able to run here (their SR weights installed), else nothing is
    installed; the whole catalogue installs everything and generation leaves the unready out."""
    by_type = catalogue_types(path)
    wanted = list(dict.fromkeys(type_ids)) if type_ids else None
    if wanted:
        unknown = [code for code in wanted if code not in by_type]
        if unknown:
            raise ApplicationError(
                f"unknown type id(s) {', '.join(unknown)} in {Path(path).name}; it has {', '.join(by_type)}"
            )
        unready = [reason for code in wanted if (reason := catalogue_unready(by_type[code]))]
        if unready:
            raise ApplicationError("nothing installed: " + " ".join(unready))
    picked = {code: by_type[code] for code in (wanted or by_type)}
    with transaction.atomic():
        # One install at a time per study: two would both see a code free and one would fail.
        Study.objects.select_for_update(no_key=True).get(pk=study.pk)
        study_types = list(DistortionType.objects.filter(study=study).annotate(n_images=Count("images")))
        taken = {kind.code for kind in study_types} | set(by_type)
        installed = []
        for code, rows in picked.items():
            kind_fields = _type_fields(rows)
            installed.append(_install_one(study, code, kind_fields, study_types, taken))
    return CatalogueInstall(types=tuple(installed))


def _type_fields(rows: Sequence[distortions.CatalogueEntry]) -> dict:
    first = rows[0]
    return {
        "name": first.name,
        "category": first.category,
        "subtype": first.subtype,
        "generator": first.family,
        "levels": {str(int(row.level)): row.params for row in rows},
    }


def _install_one(study: Study, code: str, fields: dict, study_types: list, taken: set[str]) -> InstalledType:
    settings_of = (fields["generator"], fields["levels"])
    at_code = next((kind for kind in study_types if kind.code == code), None)
    if at_code is not None and (at_code.generator, at_code.levels) == settings_of:
        return _refreshed(at_code, code, fields, ("name", "category", "subtype"))
    if at_code is not None and not at_code.n_images and at_code.generator == fields["generator"]:
        # The catalogue revised this type's levels before any image was made: nothing to keep.
        return _refreshed(at_code, code, fields, tuple(fields))
    same = next((kind for kind in study_types if (kind.generator, kind.levels) == settings_of), None)
    if same is not None:
        note = f"{code} is the study's {at_code.name!r}" if at_code else f"type {same.code} has the same settings"
        return InstalledType(code, same.code, same.name, "unchanged", note)
    new_code = code
    note = ""
    if at_code is not None:
        new_code = _free_code(taken)
        if new_code is None:
            raise Conflict(
                f"catalogue type {code} ({fields['name']}) cannot be installed in study {study.slug}: its code is "
                f"the study's type {at_code.code} ({at_code.name}) with other settings, and no two-digit code from "
                "01 to 99 is free; delete unused types first"
            )
        if at_code.n_images:
            kind_of = f"which has {at_code.n_images} image(s)"
        else:
            kind_of = f"made by {at_code.generator}" if at_code.generator else "an imported type"
        note = f"{code} is the study's {at_code.name!r}, {kind_of}"
    try:
        with transaction.atomic():
            kind = DistortionType.objects.create(study=study, code=new_code, **fields)
    except IntegrityError:
        raise Conflict(f"type code {new_code} of study {study.slug} was taken meanwhile; try again") from None
    kind.n_images = 0
    study_types.append(kind)
    taken.add(new_code)
    return InstalledType(code, new_code, fields["name"], "created", note)


def _refreshed(kind: DistortionType, code: str, fields: dict, keys: tuple[str, ...]) -> InstalledType:
    changed = [key for key in keys if getattr(kind, key) != fields[key]]
    for key in changed:
        setattr(kind, key, fields[key])
    if changed:
        kind.save(update_fields=changed)
    return InstalledType(code, kind.code, kind.name, "updated" if changed else "unchanged")


def _free_code(taken: set[str]) -> str | None:
    # Two digits keep the PIPAL file names (A0001_TT_LL) every tool reads.
    return next((f"{n:02d}" for n in range(1, 100) if f"{n:02d}" not in taken), None)


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


def generation_failures(study: Study, *, type_ids: Iterable[int] | None = None):
    """The study's slots whose image could not be made (of ``type_ids`` only when given), with why."""
    failures = GenerationFailure.objects.filter(study=study).select_related("reference", "distortion_type")
    return failures if type_ids is None else failures.filter(distortion_type_id__in=list(type_ids))


def failures_summary(failures: Sequence[GenerationFailure], *, shown: int = 3) -> str:
    """"<n> image(s) could not be made: A0001_05_02: why; …" for people."""
    named = [f"{f.reference.name}_{f.distortion_type.code}_{f.level:02d}: {f.error}" for f in failures[:shown]]
    more = f"; and {len(failures) - shown} more" if len(failures) > shown else ""
    return f"{len(failures)} image(s) could not be made: {'; '.join(named)}{more}"


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
            # Run in-process (no broker), a task's failures are recorded and it raises: the others still run.
            with contextlib.suppress(RecordedFailure):
                tasks.generate_distortions.apply_async(args=[part], **({"queue": queue} if queue else {}))
            sent += 1
    return sent


def parameter_list(family: distortions.DistortionFamily) -> str:
    """A family's parameters for people: "length (float, 1.0 to 64.0), angle (float, 0.0 to 360.0, optional)"."""
    described = []
    for name, spec in family.describe()["params"].items():
        facts = [spec["type"]]
        low, high = spec["low"], spec["high"]
        if spec["choices"]:
            facts.append("one of " + "/".join(map(str, spec["choices"])))
        elif low is not None and high is not None:
            facts.append(f"{low} to {high}")
        elif low is not None:
            facts.append(f"from {low}")
        elif high is not None:
            facts.append(f"up to {high}")
        if not spec["required"]:
            facts.append("optional" if spec["default"] is None else f"default {spec['default']}")
        described.append(f"{name} ({', '.join(facts)})")
    return ", ".join(described) or "none"


def checked_levels(generator: str, levels: dict) -> dict[str, dict]:
    """A type's generator settings, validated against the registry: level
    numbers from 1 up, each with the family's parameters. A refusal lists the
    family's valid parameters, so a typo is fixed without reading the source."""
    try:
        family = distortions.get_family(generator)
    except distortions.DistortionError as error:
        raise ApplicationError(str(error)) from None
    valid = f"valid for {family.name}: {parameter_list(family)}"
    if not isinstance(levels, dict) or not levels:
        raise ApplicationError(f'levels must be an object like {{"1": {{...}}, "2": {{...}}}}; {valid}')
    checked = {}
    for key, params in levels.items():
        if not str(key).isdigit() or int(key) < 1:
            raise ApplicationError(f"level {key!r} is not a positive whole number")
        if not isinstance(params, dict):
            raise ApplicationError(f"level {key}: parameters must be an object, got {params!r}; {valid}")
        try:
            checked[str(int(key))] = family.validate(params)
        except distortions.DistortionError as error:
            raise ApplicationError(f"level {key}: {error}; {valid}") from None
    return checked


@dataclass(frozen=True)
class CatalogueGeneration:
    installed: CatalogueInstall
    images: int  # images being made


def catalogue_generate(*, study: Study, type_ids: Sequence[str] | None = None) -> CatalogueGeneration:
    """Install the catalogue's types (all, or ``type_ids``) and start making their missing
    images, under the codes the install gave them."""
    installed = catalogue_install(study=study, type_ids=type_ids)
    codes = list(installed.codes.values()) if type_ids else None
    return CatalogueGeneration(installed=installed, images=_start(generation_plan(study=study, type_codes=codes)))


def generation_start(*, study: Study, type_ids: Sequence[str] | None = None, install: bool = True) -> int:
    """Install the catalogue's types (all, or ``type_ids``; ``install=False``
    uses the study's own generated types as they are) and start making every
    missing image; returns how many. With a broker the jobs go to the Celery
    workers once this commits; in the embedded default they run in a thread
    of this process (PIPAL_GENERATE_IN_THREAD), so a web request returns at once."""
    if install:
        return catalogue_generate(study=study, type_ids=type_ids).images
    return _start(generation_plan(study=study, type_codes=type_ids))


def _start(jobs: Sequence[Job]) -> int:
    if not jobs:
        return 0
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        transaction.on_commit(lambda: generation_enqueue(jobs))
    elif settings.PIPAL_GENERATE_IN_THREAD:
        transaction.on_commit(lambda: threading.Thread(target=_generate_in_thread, args=(jobs,), daemon=True).start())
    else:
        generation_enqueue(jobs)  # the tasks, in-process: a slot that fails is recorded and the others made
    return len(jobs)


def _generate_in_thread(jobs: Sequence[Job]) -> None:
    try:
        generation_enqueue(jobs)
    finally:
        connections.close_all()
