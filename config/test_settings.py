"""Settings for the test suite: the real local services, isolated from development data.

Tests use their own index prefix (``test``), their own Redis databases for the broker and the
cache, and pytest-django's own database (``test_<POSTGRES_DB>``), so running the tests never
touches the demo data of ``make run``.
"""

import os

os.environ.setdefault("SEARCH_INDEX_PREFIX", "test")
os.environ.setdefault("CACHE_KEY_PREFIX", "test")
# A write is searchable at the index's next refresh: with the default 1 s, every test that
# indexes and then searches waited half a second on average for it (``refresh=wait_for``).
# The tests' indices are tiny; the mechanism under test is the same.
os.environ.setdefault("SEARCH_INDEX_REFRESH_INTERVAL", "100ms")

from config.settings import *  # noqa: F403
from config.settings import CONNECTIONS

_redis_base = CONNECTIONS.redis_url.rsplit("/", 1)[0]
_cache_base = CONNECTIONS.redis_cache_url.rsplit("/", 1)[0]
COORDINATION_REDIS_URL = os.environ.get("TEST_REDIS_URL", f"{_redis_base}/2")
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", f"{_redis_base}/3")
CACHES["default"]["LOCATION"] = os.environ.get("TEST_REDIS_CACHE_URL", f"{_cache_base}/1")  # noqa: F405
# The session's worker runs these settings: its beat must not flush the search query log, which
# the analytics tests fill and flush themselves (it would take their entries mid-test).
CELERY_BEAT_SCHEDULE = {
    name: entry
    for name, entry in CELERY_BEAT_SCHEDULE.items()  # noqa: F405
    if name != "flush-search-query-log"
}
# A loaded CI machine can take more than the default 3 s to index an editor's save; the
# read-your-writes test checks the wait, not its bound.
SEARCH_EDITOR_WAIT_SECONDS = 15.0
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests hammer the API from one address; the rate-limit test sets its own limit.
SEARCH_API_RATE_LIMIT = "0"
# Tests never read a real read replica, even with POSTGRES_REPLICA_* in the environment; the
# router's tests configure a stand-in of their own (tests/integration/test_db_router.py).
DATABASES.pop("replica", None)  # noqa: F405
