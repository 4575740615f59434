"""The vote endpoint under load: the app against a hand-written reference path, PostgreSQL behind gunicorn.

What it does, in order:

1. creates a fresh PostgreSQL database (``--db``, default pipal_bench; dropped
   and recreated) and runs ``manage.py migrate`` and ``collectstatic`` with
   ``DJANGO_SETTINGS_MODULE=pipal_site.settings.production`` and the
   environment of a production host on loopback (SECRET_KEY, DATABASE_URL,
   ALLOWED_HOSTS=127.0.0.1, no SSL redirect or secure cookies,
   DB_CONN_MAX_AGE=60, MEDIA_ROOT in a temporary folder);
2. writes a synthetic PIPAL-layout folder (``--references`` x
   ``--per-reference`` random 32x32 PNGs, default 20 x 30) and loads it twice,
   as study ``bench`` (the app's) and its twin ``reference`` (the reference
   path's), with ``manage.py create_study`` and ``manage.py import_images``;
   practice and gold pairs, the per-rater quota and the vote rate limit are
   turned off on both, since a load generator can neither answer gold pairs nor
   must it run out of quota; then ``ANALYZE`` (a live database has planner
   statistics, a fresh one not yet);
3. starts ``gunicorn pipal_site.wsgi -k gthread`` on a free loopback port
   (``--workers``, ``--threads``) with ``bench/vote_reference_settings.py``:
   production's settings plus the two routes of ``bench/vote_reference.py``
   (the same pair and vote transaction as a minimal Django view in raw SQL,
   with the same invariants), so the app and the reference path share one
   server, one database and one run;
4. joins ``--raters`` raters (default 50) to each study through
   ``POST /api/studies/<slug>/raters/``;
5. runs client threads (stdlib ``http.client``, one keep-alive connection
   each) in these phases: warm-up (not reported); *floor* (``--floor-duration``
   s, an unauthenticated GET next: a fast 401 through gunicorn, Django's
   middleware and DRF that touches no database); *vote* (``--duration`` s, the
   app at ``--raters`` clients, with PostgreSQL lock sampling); then the app and
   the reference path in turn at ``--raters`` and at ``--few`` (default 8)
   clients; *floor* again. A voting thread sends GET next for its first trial,
   then loops ``POST votes`` with ``{"assignment", "choice", "response_ms": 800}``,
   taking the next trial from the vote's answer, as the rating page does;
6. checks consistency on both studies: judgments in the database = 201
   responses, every assignment voted at most once, the sum of all Elo ratings
   unchanged (Elo is zero-sum), judgment counts = 2 x judgments, and
   ``manage.py recompute_mos --check`` (a replay of the judgment log equals the
   live ratings);
7. always stops gunicorn and drops the database (``finally``).

Figures: votes/s; p50/p99 latency of the vote POST and of GET next; every
non-2xx status (must be none); CPU time of the gunicorn workers and of the
database's PostgreSQL backends per vote. Ratios against the reference path
measured in the same run, at both client counts: votes/s, CPU per vote and
p50/p99 of the app over the reference's (and, for context, against the
framework floor). The client threads run on the same machine and take their
share of the CPU.

Run from the repository root (needs PostgreSQL at 127.0.0.1:5432, user
postgres, trust auth):

    .venv/bin/python bench/vote_load.py
    .venv/bin/python bench/vote_load.py --workers 3 --threads 4 --duration 30
    .venv/bin/python bench/vote_load.py --help

Exit status 1 when any request was not 2xx or a consistency check failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import benchlib
from benchlib import ROOT, percentile, ratio

from tests import factories

SLUG = "bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Load-test the vote endpoint: N concurrent raters against PostgreSQL behind gunicorn, "
        "the app against a hand-written reference path of the same transaction (bench/vote_reference.py) "
        "and the framework floor (an unauthenticated 401 through the same stack), all in the same run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--raters", type=int, default=50, help="concurrent raters (client threads)")
    parser.add_argument("--few", type=int, default=8, help="the smaller number of clients compared")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of voting")
    parser.add_argument("--floor-duration", type=float, default=5.0, help="seconds of each floor phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unreported warm-up")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (gthread)")
    parser.add_argument("--references", type=int, default=20, help="references in the study")
    parser.add_argument("--per-reference", type=int, default=30, help="distorted images per reference")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--db", default="pipal_bench", help="throwaway PostgreSQL database (dropped and recreated)")
    parser.add_argument("--pg-admin-url", default=benchlib.PG_ADMIN_URL, help="where to create/drop it from")
    parser.add_argument("--port", type=int, default=0, help="gunicorn port (0: a free one)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the client choices")
    return parser.parse_args(argv)


# --- measurement ------------------------------------------------------------------


@dataclass
class Phase:
    """Everything the client threads saw during one phase."""

    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)  # seconds, by request kind
    statuses: dict[str, Counter] = field(default_factory=dict)
    errors: Counter = field(default_factory=Counter)
    wall: float = 0.0
    server_cpu: float = 0.0  # CPU seconds of the gunicorn workers during the phase
    pg_cpu: float = 0.0  # CPU seconds of the database's PostgreSQL backends during the phase
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)
            self.statuses.setdefault(kind, Counter())[status] += 1

    def count(self, kind: str, status: int | None = None) -> int:
        counter = self.statuses.get(kind, Counter())
        return counter[status] if status is not None else sum(counter.values())

    def non_2xx(self) -> dict[str, dict[int, int]]:
        return {
            kind: {status: n for status, n in counter.items() if not 200 <= status < 300}
            for kind, counter in self.statuses.items()
            if any(not 200 <= status < 300 for status in counter)
        }


class Client:
    """One keep-alive connection; reconnects once on a dropped connection."""

    def __init__(self, port: int, token: str | None):
        self.port = port
        self.headers = {"Accept": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes, float]:
        headers = dict(self.headers)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            t0 = time.perf_counter()
            try:
                self.connection.request(method, path, body=payload, headers=headers)
                response = self.connection.getresponse()
                data = response.read()
                return response.status, data, time.perf_counter() - t0
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.connection.close()


def run_phase(
    name: str, port: int, tokens: list[str | None], seconds: float, vote: bool, seed: int, prefix: str = "/api",
    slug: str = SLUG,
) -> Phase:  # fmt: skip
    """All threads start together and loop until ``seconds`` have passed; a
    vote cycle (GET next + POST vote) started before the end is finished.
    ``prefix`` "/api" is the app; "/reference" the hand-written reference path."""
    phase = Phase(name)
    barrier = threading.Barrier(len(tokens) + 1)
    start = [0.0]
    ends = [0.0] * len(tokens)
    next_path = f"{prefix}/studies/{slug}/pairs/next/"
    vote_path = f"{prefix}/studies/{slug}/votes/"

    def worker(index: int, token: str | None) -> None:
        rng = random.Random(f"{seed}:{name}:{index}")
        client = Client(port, token)
        try:
            barrier.wait()
            deadline = start[0] + seconds
            trial = None
            while time.perf_counter() < deadline:
                try:
                    if trial is None:
                        # The first trial (and after a refusal): GET next. Then every vote's
                        # answer carries the next trial, as on the rating page: one request per trial.
                        status, body, elapsed = client.request("GET", next_path)
                        phase.record("next" if vote else "floor", status, elapsed)
                        if vote and status == 204:
                            break  # this rater has nothing left
                        if not vote or status != 200:
                            continue
                        trial = json.loads(body)
                    choice = rng.choice(("left", "right"))
                    status, body, elapsed = client.request(
                        "POST", vote_path, {"assignment": trial["assignment"], "choice": choice, "response_ms": 800}
                    )
                    phase.record("vote", status, elapsed)
                    trial = json.loads(body)["next"] if status == 201 else None
                    if status == 201 and trial is None:
                        break  # this rater has nothing left
                except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                    trial = None
                    with phase.lock:
                        phase.errors[type(error).__name__] += 1
        finally:
            ends[index] = time.perf_counter()
            client.close()

    threads = [threading.Thread(target=worker, args=(i, token), daemon=True) for i, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    start[0] = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join()
    phase.wall = max(ends) - start[0]
    return phase


# --- CPU accounting (Linux /proc) ---------------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float | None:
    """utime + stime of one process in seconds, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_snapshot(pids: list[int]) -> dict[int, float]:
    return {pid: cpu for pid in pids if (cpu := process_cpu(pid)) is not None}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def backend_pids(admin_url: str, db: str) -> list[int]:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (db,)
        ).fetchall()
    return [row[0] for row in rows]


class LockSampler(threading.Thread):
    """Polls pg_stat_activity: how many of the database's backends are busy, and
    how many of those wait on a lock (row locks between concurrent votes)."""

    def __init__(self, admin_url: str, db: str, interval: float = 0.2):
        super().__init__(daemon=True)
        self.admin_url, self.db, self.interval = admin_url, db, interval
        self.samples: list[tuple[int, int]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            while not self.halt.wait(self.interval):
                self.samples.append(
                    connection.execute(
                        "SELECT count(*) FILTER (WHERE state = 'active'), "
                        "count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') "
                        "FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                        (self.db,),
                    ).fetchone()
                )

    def stop(self) -> tuple[float, float, float]:
        """Mean active backends, mean backends waiting on a lock, share of samples with any lock wait."""
        self.halt.set()
        self.join(timeout=5)
        if not self.samples:
            return 0.0, 0.0, 0.0
        n = len(self.samples)
        return (
            sum(a for a, _ in self.samples) / n,
            sum(w for _, w in self.samples) / n,
            sum(1 for _, w in self.samples if w) / n,
        )


# Training and gold (control) pairs, the per-rater quota and the vote rate
# limit are turned off: a load generator cannot tell a gold pair's right answer
# (a wrong one excludes the rater, as it should) and must not run out of quota
# or be slowed down. The bookkeeping those features do on every trial (progress
# counts, the rater's last-vote lock) still runs. Only fields the model has are set.
PLAIN_FLAGS = ["--training-trials=0", "--gold-every=0", "--min-vote-interval-ms=0", "--trials-per-rater=10000000"]
# For a create_study without those flags: the same through the ORM (a no-op when they were given).
PLAIN_STUDY = """
from annotation.models import Study
study = Study.objects.get(slug=%r)
wanted = {"training_trials": 0, "gold_every": 0, "min_vote_interval_ms": 0, "trials_per_rater": 10_000_000}
fields = {name: value for name, value in wanted.items() if hasattr(study, name)}
for name, value in fields.items():
    setattr(study, name, value)
study.save()
print(", ".join(f"{name}={value}" for name, value in fields.items()) or "none")
"""


# --- setup --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict[str, str], *command: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


REFERENCE_SLUG = "reference"


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", f"/api/studies/{SLUG}/pairs/next/")
            status = connection.getresponse().status
            connection.close()
            if status in (401, 403):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer on port {port} within {timeout:.0f} s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # gunicorn's graceful shutdown of its workers
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: only gunicorn and its workers
        process.wait(timeout=10)


def join_raters(port: int, count: int, slug: str = SLUG, prefix: str = "bench-rater") -> list[str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    tokens = []
    try:
        for i in range(count):
            body = json.dumps({"external_id": f"{prefix}-{i:03d}"}).encode()
            connection.request(
                "POST", f"/api/studies/{slug}/raters/", body=body, headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            data = response.read()
            if response.status != 201:
                raise RuntimeError(f"joining rater {i} answered {response.status}: {data[:300]!r}")
            tokens.append(json.loads(data)["token"])
    finally:
        connection.close()
    return tokens


def analyze(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("ANALYZE")


def db_totals(url: str) -> dict[str, float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        elo_sum, images, counts, low, high = connection.execute(
            "SELECT sum(elo), count(*), sum(judgment_count), min(judgment_count), max(judgment_count) "
            "FROM annotation_distortedimage"
        ).fetchone()
        (count_sd,) = connection.execute("SELECT stddev_pop(judgment_count) FROM annotation_distortedimage").fetchone()
        (pair_sharing,) = connection.execute(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM annotation_assignment "
            "GROUP BY image_low_id, image_high_id) AS pairs"
        ).fetchone()
        (judgments,) = connection.execute("SELECT count(*) FROM annotation_judgment").fetchone()
        (voted,) = connection.execute("SELECT count(*) FROM annotation_assignment WHERE status = 'voted'").fetchone()
        (assignments,) = connection.execute("SELECT count(*) FROM annotation_assignment").fetchone()
        (linked,) = connection.execute("SELECT count(DISTINCT assignment_id) FROM annotation_judgment").fetchone()
        (controls,) = connection.execute("SELECT count(*) FROM annotation_controltrial").fetchone()
    return {
        "elo_sum": float(elo_sum),
        "images": images,
        "judgment_counts": int(counts),
        "min_count": low,
        "max_count": high,
        "count_sd": float(count_sd or 0.0),
        "most_issued_pair": pair_sharing,
        "judgments": judgments,
        "voted": voted,
        "assignments": assignments,
        "distinct_assignments": linked,
        "controls": controls,
    }


# --- main ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pipal-bench-vote-load-"))
    process = None
    log = None
    try:
        benchlib.header("vote_load: POST /votes/ under concurrent raters, PostgreSQL + gunicorn")
        benchlib.pg_recreate(args.db, args.pg_admin_url)
        url = benchlib.pg_url(args.db, args.pg_admin_url)
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="pipal_site.settings.production",
            SECRET_KEY="bench",
            DATABASE_URL=url,
            ALLOWED_HOSTS="127.0.0.1",
            EMAIL_URL="console://",
            SECURE_SSL_REDIRECT="false",
            SESSION_COOKIE_SECURE="false",
            CSRF_COOKIE_SECURE="false",
            DB_CONN_MAX_AGE="60",
            MEDIA_ROOT=str(tmp / "media"),
            PIPAL_VAR_DIR=str(tmp / "var"),
        )
        env.pop("DEBUG", None)
        t0 = time.perf_counter()
        manage(env, "migrate", "--no-input")
        manage(env, "collectstatic", "--no-input")  # as a deployment does (WhiteNoise serves STATIC_ROOT)
        folder = factories.make_pipal_folder(
            tmp / "data",
            references=args.references,
            combos=factories.type_levels(args.per_reference),
            size=(args.size, args.size),
        )
        flags = [flag for flag in PLAIN_FLAGS if flag.split("=")[0] in manage(env, "create_study", "--help")]
        for slug in (SLUG, REFERENCE_SLUG):  # the app's study, and the reference path's twin
            manage(env, "create_study", slug, *flags)
            settings = manage(env, "shell", "-c", PLAIN_STUDY % slug).splitlines()[-1]  # after Django's note
            print(f"study {slug} settings for the benchmark: {settings}")
            print(manage(env, "import_images", slug, str(folder)).splitlines()[-1])
        analyze(url)  # a live database has its planner statistics (autovacuum); a fresh one not yet
        before = db_totals(url)
        print(f"database {args.db} ready in {time.perf_counter() - t0:.1f} s: {before['images']} images")

        port = args.port or free_port()
        log = (tmp / "gunicorn.log").open("w")
        # The same gunicorn serves the app and the reference path (bench/vote_reference.py).
        env["DJANGO_SETTINGS_MODULE"] = "vote_reference_settings"
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "bench"), env.get("PYTHONPATH", "")])
        command = [
            sys.executable, "-m", "gunicorn", "pipal_site.wsgi",
            "-b", f"127.0.0.1:{port}",
            "--workers", str(args.workers),
            "--threads", str(args.threads),
            "-k", "gthread",
            "--log-level", "warning",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_ready(port, process)
        print(f"gunicorn: {' '.join(command[3:])} (pid {process.pid})")
        tokens = join_raters(port, args.raters)
        reference_tokens = join_raters(port, args.raters, REFERENCE_SLUG, "reference-rater")
        print(f"{len(tokens)} + {len(reference_tokens)} raters joined; {args.raters} client threads, one keep-alive "
              "connection each")  # fmt: skip

        anonymous: list[str | None] = [None] * args.raters
        warm = [
            run_phase("warm-floor", port, anonymous, args.warmup / 2, vote=False, seed=args.seed),
            run_phase("warm-vote", port, tokens, args.warmup / 2, vote=True, seed=args.seed),
            run_phase("warm-reference", port, reference_tokens, args.warmup / 2, vote=True, seed=args.seed,
                      prefix="/reference", slug=REFERENCE_SLUG),
        ]  # fmt: skip
        workers = children(process.pid)
        floor_cpu = cpu_snapshot(workers)
        floor_a = run_phase("floor-before", port, anonymous, args.floor_duration, vote=False, seed=args.seed)
        server_before = cpu_snapshot(workers)
        floor_a.server_cpu = cpu_used(floor_cpu, server_before)
        pg_before = cpu_snapshot(backend_pids(args.pg_admin_url, args.db))
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        sampler = LockSampler(args.pg_admin_url, args.db)
        sampler.start()
        votes = run_phase("vote", port, tokens, args.duration, vote=True, seed=args.seed)
        locks = sampler.stop()
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        server_cpu = cpu_used(server_before, cpu_snapshot(workers))
        pg_cpu = cpu_used(pg_before, cpu_snapshot(backend_pids(args.pg_admin_url, args.db)))
        client_cpu = (client_after.ru_utime + client_after.ru_stime) - (client_before.ru_utime + client_before.ru_stime)
        # The app against the reference path, at 50 and at 8 clients, each with its CPU.
        compared = []
        for clients in (args.raters, args.few):
            for label, prefix, slug, pool in (
                ("app", "/api", SLUG, tokens), ("reference", "/reference", REFERENCE_SLUG, reference_tokens)
            ):  # fmt: skip
                server_at = cpu_snapshot(workers)
                pg_at = cpu_snapshot(backend_pids(args.pg_admin_url, args.db))
                phase = run_phase(f"{label}@{clients}", port, pool[:clients], args.duration, vote=True,
                                  seed=args.seed, prefix=prefix, slug=slug)  # fmt: skip
                phase.server_cpu = cpu_used(server_at, cpu_snapshot(workers))
                phase.pg_cpu = cpu_used(pg_at, cpu_snapshot(backend_pids(args.pg_admin_url, args.db)))
                compared.append((label, clients, phase))
        floor_cpu = cpu_snapshot(workers)
        floor_b = run_phase("floor-after", port, anonymous, args.floor_duration, vote=False, seed=args.seed)
        floor_b.server_cpu = cpu_used(floor_cpu, cpu_snapshot(workers))
        stop(process)

        after = db_totals(url)
        replay = "\n".join(manage(env, "recompute_mos", slug, "--check") for slug in (SLUG, REFERENCE_SLUG))
        status = report(
            args, before, after, replay, warm, floor_a, votes, floor_b, server_cpu, pg_cpu, client_cpu, locks, compared
        )
        return status
    finally:
        stop(process)
        if log is not None:
            log.close()
            # Django logs every 4xx at WARNING ("Unauthorized: ..."): one line per floor request.
            lines = (tmp / "gunicorn.log").read_text().splitlines()
            other = [line for line in lines if not line.startswith("Unauthorized: ")]
            print(f"\ngunicorn log: {len(lines) - len(other)} 'Unauthorized' warning line(s) from the floor phases")
            if other:
                print("other lines (last 30):\n" + "\n".join(other[-30:]))
        benchlib.pg_drop(args.db, args.pg_admin_url)
        shutil.rmtree(tmp, ignore_errors=True)


def compare(compared) -> list[str]:
    """The app against the reference path at each client count: votes/s, CPU per vote, latency."""
    ms = 1000.0
    rows, problems, goals = [], [], []
    by_key = {(label, clients): phase for label, clients, phase in compared}
    for clients in sorted({clients for _, clients, _ in compared}, reverse=True):
        figures = {}
        for label in ("app", "reference"):
            phase = by_key[(label, clients)]
            accepted = phase.count("vote", 201)
            latency = phase.latencies.get("vote", [])
            figures[label] = (
                accepted / phase.wall,
                (phase.server_cpu + phase.pg_cpu) / accepted * ms if accepted else math.nan,
                percentile(latency, 50) * ms,
                percentile(latency, 99) * ms,
            )
            rows.append([f"{label} @ {clients} clients", accepted, *figures[label],
                         phase.server_cpu / accepted * ms if accepted else math.nan,
                         phase.pg_cpu / accepted * ms if accepted else math.nan])  # fmt: skip
            for kind, statuses in phase.non_2xx().items():
                problems.append(f"{label}@{clients}: {kind} answered {statuses}")
        app, reference = figures["app"], figures["reference"]
        rows.append([f"app / reference @ {clients}", "", ratio(app[0], reference[0]), ratio(app[1], reference[1]),
                     ratio(app[2], reference[2]), ratio(app[3], reference[3]), "", ""])  # fmt: skip
        goals.append((clients, app))
    print()
    print(benchlib.table(
        ["path @ clients", "votes", "votes/s", "CPU ms/vote (gunicorn + PG)", "p50 ms", "p99 ms", "gunicorn ms/vote",
         "PG ms/vote"], rows,
    ))  # fmt: skip
    return problems


def report(
    args, before, after, replay, warm, floor_a, votes, floor_b, server_cpu, pg_cpu, client_cpu, locks, compared
) -> int:
    ms = 1000.0
    floor_rate = (floor_a.count("floor") / floor_a.wall + floor_b.count("floor") / floor_b.wall) / 2
    floor_p50 = (percentile(floor_a.latencies["floor"], 50) + percentile(floor_b.latencies["floor"], 50)) / 2
    accepted = votes.count("vote", 201)
    vote_rate = accepted / votes.wall
    request_rate = (votes.count("next") + votes.count("vote")) / votes.wall
    vote_lat = votes.latencies.get("vote", [])
    next_lat = votes.latencies.get("next", [])

    rows = []
    for phase in (floor_a, floor_b):
        lat = phase.latencies["floor"]
        rows.append(
            [
                f"{phase.name}: GET next, no credentials (401)",
                phase.count("floor"),
                phase.count("floor") / phase.wall,
                percentile(lat, 50) * ms,
                percentile(lat, 99) * ms,
                "floor",
            ]
        )
    rows.append(
        [
            "vote: GET next (Bearer)",
            votes.count("next"),
            votes.count("next") / votes.wall,
            percentile(next_lat, 50) * ms,
            percentile(next_lat, 99) * ms,
            f"p50 {ratio(percentile(next_lat, 50), floor_p50):.1f}x floor p50",
        ]
    )
    rows.append(
        [
            "vote: POST votes (201)",
            votes.count("vote"),
            votes.count("vote") / votes.wall,
            percentile(vote_lat, 50) * ms,
            percentile(vote_lat, 99) * ms,
            f"p50 {ratio(percentile(vote_lat, 50), floor_p50):.1f}x, "
            f"p99 {ratio(percentile(vote_lat, 99), floor_p50):.1f}x floor p50",
        ]
    )
    print()
    print(benchlib.table(["phase: request", "requests", "per s", "p50 ms", "p99 ms", "vs floor"], rows))
    print()
    print(
        f"votes/s: {vote_rate:.1f} over {votes.wall:.1f} s ({accepted} votes); all requests in the vote phase "
        f"{request_rate:.1f}/s"
    )
    print(
        f"floor: {floor_rate:.1f} requests/s, p50 {floor_p50 * ms:.2f} ms (mean of before/after; drift "
        f"{ratio(floor_b.count('floor') / floor_b.wall, floor_a.count('floor') / floor_a.wall):.2f}x)"
    )
    print(f"ratio votes/s / floor requests/s: {ratio(vote_rate, floor_rate):.3f}")
    print(f"ratio vote-phase requests/s / floor requests/s: {ratio(request_rate, floor_rate):.3f}")
    print(f"ratio vote p50 / floor p50: {ratio(percentile(vote_lat, 50), floor_p50):.2f}")
    floor_requests = floor_a.count("floor") + floor_b.count("floor")
    floor_cpu = (floor_a.server_cpu + floor_b.server_cpu) / floor_requests if floor_requests else float("nan")
    print(f"gunicorn CPU per floor request: {floor_cpu * ms:.3f} ms")
    if accepted:
        print(
            f"ratio gunicorn CPU per vote (GET next + POST vote) / per floor request: "
            f"{ratio(server_cpu / accepted, floor_cpu):.1f} (CPU time suffers less from a busy machine than wall time)"
        )
        print(
            f"CPU per vote (GET next + POST vote): gunicorn workers {server_cpu / accepted * ms:.2f} ms, "
            f"PostgreSQL backends {pg_cpu / accepted * ms:.2f} ms, load generator {client_cpu / accepted * ms:.2f} ms "
            f"(vote phase: {server_cpu:.1f} + {pg_cpu:.1f} + {client_cpu:.1f} CPU-s in {votes.wall:.1f} s)"
        )
    print(
        f"PostgreSQL during the vote phase: {locks[0]:.2f} backends active on average, {locks[1]:.2f} waiting on a "
        f"lock; a lock wait in {locks[2]:.0%} of samples"
    )

    problems = compare(compared)
    for phase in (*warm, floor_a, votes, floor_b):
        expected_floor = {401} if "floor" in phase.name else set()
        for kind, statuses in phase.non_2xx().items():
            unexpected = {s: n for s, n in statuses.items() if not (kind == "floor" and s in expected_floor)}
            if unexpected:
                problems.append(f"{phase.name}: {kind} answered {unexpected}")
        if phase.count("next", 204):
            problems.append(f"{phase.name}: {phase.count('next', 204)} GET next answered 204 (no pair left)")
        if phase.errors:
            problems.append(f"{phase.name}: client errors {dict(phase.errors)}")
    created = sum(phase.count("vote", 201) for phase in (*warm, votes, *(phase for _, _, phase in compared)))
    elo_drift = after["elo_sum"] - before["elo_sum"]
    checks = [
        (
            f"judgments in the database = 201 responses ({after['judgments']} = {created})",
            after["judgments"] == created,
        ),
        (
            f"one judgment per voted assignment ({after['voted']} voted, {after['distinct_assignments']} distinct)",
            after["voted"] == after["judgments"] == after["distinct_assignments"],
        ),
        (f"sum of Elo unchanged (drift {elo_drift:+.3g})", abs(elo_drift) < 1e-6),
        (f"no control (training/gold) pair issued ({after['controls']})", after["controls"] == 0),
        (
            f"sum of judgment counts = 2 x judgments ({after['judgment_counts']})",
            after["judgment_counts"] == 2 * after["judgments"],
        ),
        (f"recompute_mos --check, both studies: {replay.splitlines()[-1]}", replay.count("no difference") == 2),
    ]
    print()
    for text, ok in checks:
        print(f"[{'ok' if ok else 'FAILED'}] {text}")
        if not ok:
            problems.append(text)
    print(
        f"judgment_count per image after the run: min {after['min_count']}, "
        f"mean {after['judgment_counts'] / after['images']:.1f}, max {after['max_count']}, "
        f"SD {after['count_sd']:.2f}; {after['assignments']} assignments issued, "
        f"the most issued pair went to {after['most_issued_pair']} raters"
    )
    if problems:
        print("\nPROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    print("\nno non-2xx responses (other than the floor's intended 401) and all consistency checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
