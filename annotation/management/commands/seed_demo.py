from pathlib import Path

from django.conf import settings

from annotation.commands import StudyCommand
from annotation.imports.folders import images_import, plan_folder_import
from annotation.models import Study
from annotation.studies import study_create

DEMO_FOLDER = Path(settings.BASE_DIR) / "fixtures" / "demo"


class Command(StudyCommand):
    help = (
        "Create the demo study from fixtures/demo (4 public-domain/CC0 reference patches, 6 distortion types x 2 "
        "levels, coded as the same distortions in the catalogue: 01, 03, 05, 15, 17, 25). Safe to re-run: only what "
        "is missing is added."
    )

    def add_arguments(self, parser):
        parser.add_argument("--slug", default="demo")  # optional, unlike other study commands

    def handle(self, *args, slug, **options):
        study = Study.objects.filter(slug=slug).first() or study_create(slug=slug, name="Demo study")
        report = images_import(study=study, plan=plan_folder_import(study, DEMO_FOLDER))
        self.stdout.write(
            f"demo study {study.slug}: {report.references} reference(s) and {report.distorted} image(s) added, "
            f"{report.skipped} already present"
        )
        self.prepare_stimuli(study)
