"""Django settings for coordhub, derived from the effective configuration.

The configuration (profiles, JSON file, environment) is loaded once here by
`coordhub.config.load_config`; everything else reads `settings.COORDHUB` when
it runs, never at import.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.utils.csp import CSP

from coordhub.config import load_config

BASE_DIR = Path(__file__).resolve().parent.parent

COORDHUB = load_config(os.environ, BASE_DIR)

# Used only when SECRET_KEY is unset; coordhub.E007 forbids it in production.
DEVELOPMENT_SECRET_KEY = "coordhub-development-key-not-for-production"
SECRET_KEY = os.environ.get("SECRET_KEY") or DEVELOPMENT_SECRET_KEY
DEBUG = COORDHUB.debug
ALLOWED_HOSTS = [host.strip() for host in COORDHUB.allowed_hosts.split(",") if host.strip()]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_ratelimit",  # its system checks of the cache behind the limits
    "django_tasks_db",
    "coordhub",
    "operations",
    "api",
    "monitoring",
    "dashboard",
]

MIDDLEWARE = [
    # First: everything below may ask request.is_secure(), which reads X-Forwarded-Proto.
    "coordhub.proxy.trusted_proxy_middleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    # Sync-only, so last: above them every async-capable middleware would run in a thread.
    "api.middleware.AdminOptionsMiddleware",
    "api.middleware.ApiKeyMiddleware",
    "api.errors.ErrorMiddleware",
]

# No inline or eval'd script anywhere: planted markup cannot run.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],  # the admin's inline style attributes
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# HTTPS behind a TLS-terminating proxy. Django believes X-Forwarded-Proto from
# anyone; coordhub.proxy deletes it first unless the peer is in TRUSTED_PROXIES.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = COORDHUB.trusted_origins
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = COORDHUB.secure_cookies
SECURE_SSL_REDIRECT = COORDHUB.secure_ssl_redirect
# Platform health checks and Prometheus reach the web process directly, not through
# the proxy, so they are answered over plain HTTP instead of redirected.
SECURE_REDIRECT_EXEMPT = [r"^api/health$", r"^metrics$"]
SECURE_HSTS_SECONDS = COORDHUB.hsts_seconds

# Request bodies (JSON starts, admin forms) above 64 KiB are refused with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

ROOT_URLCONF = "coordhub.urls"
ASGI_APPLICATION = "coordhub.asgi.application"
WSGI_APPLICATION = "coordhub.wsgi.application"

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
            ],
        },
    },
]

# Django's SQLite backend, keeping closed connections for the next request to reuse.
SQLITE_ENGINE = "coordhub.sqlite"
SQLITE_OPTIONS = {
    # IMMEDIATE: a write transaction takes the lock when it begins, so two
    # writers queue on the busy timeout instead of failing to upgrade a read lock.
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


POSTGRES_POOL = {
    # Under ASGI each request runs its sync code in a new thread, so a persistent
    # connection (CONN_MAX_AGE) is never reused and every request would connect
    # anew. One pool per process hands requests connections that are already open;
    # CONN_HEALTH_CHECKS makes it test each one it hands out.
    "min_size": 2,
    "max_size": 20,
    # How long a request waits for a connection when all are busy, or while the
    # database is unreachable, before it answers 503 database_unavailable.
    "timeout": 2,
    # Give up one reconnection attempt (retried 1 s, 2 s, 4 s ... apart) after this
    # long; the next request starts a new one, so recovery after a long outage
    # does not wait out an ever-growing back-off.
    "reconnect_timeout": 5,
}


def database_settings(url: str) -> dict:
    """Return the default database: `url` if given, else db.sqlite3 in the project."""
    if not url:
        return {
            "ENGINE": SQLITE_ENGINE,
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
        }
    database = dj_database_url.parse(url, conn_max_age=0, conn_health_checks=True)
    if database["ENGINE"] == "django.db.backends.sqlite3":
        database["ENGINE"] = SQLITE_ENGINE
        database["OPTIONS"] = {**SQLITE_OPTIONS, **database.get("OPTIONS", {})}
    elif database["ENGINE"] == "django.db.backends.postgresql":
        database["OPTIONS"] = {"pool": POSTGRES_POOL, **database.get("OPTIONS", {})}
    return database


DATABASES = {"default": database_settings(COORDHUB.database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def cache_settings(url: str) -> dict:
    """Return the default cache: Redis at `url` if given, else local memory."""
    if not url:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    return {
        # django-redis keeps one connection pool per process, shared by every
        # request, where Django's RedisCache opens one per request under ASGI;
        # coordhub.cache also shares its client instead of building one per request.
        "BACKEND": "coordhub.cache.RedisCache",
        "LOCATION": url,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }


CACHES = {"default": cache_settings(COORDHUB.redis_url)}

# django-ratelimit supports django-redis by the name of its class, and
# coordhub.cache.RedisCache is django-redis with its client shared.
SILENCED_SYSTEM_CHECKS = [
    "django_ratelimit.W001",
    # HSTS includeSubDomains (W005) and preload (W021) bind every host under the
    # domain, a promise only the domain's owner can make (at the proxy, which serves
    # them all): coordhub's HSTS_SECONDS covers its own host alone.
    "security.W005",
    "security.W021",
]
if COORDHUB.web_processes == 1:
    # One web process owns every rate-limit counter, so a local-memory cache is
    # exact there; with more processes it is an error (and coordhub.E008 says why).
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")

TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

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
STATICFILES_DIRS = [BASE_DIR / "static"]
# The web server serves its own few static files (no collectstatic step, no CDN).
WHITENOISE_USE_FINDERS = True

# Browsers sign in on coordhub's own page; the admin keeps its login for staff.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        name: {"handlers": ["console"], "level": COORDHUB.log_level, "propagate": False}
        for name in ("coordhub", "operations", "dashboard", "django_tasks_db")
    },
}
