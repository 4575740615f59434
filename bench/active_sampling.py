"""Judgments per image the active policy needs, against balanced (random) pairing.

A pure simulation of one reference of ``--per-reference`` images (PIPAL: 116)
with hidden scores 1400 + spread x N(0, 1), run with the scheduler's own
pieces (``annotation.rating.active``): each step takes the reference's least-judged
image (random ties, as ``scheduler.choose_pair``) and pairs it with

* balanced: the least-judged other image (random ties) — PIPAL-like random pairing;
* active: a partner drawn in proportion to the squared expected information gain under
  the Bradley–Terry Laplace posterior of the judgments so far.

A synthetic rater picks with PIPAL Eq. 1's probability of the hidden scores.
At each checkpoint (judgments per image, SPEC §6 meaning) the Elo MOS (K=16,
mean of the last 10) and a Bradley–Terry fit are compared with the truth
(SRCC, averaged over ``--seeds`` references). The headline: the SRCC that
balanced pairing with the Elo MOS (PIPAL's procedure) reaches at
``--target-n`` (39) judgments per image, and the judgments per image each
policy/estimator needs to reach it (linear interpolation between
checkpoints), as a ratio of ``--target-n``. The issue's target is 0.5.

The Django path (scratch studies, real votes) is ``simulate_study
--compare-policies``; this bench reaches PIPAL's reference size in minutes.

    .venv/bin/python bench/active_sampling.py
    .venv/bin/python bench/active_sampling.py --spreads 150,300 --seeds 6
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib  # noqa: E402

from annotation.analysis import bradley_terry, elo
from annotation.rating import active  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--per-reference", type=int, default=116)
    parser.add_argument("--spreads", default="150,300", help="SDs of the hidden scores to try, Elo points")
    parser.add_argument("--seeds", type=int, default=4, help="simulated references per policy and spread")
    parser.add_argument("--checkpoints", default="5,10,15,20,25,30,39")
    parser.add_argument("--target-n", type=float, default=39.0)
    return parser.parse_args(argv)


def least_judged(counts: np.ndarray, rng: random.Random, exclude: int | None = None) -> int:
    order = sorted(range(counts.size), key=lambda i: (counts[i], rng.random()))
    return next(i for i in order if i != exclude)


def simulate(policy: str, size: int, spread: float, seed: int, checkpoints: list[float]) -> dict[float, tuple]:
    rng = random.Random(seed)
    truth = 1400 + spread * np.random.default_rng(seed).standard_normal(size)
    counts = np.zeros(size)
    states = elo.initial_states(range(size), elo.EloParams())
    winners: list[int] = []
    losers: list[int] = []
    marks = {round(n * size): n for n in checkpoints}
    found = {}
    for step in range(1, max(marks) + 1):
        first = least_judged(counts, rng)
        if policy == "balanced":
            partner = least_judged(counts, rng, exclude=first)
        else:
            mean, covariance = active.reference_posterior(
                np.array(winners, dtype=np.int64), np.array(losers, dtype=np.int64), size, m=400.0, center=1400.0
            )
            allowed = np.arange(size) != first
            partner = active.draw_partner(active.information_gain(mean, covariance, first, m=400.0), allowed, rng)
        first_wins = rng.random() < elo.win_probability(truth[first], truth[partner])
        winners.append(first if first_wins else partner)
        losers.append(partner if first_wins else first)
        counts[[first, partner]] += 1
        for _ in elo.apply(states, [(first, partner, first_wins)], elo.EloParams()):
            pass
        if step in marks:
            table = bradley_terry.PairTable.from_judgments(np.array(winners), np.array(losers), size)
            bt = bradley_terry.fit(table)
            mos = [states[i].mos(1400.0) for i in range(size)]
            found[marks[step]] = (spearmanr(mos, truth)[0], spearmanr(bt, truth)[0])
    return found


def needed(curve: dict[float, float], target: float) -> float | None:
    """Judgments per image at which a mean SRCC curve first reaches ``target`` (linear interpolation)."""
    points = sorted(curve.items())
    previous = None
    for n, value in points:
        if value >= target:
            if previous is None or previous[1] >= target:
                return n
            n0, v0 = previous
            return n0 + (target - v0) / (value - v0) * (n - n0)
        previous = (n, value)
    return None


def main(argv=None) -> int:
    args = parse_args(argv)
    checkpoints = [float(x) for x in args.checkpoints.split(",")]
    if args.target_n not in checkpoints:
        checkpoints.append(args.target_n)
    checkpoints.sort()
    benchlib.header("active_sampling: judgments per image to reach random pairing's SRCC at 39")
    for spread in (float(x) for x in args.spreads.split(",")):
        curves: dict[tuple[str, str], dict[float, float]] = {}
        seconds = {}
        for policy in ("balanced", "active"):
            started = time.perf_counter()
            runs = [simulate(policy, args.per_reference, spread, seed, checkpoints) for seed in range(args.seeds)]
            seconds[policy] = time.perf_counter() - started
            for k, estimator in enumerate(("Elo", "BT")):
                curves[(policy, estimator)] = {n: float(np.mean([run[n][k] for run in runs])) for n in checkpoints}
        target = curves[("balanced", "Elo")][args.target_n]
        print(
            f"\nspread {spread:g} Elo points, {args.per_reference} images per reference, {args.seeds} references "
            "per policy; simulation time active / balanced: "
            f"{benchlib.ratio(seconds['active'], seconds['balanced']):.1f}"
        )
        rows = [
            [f"{policy} + {estimator}", *(curve[n] for n in checkpoints)]
            for (policy, estimator), curve in curves.items()
        ]
        print(benchlib.table(["SRCC at N judgments per image", *(f"{n:g}" for n in checkpoints)], rows))
        print(f"target: balanced + Elo at N={args.target_n:g} reaches SRCC {target:.4f}")
        for (policy, estimator), curve in curves.items():
            n = needed(curve, target)
            text = "not reached" if n is None else f"N = {n:.1f}, {n / args.target_n:.2f} x the judgments"
            print(f"  {policy} + {estimator}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
