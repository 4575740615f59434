#!/usr/bin/env bash
# One command that installs and runs the whole test suite on SQLite (the embedded
# default), then the tests that open the database (marked `database` by
# tests/conftest.py) again on PostgreSQL (127.0.0.1:5432, user postgres; override
# with PIPAL_TEST_POSTGRES_URL): the rest does not depend on the database. Tests that need PostgreSQL, Redis or
# Chromium skip when those are missing, unless PIPAL_REQUIRE_SERVICES=1 (set by
# .ci/run), which turns every such skip into a failure.
# Each pass runs in PIPAL_TEST_WORKERS pytest processes (pytest-xdist, default 2; 0 runs
# in one process), a test file's tests in the same process.
# Extra arguments go to pytest, e.g. ./test.sh -k elo
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
# TensorFlow only converts the published 4PP-EUSR graphs (convert_weights eusr): an optional extra
# for users, installed here so its tests run.
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tf.txt
.venv/bin/ruff check .

# Browser tests drive Debian's Chromium (never a downloaded browser build).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests"
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  else
    echo "chromium is not installed (sudo apt-get install chromium): browser tests will skip"
  fi
fi

POSTGRES_URL="${PIPAL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/pipal}"
PARALLEL=(-n "${PIPAL_TEST_WORKERS:-2}" --dist loadfile)
status=0

echo "=== test suite on SQLite ==="
env -u DATABASE_URL .venv/bin/python -m pytest "${PARALLEL[@]}" "$@" || status=$?

echo "=== the tests that open the database, on PostgreSQL ($POSTGRES_URL) ==="
if .venv/bin/python -c "
import sys, dj_database_url, psycopg
db = dj_database_url.parse(sys.argv[1])
# The server, not the named database: Django's test runner creates test_<name> itself.
psycopg.connect(host=db['HOST'] or '127.0.0.1', port=db['PORT'] or 5432, user=db['USER'], password=db['PASSWORD'] or None, dbname='postgres', connect_timeout=3).close()
" "$POSTGRES_URL" 2>/dev/null; then
  DATABASE_URL="$POSTGRES_URL" .venv/bin/python -m pytest "${PARALLEL[@]}" -m database "$@" || status=$?
elif [ "${PIPAL_REQUIRE_SERVICES:-0}" = "1" ]; then
  echo "PostgreSQL is not reachable at $POSTGRES_URL and PIPAL_REQUIRE_SERVICES=1: failing" >&2
  status=1
else
  echo "PostgreSQL not reachable at $POSTGRES_URL: skipped the PostgreSQL pass (set PIPAL_REQUIRE_SERVICES=1 to fail instead)"
fi
exit "$status"
