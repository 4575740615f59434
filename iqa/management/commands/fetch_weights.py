from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import weights as core_weights
from core.weights import WEIGHTS
from iqa import scoring_job
from iqa.metrics import UnknownMetric, metric_info


class Command(BaseCommand):
    help = (
        "Make weights available in PIPAL_WEIGHTS_DIR. A weight file's name (SR checkpoints: sr_infer --list; "
        "niqe_parameters, ranker_niqe, alexnet_imagenet, ...): made, or downloaded when it has a direct URL and "
        "checked like an import. A metric's name: the weight files it declares (NIQE's pristine parameters are "
        "built from basicsr's PyPI sdist), then the metric is loaded once, downloading its files when online. "
        "Says, for what is not available, which file and where to get it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names", nargs="+", help="weight-file or metric names (commas allowed): esrgan_x4 niqe,lpips"
        )

    def handle(self, *args, names, **options):
        wanted = [part.strip() for name in names for part in name.split(",") if part.strip()]
        weights_dir = Path(settings.PIPAL_WEIGHTS_DIR)
        failed = []
        for name in dict.fromkeys(wanted):
            if name in WEIGHTS:
                failed += self._fetch(WEIGHTS.get(name), weights_dir)
                continue
            try:
                info = metric_info(name)
            except UnknownMetric as error:
                failed.append(f"{error} (nor a weight file)")
                continue
            problems = [problem for record in info.weights for problem in self._fetch(WEIGHTS.get(record), weights_dir)]
            if problems:
                failed += [f"{name}: {problem}" for problem in problems]
                continue
            try:
                metric = scoring_job.metric_load(name, "cpu")
            except scoring_job.ScoringError as error:
                failed.append(error.message)
                continue
            self.stdout.write(f"{name}: ready ({metric.version})")
        if failed:
            raise CommandError("\n".join(failed))

    def _fetch(self, record, weights_dir: Path) -> list[str]:
        """Fetch one record (its parts, for a record made of others); the problems, as messages."""
        made = record.make is not None and not (weights_dir / record.file).is_file()
        try:
            paths = core_weights.fetch(record, weights_dir)
        except core_weights.WeightsError as error:
            return [str(error)]
        for path in paths:
            if made:
                self.stdout.write(f"{record.file} {record.notes} -> {path}")
            else:
                self.stdout.write(f"{record.name}: ready ({path})")
        return []
