"""Settings for imagesync, read from the environment only.

With nothing set the portal runs on one machine: SQLite in ``data/``, a Celery transport that
needs no server (files in ``data/``), a local-memory cache and a generated secret key. Production
sets ``DEBUG=false``, ``SECRET_KEY``, ``ALLOWED_HOSTS``, ``DATABASE_URL`` and ``REDIS_URL``.
Every variable is listed in ``.env.example``.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

from imagesync_site.env import ConfigError, Env, github_repository

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.str("IMAGESYNC_DATA_DIR", str(BASE_DIR / "data"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", True)


def _local_secret_key() -> str:
    # Generated once and kept, so sessions survive a restart of the embedded setup.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = env.secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ConfigError("SECRET_KEY is required when DEBUG=false (or set SECRET_KEY_FILE)")
    SECRET_KEY = _local_secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.origins("CSRF_TRUSTED_ORIGINS")

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
    "corsheaders",
    "django_ratelimit",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Turns django-ratelimit's block (a 403) into RATELIMIT_VIEW's 429 page.
    "django_ratelimit.middleware.RatelimitMiddleware",
]

ROOT_URLCONF = "imagesync_site.urls"
WSGI_APPLICATION = "imagesync_site.wsgi.application"
ASGI_APPLICATION = "imagesync_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: https://docs.djangoproject.com/en/6.1/ref/settings/#databases
DATABASE_URL = env.url(
    "DATABASE_URL",
    f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
    schemes=("postgres", "postgresql", "pgsql", "sqlite"),
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# Internationalisation: the UI speaks Simplified Chinese and English.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Redis: the Celery broker and the shared cache (rate limits, allauth's limits) when set.
REDIS_URL = env.url("REDIS_URL", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", "imagesync"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

SILENCED_SYSTEM_CHECKS = [
    # django-ratelimit only "supports" django-redis and memcached, but Django's own RedisCache
    # is shared and increments atomically (INCR), which is all the limiter needs.
    "django_ratelimit.W001",
    # HSTS preload is a promise to browsers that is hard to take back; the site owner opts in
    # with SECURE_HSTS_PRELOAD=true once the domain is ready for the preload list.
    "security.W021",
]
if not REDIS_URL:
    # Embedded default: one web process, so a local-memory cache still counts every request.
    # Several web processes need REDIS_URL, which replaces this cache and lifts the silence.
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")

# Celery: https://docs.celeryq.dev/en/stable/userguide/configuration.html
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Unacknowledged tasks come back after this long (acks_late): longer than any task runs.
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    }
else:
    _queue_dir = DATA_DIR / "celery-queue"
    _queue_dir.mkdir(exist_ok=True)
    (DATA_DIR / "celery-control").mkdir(exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(DATA_DIR / "celery-control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# How often active jobs are checked against GitHub when no webhook brought the news.
IMAGESYNC_POLL_INTERVAL = env.int("IMAGESYNC_POLL_INTERVAL", 15, minimum=1)
# A dispatch whose answer was lost is looked up only after this many seconds, when the request
# has certainly ended (longer than the GitHub client's 5 s connect + 30 s read timeout); runs
# are then searched for IMAGESYNC_RUN_LIST_LAG seconds more before the job is dispatched again.
IMAGESYNC_DISPATCH_GRACE = env.int("IMAGESYNC_DISPATCH_GRACE", 60, minimum=1)
IMAGESYNC_RUN_LIST_LAG = env.int("IMAGESYNC_RUN_LIST_LAG", 60, minimum=0)
# Seconds between two dispatches from the whole portal (GitHub: mutating requests about 1 s apart).
IMAGESYNC_DISPATCH_SPACING = env.int("IMAGESYNC_DISPATCH_SPACING", 1, minimum=0)
# While webhooks are arriving, a job is polled only after this many seconds without news.
IMAGESYNC_WEBHOOK_QUIET = env.int("IMAGESYNC_WEBHOOK_QUIET", 300, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "poll-active-runs": {
        "task": "jobs.tasks.poll_active_runs",
        "schedule": IMAGESYNC_POLL_INTERVAL,
        "options": {"expires": IMAGESYNC_POLL_INTERVAL * 0.9},
    },
    "sweep-stuck-jobs": {
        "task": "jobs.tasks.sweep_stuck_jobs",
        "schedule": 60,
        "options": {"expires": 55},
    },
}

# allauth: https://docs.allauth.org/en/latest/account/configuration.html
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
# Admins add users; OPEN_SIGNUP=true lets anyone with an address sign themselves up.
IMAGESYNC_OPEN_SIGNUP = env.bool("OPEN_SIGNUP", False)
LOGIN_REDIRECT_URL = "/"
LOGIN_URL = "account_login"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# Brute force: at most 5 failed sign-ins per 15 minutes per account and per address (the admin
# signs in here too), then a 429 page (accounts.views). Counted in the default cache: Redis
# when REDIS_URL is set, so every web process sees the same count.
# https://docs.allauth.org/en/latest/account/rate_limits.html
ACCOUNT_RATE_LIMITS = {"login_failed": "5/15m/ip,5/15m/key"}

# django-ratelimit (job submission, jobs.views.common): https://django-ratelimit.readthedocs.io/
RATELIMIT_USE_CACHE = "default"
RATELIMIT_VIEW = "imagesync_site.views.ratelimited"
# When the cache cannot count, submissions are refused rather than let through unlimited.
# (Django's RedisCache raises on a dead server anyway, and then the broker is down as well.)
RATELIMIT_FAIL_OPEN = False

# DRF: https://www.django-rest-framework.org/api-guide/settings/
# Token first: its authenticate_header makes DRF answer 401 (not 403) without credentials.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "jobs.api.errors.exception_handler",
    # Counted in the default cache: Redis when REDIS_URL is set, so all web processes share them.
    "DEFAULT_THROTTLE_CLASSES": ["jobs.api.throttles.ApiRateThrottle"],
    # Per token (per user for a session, per address when anonymous), and job creations per user.
    "DEFAULT_THROTTLE_RATES": {
        "api": env.rate("API_RATE", "60/minute"),
        "job_create": env.rate("API_JOB_CREATE_RATE", "10/minute"),
    },
    # Only anonymous requests are throttled by address. None would trust every X-Forwarded-For
    # entry a client sends; 0 uses the connection's address; behind N proxies that append to
    # X-Forwarded-For, set NUM_PROXIES=N.
    "NUM_PROXIES": env.int("NUM_PROXIES", 0, minimum=0),
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "imagesync API",
    "DESCRIPTION": "Copy container images into your registry namespaces. Authenticate with "
    "`Authorization: Bearer <token>` (API tokens page, or `manage.py create_token`).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"JobStatus": "jobs.models.SyncJob.Status", "JobKind": "jobs.models.SyncJob.Kind"},
    # Swagger UI's files come from drf-spectacular-sidecar, served by this site: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# CORS: only the origins listed may call the API from a browser.
CORS_ALLOWED_ORIGINS = env.origins("ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/.*$"

# GitHub: the repository whose workflows copy the images.
GITHUB_TOKEN = env.secret("GITHUB_TOKEN")
GITHUB_REPOSITORY = github_repository(env, "GITHUB_REPOSITORY")
GITHUB_API_URL = env.url("GITHUB_API_URL", "https://api.github.com", schemes=("http", "https")).rstrip("/")
GITHUB_API_VERSION = env.str("GITHUB_API_VERSION", "2026-03-10")
if GITHUB_API_VERSION not in ("2026-03-10", "2022-11-28"):
    raise ConfigError(f"GITHUB_API_VERSION={GITHUB_API_VERSION!r}: use 2026-03-10 or 2022-11-28")
GITHUB_REF = env.str("GITHUB_REF", "main")
GITHUB_WEBHOOK_SECRET = env.secret("GITHUB_WEBHOOK_SECRET")

# Email (Django 6.1 MAILERS): printed to the console unless EMAIL_HOST is set.
# https://docs.djangoproject.com/en/6.1/ref/settings/#mailers
_email_host = env.str("EMAIL_HOST")
_email_ssl = env.bool("EMAIL_USE_SSL", False)
_email_tls = env.bool("EMAIL_USE_TLS", not _email_ssl)
if _email_tls and _email_ssl:
    raise ConfigError("EMAIL_USE_TLS and EMAIL_USE_SSL are both true: choose one")
if _email_host:
    MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": _email_host,
                "port": env.int("EMAIL_PORT", 465 if _email_ssl else 587, minimum=1),
                "username": env.str("EMAIL_HOST_USER"),
                "password": env.secret("EMAIL_HOST_PASSWORD"),
                "use_tls": _email_tls,
                "use_ssl": _email_ssl,
                "timeout": 20,
            },
        }
    }
else:
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.console.EmailBackend"}}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "imagesync <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Security headers. Production (DEBUG=false) passes `manage.py check --deploy`.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", False)
if env.bool("BEHIND_TLS_PROXY", False):
    # Only behind a proxy that sets this header itself; otherwise clients could forge it.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_AGE = int(timedelta(days=14).total_seconds())

LOG_LEVEL = env.str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ConfigError(f"LOG_LEVEL={LOG_LEVEL!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
