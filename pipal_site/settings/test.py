"""Test settings: base defaults with scratch media folders and fast hashing.

The database comes from DATABASE_URL like everywhere else, so the suite runs
against SQLite (default) and PostgreSQL (DATABASE_URL=postgres://...).
"""

import tempfile
from pathlib import Path

from pipal_site.settings.base import *  # noqa: F403
from pipal_site.settings.base import DATABASES
from pipal_site.settings.derived import finish

MEDIA_ROOT = Path(tempfile.mkdtemp(prefix="pipal-test-media-"))
PIPAL_PRIVATE_ROOT = Path(tempfile.mkdtemp(prefix="pipal-test-private-"))
EMAIL_URL = "memory://"  # Django's mail.outbox
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not Django's shared in-memory database, so threaded tests meet
    # SQLite's real locking.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.mkdtemp(prefix="pipal-test-db-")) / "test.sqlite3")}
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"rater_join": "100000/hour"}  # noqa: F405
# Tests run admin-started generation inline, inside the test's transaction.
PIPAL_GENERATE_IN_THREAD = False

finish(globals())
