"""Settings that follow from a profile's final values, and the rules they must obey.

Each profile (local, test, production) calls ``finish(globals())`` last, after
it has set its own DEBUG: a setting derived from DEBUG in base.py would follow
base's DEBUG (True), not the profile's (production once served every media
file that way).
"""

import dj_email_url
from django.core.exceptions import ImproperlyConfigured

from core.media_layout import public_overlaps
from pipal_site.settings.env import env_bool

PRIVATE_MEDIA_SERVERS = ("django", "nginx", "apache")


def finish(settings: dict) -> None:
    """Derive DEBUG-dependent settings and mail from the profile's final values; refuse a
    configuration that would serve private files publicly."""
    debug = settings["DEBUG"]
    # WhiteNoise serves collected static files; in DEBUG straight from the apps.
    settings["WHITENOISE_USE_FINDERS"] = debug
    # Let Django serve MEDIA_ROOT (the public stimuli) itself: on in DEBUG; in production a
    # web server does it (docs/deployment.md).
    settings["SERVE_MEDIA"] = env_bool("SERVE_MEDIA", debug)
    problems = public_overlaps(
        settings["PIPAL_PRIVATE_ROOT"], {"MEDIA_ROOT": settings["MEDIA_ROOT"], "STATIC_ROOT": settings["STATIC_ROOT"]}
    )
    if problems:
        raise ImproperlyConfigured("; ".join(problems) + ": private files would be public. Keep them apart.")
    if settings["PIPAL_PRIVATE_MEDIA_SERVER"] not in PRIVATE_MEDIA_SERVERS:
        raise ImproperlyConfigured(
            f"PIPAL_PRIVATE_MEDIA_SERVER={settings['PIPAL_PRIVATE_MEDIA_SERVER']!r} is not one of "
            f"{', '.join(PRIVATE_MEDIA_SERVERS)}"
        )
    longest = max(settings["PIPAL_TASK_TIME_LIMITS"].values())
    if settings["CELERY_VISIBILITY_TIMEOUT"] <= longest:
        raise ImproperlyConfigured(
            f"CELERY_VISIBILITY_TIMEOUT={settings['CELERY_VISIBILITY_TIMEOUT']} s is not longer than the longest "
            f"task's time limit ({longest} s): a running task would be handed to a second worker"
        )
    settings.update(_mail(settings["EMAIL_URL"]))


def _mail(url: str) -> dict:
    """Django's EMAIL_* settings from EMAIL_URL (dj-email-url); parts the URL leaves out keep Django's defaults."""
    scheme = url.split(":", 1)[0]
    try:
        parsed = dj_email_url.parse(url)
    except (KeyError, ValueError) as error:
        raise ImproperlyConfigured(f"EMAIL_URL {scheme}:… cannot be used ({error})") from None
    if "EMAIL_BACKEND" not in parsed:
        raise ImproperlyConfigured(
            f"EMAIL_URL scheme {scheme!r} is not one of {', '.join(sorted(dj_email_url.SCHEMES))} "
            "(e.g. submission://user:password@host:587, console://)"
        )
    return {key: value for key, value in parsed.items() if value is not None}
