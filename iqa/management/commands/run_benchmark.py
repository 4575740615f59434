from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from tqdm import tqdm

from annotation.commands import StudyCommand
from core.private_media import private_root
from iqa import benchmark_tables, scoring_job, selectors, stats
from iqa.metrics import pyiqa_version
from iqa.services import benchmark_runs


class Command(StudyCommand):
    help = (
        "Correlate stored metric scores with the study's MOS: SRCC (bootstrap 95% CI), KRCC, PLCC and RMSE "
        "after the VQEG logistic fit, for the whole study and per distortion category and subtype (PIPAL "
        "Table 3), SR methods ranked (Table 4), paired significance tests and scatter plots. Writes CSV, "
        "Markdown, HTML and PNG; the report is also on the study's dashboard."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--metrics",
            help="comma-separated metric names (scored beforehand), or 'table3': every PIPAL Table 3 method the "
            "platform has (see --list-table3)",
        )
        parser.add_argument(
            "--list-table3", action="store_true", help="list PIPAL Table 3's methods and what the platform has; exit"
        )
        parser.add_argument(
            "--type-pair", help="two distortion type codes, e.g. 10,33: a PIPAL Fig. 5-style plot of both against one "
            "metric with each type's fitted logistic curve"
        )
        parser.add_argument("--type-pair-metric", help="the metric of the --type-pair plot (default: the first)")
        parser.add_argument(
            "--compute-missing",
            action="store_true",
            help="first compute the scores the study lacks (as compute_scores does); with --metrics table3, methods "
            "whose weights are missing are named and left out",
        )
        parser.add_argument("--out", help="also copy the report files into this folder")
        parser.add_argument("--min-images", type=int, default=stats.MIN_IMAGES, help="fewest images for a cell")
        parser.add_argument("--min-judgments", type=int, default=1, help="leave out images judged fewer times")
        parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--logistic", type=int, choices=[4, 5], default=5, help="VQEG logistic fitted before PLCC and RMSE"
        )

    def handle(
        self, *args, slug, metrics, out, min_images, min_judgments, resamples, seed, logistic, list_table3,
        type_pair, type_pair_metric, **options,
    ):
        study = self.study(slug)
        if list_table3:
            self._list_table3(study)
            return
        if not metrics:
            raise CommandError("give --metrics a,b,... (or --metrics table3), or --list-table3")
        if min_images < 3 or resamples < 10:
            raise CommandError("--min-images must be at least 3 and --resamples at least 10")
        table3 = metrics.strip() == "table3"
        if table3:
            metrics = ",".join(benchmark_tables.table3_metrics())
        if options["compute_missing"]:
            metrics = self._compute_missing(slug, metrics, leave_out_unavailable=table3)
        count = len([name for name in metrics.split(",") if name.strip()])
        with tqdm(total=count, unit="metric", disable=None) as bar:
            run = benchmark_runs.benchmark_run(
                study=study,
                metric_names=metrics,
                out_dir=Path(out) if out else None,
                min_images=min_images,
                min_judgments=min_judgments,
                resamples=resamples,
                seed=seed,
                logistic=logistic,
                progress=lambda name: bar.update(1),
                type_pair=tuple(code.strip() for code in type_pair.split(",")) if type_pair else None,
                type_pair_metric=type_pair_metric,
            )
        folder = private_root() / run.folder
        self.stdout.write((folder / "benchmark.md").read_text(encoding="utf-8"))
        self.stdout.write(f"report: {folder / 'index.html'}" + (f" (copied to {out})" if out else ""))
        self.stdout.write(f"on the web: /study/{study.slug}/benchmark/")

    def _compute_missing(self, slug: str, metrics: str, *, leave_out_unavailable: bool) -> str:
        usable = []
        for name in [part.strip() for part in metrics.split(",") if part.strip()]:
            try:
                scoring_job.metric_load(name)
            except scoring_job.ScoringError as error:
                if not leave_out_unavailable:
                    raise CommandError(str(error)) from None
                self.stderr.write(f"left out: {error}")
                continue
            usable.append(name)
        if not usable:
            raise CommandError("no metric can be computed here (see the lines above)")
        call_command("compute_scores", slug, "--metrics", ",".join(usable), stdout=self.stdout, stderr=self.stderr)
        return ",".join(usable)

    def _list_table3(self, study) -> None:
        coverage = {row["metric"]: row for row in selectors.score_coverage(study)}
        self.stdout.write(f"PIPAL Table 3's IQA methods (Sec. 4.1), the platform's names, scores on {study.slug}:")
        for label, name, note in benchmark_tables.PIPAL_TABLE3:
            if name is None:
                self.stdout.write(f"  {label:11} —  not available (not in pyiqa {pyiqa_version()})")
                continue
            row = coverage.get(name)
            scored = f"{row['scored']}/{row['total']} images scored" if row else "not scored yet"
            self.stdout.write(f"  {label:11} {name:11} {scored}{'; ' + note if note else ''}")
        have = benchmark_tables.table3_metrics()
        self.stdout.write(
            f"{len(have)} of {len(benchmark_tables.PIPAL_TABLE3)} available. Score and benchmark them all with:\n"
            f"  python manage.py compute_scores {study.slug} --metrics {','.join(have)}\n"
            f"  python manage.py run_benchmark {study.slug} --metrics table3"
        )
