"""Owner and admin pages at PIPAL scale, against the same pages on a study 100x smaller.

What it does, in order:

1. creates a fresh PostgreSQL database (``--db``, default pipal_bench_pages; dropped and
   recreated) and migrates it;
2. builds two studies in it with SQL: *pipal* — 250 references x 116 images (29,000), 1.13M
   judgments (39 per image), 50 raters with QC counters and a few failed gold pairs, one
   Bradley–Terry fit, scores for 5 metrics and a benchmark report — and *small*, 100x
   smaller (25 references x 12 images, 11,300 judgments, the same 50 raters' worth). The
   judgments are random pairs within a reference with random winners: the pages' cost
   depends on the number of rows, not on their values;
3. signs in as staff through Django's test client (in this process, warm: each page is
   requested twice before timing) and times each page ``--repeat`` times per study:
   the dashboard, the admin study list, progress page, MOS CSV, rater list, judgment log,
   image list and issued pairs, the owners' rater list and its CSV, the benchmark report,
   and the home page;
4. prints p50/p95 per page and study, the ratio PIPAL / small, and the goals (each page
   <= 1 s p95 at PIPAL scale and <= 1.5x its small-study time);
5. drops the database (``finally``).

Run from the repository root (PostgreSQL at 127.0.0.1:5432, user postgres, trust auth):

    .venv/bin/python bench/pages.py
    .venv/bin/python bench/pages.py --repeat 20

Exit status 1 when a page answered other than 200.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import percentile, ratio

# Exports whose rows are the study's images: their time grows with the images (29,000 rows vs 300),
# so only the 1 s goal applies to them, not the ratio.
GROWS_WITH_IMAGES = {"admin: MOS CSV"}
PAGES = (
    ("dashboard", "/study/{slug}/dashboard/"),
    ("admin: study list", "/admin/annotation/study/"),
    ("admin: progress page", "/admin/annotation/study/{pk}/progress/"),
    ("admin: MOS CSV", "/admin/annotation/study/{pk}/mos.csv"),
    ("admin: rater list", "/admin/annotation/rater/?study__id__exact={pk}"),
    ("admin: judgment log, first page", "/admin/annotation/judgment/?study__id__exact={pk}"),
    ("admin: image list, first page", "/admin/annotation/distortedimage/?study__id__exact={pk}"),
    ("admin: issued pairs, first page", "/admin/annotation/assignment/?study__id__exact={pk}"),
    ("owners: raters and payments", "/study/{slug}/raters/"),
    ("owners: raters CSV", "/study/{slug}/raters.csv"),
    ("benchmark report", "/study/{slug}/benchmark/"),
    ("home page", "/"),
)
METRICS = ("psnr", "ssim", "lpips", "niqe", "dists")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time the owner/admin pages on a PIPAL-sized study against a study 100x smaller.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--references", type=int, default=250)
    parser.add_argument("--per-reference", type=int, default=116)
    parser.add_argument("--judgments-per-image", type=float, default=39.0, help="PIPAL: 1.13M / 29k = 39")
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--scale", type=int, default=100, help="the small study is this many times smaller")
    parser.add_argument("--repeat", type=int, default=10, help="timed requests per page and study")
    parser.add_argument("--db", default="pipal_bench_pages")
    parser.add_argument("--pg-admin-url", default=benchlib.PG_ADMIN_URL)
    return parser.parse_args(argv)


def build_study(slug: str, references: int, per_reference: int, judgments: int, raters: int, seed: int):
    """A study with every table filled as a running PIPAL-style study has it, in SQL."""
    import random

    from django.db import connection
    from django.utils import timezone

    from annotation.analysis.replay import raters_recount
    from annotation.models import (
        BradleyTerryFit,
        ControlTrial,
        DistortedImage,
        DistortionType,
        Rater,
        ReferenceImage,
        Study,
    )  # fmt: skip
    from annotation.studies import study_create

    rng = random.Random(seed)
    study = study_create(slug=slug, name=f"{slug} ({references * per_reference} images)")
    Study.objects.filter(pk=study.pk).update(trials_per_rater=10**6)
    refs = ReferenceImage.objects.bulk_create(
        ReferenceImage(study=study, name=f"A{r:04d}", file=f"studies/{slug}/ref{r}.png", original_filename="x.png",
                       sha256=f"{seed:02d}{r:062d}", width=288, height=288, display=f"studies/{slug}/d{r}.png")
        for r in range(references)
    )  # fmt: skip
    categories = ("traditional", "super_resolution", "denoising", "mixture")
    types = DistortionType.objects.bulk_create(
        DistortionType(study=study, code=f"{t:02d}", name=f"type {t}", category=categories[t % 4],
                       subtype=f"sub{t % 7}")
        for t in range(40)
    )  # fmt: skip
    images = []
    for ref in refs:
        for k in range(per_reference):
            images.append(
                DistortedImage(
                    study=study, reference=ref, distortion_type=types[k % 40], level=k // 40 + 1,
                    name=f"{ref.name}_{k % 40:02d}_{k // 40 + 1:02d}.png", file=f"studies/{slug}/{ref.pk}-{k}.png",
                    sha256=f"{seed:02d}{ref.pk:030d}{k:032d}", width=288, height=288, elo=1400.0, mos=1400.0,
                    recent_elo=[], display=f"studies/{slug}/s{ref.pk}-{k}.png", shuffle_key=rng.random(),
                )
            )  # fmt: skip
    DistortedImage.objects.bulk_create(images, batch_size=5000)
    first_image = DistortedImage.objects.filter(study=study).order_by("id").values_list("id", flat=True).first()
    people = Rater.objects.bulk_create(
        Rater(study=study, external_id=f"{slug}-rater-{i:03d}", token_hash=f"{seed:02d}{i:062d}",
              consented_at=timezone.now(), completion_code=f"{seed:02d}{i:010d}")
        for i in range(raters)
    )  # fmt: skip
    first_rater = min(rater.pk for rater in people)
    with connection.cursor() as cursor:
        # Random pairs within a reference (image ids are consecutive per reference), over ten days.
        cursor.execute(
            "INSERT INTO annotation_judgment (study_id, rater_id, image_a_id, image_b_id, winner_id, tie, "
            "elo_a_before, elo_a_after, elo_b_before, elo_b_after, response_ms, source, created_at) "
            "SELECT %s, %s + (i %% %s), a, b, CASE WHEN random() < 0.5 THEN a ELSE b END, false, "
            "1400 + 200 * (random() - 0.5), 1400, 1400 + 200 * (random() - 0.5), 1400, "
            "(300 + random() * 3000)::int, 'live', now() - (random() * interval '10 days') "
            "FROM (SELECT i, %s + r * %s + ka AS a, %s + r * %s + (ka + 1 + kb) %% %s AS b FROM ("
            "SELECT i, i %% %s AS r, floor(random() * %s)::int AS ka, floor(random() * (%s - 1))::int AS kb "
            "FROM generate_series(1, %s) AS i) s) p",
            [study.pk, first_rater, raters, first_image, per_reference, first_image, per_reference, per_reference,
             references, per_reference, per_reference, judgments],
        )  # fmt: skip
        cursor.execute(
            "UPDATE annotation_distortedimage d SET judgment_count = c.n, elo = 1200 + random() * 400, "
            "mos = 1200 + random() * 400, mos_bt = 1200 + random() * 400, bt_ci_low = 1100, bt_ci_high = 1700 "
            "FROM (SELECT image, count(*) AS n FROM (SELECT image_a_id AS image FROM annotation_judgment "
            "WHERE study_id = %s UNION ALL SELECT image_b_id FROM annotation_judgment WHERE study_id = %s) j "
            "GROUP BY image) c WHERE d.id = c.image",
            [study.pk, study.pk],
        )
        for index, metric in enumerate(METRICS):
            cursor.execute(
                "INSERT INTO iqa_metricscore (metric, version, image_sha256, reference_sha256, value, device, "
                "computed_at) SELECT %s, 'bench', d.sha256, r.sha256, random(), 'cpu', now() "
                "FROM annotation_distortedimage d JOIN annotation_referenceimage r ON r.id = d.reference_id "
                "WHERE d.study_id = %s",
                [metric, study.pk],
            )
            del index
    # Gold pairs: each rater met a few, and a few failed one (QC flags and exclusions).
    now = timezone.now()
    controls = []
    for number, rater in enumerate(people):
        for g in range(3):
            failed = number % 10 == 0 and g == 2
            controls.append(ControlTrial(
                study=study, rater=rater, kind="gold", token=f"{slug}-{rater.pk}-{g}", reference=refs[g % len(refs)],
                construction="decoy", left_file="x.png", right_file="y.png", correct_side="left",
                status="voted", choice="right" if failed else "left", response_ms=900, issued_at=now,
                expires_at=now, answered_at=now,
            ))  # fmt: skip
    ControlTrial.objects.bulk_create(controls)
    Rater.objects.filter(pk__in=[rater.pk for rater in people[::10]]).update(
        excluded=True, exclusion_reason="failed a gold pair"
    )
    raters_recount(raters=people)
    counted = judgments - Rater.objects.filter(study=study, excluded=True).count() * (judgments // raters)
    last = study.judgments.exclude(rater__excluded=True).order_by("-id").values_list("id", flat=True).first()
    BradleyTerryFit.objects.create(
        study=study, scope="reference", judgments=counted, log_judgments=counted, last_judgment_id=last or 0,
        images=references * per_reference, rounds=100, seed=0, widest_ci=600, median_ci=160, images_too_wide=1000,
        kendall=0.1, target_ci_width=100, target_kendall=0.05, done=False, seconds=100,
    )  # fmt: skip
    return Study.objects.get(pk=study.pk)


def benchmark_report(study) -> None:
    """A real run_benchmark report on the study's stored scores (few resamples: only the page is timed)."""
    from iqa.services import benchmark_runs as benchmarking

    benchmarking.benchmark_run(study=study, metric_names="psnr,ssim", resamples=20, logistic=0)


def time_pages(client, study, repeat: int) -> dict[str, tuple[float, float, int, float]]:
    """p50, p95 and the worst status of ``repeat`` warm requests per page, and the first request's
    time with an empty cache (what the first visitor after the data changed pays)."""
    from django.core.cache import cache

    results = {}
    for name, template in PAGES:
        url = template.format(slug=study.slug, pk=study.pk)
        statuses = set()
        cache.clear()
        started = time.perf_counter()
        statuses.add(_get(client, url))
        cold = time.perf_counter() - started
        statuses.add(_get(client, url))  # warm
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            statuses.add(_get(client, url))
            seconds.append(time.perf_counter() - started)
        results[name] = (percentile(seconds, 50), percentile(seconds, 95), max(statuses), cold)
    return results


def _get(client, url: str) -> int:
    response = client.get(url)
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    return response.status_code


def main(argv=None) -> int:
    args = parse_args(argv)
    benchlib.header("pages: owner and admin pages at PIPAL scale vs 100x smaller, PostgreSQL")
    benchlib.pg_recreate(args.db, args.pg_admin_url)
    tmp = Path(tempfile.mkdtemp(prefix="pipal-bench-pages-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="pipal_site.settings.local",
        DATABASE_URL=benchlib.pg_url(args.db, args.pg_admin_url),
        PIPAL_VAR_DIR=str(tmp),
        ALLOWED_HOSTS="testserver",
    )
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.db import connection
        from django.test import Client

        call_command("migrate", verbosity=0)
        images = args.references * args.per_reference
        judgments = round(args.judgments_per_image * images)
        t0 = time.perf_counter()
        big = build_study("pipal", args.references, args.per_reference, judgments, args.raters, 1)
        small_refs = max(2, args.references // 10)
        small_per = max(3, round(args.per_reference / 10))
        small = build_study("small", small_refs, small_per, max(1, judgments // args.scale), args.raters, 2)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        for study in (big, small):
            benchmark_report(study)
        print(f"built in {time.perf_counter() - t0:.0f} s: pipal {images} images, {judgments} judgments; small "
              f"{small_refs * small_per} images, {judgments // args.scale} judgments; {args.raters} raters each")
        staff = get_user_model().objects.create_superuser("bench", "bench@example.org", "bench-password-1")
        client = Client()
        client.force_login(staff)
        timed = {study.slug: time_pages(client, study, args.repeat) for study in (small, big)}
    finally:
        from django.db import connections

        connections.close_all()
        benchlib.pg_drop(args.db, args.pg_admin_url)
    rows, problems = [], []
    for name, _ in PAGES:
        small_p50, small_p95, small_status, _ = timed["small"][name]
        big_p50, big_p95, big_status, big_cold = timed["pipal"][name]
        ok = big_p95 <= 1.0 and (name in GROWS_WITH_IMAGES or big_p95 <= 1.5 * max(small_p95, 0.05))
        rows.append([name + (" (rows = images)" if name in GROWS_WITH_IMAGES else ""), small_p50 * 1000,
                     small_p95 * 1000, big_p50 * 1000, big_p95 * 1000, ratio(big_p95, small_p95), big_cold * 1000,
                     "yes" if ok else "NO"])  # fmt: skip
        for status in {small_status, big_status} - {200}:
            problems.append(f"{name} answered {status}")
    print()
    print(benchlib.table(
        ["page", "small p50 ms", "small p95 ms", "PIPAL p50 ms", "PIPAL p95 ms", "PIPAL / small (p95)",
         "PIPAL first request, empty cache, ms", "goal met (<= 1 s p95; <= 1.5x, 50 ms floor)"], rows,
    ))  # fmt: skip
    if problems:
        print("\nPROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
