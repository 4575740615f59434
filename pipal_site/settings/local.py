"""The embedded default: everything from base.py's defaults (SQLite, in-process Celery)."""

from pipal_site.settings.base import *  # noqa: F403
from pipal_site.settings.derived import finish

finish(globals())
