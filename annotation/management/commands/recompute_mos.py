
from annotation.analysis.replay import study_recompute_mos
from annotation.commands import StudyCommand


class Command(StudyCommand):
    help = (
        "Rebuild every image's Elo and MOS by replaying the judgment log (leaving out excluded raters) and report "
        "any difference from the live ratings."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--check", action="store_true", help="only report differences; change nothing")

    def handle(self, *args, slug, check, **options):
        study = self.study(slug)
        report = study_recompute_mos(study=study, write=not check)
        self.stdout.write(f"replayed {report.judgments} judgment(s) over {report.images} image(s)")
        if not report.differences:
            self.stdout.write("live ratings equal the replay: no difference")
            return
        self.stdout.write(
            f"{len(report.differences)} image(s) differ (largest Elo difference {report.max_abs_difference:.6g}):"
        )
        for diff in report.differences[:50]:
            self.stdout.write(
                f"  {diff.image}: live {diff.live_elo:.4f} ({diff.live_judgments} judgments), "
                f"replayed {diff.replayed_elo:.4f} ({diff.replayed_judgments} judgments)"
            )
        self.stdout.write("live ratings were replaced by the replay" if report.written else "nothing changed (--check)")
