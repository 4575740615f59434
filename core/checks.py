"""System checks (``manage.py check``, and every start): private files never public."""

from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from core.media_layout import PUBLIC_MEDIA_FOLDERS, public_overlaps


@register(Tags.security)
def private_files_not_public(app_configs, **kwargs):
    problems = public_overlaps(
        Path(settings.PIPAL_PRIVATE_ROOT),
        {"MEDIA_ROOT": Path(settings.MEDIA_ROOT), "STATIC_ROOT": settings.STATIC_ROOT},
    )
    errors = [Error(problem, hint="Set PIPAL_PRIVATE_ROOT outside them.", id="pipal.E001") for problem in problems]
    media = Path(settings.MEDIA_ROOT)
    strays = sorted(p.name for p in media.iterdir() if p.name not in PUBLIC_MEDIA_FOLDERS) if media.is_dir() else []
    if strays:
        errors.append(
            Error(
                f"MEDIA_ROOT {media} is public but holds {', '.join(s + '/' for s in strays)}, which are not stimuli",
                hint="Run `manage.py migrate` (it moves benchmark reports to PIPAL_PRIVATE_ROOT) and move or "
                "delete anything else: everything under MEDIA_ROOT is served to anyone.",
                id="pipal.E002",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def media_served_by_a_web_server(app_configs, **kwargs):
    if settings.SERVE_MEDIA and not settings.DEBUG:
        return [
            Warning(
                "SERVE_MEDIA is on with DEBUG off: Django itself serves the stimuli",
                hint="Let the web server serve MEDIA_URL from MEDIA_ROOT (docs/deployment.md).",
                id="pipal.W001",
            )
        ]
    return []
