from pathlib import Path

from django.core.management.base import CommandError

from annotation.commands import StudyCommand
from annotation.imports.folders import images_import, plan_folder_import


class Command(StudyCommand):
    help = (
        "Import a PIPAL-layout folder: <dir>/Ref/<ref>.<ext>, <dir>/Dis/<ref>_<type>_<level>.<ext> and an optional "
        "<dir>/distortion_types.csv (id,name,category,subtype). All or nothing; re-running adds only what is new, "
        "and new images join a running study at its initial rating."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("dir", type=Path, help="folder with Ref/ and Dis/")

    def handle(self, *args, slug, dir, **options):
        if not dir.is_dir():
            raise CommandError(f"{dir} is not a folder")
        study = self.study(slug)
        self.stdout.write(f"checking {dir} …")
        plan = plan_folder_import(study, dir)
        report = images_import(study=study, plan=plan)
        self.stdout.write(
            f"imported {report.references} reference(s) and {report.distorted} distorted image(s) into {study.slug}; "
            f"{report.types_created} distortion type(s) created, {report.types_updated} updated, "
            f"{report.skipped} file(s) already present"
        )
        self.prepare_stimuli(study)
