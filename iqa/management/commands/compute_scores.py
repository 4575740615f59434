import time

from django.conf import settings
from django.core.management.base import CommandError
from tqdm import tqdm

from annotation.commands import StudyCommand
from iqa import scoring, scoring_job
from iqa.metrics import UnknownMetric, parse_metric_list


class Command(StudyCommand):
    help = (
        "Score a study's images with IQA metrics (any pyiqa metric by name, or the project's). "
        "One Celery job per reference and metric (in-process without a broker); scores are cached by "
        "image and reference content and metric version, so a re-run computes only what is missing."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--metrics", required=True, help="comma-separated metric names, e.g. psnr,ssim,lpips")
        parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when a GPU is present")
        parser.add_argument(
            "--batch",
            type=int,
            help="images per forward pass (default: 1 on the CPU, where batching measured no faster and batch 1 "
            f"is bit-identical to pyiqa; {scoring.DEFAULT_BATCH} on CUDA)",
        )
        parser.add_argument("--no-wait", action="store_true", help="with a broker: enqueue and return at once")
        parser.add_argument("--timeout", type=float, default=24 * 3600, help="seconds to wait for the workers")

    def handle(self, *args, slug, metrics, device, batch, no_wait, timeout, **options):
        study = self.study(slug)
        if batch is not None and batch < 1:
            raise CommandError("--batch must be at least 1")
        try:
            infos = parse_metric_list(metrics)
        except UnknownMetric as error:
            raise CommandError(str(error)) from None
        eager = settings.CELERY_TASK_ALWAYS_EAGER
        for info in infos:
            metric = scoring_job.metric_load(info.name, device)
            size = batch or (scoring.DEFAULT_BATCH if metric.device == "cuda" else 1)
            jobs = scoring.scoring_plan(study=study, metric=metric, batch=size)
            todo = sum(len(job.image_ids) for job in jobs)
            where = "in-process" if eager else "by the Celery workers"
            self.stdout.write(f"{info.name} {info.arrow} ({metric.version}, {metric.device}): {todo} to score {where}")
            if not jobs:
                continue
            if eager:
                with tqdm(total=todo, unit="image", desc=info.name, disable=None) as bar:
                    for job in jobs:
                        scoring_job.reference_score(job=job, on_batch=bar.update)
            else:
                scoring.scoring_enqueue(jobs)
                if not no_wait:
                    self._wait(study, metric, todo, timeout)
        if no_wait and not eager:
            self.stdout.write("enqueued; re-run the command later to see what is left")
            return
        self.stdout.write(f"done: scores for {', '.join(info.name for info in infos)} on {study.slug}")

    def _wait(self, study, metric, todo, timeout):
        deadline = time.monotonic() + timeout
        done_before, total = scoring.scoring_progress(study=study, metric=metric)
        start = done_before
        with tqdm(total=todo, unit="image", desc=metric.info.name, disable=None) as bar:
            while True:
                done, total = scoring.scoring_progress(study=study, metric=metric)
                bar.update(done - start - bar.n)
                failures = list(
                    scoring_job.scoring_failures(study=study, metric=metric.info.name, version=metric.version)
                )
                if done + len(failures) >= total:
                    if failures:  # the rest is not coming
                        raise CommandError(scoring_job.failures_summary(failures))
                    return
                if time.monotonic() > deadline:
                    raise CommandError(f"{metric.info.name}: {total - done} image(s) unscored after {timeout:.0f} s")
                time.sleep(1)
