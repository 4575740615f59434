from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iqa import scoring_job, weights
from iqa.metrics import UnknownMetric, metric_info
from sr_models import weights as sr_weights


class Command(BaseCommand):
    help = (
        "Make weights available in PIPAL_WEIGHTS_DIR. SR checkpoints (sr_infer --list): downloaded when they "
        "have a direct URL and checked like an import. Metrics: NIQE's pristine parameters are built from "
        "basicsr's PyPI sdist (no other network needed); any other metric is loaded once, downloading its "
        "files when online. Says, for what is not available, which file and where to get it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names", nargs="+", help="checkpoint or metric names (commas allowed): esrgan_x4 niqe,lpips"
        )

    def handle(self, *args, names, **options):
        wanted = [part.strip() for name in names for part in name.split(",") if part.strip()]
        weights_dir = Path(settings.PIPAL_WEIGHTS_DIR)
        checkpoints = set(sr_weights.checkpoint_names())
        failed = []
        for name in dict.fromkeys(wanted):
            if name in checkpoints:
                failed += self._checkpoint(name, weights_dir)
                continue
            try:
                info = metric_info(name)
            except UnknownMetric as error:
                failed.append(f"{error} (nor an SR checkpoint)")
                continue
            if info.pyiqa_name in ("niqe", "pi") and not (weights_dir / weights.NIQE_FILE).is_file():
                try:
                    path = weights.fetch_niqe_parameters(weights_dir, weights_dir / "downloads")
                except (OSError, ValueError) as error:
                    failed.append(f"{name}: NIQE parameters from basicsr's sdist: {error}")
                    continue
                self.stdout.write(f"{weights.NIQE_FILE} built from basicsr's sdist -> {path}")
            try:
                metric = scoring_job.metric_load(name, "cpu")
            except scoring_job.ScoringError as error:
                failed.append(error.message)
                continue
            self.stdout.write(f"{name}: ready ({metric.version})")
        if failed:
            raise CommandError("\n".join(failed))

    def _checkpoint(self, name: str, weights_dir: Path) -> list[str]:
        entry = sr_weights.get_checkpoint(name)
        parts = [sr_weights.get_checkpoint(part) for part in entry.interpolate] if entry.interpolate else [entry]
        failed = []
        for part in parts:
            try:
                path = sr_weights.fetch_checkpoint(part.name, weights_dir)
            except sr_weights.CheckpointError as error:
                failed.append(str(error))
                continue
            self.stdout.write(f"{part.name}: ready ({path})")
        return failed
