"""Bradley–Terry at PIPAL scale: fit and bootstrap time, accuracy and CI coverage.

A synthetic PIPAL-sized log: ``--references`` (250) references x
``--per-reference`` (116) images = 29,000 images with hidden scores
1400 + ``--spread`` x N(0, 1), and ``--judgments-per-image`` (39) x images
= 1.13M judgments between random images of one reference, each won with PIPAL
Eq. 1's probability. Timed in the same run:

* baseline: the Elo replay of the log (``annotation.analysis.elo.replay``, what
  recompute_mos runs, K=16, M=400);
* building the pair table, one Bradley–Terry fit, ``--rounds`` bootstrap
  refits (the time of 100 is extrapolated when fewer are run), the Kendall
  stability over the replicates.

Accuracy: SRCC of the Elo MOS and of the BT scores against the truth, per
reference (mean) and pooled. Coverage: the share of truths inside their 95%
interval, over ``--coverage-studies`` smaller simulated studies
(``--coverage-references`` x ``--coverage-per-reference`` images, the same
judgments per image, 100 rounds each).

    .venv/bin/python bench/bradley_terry.py
    .venv/bin/python bench/bradley_terry.py --references 50 --rounds 10   # quicker
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib  # noqa: E402

from annotation.analysis import bradley_terry, elo  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--references", type=int, default=250)
    parser.add_argument("--per-reference", type=int, default=116)
    parser.add_argument("--judgments-per-image", type=float, default=39.0)
    parser.add_argument("--spread", type=float, default=150.0, help="SD of the hidden scores, Elo points")
    parser.add_argument("--rounds", type=int, default=20, help="bootstrap rounds timed at PIPAL scale")
    parser.add_argument("--coverage-studies", type=int, default=20)
    parser.add_argument("--coverage-references", type=int, default=10)
    parser.add_argument("--coverage-per-reference", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def synthetic_log(rng, references: int, per_reference: int, per_image: float, spread: float):
    n = references * per_reference
    truth = 1400 + spread * rng.standard_normal(n)
    groups = np.repeat(np.arange(references), per_reference)
    for g in range(references):  # only differences within a reference are identified (SPEC §6)
        truth[groups == g] += 1400 - truth[groups == g].mean()
    count = round(per_image * n)
    start = per_reference * rng.integers(0, references, count)
    first = rng.integers(0, per_reference, count)
    a, b = start + first, start + (first + rng.integers(1, per_reference, count)) % per_reference
    a_wins = rng.random(count) < 1 / (1 + 10 ** ((truth[b] - truth[a]) / 400))
    return truth, groups, a, b, a_wins


def per_reference_srcc(scores, truth, groups) -> float:
    return float(np.mean([spearmanr(scores[groups == g], truth[groups == g])[0] for g in np.unique(groups)]))


def main(argv=None) -> int:
    args = parse_args(argv)
    benchlib.header("bradley_terry: fit and bootstrap at PIPAL scale, against the Elo replay")
    rng = np.random.default_rng(args.seed)
    truth, groups, a, b, a_wins = synthetic_log(
        rng, args.references, args.per_reference, args.judgments_per_image, args.spread
    )
    n = truth.size
    print(f"{n:,} images, {a.size:,} judgments ({args.judgments_per_image:g} per image), spread {args.spread:g}")

    started = time.perf_counter()
    states = elo.replay(zip(a.tolist(), b.tolist(), a_wins.tolist(), strict=True), range(n), elo.EloParams())
    elo_seconds = time.perf_counter() - started
    elo_mos = np.array([states[i].mos(1400.0) for i in range(n)])

    started = time.perf_counter()
    table = bradley_terry.PairTable.from_judgments(np.where(a_wins, a, b), np.where(a_wins, b, a), n)
    table_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scores = bradley_terry.fit(table)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = bradley_terry.bootstrap(table, rounds=args.rounds, seed=args.seed)
    bootstrap_seconds = time.perf_counter() - started - fit_seconds  # bootstrap() refits the point estimate too
    started = time.perf_counter()
    kendall = bradley_terry.kendall_distance(result.replicates, groups)
    kendall_seconds = time.perf_counter() - started
    per_round = bootstrap_seconds / args.rounds

    rows = [
        ["baseline: Elo replay of the log", elo_seconds, 1.0],
        ["pair table (aggregate the log)", table_seconds, benchlib.ratio(table_seconds, elo_seconds)],
        ["Bradley–Terry fit", fit_seconds, benchlib.ratio(fit_seconds, elo_seconds)],
        ["one bootstrap refit (mean)", per_round, benchlib.ratio(per_round, elo_seconds)],
        ["100 bootstrap rounds (extrapolated)", 100 * per_round, benchlib.ratio(100 * per_round, elo_seconds)],
        [
            f"Kendall stability over {args.rounds} replicates",
            kendall_seconds,
            benchlib.ratio(kendall_seconds, elo_seconds),
        ],
    ]
    print()
    print(benchlib.table(["step", "seconds", "/ Elo replay"], rows))
    low, high = result.interval
    print()
    print(
        benchlib.table(
            ["MOS", "SRCC per reference (mean)", "SRCC pooled"],
            [
                [
                    "Elo (K=16, mean of last 10)",
                    per_reference_srcc(elo_mos, truth, groups),
                    spearmanr(elo_mos, truth)[0],
                ],
                ["Bradley–Terry", per_reference_srcc(scores, truth, groups), spearmanr(scores, truth)[0]],
            ],
        )
    )
    print(
        f"\nCI width ({args.rounds} rounds): median {np.median(high - low):.1f}, "
        f"widest {np.max(high - low):.1f} Elo points; Kendall distance between replicates {np.nanmean(kendall):.4f}"
    )

    covered, widths = [], []
    for study in range(args.coverage_studies):
        rng = np.random.default_rng(10_000 + study)
        truth, groups, a, b, a_wins = synthetic_log(
            rng, args.coverage_references, args.coverage_per_reference, args.judgments_per_image, args.spread
        )
        table = bradley_terry.PairTable.from_judgments(np.where(a_wins, a, b), np.where(a_wins, b, a), truth.size)
        low, high = bradley_terry.bootstrap(table, rounds=100, seed=study).interval
        covered.extend((low <= truth) & (truth <= high))
        widths.extend(high - low)
    print(
        f"\ncoverage of the 95% intervals: {np.mean(covered):.3f} over {len(covered):,} images in "
        f"{args.coverage_studies} studies of {args.coverage_references} x {args.coverage_per_reference} images "
        f"(median width {np.median(widths):.1f} Elo points)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
