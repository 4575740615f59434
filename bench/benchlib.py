"""Helpers shared by the benchmarks in this folder (not a benchmark itself).

Importing this module puts the repository root on ``sys.path`` so that the
scripts run as ``.venv/bin/python bench/<name>.py`` from anywhere. Images, folders, studies
and Celery worker processes come from ``tests/factories.py``, as in the tests. Nothing
here imports Django: each script configures its environment first and imports
the application only after ``django.setup()``.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


# --- statistics ------------------------------------------------------------------


def grating_texture(seed: int, size: int, *, gratings: int = 4, frequencies: tuple[float, float] = (0.02, 0.3),
                    amplitude: float = 0.1):
    """A synthetic HxWx3 uint8 image for the training benchmarks: per channel a colour gradient plus ``gratings``
    sinusoids of random frequency in ``frequencies`` (cycles/pixel), angle and phase; seeded."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    channels = []
    for _ in range(3):
        value = 0.5 + 0.3 * (x * rng.uniform(-1, 1) + y * rng.uniform(-1, 1)) / size
        for _ in range(gratings):
            frequency, angle = rng.uniform(*frequencies), rng.uniform(0, np.pi)
            value += amplitude * np.sin(
                2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 6))
        channels.append(value)
    return np.clip(np.round(np.stack(channels, -1) * 255), 0, 255).astype(np.uint8)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# --- output ----------------------------------------------------------------------


def header(title: str) -> None:
    """A title line with the date, host and core count (every figure is relative to these)."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    try:
        revision = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        revision = "unknown"
    print(f"== {title} ==")
    note = " (uncommitted changes in the working tree)" if revision.endswith("-dirty") else ""
    print(f"code: git {revision}{note}")
    print(
        f"{now}; {platform.node()}; {os.cpu_count()} CPU(s); Python {platform.python_version()}; "
        f"load average (1 min) at start {load:.2f}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (readable in a terminal and pasteable into docs)."""
    cells = [[str(h) for h in headers]] + [[_cell(value) for value in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |" for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


# --- throwaway PostgreSQL databases --------------------------------------------------


def pg_recreate(name: str, admin_url: str = PG_ADMIN_URL) -> None:
    """Drop ``name`` if it exists (closing its sessions) and create it empty."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def pg_drop(name: str, admin_url: str = PG_ADMIN_URL) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def pg_url(name: str, admin_url: str = PG_ADMIN_URL) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


# --- Celery workers (tests.factories.CeleryWorker) ------------------------------------


def stop_workers(state: dict, redis_url: str) -> None:
    """Kill what is left of ``state["workers"]`` (tests.factories.CeleryWorker) and delete
    ``state["queues"]``' Redis keys."""
    for worker in state["workers"]:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(timeout=10)
        if not worker.log_file.closed:
            worker.log_file.close()
    if state["queues"]:
        import redis

        keys = [k for q in state["queues"] for k in (q, f"_kombu.binding.{q}", f"_kombu.binding_permanent.{q}")]
        redis.Redis.from_url(redis_url).delete(*keys)


def in_throwaway_database(args, prefix: str, run: Callable[[object, Path], int]) -> int:
    """``run(args, tmp)`` with a temporary folder, then close Django's connections,
    drop the benchmark's PostgreSQL database (``args.postgres``, ``args.pg_db``,
    ``args.pg_admin_url``) and remove the folder, whatever happened."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return run(args, tmp)
    finally:
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django may not be set up yet
            pass
        if args.postgres:
            pg_drop(args.pg_db, args.pg_admin_url)
        shutil.rmtree(tmp, ignore_errors=True)
