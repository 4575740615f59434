from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import weights as core_weights
from core.weights import WEIGHTS
from iqa.weights import import_weight_file


class Command(BaseCommand):
    help = (
        "Install weight files a lab already has into PIPAL_WEIGHTS_DIR. "
        "`import_weights <name> <file>`: a weight file the platform knows by name (SR checkpoints: sr_infer "
        "--list; ranker_niqe, alexnet_imagenet, ...), checked before it is installed under its published name "
        "(readable, its key layout, the published SHA-256 when known). "
        "`import_weights <file>...`: metric weights (pyiqa's, torchvision's) under their own names."
    )

    def add_arguments(self, parser):
        parser.add_argument("args", nargs="+", metavar="NAME_OR_FILE", help="<name> <file>, or files")

    def handle(self, *args, **options):
        weights_dir = Path(settings.PIPAL_WEIGHTS_DIR)
        record = WEIGHTS.get(args[0]) if len(args) == 2 and not Path(args[0]).exists() and args[0] in WEIGHTS else None
        if record is not None:
            try:
                target = core_weights.install(record, Path(args[1]), weights_dir)
            except core_weights.WeightsError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"{args[0]}: {Path(args[1]).name} checked and installed as {target}")
            return
        errors = []
        for name in args:
            if not Path(name).exists() and name in WEIGHTS:
                errors.append(f"{name} is a known weight file: give its file too (import_weights {name} FILE)")
                continue
            try:
                target = import_weight_file(Path(name), weights_dir)
            except (OSError, ValueError) as error:
                errors.append(str(error))
                continue
            self.stdout.write(f"{target.name} -> {target}")
        if errors:
            raise CommandError("; ".join(errors))
