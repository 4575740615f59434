"""Next-pair time at PIPAL scale: does picking a pair stay flat as a study grows?

Builds, in a throwaway database, a study of 250 references x 120 images =
30,000 images and a small one of 5 x 60 = 300 images, straight through the ORM
(bulk_create of ReferenceImage, DistortionType and DistortedImage rows with
dummy file names; no image files), with varied ``judgment_count`` values so the
scheduler's index order matters. It then calls the real service
``annotation.rating.trials.pair_next(study=..., rater=...)`` many times for a few
raters of each study (raters made with ``rater_create``), interleaving
the two studies and the baseline so that machine noise hits all of them alike.
The studies have training and gold (control) trials, the per-rater quota and
the vote rate limit turned off, so every call picks a real pair.
After each timed call the pair is voted on (untimed, ``vote_submit``)
so the queue moves as in a live study; ``--no-vote`` turns that off.

Figures: median, p99 and mean time per ``pair_next`` call, SQL queries per call
(``django.test.utils.CaptureQueriesContext``, on separate untimed calls).
Baseline, timed in the same run: a primary-key lookup
``DistortedImage.objects.get(pk=...)``; next-pair time is printed as a ratio to
it, and as the ratio time(30k)/time(300), which should be about 1.

Database: SQLite in a temporary folder by default (settings
``pipal_site.settings.local`` with ``DATABASE_URL`` pointing there), or with
``--postgres`` a fresh PostgreSQL database (``--pg-db``, default
pipal_bench_next_pair, dropped and recreated, and dropped again at the end).

Run from the repository root:

    .venv/bin/python bench/next_pair.py
    .venv/bin/python bench/next_pair.py --postgres
    .venv/bin/python bench/next_pair.py --help
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import benchlib
from benchlib import median, percentile, ratio

from tests import factories


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time annotation.rating.trials.pair_next on a 30k-image and a 300-image study, "
        "against a primary-key lookup measured in the same run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--references", type=int, default=250, help="references of the big study")
    parser.add_argument("--per-reference", type=int, default=120, help="images per reference, big study")
    parser.add_argument("--small-references", type=int, default=5, help="references of the small study")
    parser.add_argument("--small-per-reference", type=int, default=60, help="images per reference, small study")
    parser.add_argument("--max-count", type=int, default=60, help="judgment_count is drawn from 0..this")
    parser.add_argument("--raters", type=int, default=3, help="raters per study")
    parser.add_argument("--calls", type=int, default=500, help="timed pair_next calls per rater")
    parser.add_argument(
        "--history", type=int, default=0, help="voted assignments each rater already holds before timing starts"
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed calls per rater first")
    parser.add_argument("--query-samples", type=int, default=20, help="untimed calls per study to count queries on")
    parser.add_argument("--no-vote", action="store_true", help="do not vote on each issued pair")
    parser.add_argument("--seed", type=int, default=1, help="random seed (counts, choices)")
    parser.add_argument("--postgres", action="store_true", help="use a fresh PostgreSQL database instead of SQLite")
    parser.add_argument("--pg-db", default="pipal_bench_next_pair", help="name of the throwaway PostgreSQL database")
    parser.add_argument("--pg-admin-url", default=benchlib.PG_ADMIN_URL, help="where to create/drop it from")
    parser.add_argument("--explain", action="store_true", help="print the query plans of one call on the big study")
    return parser.parse_args(argv)


def configure(args: argparse.Namespace, tmp: Path) -> str:
    """Set the environment and run django.setup(); returns the database description."""
    if args.postgres:
        benchlib.pg_recreate(args.pg_db, args.pg_admin_url)
        url = benchlib.pg_url(args.pg_db, args.pg_admin_url)
    else:
        url = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "pipal_site.settings.local"
    os.environ["DATABASE_URL"] = url
    os.environ["PIPAL_VAR_DIR"] = str(tmp / "var")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["DEBUG"] = "false"  # DEBUG keeps a log of every query: not what production pays
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return url


# Study settings that turn off what is not pair picking: training and gold
# (control) trials, the per-rater quota and the vote rate limit. Only fields the
# model has are set.
PLAIN = {"training_trials": 0, "gold_every": 0, "min_vote_interval_ms": 0, "trials_per_rater": 10_000_000}


def plain_study(study) -> None:
    fields = {name: value for name, value in PLAIN.items() if hasattr(study, name)}
    for name, value in fields.items():
        setattr(study, name, value)
    if fields:
        study.save(update_fields=list(fields))


def build_study(
    slug: str,
    references: int,
    per_reference: int,
    max_count: int,
    rng: random.Random,
    *,
    protocol: str | None = None,
    options: dict | None = None,
    start_mos: float | None = None,
    counted_mos_std: float | None = None,
):
    """A study with dummy rows: no files, a dummy display name on every row (so no service makes a display copy),
    varied judgment counts (drawn from ``rng``). For the other protocols' benchmarks: ``protocol`` and its
    ``options`` at creation, every image's MOS starting at ``start_mos`` (default the Elo start), and
    ``counted_mos_std`` on images judged more than once (acr's spread)."""
    from annotation.models import DistortedImage, DistortionType, ReferenceImage
    from annotation.studies import study_create

    study = study_create(slug=slug, **({"protocol": protocol} if protocol else {}), **(options or {}))
    plain_study(study)
    start = study.elo_initial if start_mos is None else start_mos
    combos = factories.type_levels(per_reference)
    codes = sorted({code for code, _ in combos})
    types = {
        t.code: t
        for t in DistortionType.objects.bulk_create(
            [DistortionType(study=study, code=code, name=f"Type {code}", category="traditional") for code in codes]
        )
    }
    refs = ReferenceImage.objects.bulk_create(
        [
            ReferenceImage(
                study=study,
                name=f"R{r:04d}",
                file=f"studies/{slug}/ref-{r}.png",
                original_filename=f"R{r:04d}.png",
                sha256=f"{r:064x}",
                width=32,
                height=32,
                display=f"stimuli/{slug}/ref-{r}.png",
            )
            for r in range(1, references + 1)
        ],
        batch_size=2000,
    )
    images = []
    for ref in refs:
        for code, level in combos:
            name = f"{ref.name}_{code}_{level:02d}.png"
            count = rng.randint(0, max_count)
            extra = {"mos_std": counted_mos_std if count > 1 else None} if counted_mos_std is not None else {}
            images.append(
                DistortedImage(
                    study=study,
                    reference=ref,
                    distortion_type=types[code],
                    level=level,
                    name=name,
                    file=f"studies/{slug}/{name}",
                    sha256=f"{len(images):064x}",
                    width=32,
                    height=32,
                    elo=study.elo_initial,
                    mos=start,
                    judgment_count=count,
                    shuffle_key=rng.random(),
                    display=f"stimuli/{slug}/{name}",
                    **extra,
                )
            )
    DistortedImage.objects.bulk_create(images, batch_size=2000)
    return study


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return benchlib.in_throwaway_database(args, "pipal-bench-next-pair-", run)


def run(args: argparse.Namespace, tmp: Path) -> int:
    benchlib.header("next_pair: annotation.rating.trials.pair_next at 30k vs 300 images")
    url = configure(args, tmp)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation.models import DistortedImage
    from annotation.raters import rater_create
    from annotation.rating.trials import pair_next
    from annotation.rating.votes import vote_submit

    print(f"database: {connection.vendor} ({url.split('://')[0]}); vote after each pair: {not args.no_vote}")
    rng = random.Random(args.seed)
    started = time.perf_counter()
    big = build_study("big", args.references, args.per_reference, args.max_count, rng)
    small = build_study("small", args.small_references, args.small_per_reference, args.max_count, rng)
    sizes = {study.slug: DistortedImage.objects.filter(study=study).count() for study in (big, small)}
    print(f"built {sizes['big']:,} + {sizes['small']:,} images in {time.perf_counter() - started:.1f} s")

    studies = []
    for study in (big, small):
        raters = [rater_create(study=study, external_id=f"bench-{i}")[0] for i in range(args.raters)]
        ids = list(DistortedImage.objects.filter(study=study).values_list("id", flat=True))
        if args.history:
            for rater in raters:
                add_history(study, rater, args.history, rng)
        studies.append((study, raters, ids))
    if args.history:
        print(f"each rater starts with {args.history:,} voted assignments")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would soon give a live database
    rngs = {rater.id: random.Random(args.seed * 1000 + rater.id) for _, raters, _ in studies for rater in raters}

    def one_call(study, rater) -> int:
        t0 = time.perf_counter_ns()
        trial = pair_next(study=study, rater=rater, rng=rngs[rater.id])
        elapsed = time.perf_counter_ns() - t0
        if trial is None:
            raise RuntimeError(f"rater {rater.external_id} of {study.slug} got no pair")
        if not args.no_vote:
            vote_submit(
                study=study,
                rater=rater,
                assignment_token=trial.token,
                choice=rng.choice(("left", "right")),
                response_ms=1000,
            )
        return elapsed

    def one_lookup(ids) -> int:
        pk = rng.choice(ids)
        t0 = time.perf_counter_ns()
        DistortedImage.objects.get(pk=pk)
        return time.perf_counter_ns() - t0

    for _ in range(args.warmup):
        for study, raters, ids in studies:
            for rater in raters:
                one_call(study, rater)
            one_lookup(ids)

    times: dict[str, list[int]] = {study.slug: [] for study, _, _ in studies}
    lookups: list[int] = []
    started = time.perf_counter()
    for _ in range(args.calls):
        for study, raters, ids in studies:
            for rater in raters:
                times[study.slug].append(one_call(study, rater))
                lookups.append(one_lookup(ids))
    timed_wall = time.perf_counter() - started

    queries: dict[str, list[int]] = {}
    data_queries: dict[str, list[int]] = {}
    for study, raters, _ in studies:
        queries[study.slug], data_queries[study.slug] = [], []
        for i in range(args.query_samples):
            with CaptureQueriesContext(connection) as captured:
                assignment = pair_next(study=study, rater=raters[i % len(raters)])
            queries[study.slug].append(len(captured.captured_queries))
            data_queries[study.slug].append(sum(is_data(query["sql"]) for query in captured.captured_queries))
            if assignment and not args.no_vote:
                vote_submit(
                    study=study,
                    rater=raters[i % len(raters)],
                    assignment_token=assignment.token,
                    choice="left",
                    response_ms=1000,
                )
    with CaptureQueriesContext(connection) as captured:
        DistortedImage.objects.get(pk=studies[0][2][0])
    lookup_queries = len(captured.captured_queries)

    base = median(lookups)
    rows = []
    for study, _, _ in studies:
        values = times[study.slug]
        rows.append(
            [
                f"pair_next, {sizes[study.slug]:,} images",
                len(values),
                median(values) / 1e3,
                percentile(values, 99) / 1e3,
                sum(values) / len(values) / 1e3,
                ratio(median(values), base),
                spread(queries[study.slug]),
                spread(data_queries[study.slug]),
            ]
        )
    rows.append(
        [
            "baseline: DistortedImage.objects.get(pk=...)",
            len(lookups),
            base / 1e3,
            percentile(lookups, 99) / 1e3,
            sum(lookups) / len(lookups) / 1e3,
            1.0,
            str(lookup_queries),
            str(lookup_queries),
        ]
    )
    print()
    print(
        benchlib.table(
            [
                "operation",
                "calls",
                "median µs",
                "p99 µs",
                "mean µs",
                "median / pk lookup",
                "SQL statements per call",
                "of which SELECT/INSERT/UPDATE",
            ],
            rows,
        )
    )
    big_median, small_median = median(times["big"]), median(times["small"])
    print()
    print(f"time(30k) / time(300), medians: {ratio(big_median, small_median):.2f}")
    print(f"time(30k) / time(300), p99:     {ratio(percentile(times['big'], 99), percentile(times['small'], 99)):.2f}")
    print(f"timed loop wall time {timed_wall:.1f} s")

    if args.explain:
        explain(big, studies[0][1][0], connection)
    return 0


def add_history(study, rater, count: int, rng: random.Random) -> None:
    """``count`` voted assignments on distinct random pairs within references, issued a day ago."""
    import secrets
    from datetime import timedelta

    from django.utils import timezone

    from annotation.models import Assignment, DistortedImage

    by_reference: dict[int, list[int]] = {}
    for image_id, reference_id in DistortedImage.objects.filter(study=study).values_list("id", "reference_id"):
        by_reference.setdefault(reference_id, []).append(image_id)
    references = sorted(by_reference)
    issued = timezone.now() - timedelta(days=1)
    pairs: set[tuple[int, int]] = set()
    rows = []
    while len(rows) < count:
        reference = rng.choice(references)
        low, high = sorted(rng.sample(by_reference[reference], 2))
        if (low, high) in pairs:
            continue
        pairs.add((low, high))
        rows.append(
            Assignment(
                study=study,
                rater=rater,
                token=secrets.token_urlsafe(24),
                reference_id=reference,
                left_id=low,
                right_id=high,
                image_low_id=low,
                image_high_id=high,
                status=Assignment.Status.VOTED,
                issued_at=issued,
                expires_at=issued + timedelta(minutes=30),
            )
        )
    Assignment.objects.bulk_create(rows, batch_size=2000)


def is_data(sql: str) -> bool:
    """A statement that reads or writes rows (not BEGIN/SAVEPOINT/RELEASE/COMMIT)."""
    return sql.lstrip().split(" ", 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE"}


def spread(values: list[int]) -> str:
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high} (median {median(values):g})"


def explain(study, rater, connection) -> None:
    """Print the plan of every SELECT of one pair_next call."""
    from django.test.utils import CaptureQueriesContext

    from annotation.rating.trials import pair_next

    with CaptureQueriesContext(connection) as captured:
        pair_next(study=study, rater=rater)
    prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
    print("\nquery plans of one pair_next call on the big study:")
    for query in captured.captured_queries:
        sql = query["sql"]
        print(f"\n{sql[:300]}{' …' if len(sql) > 300 else ''}")
        if sql.lstrip().upper().startswith("SELECT") and "FOR UPDATE" not in sql.upper():
            with connection.cursor() as cursor:
                cursor.execute(prefix + sql)
                for row in cursor.fetchall():
                    print("   ", " ".join(str(cell) for cell in row))


if __name__ == "__main__":
    sys.exit(main())
