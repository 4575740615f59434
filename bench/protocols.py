"""The new study protocols (issue 19) at 10,000 images: scheduling time per trial, analysis time.

**Scheduling.** Builds, in a throwaway database, an ACR, a rank-k (k = 4) and a pairwise
(pairwise-fr) study of 250 references x 40 images = 10,000 images each, and a small one of
each protocol of 5 x 60 = 300 images, straight through the ORM (bulk_create of dummy rows: no
image files; every ReferenceImage and DistortedImage has a dummy stored ``display`` name, so no
display copy is made), with ``judgment_count`` drawn from 0..``--max-count`` so the scheduler's
index order matters. Training and gold trials, the vote rate limit and the quota are off, so
every call picks a real trial. For a few raters per study it then times one trial at a time:
``stimulus_next`` + ``stimulus_submit(with_next=False)`` for acr and rank-k,
``pair_next`` + ``vote_submit(with_next=False)`` for the pairwise baseline, interleaving all six
studies so that machine noise hits them alike. While the services run, opening a stored file
(``FieldFile.open``) or making a display copy (``stimuli.display_for``) raises: the run fails
if a service reads a file.

Figures: median and p99 time per trial and of its two calls, SQL statements per trial
(``django.test.utils.CaptureQueriesContext``, on separate untimed trials); ratios
time(10k) / time(300) (about 1 when the scheduler does not grow with the study) and
time(protocol) / time(pairwise) at the same size.

**Analysis.** Synthetic ACR scores (``synthetic_raters.category_scores`` on the 5-point scale:
``--images`` images, each rated ``--ratings-per-image`` times, each rater rating
``--images-per-rater`` of them; 10,000 x 5 by 500 raters by default) timed for
``mos_table``, ``bt500_screening``, ``correlation_screening`` and ``subject_model`` (sureal).
Synthetic rank-k data (``synthetic_raters.ranking``: sets of 4 versions of one reference, about
``--ratings-per-image`` appearances per image) timed for ``plackett_luce`` (the point fit
``choix.ilsr_rankings`` alone, then with ``--pl-rounds`` bootstrap rounds: the difference per
round is the cost of one round) and ``mean_rank``. Baseline, in the same run: a plain pandas
``groupby("image").mean()`` of the same scores (of the same rank positions for rank-k).

``subject_model`` and ``plackett_luce`` grow faster than the data (sureal iterates over the
whole image x rater matrix; choix's Luce spectral ranking factorises a dense n x n matrix per
iteration), so they run at the sizes ``--fit-sizes`` (1,000, 2,000, 5,000 by default, to keep a run
under ~10 minutes) in increasing order, and a size whose time, extrapolated from the two smaller
ones (power law), exceeds ``--max-fit-s`` is skipped and reported as the extrapolation. The
10,000-image plackett_luce takes ~5 minutes more (third command below); sureal at 10,000 images
extrapolates to about an hour.

Database: SQLite in a temporary folder by default (settings ``pipal_site.settings.local``), or
with ``--postgres`` a fresh PostgreSQL database (``--pg-db``, default pipal_bench_protocols,
dropped and recreated, and dropped again at the end). The analysis part reads no database.

Run from the repository root:

    .venv/bin/python bench/protocols.py
    .venv/bin/python bench/protocols.py --postgres --skip-analysis
    .venv/bin/python bench/protocols.py --fit-sizes 1000,2000,5000,10000   # plackett_luce at 10k too
    .venv/bin/python bench/protocols.py --help
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import benchlib
import next_pair
from benchlib import median, percentile, ratio


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time acr and rank-k trials (stimulus_next + stimulus_submit) at 10k vs 300 images against "
        "pairwise trials in the same run, and the protocols' analyses at 10k images against a pandas groupby mean.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    scheduling = parser.add_argument_group("scheduling")
    scheduling.add_argument("--references", type=int, default=250, help="references of each big study")
    scheduling.add_argument("--per-reference", type=int, default=40, help="images per reference, big studies")
    scheduling.add_argument("--small-references", type=int, default=5, help="references of each small study")
    scheduling.add_argument("--small-per-reference", type=int, default=60, help="images per reference, small")
    scheduling.add_argument("--rank-k", type=int, default=4, help="images per rank-k set")
    scheduling.add_argument("--max-count", type=int, default=10, help="judgment_count is drawn from 0..this")
    scheduling.add_argument("--raters", type=int, default=3, help="raters per study")
    scheduling.add_argument("--calls", type=int, default=150, help="timed trials per rater")
    scheduling.add_argument("--warmup", type=int, default=5, help="untimed trials per rater first")
    scheduling.add_argument("--query-samples", type=int, default=10, help="untimed trials per study to count SQL on")
    scheduling.add_argument("--skip-scheduling", action="store_true", help="only the analysis part")
    analysis = parser.add_argument_group("analysis")
    analysis.add_argument("--images", type=int, default=10_000, help="images of the synthetic data")
    analysis.add_argument("--ratings-per-image", type=int, default=5, help="scores (appearances, rank-k) per image")
    analysis.add_argument("--images-per-rater", type=int, default=100, help="images each synthetic acr rater scores")
    analysis.add_argument("--pl-rounds", type=int, default=3, help="bootstrap rounds of the timed plackett_luce")
    analysis.add_argument(
        "--fit-sizes",
        default="1000,2000,5000",
        help="image counts at which subject_model and plackett_luce run (add 10000 for the full size: ~5 min more)",
    )
    analysis.add_argument(
        "--max-fit-s", type=float, default=300.0, help="skip a fit size whose extrapolated time exceeds this"
    )
    analysis.add_argument(
        "--fits", default="subject_model,plackett_luce", help="which of the slow fits to run at --fit-sizes"
    )
    analysis.add_argument("--repeat", type=int, default=3, help="runs of each fast analysis (median reported)")
    analysis.add_argument("--skip-analysis", action="store_true", help="only the scheduling part")
    parser.add_argument("--seed", type=int, default=1, help="random seed (counts, choices, synthetic data)")
    parser.add_argument("--postgres", action="store_true", help="use a fresh PostgreSQL database instead of SQLite")
    parser.add_argument("--pg-db", default="pipal_bench_protocols", help="name of the throwaway PostgreSQL database")
    parser.add_argument("--pg-admin-url", default=benchlib.PG_ADMIN_URL, help="where to create/drop it from")
    args = parser.parse_args(argv)
    used = args.warmup + args.calls + args.query_samples
    if used > args.small_references * args.small_per_reference:
        parser.error(f"an acr rater of the small study needs {used} unseen images; raise --small-per-reference")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return benchlib.in_throwaway_database(args, "pipal-bench-protocols-", run)


def run(args: argparse.Namespace, tmp: Path) -> int:
    benchlib.header("protocols: acr and rank-k scheduling and analysis at 10k images (issue 19)")
    if not args.skip_scheduling:
        scheduling(args, tmp)
    if not args.skip_analysis:
        analysis(args)
    return 0


# --- scheduling -------------------------------------------------------------------------------

ACR_MOS, RANK_MOS = 3.0, 0.5  # mid-scale starting values for the running means the answers update


def build_study(slug: str, protocol: str, references: int, per_reference: int, args, rng: random.Random):
    """next_pair's study of dummy rows for ``protocol``."""
    return next_pair.build_study(
        slug,
        references,
        per_reference,
        args.max_count,
        rng,
        protocol=protocol,
        options={"rank_k": args.rank_k} if protocol == "rank-k" else {},
        start_mos={"acr": ACR_MOS, "rank-k": RANK_MOS}.get(protocol),
        counted_mos_std=1.0 if protocol == "acr" else None,
    )


class FileOpened(RuntimeError):
    """A service read a stored file during the benchmark (the dummy rows have none)."""


def forbid_file_reads() -> Callable[[], None]:
    """Make opening a stored file or making a display copy raise; returns the undo."""
    from django.db.models.fields.files import FieldFile

    from annotation.rating import stimuli

    saved = (FieldFile.open, stimuli.display_for)

    def refuse(*args, **kwargs):
        raise FileOpened(f"a service opened a file: {args[:2]!r}")

    FieldFile.open = refuse
    stimuli.display_for = refuse

    def undo() -> None:
        FieldFile.open, stimuli.display_for = saved

    return undo


def scheduling(args: argparse.Namespace, tmp: Path) -> None:
    url = next_pair.configure(args, tmp)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from annotation.models import DistortedImage
    from annotation.raters import rater_create
    from annotation.rating.stimulus_trials import stimulus_next, stimulus_submit
    from annotation.rating.trials import pair_next
    from annotation.rating.votes import vote_submit

    print(f"\ndatabase: {connection.vendor} ({url.split('://')[0]})")
    rng = random.Random(args.seed)
    started = time.perf_counter()
    studies = []
    for protocol in ("acr", "rank-k", "pairwise-fr"):
        for size, references, per_reference in (
            ("10k", args.references, args.per_reference),
            ("300", args.small_references, args.small_per_reference),
        ):
            study = build_study(f"{protocol}-{size}", protocol, references, per_reference, args, rng)
            raters = [rater_create(study=study, external_id=f"bench-{i}")[0] for i in range(args.raters)]
            studies.append((protocol, size, study, raters))
    images = {study.slug: DistortedImage.objects.filter(study=study).count() for _, _, study, _ in studies}
    print(
        f"built {len(studies)} studies ({', '.join(f'{slug} {n:,}' for slug, n in images.items())} images) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would soon give a live database
    rngs = {rater.id: random.Random(args.seed * 1000 + rater.id) for *_, raters in studies for rater in raters}

    def one_trial(protocol: str, study, rater) -> tuple[int, int]:
        """(ns to issue, ns to answer) one trial."""
        draw = rngs[rater.id]
        t0 = time.perf_counter_ns()
        if protocol == "pairwise-fr":
            trial = pair_next(study=study, rater=rater, rng=draw)
        else:
            trial = stimulus_next(study=study, rater=rater, rng=draw)
        t1 = time.perf_counter_ns()
        if trial is None:
            raise RuntimeError(f"rater {rater.external_id} of {study.slug} got no trial")
        if protocol == "pairwise-fr":
            choice = draw.choice(("left", "right"))
            vote_submit(
                study=study,
                rater=rater,
                assignment_token=trial.token,
                choice=choice,
                response_ms=1000,
                enforce_rate_limit=False,
                with_next=False,
            )
        elif protocol == "acr":
            score = draw.choice(study.rating_scale.values)
            stimulus_submit(
                study=study,
                rater=rater,
                token=trial.token,
                score=score,
                response_ms=1000,
                enforce_rate_limit=False,
                with_next=False,
            )
        else:
            order = [item.id for item in trial.items]
            draw.shuffle(order)
            stimulus_submit(
                study=study,
                rater=rater,
                token=trial.token,
                order=order,
                response_ms=1000,
                enforce_rate_limit=False,
                with_next=False,
            )
        return t1 - t0, time.perf_counter_ns() - t1

    undo = forbid_file_reads()
    try:
        for _ in range(args.warmup):
            for protocol, _, study, raters in studies:
                for rater in raters:
                    one_trial(protocol, study, rater)
        issue: dict[str, list[int]] = {study.slug: [] for _, _, study, _ in studies}
        answer: dict[str, list[int]] = {study.slug: [] for _, _, study, _ in studies}
        started = time.perf_counter()
        for _ in range(args.calls):
            for protocol, _, study, raters in studies:
                for rater in raters:
                    issued, answered = one_trial(protocol, study, rater)
                    issue[study.slug].append(issued)
                    answer[study.slug].append(answered)
        timed_wall = time.perf_counter() - started
        queries: dict[str, list[int]] = {}
        for protocol, _, study, raters in studies:
            queries[study.slug] = []
            for i in range(args.query_samples):
                with CaptureQueriesContext(connection) as captured:
                    one_trial(protocol, study, raters[i % len(raters)])
                queries[study.slug].append(sum(next_pair.is_data(q["sql"]) for q in captured.captured_queries))
    finally:
        undo()

    trial = {slug: [a + b for a, b in zip(issue[slug], answer[slug], strict=True)] for slug in issue}
    pairwise = {size: median(trial[f"pairwise-fr-{size}"]) for size in ("10k", "300")}
    rows = []
    for protocol, size, study, _ in studies:
        slug = study.slug
        calls = "pair_next + vote_submit" if protocol == "pairwise-fr" else "stimulus_next + stimulus_submit"
        rows.append(
            [
                f"{protocol}, {images[slug]:,} images: {calls}",
                len(trial[slug]),
                median(issue[slug]) / 1e6,
                median(answer[slug]) / 1e6,
                median(trial[slug]) / 1e6,
                percentile(trial[slug], 99) / 1e6,
                ratio(median(trial[slug]), pairwise[size]),
                next_pair.spread(queries[slug]),
            ]
        )
    print()
    print(
        benchlib.table(
            [
                "trial",
                "trials",
                "issue median ms",
                "answer median ms",
                "trial median ms",
                "trial p99 ms",
                "median / pairwise, same size",
                "data SQL statements per trial",
            ],
            rows,
        )
    )
    print()
    for protocol in ("acr", "rank-k", "pairwise-fr"):
        big, small = trial[f"{protocol}-10k"], trial[f"{protocol}-300"]
        print(
            f"{protocol}: time(10k) / time(300): {ratio(median(big), median(small)):.2f} (medians), "
            f"{ratio(percentile(big, 99), percentile(small, 99)):.2f} (p99)"
        )
    print(f"timed loop wall time {timed_wall:.1f} s; no service opened a file")


# --- analysis ---------------------------------------------------------------------------------


def timed(function: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """(median seconds over ``repeat`` runs, the last result)."""
    seconds, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - t0)
    return median(seconds), result


def acr_data(n_images: int, args, rng):
    """(scores, image -> reference): the Li & Bampis model's raters on the 5-point ACR scale, each
    scoring ``--images-per-rater`` images, every image scored ``--ratings-per-image`` times."""
    from annotation.analysis import synthetic_raters

    per_reference = args.per_reference
    images = [f"R{i // per_reference:04d}_{i % per_reference:03d}" for i in range(n_images)]
    reference_of = {image: image[:5] for image in images}
    truth = dict(zip(images, rng.uniform(1.5, 4.5, n_images).tolist(), strict=True))
    # Each round is a fresh permutation cut into raters' blocks, so no rater meets an image twice.
    per_rater = {}
    for round_ in range(args.ratings_per_image):
        order = rng.permutation(n_images)
        for start in range(0, n_images, args.images_per_rater):
            per_rater[f"s{round_}_{start}"] = [images[i] for i in order[start : start + args.images_per_rater]]
    raters = [
        synthetic_raters.SyntheticRater(name, bias=float(rng.normal(0, 0.3)), inconsistency=float(rng.uniform(0.3, 1)))
        for name in per_rater
    ]
    scores = synthetic_raters.category_scores(truth, raters, [1, 2, 3, 4, 5], rng, per_rater)
    return scores, reference_of


def rank_data(n_images: int, args, rng) -> list[list[str]]:
    """Plackett–Luce rankings of ``--rank-k`` versions of one reference, about
    ``--ratings-per-image`` appearances per image."""
    from annotation.analysis import synthetic_raters

    per_reference, k = args.per_reference, args.rank_k
    orders = []
    for first in range(0, n_images, per_reference):
        versions = [f"R{first // per_reference:04d}_{i:03d}" for i in range(min(per_reference, n_images - first))]
        truth = dict(zip(versions, rng.normal(0, 1, len(versions)).tolist(), strict=True))
        for _ in range(round(len(versions) * args.ratings_per_image / k)):
            chosen = rng.choice(len(versions), k, replace=False)
            orders.append(synthetic_raters.ranking({versions[i]: truth[versions[i]] for i in chosen}, rng))
    return orders


def extrapolated(sizes: list[int], seconds: list[float], size: int) -> float:
    """seconds at ``size`` on the power law through the last two measured points (NaN before two)."""
    if len(seconds) < 2:
        return math.nan
    exponent = math.log(seconds[-1] / seconds[-2]) / math.log(sizes[-1] / sizes[-2])
    return seconds[-1] * (size / sizes[-1]) ** exponent


def growth(sizes: list[int], seconds: list[float]) -> str:
    if len(seconds) < 2:
        return "n/a"
    return f"{math.log(seconds[-1] / seconds[-2]) / math.log(sizes[-1] / sizes[-2]):.2f}"


def plackett_luce_rows(size: int, orders: list[list[str]], args, done_sizes, done_seconds, record) -> list[list]:
    """Rows of the point fit and of one bootstrap round at ``size`` images, run or extrapolated."""
    import choix
    import pandas as pd

    from annotation.analysis import rankings

    positions = pd.DataFrame(
        [(item, position) for order in orders for position, item in enumerate(order, start=1)],
        columns=["image", "position"],
    )
    base, _ = timed(lambda: positions.groupby("image")["position"].mean(), repeat=5)
    data_label = f"{len(orders):,} rankings"
    projected = extrapolated(done_sizes["pl_point"], done_seconds["pl_point"], size)
    projected_round = extrapolated(done_sizes["pl_round"], done_seconds["pl_round"], size)
    if projected + args.pl_rounds * projected_round > args.max_fit_s:
        return [
            [f"plackett_luce point fit, {size:,} images", "skipped", projected, ratio(projected, base)],
            [f"plackett_luce per bootstrap round, {size:,} images", "skipped", projected_round, math.nan],
        ]
    index = {item: i for i, item in enumerate(dict.fromkeys(item for order in orders for item in order))}
    data = [[index[item] for item in order] for order in orders]
    n_items = len(index)
    point, _ = timed(lambda: choix.ilsr_rankings(n_items, data, alpha=rankings.ALPHA))
    total, _ = timed(lambda: rankings.plackett_luce(orders, rounds=args.pl_rounds))
    per_round = max(total - point, 0.0) / args.pl_rounds
    record("pl_point", size, point)
    record("pl_round", size, per_round)
    return [
        [f"plackett_luce point fit (choix.ilsr_rankings), {size:,} images", data_label, point, ratio(point, base)],
        [
            f"plackett_luce per bootstrap round ({args.pl_rounds} timed), {size:,} images",
            data_label,
            per_round,
            ratio(per_round, base),
        ],
    ]


def analysis(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd
    from threadpoolctl import threadpool_info

    from annotation.analysis import category_ratings, rankings

    blas = ", ".join(sorted({f"{pool['internal_api']} {pool['num_threads']} thread(s)" for pool in threadpool_info()}))
    print(f"\nanalysis: BLAS {blas or 'none loaded'} (the fits' dense algebra shares the cores with anything else)")
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    scores, reference_of = acr_data(args.images, args, rng)
    orders = rank_data(args.images, args, rng)
    print(
        f"analysis data: {len(scores):,} acr scores of {scores['image'].nunique():,} images by "
        f"{scores['rater'].nunique():,} raters; {len(orders):,} rankings of {args.rank_k} "
        f"({len({item for order in orders for item in order}):,} images); made in {time.perf_counter() - started:.1f} s"
    )
    positions = pd.DataFrame(
        [(item, position) for order in orders for position, item in enumerate(order, start=1)],
        columns=["image", "position"],
    )
    acr_base, _ = timed(lambda: scores.groupby("image")["score"].mean(), repeat=max(args.repeat, 5))
    rank_base, _ = timed(lambda: positions.groupby("image")["position"].mean(), repeat=max(args.repeat, 5))

    rows = [["baseline: acr scores groupby('image').mean()", f"{len(scores):,} scores", acr_base, 1.0]]
    for name, function in (
        ("mos_table", lambda: category_ratings.mos_table(scores)),
        ("bt500_screening", lambda: category_ratings.bt500_screening(scores)),
        ("correlation_screening", lambda: category_ratings.correlation_screening(scores)),
    ):
        seconds, _ = timed(function, args.repeat)
        rows.append([name, f"{len(scores):,} scores", seconds, ratio(seconds, acr_base)])
    rows.append(["baseline: rank positions groupby('image').mean()", f"{len(orders):,} rankings", rank_base, 1.0])
    seconds, _ = timed(lambda: rankings.mean_rank(orders), args.repeat)
    rows.append(["mean_rank", f"{len(orders):,} rankings", seconds, ratio(seconds, rank_base)])

    sizes = sorted(int(size) for size in args.fit_sizes.split(","))
    fits = set(args.fits.split(","))
    fit_rows = []
    done_sizes: dict[str, list[int]] = {"subject_model": [], "pl_point": [], "pl_round": []}
    done_seconds: dict[str, list[float]] = {"subject_model": [], "pl_point": [], "pl_round": []}

    def record(kind: str, size: int, seconds: float) -> None:
        done_sizes[kind].append(size)
        done_seconds[kind].append(seconds)

    for size in sizes:
        size_rng = np.random.default_rng(args.seed + size)
        sub_scores, sub_reference_of = acr_data(size, args, size_rng)
        sub_orders = rank_data(size, args, size_rng)
        if "subject_model" in fits:
            base, _ = timed(lambda s=sub_scores: s.groupby("image")["score"].mean(), repeat=5)
            projected = extrapolated(done_sizes["subject_model"], done_seconds["subject_model"], size)
            if projected > args.max_fit_s:
                label = f"subject_model (sureal), {size:,} images"
                fit_rows.append([label, "skipped", projected, ratio(projected, base)])
            else:
                seconds, fit = timed(lambda s=sub_scores, r=sub_reference_of: category_ratings.subject_model(s, r))
                record("subject_model", size, seconds)
                label = f"subject_model (sureal {fit.model}, {fit.iterations} iterations), {size:,} images"
                fit_rows.append([label, f"{len(sub_scores):,} scores", seconds, ratio(seconds, base)])
        if "plackett_luce" in fits:
            fit_rows.extend(plackett_luce_rows(size, sub_orders, args, done_sizes, done_seconds, record))

    print()
    print(benchlib.table(["analysis", "data", "seconds", "/ baseline"], rows))
    print()
    print(
        benchlib.table(
            ["fit (seconds in brackets: extrapolated, not run)", "data", "seconds", "/ groupby mean of the same data"],
            [
                [label, data, seconds if data != "skipped" else f"({seconds:,.0f})", r]
                for label, data, seconds, r in fit_rows
            ],
        )
    )
    print()
    for kind, label in (
        ("subject_model", "subject_model"),
        ("pl_point", "plackett_luce point fit"),
        ("pl_round", "plackett_luce bootstrap round"),
    ):
        print(
            f"{label}: growth exponent between the two largest sizes run "
            f"{growth(done_sizes[kind], done_seconds[kind])} (time ∝ images^exponent)"
        )
    if done_sizes["pl_point"]:
        from annotation.analysis.bradley_terry import DEFAULT_ROUNDS

        size = done_sizes["pl_point"][-1]
        cost = done_seconds["pl_point"][-1] + DEFAULT_ROUNDS * done_seconds["pl_round"][-1]
        print(f"plackett_luce with a study's default {DEFAULT_ROUNDS} rounds at {size:,} images: about {cost:,.0f} s")


if __name__ == "__main__":
    sys.exit(main())
