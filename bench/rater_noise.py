"""How much Bradley–Terry and rater QC recover from noisy, biased and bad raters.

A pure simulation (no database) of ``--references`` x ``--per-reference``
images with hidden scores 1400 + ``--spread`` x N(0, 1) and
``--judgments-per-image`` x images judgments (SPEC §6 meaning), cast by raters
who each do ``--trials`` trials on random pairs of one reference:

* good raters perceive every image's true score plus fresh Gaussian noise of
  an SD of their own (``noise`` x exp(N(0, 0.5))) and add a side bias
  b ~ N(0, ``bias``) to the left image, then choose with PIPAL Eq. 1 on what
  they perceive (as ``simulate_study --rater-noise --rater-bias``);
* bad raters click at random or always on the left (shares ``--random`` and
  ``--one-side``), and click fast.

For each scenario the Elo MOS (the log replayed in order, K=16) and a
Bradley–Terry fit are compared with the truth (mean SRCC within references),
first with every rater, then after the platform's QC (``annotation.analysis.quality``
with its default thresholds, the Elo MOS as the consensus) has flagged raters
and their votes are left out, as an admin excluding flagged raters would.
Gold pairs are not simulated: they catch most bad raters on their own
(``simulate_study`` runs them through the real trial flow).

    .venv/bin/python bench/rater_noise.py
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchlib  # noqa: E402

from annotation.analysis import bradley_terry, elo, quality  # noqa: E402


@dataclass(frozen=True)
class Scenario:
    name: str
    noise: float
    bias: float
    random: float
    one_side: float


SCENARIOS = (
    Scenario("perfect raters", 0, 0, 0, 0),
    Scenario("noisy raters (noise 100, bias 50)", 100, 50, 0, 0),
    Scenario("noisy + 10% random + 10% one-side", 100, 50, 0.1, 0.1),
    Scenario("noisy + 20% random + 20% one-side", 100, 50, 0.2, 0.2),
)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--references", type=int, default=20)
    parser.add_argument("--per-reference", type=int, default=30)
    parser.add_argument("--judgments-per-image", type=float, default=39.0)
    parser.add_argument("--spread", type=float, default=150.0)
    parser.add_argument("--trials", type=int, default=60, help="trials per rater (the platform's default quota)")
    parser.add_argument("--seeds", type=int, default=5)
    return parser.parse_args(argv)


def simulate(scenario: Scenario, args, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    gen = np.random.default_rng(seed)
    size, refs = args.per_reference, args.references
    n = size * refs
    truth = 1400 + args.spread * gen.standard_normal(n)
    groups = np.repeat(np.arange(refs), size)
    total = round(args.judgments_per_image * n)
    log = []  # (rater, left, right, left_wins, response_ms)
    kinds = []
    rater = -1
    for t in range(total):
        if t % args.trials == 0:
            rater += 1
            x = rng.random()
            kind = (
                "random" if x < scenario.random else "one_side" if x < scenario.random + scenario.one_side else "good"
            )
            noise = scenario.noise * float(np.exp(gen.normal(0, 0.5)))
            bias = float(gen.normal(0, scenario.bias)) if scenario.bias else 0.0
            kinds.append(kind)
        start = size * rng.randrange(refs)
        left, right = (start + i for i in rng.sample(range(size), 2))
        if kind == "random":
            left_wins, ms = rng.random() < 0.5, rng.randint(250, 1500)
        elif kind == "one_side":
            left_wins, ms = True, rng.randint(250, 1500)
        else:
            seen_left = truth[left] + bias + (gen.normal(0, noise) if noise else 0.0)
            seen_right = truth[right] + (gen.normal(0, noise) if noise else 0.0)
            left_wins, ms = rng.random() < elo.win_probability(seen_left, seen_right), rng.randint(1000, 4000)
        log.append((rater, left, right, left_wins, ms))

    def estimates(keep: set[int]) -> tuple[np.ndarray, np.ndarray]:
        rows = [row for row in log if row[0] in keep]
        states = elo.replay(((a, b, w) for _, a, b, w, _ in rows), range(n), elo.EloParams())
        mos = np.array([states[i].mos(1400.0) for i in range(n)])
        winners = np.array([a if w else b for _, a, b, w, _ in rows])
        losers = np.array([b if w else a for _, a, b, w, _ in rows])
        bt = bradley_terry.fit(bradley_terry.PairTable.from_judgments(winners, losers, n))
        return mos, bt

    def srcc(scores) -> float:
        return float(np.mean([spearmanr(scores[groups == g], truth[groups == g])[0] for g in range(refs)]))

    everyone = set(range(rater + 1))
    mos, bt = estimates(everyone)
    flagged = set()
    for r in everyone:
        votes = [
            quality.Vote(
                chose_left=w,
                response_ms=ms,
                winner_mos=mos[a] if w else mos[b],
                loser_mos=mos[b] if w else mos[a],
            )
            for who, a, b, w, ms in log
            if who == r
        ]
        if quality.assess(votes, gold_failed=0, thresholds=quality.Thresholds()).flagged:
            flagged.add(r)
    mos_qc, bt_qc = estimates(everyone - flagged)
    bad = {r for r in everyone if kinds[r] != "good"}
    return {
        "elo": srcc(mos),
        "elo_qc": srcc(mos_qc),
        "bt": srcc(bt),
        "bt_qc": srcc(bt_qc),
        "bad_caught": len(flagged & bad) / len(bad) if bad else float("nan"),
        "good_flagged": len(flagged - bad) / len(everyone - bad),
    }


def _mean(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def main(argv=None) -> int:
    args = parse_args(argv)
    benchlib.header("rater_noise: what Bradley–Terry and QC recover from noisy and bad raters")
    print(
        f"{args.references} references x {args.per_reference} images, {args.judgments_per_image:g} judgments per "
        f"image, {args.trials} trials per rater, truth spread {args.spread:g}; mean over {args.seeds} seeds; "
        "SRCC = mean within references"
    )
    rows = []
    for scenario in SCENARIOS:
        runs = [simulate(scenario, args, seed) for seed in range(args.seeds)]
        mean = {key: _mean([run[key] for run in runs]) for key in runs[0]}
        rows.append(
            [
                scenario.name,
                mean["elo"],
                mean["bt"],
                mean["elo_qc"],
                mean["bt_qc"],
                "—" if np.isnan(mean["bad_caught"]) else f"{mean['bad_caught']:.0%}",
                f"{mean['good_flagged']:.0%}",
            ]
        )
    print(
        benchlib.table(
            ["raters", "Elo", "BT", "Elo after QC", "BT after QC", "bad raters flagged", "good raters flagged"], rows
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
