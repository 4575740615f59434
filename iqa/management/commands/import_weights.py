from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iqa.weights import import_weight_file
from sr_models import weights as sr_weights


class Command(BaseCommand):
    help = (
        "Install weight files a lab already has into PIPAL_WEIGHTS_DIR. "
        "`import_weights <checkpoint> <file>`: an SR checkpoint (see sr_infer --list), checked before it is "
        "installed (readable, its key layout loads strictly, the published SHA-256 when known). "
        "`import_weights <file>...`: metric weights (pyiqa's, torchvision's) under their own names."
    )

    def add_arguments(self, parser):
        parser.add_argument("args", nargs="+", metavar="NAME_OR_FILE", help="<checkpoint> <file>, or files")

    def handle(self, *args, **options):
        weights_dir = Path(settings.PIPAL_WEIGHTS_DIR)
        if len(args) == 2 and not Path(args[0]).exists() and args[0] in sr_weights.checkpoint_names():
            try:
                target = sr_weights.import_checkpoint_file(args[0], Path(args[1]), weights_dir)
            except sr_weights.CheckpointError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"{args[0]}: {Path(args[1]).name} checked and installed as {target}")
            return
        errors = []
        for name in args:
            if not Path(name).exists() and name in sr_weights.checkpoint_names():
                errors.append(f"{name} is an SR checkpoint: give its file too (import_weights {name} FILE)")
                continue
            try:
                target = import_weight_file(Path(name), weights_dir)
            except (OSError, ValueError) as error:
                errors.append(str(error))
                continue
            self.stdout.write(f"{target.name} -> {target}")
        if errors:
            raise CommandError("; ".join(errors))
