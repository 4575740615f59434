from django.core.management.base import BaseCommand

from iqa import metrics


class Command(BaseCommand):
    help = "List every metric usable by name: pyiqa's and the project's, with direction, mode and score range."

    def add_arguments(self, parser):
        parser.add_argument("--filter", default="", help="only names containing this text")

    def handle(self, *args, filter, **options):
        for name in metrics.metric_names():
            if filter in name:
                info = metrics.metric_info(name)
                score_range = f" [{info.score_range}]" if info.score_range else ""
                note = f"  {info.description}" if info.description else ""
                self.stdout.write(f"{name:28} {info.arrow} {info.mode} {info.source}{score_range}{note}")
