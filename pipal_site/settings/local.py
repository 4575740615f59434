"""The embedded default: everything from base.py's defaults (SQLite, in-process Celery)."""

from .base import *  # noqa: F403
from .derived import finish

finish(globals())
