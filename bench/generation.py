"""Distortion generation: images/s per generator family, and one vs two Celery workers.

Part 1, per family (pure compute, no database). For every registered family
(``sr_models.distortions.family_names()``) the script takes the family's first
catalogue type and that type's middle level, and times one job's compute on a
288x288 demo reference (``fixtures/demo/Ref/D0001.png``, bytes held in memory):
decode the PNG, ``distortions.apply(family, pixels, params, seed)``, encode the
output as PNG with the app's own encoder (``annotation.generation._png``).
Baseline, interleaved with the families in the same run: decode the reference
and encode it unchanged as PNG, the part that every job pays whatever the
family. Each family runs until it has ``--family-seconds`` of samples (at least
``--min-repeats``); images/s comes from the median time, and the ratio is
family images/s ÷ baseline images/s (1.0 would be a free generator); "job −
baseline" estimates the generator's own time (it can be negative: a smooth or
blocky output encodes faster than the reference).

Families that need a trained model or weights: the SR networks run when their
weights are installed (else they are skipped, with the reason). The example-based
SR family and the deep denoisers get stand-ins made here, in a temporary weights
folder (the configured one is linked into it, never written to): an A+ x3
model with the published sizes (1024 atoms, 2048 samples per anchor) after one
K-SVD iteration on the demo references, and a colour blind DnCNN and a DnCNN-3
of the published sizes after two training steps, written as the platform's own.
Their speed is that of the real ones (same sizes, same arithmetic); their
outputs are not, and nothing here reports quality (``--no-stand-ins`` skips
them).

Part 2, Celery workers (the whole app path). A real Redis broker and real
``celery -A pipal_site worker --pool solo`` processes, each on the same
throwaway SQLite database (a file in a temporary folder, WAL, as in
production's defaults) and media folder. For each run a fresh study gets
``--references`` demo references (288x288, imported with
``references_import``) and the catalogue ``--types``; its plan
(``generation_plan``) is sent in ``--chunk``-job tasks to the script's own
queue, by a Celery client app of its own (``send_task``, as
``generation_enqueue`` chunks them). The clock runs from the first send to the
moment the database holds the last image; workers are started and ready (their
"ready." log line) before it starts. Runs: in-process (``distortion_generate``
called in a loop, no broker: the reference the worker runs are compared with),
one worker, two workers; ``--rounds`` repeats the sequence. Printed: images/s
and the ratios 2 workers ÷ 1 worker and 1 worker ÷ in-process.

Everything is removed in a ``finally``: worker processes (SIGTERM, then
SIGKILL), the temporary folder (database, media, logs) and the queue's Redis
keys. The broker is ``--redis-url`` (database 14 by default, away from the test
suite's 15). Takes about 1.5 minutes with the defaults on a 2-core machine.

Run from the repository root:

    .venv/bin/python bench/generation.py
    .venv/bin/python bench/generation.py --skip-workers --family-seconds 3
    .venv/bin/python bench/generation.py --skip-families --references 4 --types 01,08,17,26,28 --rounds 2
    .venv/bin/python bench/generation.py --help
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import benchlib
from benchlib import ROOT, median, ratio

from tests import factories

DEMO_REFS = ROOT / "fixtures" / "demo" / "Ref"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Images/s of every distortion family against a decode+PNG-encode baseline, "
        "and generation throughput with one and two Celery workers on a real Redis broker.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    part1 = parser.add_argument_group("part 1: families")
    part1.add_argument("--reference", type=Path, default=DEMO_REFS / "D0001.png", help="image the families distort")
    part1.add_argument("--families", default="", help="comma-separated family names (default: all registered)")
    part1.add_argument("--family-seconds", type=float, default=1.0, help="timed seconds per family (and baseline)")
    part1.add_argument("--min-repeats", type=int, default=2, help="at least this many timed jobs per family")
    part1.add_argument("--max-repeats", type=int, default=200, help="at most this many timed jobs per family")
    part1.add_argument("--skip-families", action="store_true", help="skip part 1")
    part1.add_argument(
        "--no-stand-ins",
        action="store_true",
        help="do not make the example-based SR models and deep denoisers in a temporary folder (their families skip)",
    )
    part2 = parser.add_argument_group("part 2: Celery workers")
    part2.add_argument("--references", type=int, default=4, help=f"demo references per study (1..{count_refs()})")
    part2.add_argument("--types", default="01,08,17,26", help="catalogue type ids to generate")
    part2.add_argument("--chunk", type=int, default=4, help="jobs per task (generation_enqueue's default)")
    part2.add_argument("--rounds", type=int, default=3, help="repeat in-process / 1 worker / 2 workers this often")
    part2.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="broker")
    part2.add_argument("--timeout", type=float, default=120.0, help="seconds one run may take before giving up")
    part2.add_argument("--skip-in-process", action="store_true", help="skip the in-process run")
    part2.add_argument("--skip-workers", action="store_true", help="skip part 2")
    return parser.parse_args(argv)


def count_refs() -> int:
    return len(list(DEMO_REFS.glob("*.png")))


def configure(tmp: Path) -> str:
    """Environment for this process and the workers; django.setup() and migrate. Returns the database URL."""
    url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "pipal_site.settings.local"
    os.environ["DATABASE_URL"] = url
    os.environ["PIPAL_VAR_DIR"] = str(tmp / "var")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["DEBUG"] = "false"
    # This process never sends through the project's app; keep it in-process.
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ.pop("CELERY_RESULT_BACKEND", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


# --- part 1: families ---------------------------------------------------------------


def family_jobs(names: list[str]) -> list[tuple[str, str, dict]]:
    """(family, "type TT level LL", params) for each family: its first catalogue type, middle level.
    A family whose level cannot run here (weights or a trained model missing) is skipped, with why."""
    from sr_models import distortions

    by_type: dict[str, list] = {}
    for entry in distortions.load_catalogue():
        by_type.setdefault(entry.type_id, []).append(entry)
    jobs = []
    for name in names:
        types = [rows for rows in by_type.values() if rows[0].family == name]
        if not types:
            print(f"  (family {name} has no catalogue row: skipped)")
            continue
        rows = types[0]
        entry = rows[len(rows) // 2]
        params = dict(entry.params)
        if name in STAND_IN_NETWORKS and entry.params["network"] in STAND_IN_NETWORKS[name]:
            params["network"] = STAND_IN_NETWORKS[name][entry.params["network"]]
        try:
            distortions.get_family(name).check_ready(params)
        except distortions.DistortionError as error:
            print(f"  (family {name} skipped: {str(error)[:160]})")
            continue
        jobs.append((name, f"{entry.type_id} {entry.name}, level {entry.level}", params))
    return jobs


# The catalogue's official denoisers and the stand-ins of the same sizes trained here (a few steps).
STAND_IN_NETWORKS = {
    "deep_denoising": {"dncnn_color_blind": "bench_dncnn_color"},
    "deep_jpeg_removal": {"dncnn3": "bench_dncnn3"},
}


def install_stand_ins(folder: Path) -> None:
    """The example-based SR models and deep denoisers of the catalogue's middle levels, at the published
    sizes but barely trained, in ``folder``, which also links every entry of the configured weights folder."""
    import numpy as np
    from PIL import Image

    from sr_models import denoisers, example_sr, runtime
    from sr_models.denoisers.training import DenoiserTrainConfig, train_denoiser

    configured = runtime.current().weights_dir
    folder.mkdir(parents=True)
    if configured.is_dir():
        for entry in configured.iterdir():
            (folder / entry.name).symlink_to(entry.resolve())
    images = [np.asarray(Image.open(path).convert("RGB")) for path in sorted(DEMO_REFS.glob("*.png"))]
    started = time.perf_counter()
    # The family's first catalogue type at its middle level: A+ x3 (type 51 level 02).
    config = example_sr.ExampleSRConfig(method="aplus", scale=3, ksvd_iterations=1, max_patches=20_000)
    (folder / example_sr.MODELS_FOLDER).mkdir(exist_ok=True)
    model = example_sr.train_model(images, config)
    example_sr.save_model(model, example_sr.model_path(folder, "aplus_x3"), {"label": "bench stand-in"})
    for name, channels, task in (("bench_dncnn_color", 3, "gaussian"), ("bench_dncnn3", 1, "jpeg")):
        config = DenoiserTrainConfig(arch="dncnn", channels=channels, task=task, iterations=2, batch=2, patch=40)
        result = train_denoiser(images, config)
        denoisers.save_trained(
            denoisers.trained_path(name, folder), result.state_dict, result.options, {"label": "bench stand-in"}
        )
    runtime.configure(weights_dir=folder)
    print(f"stand-ins (published sizes, barely trained: for timing only) made in {time.perf_counter() - started:.0f} s")


def part_families(args: argparse.Namespace) -> None:
    import numpy as np
    from PIL import Image

    from annotation.imaging import png_bytes as png_encode  # the app's encoder: same settings, same cost
    from sr_models import distortions

    names = [name for name in args.families.split(",") if name] or distortions.family_names()
    jobs = family_jobs(names)
    data = args.reference.read_bytes()

    def decode() -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))

    width, height = decode().shape[1], decode().shape[0]
    print(f"\n-- part 1: one job's compute per family on {args.reference.name} ({width}x{height}) --")

    def baseline(seed: int) -> None:
        png_encode(decode())

    def runner(name: str, params: dict) -> Callable[[int], None]:
        def run(seed: int) -> None:
            png_encode(distortions.apply(name, decode(), params, seed))

        return run

    runs: dict[str, Callable[[int], None]] = {"baseline": baseline}
    runs |= {name: runner(name, params) for name, _, params in jobs}
    for run in runs.values():  # warm-up: imports, OpenCV/FFT plans, first-call caches
        run(0)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    spent = dict.fromkeys(runs, 0.0)

    def wants_more(name: str) -> bool:
        count = len(samples[name])
        return count < args.min_repeats or (count < args.max_repeats and spent[name] < args.family_seconds)

    started = time.perf_counter()
    # Interleaved rounds: machine noise hits the baseline and every family alike.
    while any(wants_more(name) for name in runs):
        for name, run in runs.items():
            if wants_more(name):
                t0 = time.perf_counter()
                run(len(samples[name]) + 1)
                elapsed = time.perf_counter() - t0
                samples[name].append(elapsed)
                spent[name] += elapsed
    wall = time.perf_counter() - started

    base = median(samples["baseline"])
    rows = [["baseline: decode + PNG encode", "-", len(samples["baseline"]), base * 1e3, 1 / base, 1.0, 0.0]]
    order = sorted(jobs, key=lambda job: median(samples[job[0]]))
    for name, used, _ in order:
        value = median(samples[name])
        speed = ratio(1 / value, 1 / base)
        rows.append([name, used, len(samples[name]), value * 1e3, 1 / value, speed, (value - base) * 1e3])
    print(
        benchlib.table(
            [
                "family",
                "catalogue type, level",
                "jobs",
                "ms per image",
                "images/s",
                "÷ baseline images/s",
                "job − baseline, ms",
            ],
            rows,
        )
    )
    print(f"timed {sum(len(v) for v in samples.values())} jobs in {wall:.1f} s")


# --- part 2: Celery workers --------------------------------------------------------------


def make_study(slug: str, references: int, types: list[str]):

    from annotation.generation import catalogue_install, generation_plan
    from annotation.imports.folders import plan_reference_patches, references_import
    from annotation.studies import study_create

    study = study_create(slug=slug)
    files = sorted(DEMO_REFS.glob("*.png"))[:references]
    references_import(study=study, patches=plan_reference_patches(study, files, crop=0, select="center"))
    catalogue_install(study=study, type_ids=types)
    return study, generation_plan(study=study)


def run_in_process(study, plan) -> float:
    from annotation.generation_job import distortion_generate

    started = time.perf_counter()
    for reference_id, type_id, level in plan:
        distortion_generate(reference_id=reference_id, distortion_type_id=type_id, level=level)
    return time.perf_counter() - started


def run_workers(args, study, plan, count: int, env: dict[str, str], tmp: Path, state: dict) -> float:
    """Start ``count`` workers on a fresh queue, wait until ready, send the plan, time until the last image."""
    from celery import Celery

    from annotation.models import DistortedImage

    queue = f"pipal-bench-gen-{uuid.uuid4().hex[:8]}"
    state["queues"].append(queue)
    workers = []
    client = Celery("pipal-bench-generation", broker=args.redis_url)
    try:
        for i in range(count):
            log = tmp / f"{queue}-{i}.log"
            workers.append(factories.CeleryWorker(f"{queue}-{i}", [queue], env, log, log_level="info"))
            state["workers"].append(workers[-1])
        limit = time.monotonic() + 60
        while not all(worker.ready() for worker in workers):
            if time.monotonic() > limit:
                raise RuntimeError("workers not ready after 60 s:\n" + "\n".join(w.tail() for w in workers))
            time.sleep(0.05)
        chunks = [[list(job) for job in plan[i : i + args.chunk]] for i in range(0, len(plan), args.chunk)]
        images = DistortedImage.objects.filter(study=study)
        started = time.perf_counter()
        for chunk in chunks:
            client.send_task("annotation.tasks.generate_distortions", args=[chunk], queue=queue)
        while images.count() < len(plan):
            if time.perf_counter() - started > args.timeout:
                raise RuntimeError(
                    f"{images.count()} of {len(plan)} images after {args.timeout} s:\n"
                    + "\n".join(w.tail() for w in workers)
                )
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        for worker in workers:
            worker.stop()
        client.close()


def part_workers(args: argparse.Namespace, url: str, tmp: Path, state: dict) -> None:
    import redis

    from annotation.models import DistortedImage

    redis.Redis.from_url(args.redis_url).ping()
    types = [code for code in args.types.split(",") if code]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pipal_site.settings.local",
        "DATABASE_URL": url,
        "MEDIA_ROOT": os.environ["MEDIA_ROOT"],
        "PIPAL_VAR_DIR": os.environ["PIPAL_VAR_DIR"],
        "DEBUG": "false",
        "CELERY_BROKER_URL": args.redis_url,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("CELERY_RESULT_BACKEND", None)  # no result backend: nothing is stored per task
    kinds = ([] if args.skip_in_process else [0]) + [1, 2]
    times: dict[int, list[float]] = {kind: [] for kind in kinds}
    planned = 0
    print(
        f"\n-- part 2: {args.references} references x types {','.join(types)}, "
        f"{args.chunk} jobs per task, SQLite (WAL), broker {args.redis_url} --"
    )
    for round_ in range(args.rounds):
        for kind in kinds:
            study, plan = make_study(f"bench-{kind}w-{round_}", args.references, types)
            planned = len(plan)
            if kind == 0:
                elapsed = run_in_process(study, plan)
            else:
                elapsed = run_workers(args, study, plan, kind, env, tmp, state)
            made = DistortedImage.objects.filter(study=study).count()
            if made != planned:
                raise RuntimeError(f"{made} images for a plan of {planned}")
            times[kind].append(elapsed)
            label = "in-process" if kind == 0 else f"{kind} worker(s)"
            print(f"  round {round_ + 1}: {label}: {planned} images in {elapsed:.2f} s")

    rate = {kind: planned / median(values) for kind, values in times.items()}
    rows = []
    for kind in kinds:
        label = "in-process loop, no broker" if kind == 0 else f"{kind} worker{'s' if kind > 1 else ''} (solo pool)"
        rows.append(
            [
                label,
                planned,
                len(times[kind]),
                median(times[kind]),
                rate[kind],
                ratio(rate[kind], rate[1]),
                ratio(rate[kind], rate[0]) if 0 in rate else float("nan"),
            ]
        )
    print(
        benchlib.table(
            ["run", "images", "runs", "seconds (median)", "images/s", "÷ 1 worker", "÷ in-process"],
            rows,
        )
    )
    print(f"speed-up 1 -> 2 workers: {ratio(rate[2], rate[1]):.2f}x on {os.cpu_count()} CPU(s)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not 1 <= args.references <= count_refs():
        raise SystemExit(f"--references must be 1..{count_refs()} (the demo references)")
    tmp = Path(tempfile.mkdtemp(prefix="pipal-bench-generation-"))
    state: dict = {"workers": [], "queues": []}
    started = time.perf_counter()
    try:
        benchlib.header("generation: distortion families and Celery workers")
        url = configure(tmp)
        if not args.skip_families:
            if not args.no_stand_ins:
                install_stand_ins(tmp / "weights")
            part_families(args)
        if not args.skip_workers:
            part_workers(args, url, tmp, state)
        print(f"\nwhole run {time.perf_counter() - started:.0f} s")
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
