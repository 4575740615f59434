import time

from django.conf import settings
from django.core.management.base import CommandError
from django.db import transaction
from tqdm import tqdm

from annotation import generation, generation_job
from annotation.commands import StudyCommand
from annotation.models import DistortionType


class Command(StudyCommand):
    help = (
        "Generate a study's distorted images from the distortion registry: installs the catalogue's types "
        "(PIPAL Table 2 categories) into the study if needed, then makes every missing (reference, type, level) "
        "image as Celery jobs (in-process without a broker). Idempotent: re-running makes only what is missing. "
        "A catalogue type whose code the study uses for other settings gets a free code (the output says which); "
        "types named in --types that cannot run here (SR weights missing) are refused before anything is installed."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--types", help="comma-separated type ids (default: every type of the catalogue)")
        parser.add_argument("--references", help="comma-separated reference names (default: all)")
        parser.add_argument("--catalogue", help="a catalogue CSV (default: fixtures/distortion_catalogue.csv)")
        parser.add_argument("--no-wait", action="store_true", help="with a broker: enqueue and return at once")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for the workers")

    def handle(self, *args, slug, types, references, catalogue, no_wait, timeout, **options):
        study = self.study(slug)
        type_codes = [code.strip() for code in types.split(",")] if types else None
        reference_names = [name.strip() for name in references.split(",")] if references else None
        install_kwargs = {"path": catalogue} if catalogue else {}
        # A refusal (an unknown reference, say) leaves the study as it was: no empty types.
        with transaction.atomic():
            installed = generation.catalogue_install(study=study, type_ids=type_codes, **install_kwargs)
            study_codes = list(installed.codes.values()) if type_codes else None
            jobs = generation.generation_plan(study=study, type_codes=study_codes, reference_names=reference_names)
        if installed.created or installed.updated:
            self.stdout.write(f"distortion types: {installed.created} created, {installed.updated} updated")
        if installed.moved_summary():
            self.stdout.write(installed.moved_summary())
        if not type_codes:
            for reason in generation.unready_types(study).values():
                self.stderr.write(f"left out: {reason}")
        if not jobs:
            self.stdout.write("nothing to generate: every image exists")
            return
        eager = settings.CELERY_TASK_ALWAYS_EAGER
        self.stdout.write(f"{len(jobs)} image(s) to generate {'in-process' if eager else 'by the Celery workers'}")
        if eager:
            with tqdm(total=len(jobs), unit="image", disable=None) as bar:
                for reference_id, type_id, level in jobs:
                    generation_job.distortion_generate(
                        reference_id=reference_id, distortion_type_id=type_id, level=level
                    )
                    bar.update(1)
        else:
            generation.generation_enqueue(jobs)
            if no_wait:
                self.stdout.write("enqueued; follow the progress on the study's admin progress page")
                return
            self._wait(study, jobs, timeout)
        made, expected = generation.generation_progress(study)
        self.stdout.write(f"done: {made} of {expected} generated image(s) present in {study.slug}")
        self.prepare_stimuli(study)

    def _wait(self, study, jobs, timeout):
        slots = {(reference, kind, level) for reference, kind, level in jobs}
        kinds = DistortionType.objects.filter(pk__in={kind for _, kind, _ in slots})
        deadline = time.monotonic() + timeout
        with tqdm(total=len(slots), unit="image", disable=None) as bar:
            while True:
                made = sum(
                    1
                    for key in study.images.filter(distortion_type__in=kinds).values_list(
                        "reference_id", "distortion_type_id", "level"
                    )
                    if key in slots
                )
                bar.update(made - bar.n)
                failures = [
                    failure
                    for failure in generation.generation_failures(study, type_ids=[kind.pk for kind in kinds])
                    if (failure.reference_id, failure.distortion_type_id, failure.level) in slots
                ]
                if made + len(failures) >= len(slots):
                    if failures:
                        raise CommandError(generation.failures_summary(failures))
                    return
                if time.monotonic() > deadline:
                    raise CommandError(f"{len(slots) - made} image(s) still missing after {timeout:.0f} s")
                time.sleep(1)
