"""Shared bits of the study's management commands."""

from django.core.management.base import CommandError

from annotation.models import Study
from core.commands import ApplicationCommand


class StudyCommand(ApplicationCommand):
    """A command whose first argument is a study slug."""

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the study's slug")

    def study(self, slug: str) -> Study:
        try:
            return Study.objects.get(slug=slug)
        except Study.DoesNotExist:
            known = ", ".join(Study.objects.order_by("slug").values_list("slug", flat=True)[:20]) or "none"
            raise CommandError(f"no study with slug {slug!r} (known: {known})") from None

    def prepare_stimuli(self, study: Study) -> None:
        """Make ahead of time what raters will be shown (display copies, practice and gold
        pictures), with a progress bar, so no rater's request pays for it."""
        from tqdm import tqdm

        from annotation.rating.control_trials import prepare_study_controls

        if study.mos_from_labels:
            return
        with tqdm(total=study.references.count(), unit="reference", desc="stimuli", disable=None) as bar:
            prepare_study_controls(study, progress=bar.update)
