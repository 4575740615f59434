"""Settings for bench/vote_load.py's gunicorn: production's, with the reference path's URLconf."""

from pipal_site.settings.production import *  # noqa: F403

ROOT_URLCONF = "vote_reference"
