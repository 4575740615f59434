"""Settings shared by every environment, read from the environment.

Every value has an embedded default so that a fresh machine with nothing but
Python runs the platform: SQLite in ``var/``, media in ``var/media``, Celery
tasks in-process. Production (``pipal_site.settings.production``) removes the
defaults that must not exist there (SECRET_KEY) and turns DEBUG off.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from .env import env, env_bool, env_int, env_list

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env("PIPAL_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env("SECRET_KEY", "insecure-embedded-default-key-change-me-for-any-shared-host")
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "annotation",
    "iqa",
    "sr_models",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "pipal_site.urls"
WSGI_APPLICATION = "pipal_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def database_from_url(url: str) -> dict:
    """Parse DATABASE_URL; SQLite gets the settings that make it safe under
    concurrent writers (WAL, IMMEDIATE transactions, a generous busy timeout)."""
    config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config["OPTIONS"] = {
            # IMMEDIATE takes the write lock at BEGIN, so two writers never
            # deadlock upgrading a read lock (the classic "database is locked").
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("SQLITE_TIMEOUT_SECONDS", 30),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    elif config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(
            f"DATABASE_URL {url.split(':', 1)[0]}:… is not supported: use postgres:// or sqlite://"
        )
    return config


VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": database_from_url(env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'pipal.sqlite3'}"))}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
# WhiteNoise serves collected static files under gunicorn; in DEBUG it serves
# them straight from the apps.
WHITENOISE_USE_FINDERS = DEBUG
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = env("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
# Serve MEDIA_ROOT from Django itself (fine for a lab machine; put a web server
# in front for anything bigger). On by default in DEBUG.
SERVE_MEDIA = env_bool("SERVE_MEDIA", DEBUG)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Pretrained weights for bundled SR models and learned metrics.
PIPAL_WEIGHTS_DIR = Path(env("PIPAL_WEIGHTS_DIR", str(VAR_DIR / "weights")))
# Where bundled SR networks run: "" = CUDA when torch sees a GPU, else the CPU; fp32, fp16 (CUDA) or bf16.
PIPAL_SR_DEVICE = env("PIPAL_SR_DEVICE", "")
PIPAL_SR_DTYPE = env("PIPAL_SR_DTYPE", "fp32")
# With a broker: SR-network generation jobs go to this queue when set (start a GPU worker with -Q <it>).
PIPAL_GPU_QUEUE = env("PIPAL_GPU_QUEUE", "")

# --- Study behaviour -------------------------------------------------------
# An issued pair stays votable this long.
PIPAL_ASSIGNMENT_TTL_SECONDS = env_int("PIPAL_ASSIGNMENT_TTL_SECONDS", 30 * 60)
# Open (issued, unanswered) assignments a rater may hold: the current pair and
# one prefetched pair. Issuing beyond this retires the oldest.
PIPAL_MAX_OPEN_ASSIGNMENTS = env_int("PIPAL_MAX_OPEN_ASSIGNMENTS", 2)
# Uploads and imports: allowed formats, bytes and pixels (decompression bombs
# are refused from the header, before any pixel is decoded).
PIPAL_IMAGE_FORMATS = ("PNG", "BMP", "JPEG", "TIFF", "WEBP")
PIPAL_MAX_IMAGE_BYTES = env_int("PIPAL_MAX_IMAGE_BYTES", 50 * 1024 * 1024)
PIPAL_MAX_IMAGE_PIXELS = env_int("PIPAL_MAX_IMAGE_PIXELS", 40_000_000)

# Without a broker, admin-started generation runs in a thread of the web process.
PIPAL_GENERATE_IN_THREAD = env_bool("PIPAL_GENERATE_IN_THREAD", True)

# --- REST framework ---------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.authentication.RaterTokenAuthentication",
        "annotation.authentication.RaterSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation.api_errors.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"rater_join": env("PIPAL_RATER_JOIN_RATE", "600/hour")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "PIPAL study platform API",
    "DESCRIPTION": "Pairwise subjective study (PIPAL-style Elo MOS): join as a rater, fetch pairs, vote.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Cache (rate limits) -----------------------------------------------------
REDIS_URL = env("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------
# No broker configured: run tasks in-process (the embedded default); the
# in-memory transport is named so Celery does not look for an AMQP host.
CELERY_TASK_ALWAYS_EAGER = not env("CELERY_BROKER_URL", "")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", "") or "memory://localhost/"
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", "") or None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis redelivers a task whose worker vanished (not just its child) after
# this many seconds; tasks are idempotent, so a late duplicate is harmless.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 900)}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "WARNING")},
    # Every refused vote (401/403/404/409/410) would otherwise log a warning line.
    "loggers": {"django.request": {"level": env("REQUEST_LOG_LEVEL", "ERROR")}},
}

# Study owners who are not staff sign in here to reach their dashboards.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
