from pathlib import Path

from annotation.commands import StudyCommand
from annotation.imports.folders import plan_reference_patches, reference_files, references_import
from sr_models.patches import SELECTIONS


class Command(StudyCommand):
    help = (
        "Add reference images to a study, cropping one patch from each (PIPAL: 288x288 around hard-to-restore "
        "texture). All or nothing: a bad file refuses the whole import with a message naming it."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("paths", nargs="+", type=Path, help="image files and/or folders of them")
        parser.add_argument("--crop", type=int, default=288, help="patch side in pixels; 0 keeps whole images")
        parser.add_argument(
            "--select", choices=SELECTIONS, default="texture", help="texture: the window with most gradient energy"
        )

    def handle(self, *args, slug, paths, crop, select, **options):
        study = self.study(slug)
        patches = plan_reference_patches(study, reference_files(paths), crop=crop, select=select)
        created = references_import(study=study, patches=patches)
        for patch in patches:
            self.stdout.write(f"  {patch.name}: {patch.source.name} box {patch.box}")
        self.stdout.write(f"imported {len(created)} reference(s) into {study.slug}")
