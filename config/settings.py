"""Django settings, read from the environment.

Defaults suit local development against the project's own services (``config/services.py``).
Production deployments set ``DJANGO_SETTINGS_MODULE=config.settings`` with
``DJANGO_DEBUG=0``, a real ``DJANGO_SECRET_KEY`` and ``DJANGO_ALLOWED_HOSTS``.
"""

from __future__ import annotations

from pathlib import Path

from elasticsearch.serializer import OrjsonSerializer
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import env

BASE_DIR = Path(__file__).resolve().parent.parent
CONNECTIONS = env.connections()

DEBUG = env.env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env.env_str("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise SystemExit("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    SECRET_KEY = "local-development-only-not-secret"
ALLOWED_HOSTS = env.env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_elasticsearch_dsl",
    "portal",
    "search",
    "indexing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.admin_input.AdminNulGuard",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: needs the user; removes itself when no read replica is configured.
    "config.db_routers.ReplicaReadsMiddleware",
]

# A form body may hold the longest description the catalog accepts (1,000,000 characters,
# up to 4 MB in UTF-8) and the rest of the package form; Django's 2.5 MB default turned such
# an edit into a bare 400 before the form could say what was wrong. Past this, 400.html says
# the request was too large.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            "builtins": [
                "portal.templatetags.portal_extras",
                "django.contrib.humanize.templatetags.humanize",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": CONNECTIONS.postgres_host,
        "PORT": CONNECTIONS.postgres_port,
        "NAME": CONNECTIONS.postgres_db,
        "USER": CONNECTIONS.postgres_user,
        "PASSWORD": CONNECTIONS.postgres_password,
        "CONN_MAX_AGE": env.env_int("POSTGRES_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": 5},
    }
}
# Optional read replica (POSTGRES_REPLICA_*): anonymous page reads go there, everything else
# stays on the primary (config/db_routers.py).
_replica = env.postgres_replica(CONNECTIONS)
if _replica is not None:
    DATABASES["replica"] = {
        **DATABASES["default"],
        "HOST": _replica.host,
        "PORT": _replica.port,
        "NAME": _replica.db,
        "USER": _replica.user,
        "PASSWORD": _replica.password,
        # Fail over to the primary quickly when the replica is unreachable.
        "OPTIONS": {"connect_timeout": 2},
    }
DATABASE_ROUTERS = ["config.db_routers.PrimaryReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Two Redis servers (search/stores.py): the cache may evict anything; coordination (index
# generation, write registrations, locks, heartbeats, the query log) must never lose a write.
COORDINATION_REDIS_URL = CONNECTIONS.redis_url
CACHES = {
    "default": {
        "BACKEND": "config.redis_cache.RedisCache",
        "LOCATION": CONNECTIONS.redis_cache_url,
        "KEY_PREFIX": env.env_str("CACHE_KEY_PREFIX", "portal"),
        "TIMEOUT": 300,
        # Fail fast when Redis is down (searches then run uncached): no client-side retries.
        "OPTIONS": {
            "socket_connect_timeout": 0.5,
            "socket_timeout": 1,
            "retry": Retry(NoBackoff(), 0),
        },
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Local runs serve static files straight from the apps (no collectstatic step).
WHITENOISE_USE_FINDERS = DEBUG

# --- Production hardening (DEBUG off) ----------------------------------------------------
# `DJANGO_DEBUG=0 DJANGO_SECRET_KEY=... DJANGO_ALLOWED_HOSTS=... DJANGO_SECURE_SSL_REDIRECT=1
#  manage.py check --deploy` is clean (tested). Behind a TLS-terminating proxy that sets
# X-Forwarded-Proto, keep SSL redirect on; the probes stay reachable over plain HTTP.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedStaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Elasticsearch -------------------------------------------------------------------
ELASTICSEARCH_DSL = {
    "default": {
        "hosts": CONNECTIONS.elasticsearch_hosts,
        "request_timeout": env.env_int("ELASTICSEARCH_TIMEOUT", 10),
        "retry_on_timeout": True,
        "max_retries": 2,
        # orjson encodes requests and decodes responses several times faster than json.
        "serializer": OrjsonSerializer(),
    }
}
# Indexing is owned by the `indexing` app (after-commit, outboxed); switch off
# django-elasticsearch-dsl's own signal processing so it never writes from a request.
ELASTICSEARCH_DSL_AUTOSYNC = False
ELASTICSEARCH_DSL_AUTO_REFRESH = False
# Every index name starts with this prefix; tests use their own so they never touch dev data.
SEARCH_INDEX_PREFIX = env.env_str("SEARCH_INDEX_PREFIX", "portal")
SEARCH_INDEX_SHARDS = env.env_int("SEARCH_INDEX_SHARDS", 1)
SEARCH_INDEX_REPLICAS = env.env_int("SEARCH_INDEX_REPLICAS", 0)
SEARCH_INDEX_REFRESH_INTERVAL = env.env_str("SEARCH_INDEX_REFRESH_INTERVAL", "1s")
# Keep pages of hits in Redis with the facet counts (same key, same generation: exactly as
# fresh); off, every search asks Elasticsearch for its page of hits.
SEARCH_PAGE_CACHE = env.env_bool("SEARCH_PAGE_CACHE", True)
# How long a rebuild keeps the index it replaced behind the write alias (so it stays equal
# to the database) as the rollback target; 0: no rollback, the old index is deleted at once.
SEARCH_ROLLBACK_HOURS = env.env_float("SEARCH_ROLLBACK_HOURS", 24.0)
# After an index write failed (it may still be applied and become visible later), how long
# searches keep off the cache (search.freshness).
SEARCH_FAILED_WRITE_GRACE = env.env_float("SEARCH_FAILED_WRITE_GRACE", 60.0)
# The search query log (analytics) keeps at most this many unflushed entries.
SEARCH_QUERY_LOG_MAX = env.env_int("SEARCH_QUERY_LOG_MAX", 100_000)
# Read-your-writes: how long an editor's next search may wait for their saved package to be
# searchable (then it shows what the index has).
SEARCH_EDITOR_WAIT_SECONDS = env.env_float("SEARCH_EDITOR_WAIT_SECONDS", 3.0)
# Per client on every path that runs a search (the API and the search page): "requests/
# seconds"; "0" switches it off (benchmarks). Behind a proxy, list it in
# SEARCH_TRUSTED_PROXIES (networks, comma-separated) so clients are told apart by
# X-Forwarded-For (search/ratelimit.py).
SEARCH_API_RATE_LIMIT = env.env_str("SEARCH_API_RATE_LIMIT", "300/60")
SEARCH_TRUSTED_PROXIES = env.env_list("SEARCH_TRUSTED_PROXIES", [])

# --- Celery --------------------------------------------------------------------------
CELERY_BROKER_URL = CONNECTIONS.celery_broker_url
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Fail fast when the broker is down: the outbox keeps the work, a request must not hang.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3600,
    "socket_connect_timeout": 1,
    "socket_timeout": 5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "indexing.tasks.process_outbox": {"queue": "indexing"},
    "indexing.tasks.sweep_outbox": {"queue": "maintenance"},
    "indexing.tasks.expire_previous_index": {"queue": "maintenance"},
    "search.tasks.*": {"queue": "maintenance"},
}
OUTBOX_SWEEP_SECONDS = env.env_int("OUTBOX_SWEEP_SECONDS", 5)
CELERY_BEAT_SCHEDULE = {
    "expire-previous-index": {
        "task": "indexing.tasks.expire_previous_index",
        "schedule": 300,
        "options": {"expires": 600},
    },
    "sweep-indexing-outbox": {
        "task": "indexing.tasks.sweep_outbox",
        "schedule": OUTBOX_SWEEP_SECONDS,
        "options": {"expires": OUTBOX_SWEEP_SECONDS * 2},
    },
    "flush-search-query-log": {
        "task": "search.tasks.flush_query_log",
        "schedule": 30,
        "options": {"expires": 60},
    },
}
CELERY_TASK_ALWAYS_EAGER = env.env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# No task may run away: a soft limit raises inside the task, the hard one kills the child.
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_ANNOTATIONS = {
    # Bulk maintenance must not starve the indexing queue of database and engine time.
    "search.tasks.flush_query_log": {"rate_limit": "6/m"},
    "indexing.tasks.sweep_outbox": {"rate_limit": "30/m"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        # One JSON object a line for log shippers (DJANGO_LOG_FORMAT=json).
        "json": {"()": "config.logs.JsonFormatter"},
    },
    "filters": {"retries_on_one_line": {"()": "config.logs.RetriesOnOneLine"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.env_str("DJANGO_LOG_FORMAT", "plain" if DEBUG else "json"),
            "filters": ["retries_on_one_line"],
        }
    },
    "root": {"handlers": ["console"], "level": env.env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "elastic_transport": {"level": "WARNING"},
        "elasticsearch": {"level": "WARNING"},
    },
}
