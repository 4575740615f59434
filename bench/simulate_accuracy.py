"""How well does a simulated study recover the hidden truth at 10, 20 and 39 judgments per image?

For each N in ``--judgments`` (default 10 20 39; PIPAL averaged ~39) and each
seed in ``--seeds`` (default 0 1 2), builds a fresh study in a temporary SQLite
database, imports a synthetic PIPAL-layout folder into it (random 32x32 PNGs,
``--references`` x ``--per-reference`` images, through the same planner and
import service as ``manage.py import_images``) and runs the real
``dashboard.simulation.simulate_study(study=..., judgments_per_image=N, seed=S)``:
synthetic raters take pairs from the real scheduler and vote through the real
vote service.

Figures, per N: pooled SRCC/KRCC between MOS and truth, and the per-reference
mean SRCC/KRCC (``report.agreement``: srcc, krcc, srcc_per_group,
krcc_per_group), as mean and spread over seeds; the wall time per 1000
simulated judgments. Accuracy figures need no baseline, but as a reference
point the script also prints the SRCC of an *oracle* that replays the same
number of judgments with the same hidden scores and the same preference model
on pairs drawn uniformly at random within a reference, in pure Python with
``annotation.analysis.elo`` (no database, no scheduler), ``--oracle-repeats`` times per
seed. Timing baseline, measured in the same run: one pure Elo step
``annotation.analysis.elo.update``; the time of one simulated judgment (pair + vote
through the database) is printed as a ratio to it.

simulate_study runs the study's real trial flow (training and gold pairs,
60-trial quota per rater, a new synthetic rater when one is done), so the
timing covers those trials too. Default size: 4 references x 24 images (96
images, 6,624 judgments per seed over the three N; about 3.5 minutes on two
busy cores at ~10 ms per simulated judgment). ``--references 10`` (240 images)
takes about 9 minutes.

Run from the repository root:

    .venv/bin/python bench/simulate_accuracy.py
    .venv/bin/python bench/simulate_accuracy.py --references 10 --seeds 0 1 2 3 4
    .venv/bin/python bench/simulate_accuracy.py --help
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import median, ratio

from tests import factories


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Accuracy (SRCC/KRCC vs hidden truth) and speed of dashboard.simulation.simulate_study, "
        "with a random-pairing pure-Python oracle and a pure Elo step as references.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--references", type=int, default=4, help="references in the synthetic folder")
    parser.add_argument("--per-reference", type=int, default=24, help="distorted images per reference")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--judgments", type=float, nargs="+", default=[10, 20, 39], help="judgments per image (N)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="simulation seeds")
    parser.add_argument("--spread", type=float, default=None, help="SD of true scores (default: the app's)")
    parser.add_argument("--oracle-repeats", type=int, default=5, help="random-pairing oracle runs per seed")
    parser.add_argument("--elo-calls", type=int, default=100_000, help="elo.update calls per baseline sample")
    return parser.parse_args(argv)


def configure(tmp: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "pipal_site.settings.local"
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["PIPAL_VAR_DIR"] = str(tmp / "var")
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def time_elo_update(calls: int) -> float:
    """Seconds per annotation.analysis.elo.update call (a loop over varied ratings and outcomes)."""
    from annotation.analysis import elo

    ratings = [1400.0 + 7.0 * (i % 50) for i in range(64)]
    outcomes = [i % 3 == 0 for i in range(64)]
    update = elo.update
    t0 = time.perf_counter()
    for i in range(calls):
        j = i & 63
        update(ratings[j], ratings[63 - j], outcomes[j], k=16.0, m=400.0)
    return (time.perf_counter() - t0) / calls


def oracle(images, seed: int, judgments_per_image: float, spread: float, repeat: int, params):
    """Random pairs within a reference, the same truth and preference model, pure Python Elo."""
    from annotation.analysis import elo
    from dashboard.simulation import true_score
    from iqa.correlation import rank_agreement

    truth = {name: true_score(seed, name, center=params.initial, spread=spread) for name, _ in images}
    by_reference: dict[int, list[str]] = {}
    for name, reference in images:
        by_reference.setdefault(reference, []).append(name)
    references = sorted(by_reference)
    rng = random.Random(f"oracle:{seed}:{repeat}")
    total = round(judgments_per_image * len(images))

    def judgments():
        for _ in range(total):
            a, b = rng.sample(by_reference[rng.choice(references)], 2)
            yield a, b, rng.random() < elo.win_probability(truth[a], truth[b], params.m)

    states = elo.replay(judgments(), [name for name, _ in images], params)
    return rank_agreement(
        [truth[name] for name, _ in images],
        [states[name].mos(params.initial) for name, _ in images],
        [reference for _, reference in images],
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pipal-bench-simulate-"))
    try:
        return run(args, tmp)
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django may not be set up yet
            pass
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> int:
    benchlib.header("simulate_accuracy: dashboard.simulation.simulate_study vs hidden truth")
    configure(tmp)

    from annotation.imports.folders import images_import, plan_folder_import
    from annotation.models import DistortedImage, Rater
    from annotation.studies import study_create
    from dashboard.simulation import DEFAULT_SPREAD, simulate_study

    spread = DEFAULT_SPREAD if args.spread is None else args.spread
    folder = factories.make_pipal_folder(
        tmp / "data",
        references=args.references,
        combos=factories.type_levels(args.per_reference),
        size=(args.size, args.size),
    )
    n_images = args.references * args.per_reference
    print(
        f"{args.references} references x {args.per_reference} images = {n_images} images per study; "
        f"N = {', '.join(f'{n:g}' for n in args.judgments)}; seeds {args.seeds}; spread {spread:g} Elo points; "
        f"SQLite; oracle: random pairs within a reference, {args.oracle_repeats} run(s) per seed"
    )
    elo_samples = [time_elo_update(args.elo_calls)]
    runs = []  # (N, seed, report, seconds)
    oracles: dict[float, list] = {}
    print()
    print("| N | seed | judgments | raters (excluded) | SRCC | KRCC | SRCC/ref | KRCC/ref | s per 1000 judgments |")
    print("|---|------|-----------|-------------------|------|------|----------|----------|----------------------|")
    for n in args.judgments:
        for seed in args.seeds:
            study = study_create(slug=f"sim-n{n:g}-s{seed}".replace(".", "-"))
            images_import(study=study, plan=plan_folder_import(study, folder))
            t0 = time.perf_counter()
            report = simulate_study(study=study, judgments_per_image=n, seed=seed, spread=spread)
            seconds = time.perf_counter() - t0
            runs.append((n, seed, report, seconds))
            excluded = Rater.objects.filter(study=study, excluded=True).count()
            a = report.agreement
            print(
                f"| {n:g} | {seed} | {report.judgments_added:,} | {report.raters} ({excluded}) | {a.srcc:.4f} | "
                f"{a.krcc:.4f} | "
                f"{a.srcc_per_group:.4f} | {a.krcc_per_group:.4f} | {1000 * seconds / report.judgments_added:.2f} |",
                flush=True,
            )
            elo_samples.append(time_elo_update(args.elo_calls))
            images = list(DistortedImage.objects.filter(study=study).order_by("id").values_list("name", "reference_id"))
            for repeat in range(args.oracle_repeats):
                oracles.setdefault(n, []).append(oracle(images, seed, n, spread, repeat, study.elo_params))

    elo_seconds = median(elo_samples)
    print()
    rows = []
    for n in args.judgments:
        mine = [(report, seconds) for m, _, report, seconds in runs if m == n]
        reports = [report.agreement for report, _ in mine]
        per_judgment = sum(s for _, s in mine) / sum(r.judgments_added for r, _ in mine)
        rows.append(
            [
                f"{n:g}",
                spread_of([r.srcc for r in reports]),
                spread_of([r.krcc for r in reports]),
                spread_of([r.srcc_per_group for r in reports]),
                spread_of([r.krcc_per_group for r in reports]),
                spread_of([o.srcc for o in oracles[n]]),
                spread_of([o.srcc_per_group for o in oracles[n]]),
                per_judgment * 1000,
                ratio(per_judgment, elo_seconds),
            ]
        )
    print(
        benchlib.table(
            [
                "N per image",
                "SRCC pooled",
                "KRCC pooled",
                "SRCC per ref",
                "KRCC per ref",
                "oracle SRCC pooled",
                "oracle SRCC per ref",
                "s per 1000 judgments",
                "judgment / elo.update",
            ],
            rows,
        )
    )
    print()
    print(
        f"mean ± sample SD over {len(args.seeds)} seeds (oracle: over {len(args.seeds)} seeds x "
        f"{args.oracle_repeats} runs). Baseline elo.update: {elo_seconds * 1e9:,.0f} ns per call "
        f"(median of {len(elo_samples)} samples of {args.elo_calls:,} calls, "
        f"range {min(elo_samples) * 1e9:,.0f}-{max(elo_samples) * 1e9:,.0f} ns)."
    )
    total = sum(seconds for _, _, _, seconds in runs)
    judged = sum(report.judgments_added for _, _, report, _ in runs)
    print(f"{judged:,} simulated judgments in {total:.1f} s of simulate_study")
    return 0


def spread_of(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f}" if values else "n/a"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


if __name__ == "__main__":
    sys.exit(main())
