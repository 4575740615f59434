"""Next-pair time of the active policy against the balanced one, at PIPAL's reference size.

Builds, in a throwaway database, two studies of ``--references`` references x
``--per-reference`` images (PIPAL: 116) with dummy rows (bench/next_pair.py's
``build_study``) and gives every reference a full judgment log of
``--judgments-per-image`` x images (PIPAL: ~39, so ~4,500 judgments per
reference), bulk-created. One study uses the balanced policy (the baseline),
the other the active one; both serve ``--raters`` raters through the real
service ``annotation.rating.trials.pair_next``, calls interleaved so that machine
noise hits both alike. The active policy reads one reference's images and
judgments, fits Bradley–Terry, inverts its 116 x 116 information matrix and
draws the partner: its cost depends on the reference, not on the study
(tests/annotation/test_active_policy.py checks the query count), so a few references
stand for PIPAL's 250.

Figures: median, p99 and mean time per call; the active policy as a ratio of
the balanced one measured in the same run.

    .venv/bin/python bench/active_pair.py
    .venv/bin/python bench/active_pair.py --postgres
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import benchlib
from benchlib import median, percentile, ratio
from next_pair import build_study, configure


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time pair_next under the active policy against the balanced one (same run).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--references", type=int, default=8)
    parser.add_argument("--per-reference", type=int, default=116, help="PIPAL: 116 images per reference")
    parser.add_argument("--judgments-per-image", type=float, default=39.0, help="PIPAL: ~39")
    parser.add_argument("--raters", type=int, default=3)
    parser.add_argument("--calls", type=int, default=100, help="timed calls per rater and policy")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", action="store_true", help="use a fresh PostgreSQL database instead of SQLite")
    parser.add_argument("--pg-db", default="pipal_bench_active_pair")
    parser.add_argument("--pg-admin-url", default=benchlib.PG_ADMIN_URL)
    return parser.parse_args(argv)


def add_judgments(study, per_image: float, rng: random.Random) -> int:
    """A judgment log of per_image x images random within-reference pairs, with judgment counts to match."""
    from annotation.models import DistortedImage, Judgment

    by_reference: dict[int, list[int]] = {}
    for image_id, reference_id in DistortedImage.objects.filter(study=study).values_list("id", "reference_id"):
        by_reference.setdefault(reference_id, []).append(image_id)
    rows, counts = [], dict.fromkeys((i for ids in by_reference.values() for i in ids), 0)
    for ids in by_reference.values():
        for _ in range(round(per_image * len(ids))):
            a, b = rng.sample(ids, 2)
            rows.append(
                Judgment(
                    study=study,
                    image_a_id=a,
                    image_b_id=b,
                    winner_id=a if rng.random() < 0.5 else b,
                    elo_a_before=1400,
                    elo_a_after=1400,
                    elo_b_before=1400,
                    elo_b_after=1400,
                )
            )
            counts[a] += 1
            counts[b] += 1
    Judgment.objects.bulk_create(rows, batch_size=5000)
    images = list(DistortedImage.objects.filter(study=study))
    for image in images:
        image.judgment_count = counts[image.id]
    DistortedImage.objects.bulk_update(images, ["judgment_count"], batch_size=5000)
    return len(rows)


def main(argv=None) -> int:
    args = parse_args(argv)
    return benchlib.in_throwaway_database(args, "pipal-bench-active-pair-", run)


def run(args, tmp: Path) -> int:
    benchlib.header("active_pair: pair_next, active policy vs balanced, PIPAL-sized references")
    url = configure(args, tmp)
    from django.db import connection

    from annotation.models import Study
    from annotation.raters import rater_create
    from annotation.rating.trials import pair_next
    from annotation.rating.votes import vote_submit

    print(f"database: {connection.vendor} ({url.split('://')[0]})")
    rng = random.Random(args.seed)
    studies = {}
    for policy in (Study.PairPolicy.BALANCED, Study.PairPolicy.ACTIVE):
        study = build_study(str(policy), args.references, args.per_reference, 0, rng)
        study.pair_policy = policy
        study.save(update_fields=["pair_policy"])
        started = time.perf_counter()
        count = add_judgments(study, args.judgments_per_image, rng)
        print(
            f"{policy}: {count:,} judgments over {args.references} x {args.per_reference} images "
            f"({time.perf_counter() - started:.1f} s to build)"
        )
        raters = [rater_create(study=study, external_id=f"bench-{i}")[0] for i in range(args.raters)]
        studies[str(policy)] = (study, raters)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    times: dict[str, list[int]] = {policy: [] for policy in studies}
    for call in range(args.calls + 3):  # the first three rounds warm up
        for policy, (study, raters) in studies.items():
            for rater in raters:
                t0 = time.perf_counter_ns()
                trial = pair_next(study=study, rater=rater, rng=rng)
                elapsed = time.perf_counter_ns() - t0
                if trial is None:
                    raise RuntimeError(f"{policy}: rater {rater.external_id} got no pair")
                vote_submit(
                    study=study, rater=rater, assignment_token=trial.token, choice="left", response_ms=1000
                )
                if call >= 3:
                    times[policy].append(elapsed)
    base = median(times["balanced"])
    rows = [
        [
            f"pair_next, {policy}",
            len(values),
            median(values) / 1e3,
            percentile(values, 99) / 1e3,
            sum(values) / len(values) / 1e3,
            ratio(median(values), base),
        ]
        for policy, values in times.items()
    ]
    print()
    print(benchlib.table(["operation", "calls", "median µs", "p99 µs", "mean µs", "median / balanced"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
