import contextlib
import csv
import sys

from django.core.management.base import CommandError

from annotation.commands import StudyCommand
from iqa.metrics import UnknownMetric, parse_metric_list
from iqa.selectors import study_scores


class Command(StudyCommand):
    help = "Write a study's metric scores as CSV: image, reference, metric, value, version (latest version each)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--out", help="CSV file (default: standard output)")
        parser.add_argument("--metrics", help="comma-separated metric names (default: every scored metric)")

    def handle(self, *args, slug, out, metrics, **options):
        study = self.study(slug)
        try:
            infos = parse_metric_list(metrics) if metrics else None
        except UnknownMetric as error:
            raise CommandError(str(error)) from None
        rows = study_scores(study, infos)
        target = open(out, "w", newline="", encoding="utf-8") if out else contextlib.nullcontext(sys.stdout)  # noqa: SIM115
        with target as handle:
            writer = csv.DictWriter(handle, fieldnames=["image", "reference", "metric", "value", "version"])
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "value": repr(row["value"])})
        if out:
            self.stdout.write(f"{len(rows)} score(s) written to {out}")
