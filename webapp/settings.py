"""IonSieve settings: one module, driven by environment variables.

Development defaults need no server: SQLite in var/ and a filesystem Celery broker.
Production sets DATABASE_URL (PostgreSQL), CELERY_BROKER_URL (Redis), SECRET_KEY, DEBUG=0.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("IONSIEVE_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded SQLite database and broker live here


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "Set SECRET_KEY: production (DEBUG=0) never runs with the development key."
        )
    SECRET_KEY = "django-insecure-dev-only-key-change-me-in-production-0123456789"
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "webapp.accounts",
    "webapp.projects",
    "webapp.jobs",
    "webapp.datasets",
    "webapp.collections",
    "webapp.ingestion",
    "webapp.pages",
    "classifier",
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
    # Last, as django-axes asks: it answers locked-out logins.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.jobs.context_processors.queue_status",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'ionsieve.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers work while a writer commits; IMMEDIATE transactions plus a busy
    # timeout make concurrent label writes queue instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # Tests use a file too, never the shared-cache in-memory database: its table locks ignore the
    # busy timeout, so a live-server request racing the test thread failed with "table is locked".
    # One file per test process, so that sessions running side by side never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("IONSIEVE_TEST_DB")
        or str(Path(tempfile.gettempdir()) / f"ionsieve-test-{os.getpid()}.sqlite3")
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and (
    page_cost := os.environ.get("PG_RANDOM_PAGE_COST", "1.1")
):
    # Gallery pages walk indexes over rows that sit in memory or on SSD. With PostgreSQL's
    # default random_page_cost (4, for spinning disks) a deep page of a 100,000-image project
    # was planned as a sort of all its rows, spilled to disk (113-258 ms; 16-90 ms as index
    # scans, bench/README.md). Sent per connection so no server change is needed; empty
    # (poolers that refuse startup options) leaves it to the server's own setting.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c random_page_cost={float(page_cost)}"

# The gallery's covering indexes (INCLUDE) speed up PostgreSQL; SQLite builds them without
# the extra columns, by design, so its warning about that says nothing to act on.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Plotly's JavaScript is served from the plotly Python package itself: no CDN.
import plotly  # noqa: E402

STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/plotly", Path(plotly.__file__).parent / "package_data")]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Media is never served by URL: every file goes through a view that checks permissions.
MEDIA_URL = None
STORAGES = {
    "default": {"BACKEND": os.environ.get("MEDIA_STORAGE", "django.core.files.storage.FileSystemStorage")},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Uploads: large files stream to a temporary file in chunks, never whole in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 10_485_760
FILE_UPLOAD_TEMP_DIR = os.environ.get("FILE_UPLOAD_TEMP_DIR") or None
IONSIEVE_MAX_UPLOAD_BYTES = env_int("IONSIEVE_MAX_UPLOAD_BYTES", 20 * 1024**3)
# Resumable uploads with no progress for this long are deleted with their files (cleanup_uploads).
IONSIEVE_UPLOAD_EXPIRY_SECONDS = env_int("IONSIEVE_UPLOAD_EXPIRY_SECONDS", 24 * 3600)
IONSIEVE_MAX_PIXELS = env_int("IONSIEVE_MAX_PIXELS", 20_000_000)
IONSIEVE_MAX_IMAGE_ARRAY_BYTES = env_int("IONSIEVE_MAX_IMAGE_ARRAY_BYTES", 8 * 1024**3)
# Retrain automatically once this many new labels arrived since the active model (0 = never).
IONSIEVE_AUTO_RETRAIN_LABELS = env_int("IONSIEVE_AUTO_RETRAIN_LABELS", 0)
# Live update (classifier.active): a quick update after this many label changes, or once labelling
# paused this many seconds; 0 turns it off.
IONSIEVE_LIVE_UPDATE_LABELS = env_int("IONSIEVE_LIVE_UPDATE_LABELS", 10)
IONSIEVE_LIVE_UPDATE_IDLE_SECONDS = float(os.environ.get("IONSIEVE_LIVE_UPDATE_IDLE_SECONDS", "3"))
# Thumbnails: signed URLs valid for one to two of these periods (webapp/datasets/media.py).
IONSIEVE_SIGNED_URL_SECONDS = env_int("IONSIEVE_SIGNED_URL_SECONDS", 86400)
# "" (Django sends files), "nginx" (X-Accel-Redirect to the prefix below) or "sendfile" (X-Sendfile).
IONSIEVE_MEDIA_ACCEL = os.environ.get("IONSIEVE_MEDIA_ACCEL", "")
IONSIEVE_MEDIA_ACCEL_PREFIX = os.environ.get("IONSIEVE_MEDIA_ACCEL_PREFIX", "/protected-media/")

# Figures that only change with a dataset's revision are cached here. Per process by default;
# CACHE_URL=redis://host:6379/1 shares one cache between gunicorn workers (and holds sessions).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "TIMEOUT": 3600,
        "OPTIONS": {"MAX_ENTRIES": 2000},
    }
}
if os.environ.get("CACHE_URL"):
    CACHES["default"] = {
        # Django's backend, reusing its Redis client (webapp/redis_cache.py).
        "BACKEND": "webapp.redis_cache.RedisCache",
        "LOCATION": os.environ["CACHE_URL"],
        "TIMEOUT": 24 * 3600,
    }
    # Sessions read from the shared cache (written through to the database): one query less
    # per request. Only with a shared cache: a per-process one would keep a signed-out session
    # alive in the other workers.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "IonSieve API",
    "DESCRIPTION": "Sort biological images into classes, learning from expert labels.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and ReDoc from the drf-spectacular-sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery: JSON only, tasks take ids, late acks so a killed worker's task runs again.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = Path(os.environ.get("IONSIEVE_BROKER_DIR", VAR_DIR / "broker"))
    # Created here, not by scripts/run.sh alone: kombu does not create them, and a worker started
    # by hand (`celery -A webapp worker`) crashed with FileNotFoundError on var/broker/queue.
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Short connect timeouts: with the broker down an upload answers at once (the job waits).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 4 * 3600,
        "socket_connect_timeout": 2,
        "socket_timeout": 10,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 6 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 6 * 3600 - 60)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Separate queues so one long training run cannot starve uploads.
CELERY_TASK_ROUTES = {
    "datasets.*": {"queue": "ingest"},
    "collections.*": {"queue": "ingest"},
    "classifier.train": {"queue": "train"},
    "classifier.*": {"queue": "predict"},
    "jobs.*": {"queue": "ingest"},
}
CELERY_TASK_DEFAULT_QUEUE = "ingest"

# django-axes: lock a username+IP pair after repeated failed logins.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_ENABLED = env_bool("AXES_ENABLED", True)

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# In development whitenoise serves straight from the source folders.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
