"""Metric scores: the app's scoring path against plain pyiqa, a PIPAL-scale estimate, and one vs two Celery workers.

Part 1, per metric (in-process). A throwaway study holds the 48 demo images
(``fixtures/demo``: 4 references, 288x288, the size of PIPAL's images),
imported with ``plan_folder_import`` + ``images_import``. For every metric of
``--metrics`` (default: the classic full-reference set psnr, ssim, ms_ssim,
fsim, vif, gmsd, vsi, nlpd, cw_ssim) two things are timed on the same stored
files, interleaved metric by metric and alternating which goes first from one
round to the next:

- baseline: the plain loop a researcher would write, ``m =
  pyiqa.create_metric(name, device=...)`` built once, then ``m(dist_path,
  ref_path)`` per image (pyiqa reads both files itself on every call);
- app: what ``manage.py compute_scores`` does in-process: ``scoring_plan`` (one
  ``ScoreJob`` per reference) and ``reference_score`` for every job, with each
  batch size of ``--batches`` (the app's default is 8). That metric's
  ``MetricScore`` rows are deleted before each app run so that it computes and
  stores every score again.

Both metric objects are built and called once before the clock starts
(imports, first-call allocations). images/s comes from the median over
``--rounds``; the ratio is app images/s ÷ baseline images/s (above 1: the app
is faster). The stored values are compared with the plain loop's for the same
image: the largest relative difference and how many are bit-identical
(batched float32 reductions may differ in the last bits). A third table gives
this process's kernel CPU time and minor page faults per image (``getrusage``
around each timed pass): large temporaries that the allocator maps fresh on
every call show up there. Then the estimate
for PIPAL-scale studies (``--pipal-images``: 23,200 = the NTIRE training
split, 200 references x 116 images; 29,000 = all 250 references): seconds
per image summed over the metrics, times the image count, on this machine.

Part 2, Celery workers (the whole app path). Real ``celery -A pipal_site
worker --pool solo`` processes on a real Redis broker (database 14, away from
the test suite's 15), all on the same throwaway SQLite database (a file in a
temporary folder, WAL, as the settings set it up for SQLite, and as
``bench/generation.py`` does) and media folder. One job is one reference's
images, so the 4 demo references give too few jobs to share between two
workers: the study gets ``--copies`` copies of the demo folder (default 3: 12
references, 144 images, 12 jobs per metric). Scores are cached by content hash, so identical
copies would be scored once: copy k is flipped (k mod 4: none, left-right,
up-down, both) and, from k = 4 on, one pixel value is shifted by k // 4; the
script checks that every image's content is distinct. Each run deletes all
stored scores, then scores the study with ``--worker-metrics`` (default
ssim,fsim,vif). Runs: in-process (``reference_score`` in a loop, no broker),
1 worker, 2 workers, and 2 workers with ``--torch-threads`` intra-op threads
each (OMP_NUM_THREADS/MKL_NUM_THREADS; the other worker rows keep torch's
default, which is the number of cores, so two of them oversubscribe a 2-core
machine). Workers listen on the run's queue plus a queue of their own; before
the clock starts each is warmed up through its own queue (one image per
metric: importing pyiqa and building the metric cost a few seconds once per
process) and those scores are deleted. The clock runs from planning the first
metric (as the command does; the jobs go by ``send_task`` with
``ScoreJob.as_task_args()`` to the run's queue, by a client app of the
script's own) until the database holds every score. Printed: images/s (an
image = every worker metric on it), the ratios 2 workers ÷ 1 worker and
1 worker ÷ in-process, the CPU time the scoring processes used over the timed
window (``/proc/<pid>/stat``, all threads; CPU ÷ wall cannot exceed the core
count, and OpenMP threads spin while they wait, so oversubscription shows as
CPU without progress) and the largest relative difference from the in-process
values.

Everything is removed in a ``finally``: worker processes (SIGTERM, then
SIGKILL), the temporary folder (database, media, copies, logs) and the
queues' Redis keys. With the defaults it takes about 5.5 minutes on a 2-core
machine.

Run from the repository root:

    .venv/bin/python bench/compute_scores.py
    .venv/bin/python bench/compute_scores.py --skip-workers --batches 8,1,16 --rounds 3
    .venv/bin/python bench/compute_scores.py --skip-metrics --worker-metrics psnr,ssim --copies 8
    .venv/bin/python bench/compute_scores.py --help
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import benchlib
from benchlib import ROOT, median, ratio

from tests import factories

DEMO = ROOT / "fixtures" / "demo"
CLASSIC_FR = "psnr,ssim,ms_ssim,fsim,vif,gmsd,vsi,nlpd,cw_ssim"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Images/s of the app's scoring path against a plain pyiqa loop per metric, with the "
        "values compared and a PIPAL-scale estimate; scoring with one and two Celery workers on a real Redis broker.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="torch device for every run")
    parser.add_argument(
        "--weights-dir",
        type=Path,
        default=Path(os.environ.get("PIPAL_WEIGHTS_DIR") or ROOT / "var" / "weights"),
        help="PIPAL_WEIGHTS_DIR for this process and the workers (the classic metrics need no weights)",
    )
    part1 = parser.add_argument_group("part 1: app vs plain pyiqa, per metric")
    part1.add_argument("--metrics", default=CLASSIC_FR, help="comma-separated pyiqa metric names")
    part1.add_argument("--batches", default="8,1", help="comma-separated batch sizes for the app runs")
    part1.add_argument("--rounds", type=int, default=2, help="timed runs of each metric (median)")
    part1.add_argument("--pipal-images", default="23200,29000", help="image counts to extrapolate to")
    part1.add_argument("--skip-metrics", action="store_true", help="skip part 1")
    part2 = parser.add_argument_group("part 2: Celery workers")
    part2.add_argument("--worker-metrics", default="ssim,fsim,vif", help="metrics each run scores")
    part2.add_argument("--copies", type=int, default=3, help="copies of the 4 demo references (jobs per metric)")
    part2.add_argument("--worker-batch", type=int, default=8, help="batch size of the jobs")
    part2.add_argument("--worker-rounds", type=int, default=1, help="repeat the runs this often (median)")
    part2.add_argument(
        "--torch-threads", type=int, default=1, help="intra-op threads per worker in the extra 2-worker row; 0: no row"
    )
    part2.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="broker")
    part2.add_argument("--timeout", type=float, default=300.0, help="seconds one run may take before giving up")
    part2.add_argument("--skip-in-process", action="store_true", help="skip the in-process run")
    part2.add_argument("--skip-workers", action="store_true", help="skip part 2")
    return parser.parse_args(argv)


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def configure(tmp: Path, weights_dir: Path) -> str:
    """Environment for this process and the workers; django.setup() and migrate. Returns the database URL."""
    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "pipal_site.settings.local"
    os.environ["DATABASE_URL"] = url
    os.environ["PIPAL_VAR_DIR"] = str(tmp / "var")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["PIPAL_WEIGHTS_DIR"] = str(weights_dir)
    os.environ["DEBUG"] = "false"
    # This process never sends through the project's app (the in-process runs call the service).
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


def import_study(slug: str, folder: Path):
    """A fresh study with a PIPAL-layout folder imported, and its images (reference loaded), distinct by content."""

    from annotation.imports.folders import images_import, plan_folder_import
    from annotation.studies import study_create

    study = study_create(slug=slug)
    images_import(study=study, plan=plan_folder_import(study, folder))
    images = list(study.images.select_related("reference").order_by("reference_id", "id"))
    if len({(image.sha256, image.reference.sha256) for image in images}) != len(images):
        raise RuntimeError(f"{folder}: some images have the same content; the score cache would skip them")
    return study, images


def warm(metric, images, batch: int) -> None:
    """One untimed forward pass of a batch (imports, first-call allocations)."""
    from iqa import metrics

    chunk = images[:batch]
    reference = metrics.read_image(chunk[0].reference.file.path)[None] if metric.info.full_reference else None
    metric.score(metrics.stack([metrics.read_image(image.file.path) for image in chunk]), reference)


def relative_differences(values: dict, against: dict) -> tuple[float, int]:
    """(largest |a - b| / |b| over the keys of ``against``, how many are bit-identical)."""
    worst, identical = 0.0, 0
    for key, expected in against.items():
        got = values[key]
        identical += got == expected
        worst = max(worst, abs(got - expected) / abs(expected) if expected else abs(got - expected))
    return worst, identical


class Clock:
    """Wall time, kernel CPU time and minor page faults of this process over a ``with`` block."""

    def __enter__(self) -> Clock:
        self._usage = resource.getrusage(resource.RUSAGE_SELF)
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self._started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.system = usage.ru_stime - self._usage.ru_stime
        self.faults = usage.ru_minflt - self._usage.ru_minflt


def process_cpu(pid: int | str = "self") -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads, from /proc (NaN where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


# --- part 1: app vs plain pyiqa --------------------------------------------------------------


def part_metrics(args: argparse.Namespace) -> dict[str, float]:
    """Returns seconds per image, summed over the metrics, for the baseline and each app batch size."""
    import pyiqa
    import torch

    from iqa import scoring, scoring_job
    from iqa.metrics import parse_metric_list
    from iqa.models import MetricScore

    infos = parse_metric_list(args.metrics)
    project = [info.name for info in infos if info.source != "pyiqa"]
    if project:
        raise SystemExit(f"no plain pyiqa loop for the project's metrics: {', '.join(project)}")
    batches = int_list(args.batches)
    study, images = import_study("bench-scores", DEMO)
    count = len(images)
    references = len({image.reference_id for image in images})
    print(
        f"\n-- part 1: {count} demo images ({references} references, {images[0].width}x{images[0].height}), "
        f"device {args.device}, torch {torch.__version__} with {torch.get_num_threads()} intra-op threads, "
        f"pyiqa {pyiqa.__version__}; app batches {', '.join(map(str, batches))}; {args.rounds} rounds --"
    )
    paths = [(image, image.file.path, image.reference.file.path) for image in images]

    plain, loaded = {}, {}
    for info in infos:
        plain[info.name] = pyiqa.create_metric(info.pyiqa_name, device=args.device, **info.options)
        loaded[info.name] = scoring_job.metric_load(info.name, args.device)
        _, path, ref_path = paths[0]
        plain[info.name](path, ref_path) if info.full_reference else plain[info.name](path)
        for batch in batches:
            warm(loaded[info.name], images, batch)

    def key(info, image) -> tuple[str, str]:
        return image.sha256, image.reference.sha256 if info.full_reference else ""

    def run_baseline(info) -> tuple[Clock, dict]:
        metric, values = plain[info.name], {}
        with Clock() as clock:
            for image, path, ref_path in paths:
                values[key(info, image)] = float(metric(path, ref_path) if info.full_reference else metric(path))
        return clock, values

    def run_app(info, batch: int) -> tuple[Clock, dict]:
        MetricScore.objects.filter(metric=info.name).delete()
        with Clock() as clock:
            jobs = scoring.scoring_plan(study=study, metric=loaded[info.name], batch=batch)
            written = sum(scoring_job.reference_score(job=job) for job in jobs)
        if len(jobs) != references or written != count:
            raise RuntimeError(f"{info.name}: {len(jobs)} jobs wrote {written} scores for {count} images")
        rows = MetricScore.objects.filter(metric=info.name).values_list("image_sha256", "reference_sha256", "value")
        return clock, {(sha, ref): value for sha, ref, value in rows}

    steps = ["baseline", *batches]
    times: dict[tuple[str, object], list[float]] = {(i.name, s): [] for i in infos for s in steps}
    kernel: dict[tuple[str, object], list[tuple[float, int]]] = {key: [] for key in times}
    baseline_values: dict[str, dict] = {}
    repeatable = dict.fromkeys(plain, True)
    differences: dict[tuple[str, int], tuple[float, int]] = {}
    started = time.perf_counter()
    for round_ in range(args.rounds):
        for info in infos:
            order = steps if round_ % 2 == 0 else steps[::-1]
            app_values = {}
            for step in order:
                if step == "baseline":
                    clock, values = run_baseline(info)
                    if info.name in baseline_values and values != baseline_values[info.name]:
                        repeatable[info.name] = False
                    baseline_values[info.name] = values
                else:
                    clock, app_values[step] = run_app(info, step)
                times[(info.name, step)].append(clock.wall)
                kernel[(info.name, step)].append((clock.system, clock.faults))
            for batch, values in app_values.items():
                worst, identical = relative_differences(values, baseline_values[info.name])
                previous = differences.get((info.name, batch), (0.0, count))
                differences[(info.name, batch)] = (max(worst, previous[0]), min(identical, previous[1]))
            line = ", ".join(
                f"{'baseline' if s == 'baseline' else f'app batch {s}'} {times[(info.name, s)][-1]:.2f} s"
                for s in steps
            )
            print(f"  round {round_ + 1}: {info.name}: {line}")
    wall = time.perf_counter() - started
    MetricScore.objects.all().delete()

    per_image = {step: {i.name: median(times[(i.name, step)]) / count for i in infos} for step in steps}
    rows = []
    for info in infos:
        base = per_image["baseline"][info.name]
        row: list[object] = [info.name, base * 1e3, 1 / base]
        for batch in batches:
            app = per_image[batch][info.name]
            row += [1 / app, ratio(1 / app, 1 / base)]
        rows.append(row)
    totals = {step: sum(per_image[step].values()) for step in steps}
    row = [f"**all {len(infos)}** (one image, every metric)", totals["baseline"] * 1e3, 1 / totals["baseline"]]
    for batch in batches:
        row += [1 / totals[batch], ratio(totals["baseline"], totals[batch])]
    rows.append(row)
    headers = ["metric", "baseline ms per image", "baseline images/s"]
    for batch in batches:
        headers += [f"app batch {batch} images/s", f"batch {batch} ÷ baseline"]
    print(benchlib.table(headers, rows))

    rows = []
    for info in infos:
        row = [info.name]
        for batch in batches:
            worst, identical = differences[(info.name, batch)]
            row += [worst, f"{identical}/{count}"]
        rows.append(row + ["yes" if repeatable[info.name] else "no"])
    headers = ["metric"]
    for batch in batches:
        headers += [f"batch {batch}: max relative difference", f"batch {batch}: bit-identical"]
    print("\nstored values against the plain loop's, per image (worst over the rounds):")
    print(benchlib.table([*headers, "plain loop repeats itself exactly"], rows))

    rows = []
    for info in infos:
        row = [info.name]
        for step in steps:
            samples = kernel[(info.name, step)]
            row += [median([s for s, _ in samples]) / count * 1e3, f"{median([f for _, f in samples]) / count:,.0f}"]
        rows.append(row)
    headers = ["metric"]
    for step in steps:
        label = "baseline" if step == "baseline" else f"batch {step}"
        headers += [f"{label}: kernel CPU ms per image", f"{label}: minor page faults per image"]
    page = resource.getpagesize() // 1024
    print(f"\nkernel time and freshly mapped pages of this process (medians; a minor fault maps one {page} KiB page):")
    print(benchlib.table(headers, rows))
    print(f"timed {sum(len(v) for v in times.values())} passes over {count} images in {wall:.1f} s")

    sizes = int_list(args.pipal_images)
    rows = []
    for step in steps:
        label = "plain pyiqa loop" if step == "baseline" else f"app, batch {step}"
        rows.append([label, totals[step]] + [totals[step] * size / 3600 for size in sizes])
    print(f"\nestimate for PIPAL-scale studies on this machine (one process, {', '.join(i.name for i in infos)}):")
    print(benchlib.table(["run", "s per image"] + [f"hours for {size:,} images" for size in sizes], rows))
    return {str(step): totals[step] for step in steps}


# --- part 2: Celery workers ------------------------------------------------------------------


def copies_folder(root: Path, copies: int) -> Path:
    """The demo folder ``copies`` times, references renamed D0001 -> D0001c1 ...; copy k flipped and shifted."""
    import numpy as np
    from PIL import Image

    flips = [lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1, :], lambda a: a[::-1, ::-1]]
    root.mkdir(parents=True)
    shutil.copyfile(DEMO / "distortion_types.csv", root / "distortion_types.csv")
    for sub in ("Ref", "Dis"):
        (root / sub).mkdir()
        for path in sorted(p for p in (DEMO / sub).iterdir() if p.is_file() and not p.name.startswith(".")):
            reference, sep, rest = path.stem.partition("_")
            shutil.copyfile(path, root / sub / path.name)
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            for k in range(1, copies):
                copy = np.array(flips[k % 4](pixels))
                if k >= 4:
                    copy[0, 0, 0] = (int(copy[0, 0, 0]) + k // 4) % 256
                Image.fromarray(copy).save(root / sub / f"{reference}c{k}{sep}{rest}.png", format="PNG")
    return root


def score_rows(names: list[str]) -> dict[tuple[str, str, str], float]:
    from iqa.models import MetricScore

    rows = MetricScore.objects.filter(metric__in=names).values_list(
        "metric", "image_sha256", "reference_sha256", "value"
    )
    return {(metric, sha, ref): value for metric, sha, ref, value in rows}


def run_in_process(names: list[str], study, batch: int, device: str) -> tuple[float, float, float]:
    """(seconds, user CPU s, system CPU s) of scoring the study with ``reference_score`` in a loop."""
    from iqa import scoring, scoring_job

    user, system = process_cpu()
    started = time.perf_counter()
    for name in names:
        metric = scoring_job.metric_load(name, device)
        for job in scoring.scoring_plan(study=study, metric=metric, batch=batch):
            scoring_job.reference_score(job=job)
    elapsed = time.perf_counter() - started
    user_end, system_end = process_cpu()
    return elapsed, user_end - user, system_end - system


def wait_for(scores, expected: int, timeout: float, workers: list[factories.CeleryWorker], what: str) -> None:
    started = time.perf_counter()
    while scores.count() < expected:
        for worker in workers:
            worker.ready()  # raises if the process died
        if time.perf_counter() - started > timeout:
            raise RuntimeError(
                f"{what}: {scores.count()} of {expected} scores after {timeout:.0f} s:\n"
                + "\n".join(worker.tail() for worker in workers)
            )
        time.sleep(0.05)


def run_workers(
    args, names: list[str], study, images, count: int, threads: int, env, tmp: Path, state
) -> tuple[float, float, float]:
    """Start ``count`` workers, warm each through its own queue, then time scoring the study on a shared queue.
    Returns (seconds, user CPU s, system CPU s of the workers over those seconds)."""
    from celery import Celery

    from iqa import scoring, scoring_job
    from iqa.models import MetricScore

    queue = f"pipal-bench-scores-{uuid.uuid4().hex[:8]}"
    own = [f"{queue}-{i}" for i in range(count)]
    state["queues"] += [queue, *own]
    if threads:
        env = {**env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    scores = MetricScore.objects.filter(metric__in=names)
    workers = []
    client = Celery("pipal-bench-compute-scores", broker=args.redis_url)
    try:
        for i in range(count):
            log = tmp / f"{own[i]}.log"
            workers.append(factories.CeleryWorker(own[i], [queue, own[i]], env, log, log_level="info"))
            state["workers"].append(workers[-1])
        limit = time.monotonic() + 60
        while not all(worker.ready() for worker in workers):
            if time.monotonic() > limit:
                raise RuntimeError("workers not ready after 60 s:\n" + "\n".join(w.tail() for w in workers))
            time.sleep(0.05)
        # Warm-up: worker i scores image i (distinct content) with every metric, through its own queue.
        MetricScore.objects.all().delete()
        for i in range(count):
            image = images[i]
            for name in names:
                metric = scoring_job.metric_load(name, args.device)
                job = scoring_job.ScoreJob(
                    name, metric.version, args.device, args.worker_batch, image.reference_id, (image.id,)
                )
                client.send_task("iqa.tasks.compute_scores", args=job.as_task_args(), queue=own[i])
        wait_for(scores, count * len(names), args.timeout, workers, "warm-up")
        MetricScore.objects.all().delete()

        cpu = [process_cpu(worker.process.pid) for worker in workers]
        started = time.perf_counter()
        for name in names:
            metric = scoring_job.metric_load(name, args.device)
            for job in scoring.scoring_plan(study=study, metric=metric, batch=args.worker_batch):
                client.send_task("iqa.tasks.compute_scores", args=job.as_task_args(), queue=queue)
        wait_for(scores, len(images) * len(names), args.timeout, workers, f"{count} worker(s)")
        elapsed = time.perf_counter() - started
        cpu_end = [process_cpu(worker.process.pid) for worker in workers]
        user = sum(end[0] - start[0] for start, end in zip(cpu, cpu_end, strict=True))
        system = sum(end[1] - start[1] for start, end in zip(cpu, cpu_end, strict=True))
        return elapsed, user, system
    finally:
        for worker in workers:
            worker.stop()
        client.close()


def part_workers(args: argparse.Namespace, url: str, tmp: Path, state: dict, per_image: dict[str, float]) -> None:
    import redis
    import torch

    from iqa import scoring_job
    from iqa.metrics import parse_metric_list
    from iqa.models import MetricScore

    redis.Redis.from_url(args.redis_url).ping()
    names = [info.name for info in parse_metric_list(args.worker_metrics)]
    study, images = import_study("bench-scores-workers", copies_folder(tmp / "copies", args.copies))
    references = len({image.reference_id for image in images})
    for name in names:
        warm(scoring_job.metric_load(name, args.device), images, args.worker_batch)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pipal_site.settings.local",
        "DATABASE_URL": url,
        "MEDIA_ROOT": os.environ["MEDIA_ROOT"],
        "PIPAL_VAR_DIR": os.environ["PIPAL_VAR_DIR"],
        "PIPAL_WEIGHTS_DIR": os.environ["PIPAL_WEIGHTS_DIR"],
        "DEBUG": "false",
        "CELERY_BROKER_URL": args.redis_url,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("CELERY_RESULT_BACKEND", None)  # no result backend: nothing is stored per task
    default_threads = torch.get_num_threads()  # what a process started with this environment uses
    runs: list[tuple[str, int, int]] = [] if args.skip_in_process else [("in-process", 0, default_threads)]
    runs += [("1 worker", 1, default_threads), ("2 workers", 2, default_threads)]
    if args.torch_threads:
        runs.append((f"2 workers, {args.torch_threads} thread(s) each", 2, args.torch_threads))
    times: dict[str, list[float]] = {label: [] for label, _, _ in runs}
    cpu: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in runs}
    differences: dict[str, float] = {}
    reference_values: dict = {}
    print(
        f"\n-- part 2: {len(images)} images ({references} references: {args.copies} copies of the demo set), "
        f"metrics {','.join(names)}, batch {args.worker_batch}, {references * len(names)} jobs; "
        f"SQLite (WAL), broker {args.redis_url}; torch default {default_threads} intra-op threads --"
    )
    for round_ in range(args.worker_rounds):
        for label, count, threads in runs:
            MetricScore.objects.all().delete()
            if count == 0:
                elapsed, user, system = run_in_process(names, study, args.worker_batch, args.device)
            else:
                extra = threads if threads != default_threads else 0
                elapsed, user, system = run_workers(args, names, study, images, count, extra, env, tmp, state)
            cpu[label].append((user, system))
            values = score_rows(names)
            if len(values) != len(images) * len(names):
                raise RuntimeError(f"{label}: {len(values)} scores for {len(images)} images x {len(names)} metrics")
            if count == 0:
                reference_values = values
            elif reference_values:
                worst, _ = relative_differences(values, reference_values)
                differences[label] = max(worst, differences.get(label, 0.0))
            times[label].append(elapsed)
            print(
                f"  round {round_ + 1}: {label}: {len(images)} images x {len(names)} metrics in {elapsed:.2f} s "
                f"(CPU: user {user:.1f} s, system {system:.1f} s)"
            )
    MetricScore.objects.all().delete()

    rate = {label: len(images) / median(values) for label, values in times.items()}
    first = "in-process" if "in-process" in rate else None
    rows = []
    for label, count, threads in runs:
        user = median([u for u, _ in cpu[label]])
        system = median([s for _, s in cpu[label]])
        rows.append(
            [
                "in-process loop, no broker" if count == 0 else f"{label} (solo pool)",
                threads,
                len(times[label]),
                median(times[label]),
                rate[label],
                ratio(rate[label], rate["1 worker"]),
                ratio(rate[label], rate[first]) if first else float("nan"),
                f"{user:.1f} / {system:.1f}",
                ratio(user + system, median(times[label])),
                differences.get(label, 0.0 if count == 0 else float("nan")),
            ]
        )
    print(
        benchlib.table(
            [
                "run",
                "torch threads per process",
                "runs",
                "seconds (median)",
                "images/s",
                "÷ 1 worker",
                "÷ in-process",
                "CPU s user / system",
                "CPU ÷ wall",
                "max relative difference from in-process",
            ],
            rows,
        )
    )
    best = max((label for label, count, _ in runs if count == 2), key=lambda label: rate[label])
    speed_up = ratio(rate[best], rate["1 worker"])
    print(
        f"speed-up 1 -> 2 workers: {ratio(rate['2 workers'], rate['1 worker']):.2f}x with torch's default threads",
        end="",
    )
    if args.torch_threads:
        label = runs[-1][0]
        print(f", {ratio(rate[label], rate['1 worker']):.2f}x with {args.torch_threads} thread(s) each", end="")
    print(f" on {os.cpu_count()} CPU(s)")
    app = per_image.get(str(args.worker_batch))
    if app and speed_up <= 1:
        print("two workers were not faster than one here: no 2-worker estimate for PIPAL-scale studies")
    elif app:
        sizes = int_list(args.pipal_images)
        hours = ", ".join(f"{app * size / 3600 / speed_up:.2f} h for {size:,}" for size in sizes)
        print(
            f"if part 1's app figure at batch {args.worker_batch} scaled like these metrics do with "
            f"the best 2-worker row ({best}, {speed_up:.2f}x one worker): {hours} images"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.copies < 1 or args.rounds < 1 or args.worker_rounds < 1 or min(int_list(args.batches) or [0]) < 1:
        raise SystemExit("--copies, --rounds, --worker-rounds and every --batches value must be at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="pipal-bench-scores-"))
    state: dict = {"workers": [], "queues": []}
    started = time.perf_counter()
    try:
        benchlib.header("compute_scores: the app's scoring path against plain pyiqa, and Celery workers")
        url = configure(tmp, args.weights_dir)
        per_image = {} if args.skip_metrics else part_metrics(args)
        if not args.skip_workers:
            part_workers(args, url, tmp, state, per_image)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\nwhole run {time.perf_counter() - started:.0f} s; load average (1 min) at the end {load:.2f}")
        return 0
    finally:
        try:
            benchlib.stop_workers(state, args.redis_url)
        finally:
            try:
                from django.db import connections

                connections.close_all()
            except Exception:  # Django may not be set up yet
                pass
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
