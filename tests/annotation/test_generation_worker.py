"""Distortion generation survives killed worker children and a worker restart.

A real `celery worker` (prefork, two children, its own queue) on a real Redis
broker generates a study's images from the catalogue. While it runs, its
children are SIGKILLed several times (``reject_on_worker_lost`` puts their
tasks back on the queue at once; the main process forks new children); then the
worker is stopped with SIGTERM (a warm shutdown: running tasks finish,
reserved ones go back to the queue) and a fresh worker finishes the plan.
Afterwards every planned (reference, type, level) slot has exactly one image,
whose stored file is intact. Only children are killed, never the main process:
an unacked message of a killed main process would come back only after Redis'
``visibility_timeout`` (one hour), which our settings do not lower.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.core.files.storage import default_storage
from django.db.models import Count
from PIL import Image

from annotation.generation import catalogue_install, generation_plan, generation_progress
from annotation.imports.folders import plan_reference_patches, references_import
from annotation.models import DistortedImage, ReferenceImage
from annotation.studies import study_create
from tests.factories import ROOT, CeleryWorker, database_url, log_tail

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services, pytest.mark.slow]
TASK = "annotation.tasks.generate_distortions"
# Moderately slow families (non-local means ~0.15 s, bilateral, Lanczos) on
# 288x288 references: 4 references x 15 levels = 60 jobs, 2 per task, so a kill
# lands inside a running task. BM3D (seconds per image) is left out.
TYPES = ("08", "18", "26", "28")
CHUNK = 2
KILL_AT = (0.10, 0.22, 0.34)  # share of the plan made before each kill of the children
STOP_AT = 0.45  # share made before the first worker is stopped
STEP_TIMEOUT = 30.0  # seconds any one wait may take
TOTAL_TIMEOUT = 90.0  # seconds for the whole run, from the first enqueue


def kill_new_children(worker: CeleryWorker, already: list[int]) -> list[int]:
    """SIGKILL the pool children not killed before (a killed child may linger a moment on a busy machine)."""
    killed = []
    for pid in set(worker.children()) - set(already):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def wait_until(check: Callable[[], bool], what: str, deadline: float, logs: list[Path]) -> float:
    """Poll ``check`` until true; fail naming ``what`` after STEP_TIMEOUT or at the run's deadline."""
    started = time.monotonic()
    limit = min(started + STEP_TIMEOUT, deadline)
    while not check():
        if time.monotonic() > limit:
            tails = "\n".join(f"--- {log.name}\n{log_tail(log)}" for log in logs)
            raise AssertionError(f"timed out after {time.monotonic() - started:.1f} s waiting for {what}\n{tails}")
        time.sleep(0.05)
    return time.monotonic() - started


def made(study) -> int:
    return DistortedImage.objects.filter(study=study).count()


def test_generation_survives_killed_children_and_a_restart(redis_url, media_root, tmp_path):
    study = study_create(slug="gen-worker")
    files = sorted((ROOT / "fixtures" / "demo" / "Ref").glob("*.png"))
    references_import(study=study, patches=plan_reference_patches(study, files, crop=0, select="center"))
    catalogue_install(study=study, type_ids=TYPES)
    plan = generation_plan(study=study)
    assert len(plan) == len(files) * 15 == generation_progress(study)[1]
    total = len(plan)

    queue = f"pipal-test-gen-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pipal_site.settings.local",
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": redis_url,
        "CELERY_RESULT_BACKEND": redis_url,
        "MEDIA_ROOT": str(media_root),
        "PIPAL_VAR_DIR": str(tmp_path / "var"),
        "DEBUG": "false",
    }
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers: list[CeleryWorker] = []
    client = Celery("pipal-test-generation", broker=redis_url, backend=redis_url)
    results = []
    try:
        first = CeleryWorker(f"gen-a-{queue}", [queue], env, logs[0], pool="prefork", concurrency=2)
        workers.append(first)
        started = time.monotonic()
        deadline = started + TOTAL_TIMEOUT
        for i in range(0, total, CHUNK):
            chunk = [list(job) for job in plan[i : i + CHUNK]]
            results.append(client.send_task(TASK, args=[chunk], queue=queue))

        killed: list[int] = []
        for share in KILL_AT:
            wait_until(lambda s=share: made(study) >= s * total, f"{share:.0%} of {total} images", deadline, logs)
            done = set(killed)
            wait_until(lambda d=done: len(set(first.children()) - d) == 2, "two new pool children", deadline, logs)
            killed += kill_new_children(first, killed)
        wait_until(lambda: made(study) >= STOP_AT * total, f"{STOP_AT:.0%} of {total} images", deadline, logs)
        first.stop()
        after_stop = made(study)
        assert after_stop < total, "the plan finished before the restart; make the jobs slower or STOP_AT lower"

        second = CeleryWorker(f"gen-b-{queue}", [queue], env, logs[1], pool="prefork", concurrency=2)
        workers.append(second)
        wait_until(lambda: not generation_plan(study=study), f"all {total} images", deadline, logs)
        elapsed = time.monotonic() - started
        second.stop()
    finally:
        for worker in workers:
            worker.kill()
        try:
            for result in results:
                result.forget()
            # The queue and kombu's two binding keys for it.
            redis.Redis.from_url(redis_url).delete(
                queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
            )
        finally:
            client.close()

    # The kills hit running tasks (the main process reports each lost one) and
    # each was put back on the queue (otherwise the plan would not be empty).
    lost = logs[0].read_text(errors="replace").count("Task handler raised error: WorkerLostError")
    assert len(killed) >= 2 * len(KILL_AT), killed
    assert lost >= 1, f"no kill landed in a running task:\n{log_tail(logs[0])}"
    print(
        f"{total} images in {elapsed:.1f} s; {len(killed)} children killed, {lost} running tasks lost "
        f"and requeued; {after_stop} made before the restart"
    )

    # Exactly one image per planned slot, and nothing else.
    slots = (
        DistortedImage.objects.filter(study=study)
        .values("reference_id", "distortion_type_id", "level")
        .annotate(n=Count("id"))
    )
    counts = {(row["reference_id"], row["distortion_type_id"], row["level"]): row["n"] for row in slots}
    assert set(counts) == set(plan)
    assert set(counts.values()) == {1}
    assert DistortedImage.objects.filter(study=study).count() == total
    assert generation_plan(study=study) == []
    assert generation_progress(study) == (total, total)

    # Each stored file is whole: it exists, hashes to the recorded sha256 and
    # decodes to the reference's size.
    sizes = {ref.id: (ref.width, ref.height) for ref in ReferenceImage.objects.filter(study=study)}
    for image in DistortedImage.objects.filter(study=study):
        assert default_storage.exists(image.file.name), image.name
        with default_storage.open(image.file.name, "rb") as handle:
            data = handle.read()
        assert hashlib.sha256(data).hexdigest() == image.sha256, image.name
        with Image.open(io.BytesIO(data)) as decoded:
            decoded.load()
            assert decoded.size == sizes[image.reference_id] == (image.width, image.height), image.name
