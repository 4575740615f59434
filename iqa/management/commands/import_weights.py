from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iqa.weights import import_weight_file


class Command(BaseCommand):
    help = (
        "Copy weight files (pyiqa's, torchvision's, the project's) into PIPAL_WEIGHTS_DIR under their own "
        "names, where metrics and models look before downloading."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="weight files, e.g. LPIPS_v0.1_alex-df73285e.pth")

    def handle(self, *args, files, **options):
        weights_dir = Path(settings.PIPAL_WEIGHTS_DIR)
        errors = []
        for name in files:
            try:
                target = import_weight_file(Path(name), weights_dir)
            except (OSError, ValueError) as error:
                errors.append(str(error))
                continue
            self.stdout.write(f"{target.name} -> {target}")
        if errors:
            raise CommandError("; ".join(errors))
