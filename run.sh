#!/usr/bin/env bash
# One command for a fresh machine (only Python 3.11+ needed): create the
# environment, install, migrate, seed the demo study and serve it at
# http://127.0.0.1:8000/ on the embedded default (SQLite in var/, Celery tasks
# in-process). Set DATABASE_URL / CELERY_BROKER_URL etc. to use other services.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
.venv/bin/python manage.py migrate --no-input
.venv/bin/python manage.py seed_demo
ADDRESS="${PIPAL_ADDRESS:-127.0.0.1:8000}"
echo "Serving at http://$ADDRESS/ : rate the demo study at http://$ADDRESS/study/demo/ ;"
echo "its dashboard needs an owner or staff account (.venv/bin/python manage.py createsuperuser). Ctrl-C to stop."
exec .venv/bin/python manage.py runserver "$ADDRESS" --noreload
