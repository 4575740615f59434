"""fit_bradley_terry through the real service on a PIPAL-sized study in a database.

Builds, in a throwaway database, a study of ``--references`` (250) x
``--per-reference`` (116) images with dummy rows (bench/next_pair.py's
``build_study``) and a judgment log of ``--judgments-per-image`` (39) x images
random within-reference pairs (bench/active_pair.py's ``add_judgments``;
1.13M rows at PIPAL scale), then times, in the same run:

* baseline: ``study_recompute_mos(write=False)`` — reading the log
  and replaying Elo over it, what recompute_mos --check does;
* ``bt_fit.study_fit_bradley_terry`` with ``--rounds`` bootstrap rounds
  (reading the log, the fit, the bootstrap, Kendall, storing 29k rows), split
  into reading the log (``bt_fit.judgment_log``) and the rest.

    .venv/bin/python bench/bt_fit_service.py
    .venv/bin/python bench/bt_fit_service.py --postgres
    .venv/bin/python bench/bt_fit_service.py --references 25 --rounds 100   # quicker
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import benchlib
from active_pair import add_judgments
from next_pair import build_study, configure


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time fit_bradley_terry's service on a PIPAL-sized study against recompute_mos --check.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--references", type=int, default=250)
    parser.add_argument("--per-reference", type=int, default=116)
    parser.add_argument("--judgments-per-image", type=float, default=39.0)
    parser.add_argument("--rounds", type=int, default=100, help="bootstrap rounds (at least 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", action="store_true", help="use a fresh PostgreSQL database instead of SQLite")
    parser.add_argument("--pg-db", default="pipal_bench_bt_fit")
    parser.add_argument("--pg-admin-url", default=benchlib.PG_ADMIN_URL)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    return benchlib.in_throwaway_database(args, "pipal-bench-bt-fit-", run)


def run(args, tmp: Path) -> int:
    benchlib.header("bt_fit_service: fit_bradley_terry's service at PIPAL scale, against recompute_mos --check")
    url = configure(args, tmp)
    from django.db import connection

    from annotation.analysis import bt_fit
    from annotation.analysis.replay import study_recompute_mos

    print(f"database: {connection.vendor} ({url.split('://')[0]})")
    rng = random.Random(args.seed)
    started = time.perf_counter()
    study = build_study("bt", args.references, args.per_reference, 0, rng)
    count = add_judgments(study, args.judgments_per_image, rng)
    print(
        f"{args.references * args.per_reference:,} images, {count:,} judgments "
        f"({time.perf_counter() - started:.0f} s to build)"
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    started = time.perf_counter()
    study_recompute_mos(study=study, write=False)
    recompute = time.perf_counter() - started
    started = time.perf_counter()
    bt_fit.judgment_log(study)
    read = time.perf_counter() - started
    started = time.perf_counter()
    fit = bt_fit.study_fit_bradley_terry(study=study, rounds=args.rounds, seed=args.seed)
    total = time.perf_counter() - started
    rows = [
        ["baseline: recompute_mos --check (read the log, replay Elo)", recompute, 1.0],
        ["bt_fit.judgment_log (read the log)", read, benchlib.ratio(read, recompute)],
        [f"study_fit_bradley_terry, {args.rounds} rounds (all of it)", total, benchlib.ratio(total, recompute)],
        [
            "  of which in the fit's own timer (read, fit, bootstrap, Kendall)",
            fit.seconds,
            benchlib.ratio(fit.seconds, recompute),
        ],
    ]
    print()
    print(benchlib.table(["step", "seconds", "/ recompute_mos --check"], rows))
    print(f"\nfit: {fit.judgments:,} judgments, median CI {fit.median_ci:.1f}, Kendall {fit.kendall:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
