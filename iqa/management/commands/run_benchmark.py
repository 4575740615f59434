from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError
from tqdm import tqdm

from annotation.management.commands._base import StudyCommand
from iqa import benchmarking, stats


class Command(StudyCommand):
    help = (
        "Correlate stored metric scores with the study's MOS: SRCC (bootstrap 95% CI), KRCC, PLCC and RMSE "
        "after the VQEG logistic fit, for the whole study and per distortion category and subtype (PIPAL "
        "Table 3), SR methods ranked (Table 4), paired significance tests and scatter plots. Writes CSV, "
        "Markdown, HTML and PNG; the report is also on the study's dashboard."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--metrics", required=True, help="comma-separated metric names (scored beforehand)")
        parser.add_argument("--out", help="also copy the report files into this folder")
        parser.add_argument("--min-images", type=int, default=stats.MIN_IMAGES, help="fewest images for a cell")
        parser.add_argument("--min-judgments", type=int, default=1, help="leave out images judged fewer times")
        parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--logistic", type=int, choices=[4, 5], default=5, help="VQEG logistic fitted before PLCC and RMSE"
        )

    def handle(self, *args, slug, metrics, out, min_images, min_judgments, resamples, seed, logistic, **options):
        study = self.study(slug)
        if min_images < 3 or resamples < 10:
            raise CommandError("--min-images must be at least 3 and --resamples at least 10")
        count = len([name for name in metrics.split(",") if name.strip()])
        with tqdm(total=count, unit="metric", disable=None) as bar:
            run = benchmarking.benchmark_run(
                study=study,
                metric_names=metrics,
                out_dir=Path(out) if out else None,
                min_images=min_images,
                min_judgments=min_judgments,
                resamples=resamples,
                seed=seed,
                progress=lambda name: bar.update(1),
            )
        folder = Path(settings.MEDIA_ROOT) / run.folder
        self.stdout.write((folder / "benchmark.md").read_text(encoding="utf-8"))
        self.stdout.write(f"report: {folder / 'index.html'}" + (f" (copied to {out})" if out else ""))
        self.stdout.write(f"on the web: /study/{study.slug}/benchmark/")
