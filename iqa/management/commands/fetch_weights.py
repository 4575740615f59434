from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from iqa import scoring, weights
from iqa.metrics import UnknownMetric, parse_metric_list


class Command(BaseCommand):
    help = (
        "Make metrics' weights available: builds NIQE's pristine parameters from basicsr's PyPI sdist (no "
        "other network needed), and loads every other named metric once, downloading its files when online. "
        "Reports what is present and, for what is not, the file and where to get it."
    )

    def add_arguments(self, parser):
        parser.add_argument("metrics", help="comma-separated metric names, e.g. niqe,lpips")

    def handle(self, *args, metrics, **options):
        try:
            infos = parse_metric_list(metrics)
        except UnknownMetric as error:
            raise CommandError(str(error)) from None
        weights_dir = Path(settings.PIPAL_WEIGHTS_DIR)
        failed = []
        for info in infos:
            if info.pyiqa_name in ("niqe", "pi") and not (weights_dir / weights.NIQE_FILE).is_file():
                try:
                    path = weights.fetch_niqe_parameters(weights_dir, weights_dir / "downloads")
                except (OSError, ValueError) as error:
                    failed.append(f"{info.name}: NIQE parameters from basicsr's sdist: {error}")
                    continue
                self.stdout.write(f"{weights.NIQE_FILE} built from basicsr's sdist -> {path}")
            try:
                metric = scoring.metric_load(info.name, "cpu")
            except scoring.ScoringError as error:
                failed.append(error.message)
                continue
            self.stdout.write(f"{info.name}: ready ({metric.version})")
        if failed:
            raise CommandError("\n".join(failed))
