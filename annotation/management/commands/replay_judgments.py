from pathlib import Path

from annotation.analysis.replay import judgments_replay
from annotation.commands import StudyCommand
from annotation.imports.judgment_files import read_judgment_csv


class Command(StudyCommand):
    help = (
        "Apply a judgment log (CSV columns image_a,image_b,winner[,rater]; winner is a, b or tie; images by file name) "
        "in order through the Elo engine. All or nothing."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("csv", type=Path, help="the judgment file")

    def handle(self, *args, slug, csv, **options):
        study = self.study(slug)
        rows = read_judgment_csv(csv)
        count = judgments_replay(study=study, rows=rows)
        self.stdout.write(f"applied {count} judgment(s) to {study.slug}")
