from pathlib import Path

from annotation.analysis.exports import JUDGMENT_COLUMNS, write_judgments_csv
from annotation.commands import StudyCommand


class Command(StudyCommand):
    help = (
        f"Export the judgment log as CSV ({','.join(JUDGMENT_COLUMNS)}): winner is a, b or tie; native, visible_ms "
        "and the viewing columns say how the rater saw each pair. replay_judgments reads it back."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--out", type=Path, help="file to write (default: stdout)")

    def handle(self, *args, slug, out, **options):
        study = self.study(slug)
        if out is None:
            count = write_judgments_csv(study, self.stdout)
        else:
            with open(out, "w", encoding="utf-8", newline="") as handle:
                count = write_judgments_csv(study, handle)
        self.stderr.write(f"exported {count} judgment(s)" + (f" to {out}" if out else ""))
