"""Production: PostgreSQL, a broker, real workers; secrets must be given.

Refuses to start without SECRET_KEY, DATABASE_URL, ALLOWED_HOSTS and
EMAIL_URL, so a forgotten variable fails loudly instead of falling back to the
embedded defaults; and (derived.finish) with private files in a public folder.
"""

import os

from django.core.exceptions import ImproperlyConfigured

for _required in ("SECRET_KEY", "DATABASE_URL", "ALLOWED_HOSTS", "EMAIL_URL"):
    if not os.environ.get(_required):
        raise ImproperlyConfigured(f"production settings need the environment variable {_required}")

from pipal_site.settings.base import *  # noqa: E402,F403
from pipal_site.settings.derived import finish  # noqa: E402
from pipal_site.settings.env import env_bool, env_int  # noqa: E402

DEBUG = env_bool("DEBUG", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 30)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

finish(globals())
