"""Settings shared by every environment, read from the environment.

Every value has an embedded default so that a fresh machine with nothing but
Python runs the platform: SQLite in ``var/``, media in ``var/media``, Celery
tasks in-process. Production (``pipal_site.settings.production``) removes the
defaults that must not exist there (SECRET_KEY, EMAIL_URL) and turns DEBUG off.

Nothing here derives from DEBUG: each profile (local, test, production) sets
its final DEBUG and then calls ``derived.finish(globals())``, which computes
the settings that follow from it and refuses a configuration that would make
private files public.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from pipal_site.settings.env import env, env_bool, env_int, env_list

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
    # The project's apps, lowest layer first (docs/architecture.md; tests/test_architecture.py).
    "core",
    "sr_models",
    "annotation",
    "iqa",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads a request body: refuses oversized bodies (413) and file
    # parts where no feature takes a file (415), in the API's error shape under /api/.
    "core.middleware.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Unexpected errors under /api/ answer 500 in the error shape (logged as usual).
    "core.middleware.ApiServerErrorMiddleware",
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
    # Persistent connections (a new PostgreSQL connection per request cost +8 ms of server CPU
    # per vote and half the throughput: docs/benchmarks.md), checked before each request reuses one.
    config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
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
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Public media: the stimuli raters fetch without a login (and their thumbnails),
# under studies/<slug>/ with server-chosen names. Nothing else is ever written here.
MEDIA_URL = env("MEDIA_URL", "/media/")
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(VAR_DIR / "media")))
# Private files: benchmark reports and anything else only owners and staff may
# read. Never under a public URL: served by views that check permission
# (core.private_media), which hand the bytes to the web server in production.
PIPAL_PRIVATE_ROOT = Path(env("PIPAL_PRIVATE_ROOT", str(VAR_DIR / "private")))
# How a permitted private file reaches the browser: "django" streams it; "nginx"
# answers X-Accel-Redirect to PIPAL_PRIVATE_MEDIA_INTERNAL_URL (an `internal`
# location aliased to PIPAL_PRIVATE_ROOT); "apache" answers X-Sendfile (mod_xsendfile).
PIPAL_PRIVATE_MEDIA_SERVER = env("PIPAL_PRIVATE_MEDIA_SERVER", "django")
PIPAL_PRIVATE_MEDIA_INTERNAL_URL = env("PIPAL_PRIVATE_MEDIA_INTERNAL_URL", "/_private/")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Pretrained weights for bundled SR models and learned metrics.
PIPAL_WEIGHTS_DIR = Path(env("PIPAL_WEIGHTS_DIR", str(VAR_DIR / "weights")))
# Where bundled SR networks run: "" = CUDA when torch sees a GPU, else the CPU; fp32, fp16 (CUDA) or bf16.
PIPAL_SR_DEVICE = env("PIPAL_SR_DEVICE", "")
PIPAL_SR_DTYPE = env("PIPAL_SR_DTYPE", "fp32")
# With a broker: SR-network generation jobs go to this queue when set (start a GPU worker with -Q <it>).
PIPAL_GPU_QUEUE = env("PIPAL_GPU_QUEUE", "")

# --- Study behaviour -------------------------------------------------------
# An issued trial stays votable this long; until then it is the rater's only trial
# (a reload or a second tab gets it again), after it the rater gets a new one.
PIPAL_ASSIGNMENT_TTL_SECONDS = env_int("PIPAL_ASSIGNMENT_TTL_SECONDS", 30 * 60)
# Uploads and imports: allowed formats, bytes and pixels (decompression bombs
# are refused from the header, before any pixel is decoded).
PIPAL_IMAGE_FORMATS = ("PNG", "BMP", "JPEG", "TIFF", "WEBP")
PIPAL_MAX_IMAGE_BYTES = env_int("PIPAL_MAX_IMAGE_BYTES", 50 * 1024 * 1024)
PIPAL_MAX_IMAGE_PIXELS = env_int("PIPAL_MAX_IMAGE_PIXELS", 40_000_000)

# Request bodies (core.middleware): the API takes small JSON bodies only; page
# forms are small; file parts only on the upload pages named here (admin URL
# names), up to the image limit plus the form around it.
PIPAL_MAX_API_BODY_BYTES = env_int("PIPAL_MAX_API_BODY_BYTES", 16 * 1024)
PIPAL_MAX_FORM_BODY_BYTES = env_int("PIPAL_MAX_FORM_BODY_BYTES", 1024 * 1024)
PIPAL_UPLOAD_URL_NAMES = (
    "admin:annotation_referenceimage_add",
    "admin:annotation_referenceimage_change",
    "admin:annotation_distortedimage_add",
    "admin:annotation_distortedimage_change",
    "owner-api:reference-list",  # the owner API's reference upload (multipart)
)
# Django's own bound on the non-file part of a form (it raises past it).
DATA_UPLOAD_MAX_MEMORY_SIZE = PIPAL_MAX_FORM_BODY_BYTES
# File parts of a form anywhere else are skipped unread (core.uploads).
FILE_UPLOAD_HANDLERS = [
    "core.uploads.OnlyWhereUploadsBelong",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# Without a broker, admin-started generation runs in a thread of the web process.
PIPAL_GENERATE_IN_THREAD = env_bool("PIPAL_GENERATE_IN_THREAD", True)

# --- REST framework ---------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotation.rating.authentication.RaterTokenAuthentication",
        "annotation.rating.authentication.RaterSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: anything else is 415 in the error shape, unread.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api_errors.api_exception_handler",
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
    # Django's slug converter, exactly (a path that does not match answers 404 in the error shape).
    "PATH_CONVERTER_OVERRIDES": {"slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}},
    # Every operation documents the errors any API path can answer (404, 405, 413, 415, 500).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.document_common_errors",
    ],
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
# Each task's hard time limit (seconds; the soft limit is 90% of it). Every task
# is sized to finish well inside its limit (expected times in docs/deployment.md's
# "Workers" table); a job past it is stopped rather than left holding a worker.
PIPAL_TASK_TIME_LIMITS = {
    "recompute_mos": 300,  # replays the judgment log: ~3 s at PIPAL scale (1.13M judgments)
    "generate_distortions": 600,  # 4 images a job; BM3D, the slowest family, ~6 s an image on one core
    "compute_scores": 600,  # <= PIPAL_SCORE_JOB_IMAGES images a job; MAD, the slowest metric, ~10 s an image
    "fit_bradley_terry": 600,  # 100 bootstrap rounds at PIPAL scale: ~110 s
}
PIPAL_VISIBILITY_MARGIN_SECONDS = 60
# compute_scores jobs hold at most this many images, so the slowest metric stays inside its limit.
PIPAL_SCORE_JOB_IMAGES = env_int("PIPAL_SCORE_JOB_IMAGES", 32)
# Redis hands a task whose worker vanished (not just its child process) to
# another worker after the visibility timeout. It must outlast the longest task,
# or a running task would be handed out twice; so it is derived from the
# limits above (a job on a dead worker waits this long; RabbitMQ redelivers as
# soon as the dead worker's connection drops).
CELERY_VISIBILITY_TIMEOUT = env_int(
    "CELERY_VISIBILITY_TIMEOUT", max(PIPAL_TASK_TIME_LIMITS.values()) + PIPAL_VISIBILITY_MARGIN_SECONDS
)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
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

# --- Mail (password resets) ---------------------------------------------------
# EMAIL_URL: smtp://user:password@host:587/?tls=True, smtps://… (SSL), console://
# (print to the log: the embedded default), file:///path, locmem:// (tests).
# Production requires it.
EMAIL_URL = env("EMAIL_URL", "console://")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "PIPAL study platform <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Study owners who are not staff sign in here to reach their dashboards.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
