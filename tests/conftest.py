"""Fixtures for tests against the real services.

The README's test command starts PostgreSQL, Redis and Elasticsearch with
``python -m config.services up``; these fixtures add what a test run needs on top:

* ``search_index``: a fresh test index (prefix ``test``) behind the read and write aliases.
* ``celery_worker``: a real ``celery worker`` process, configured for the test database and
  the test broker, that tests can kill and restart (no eager mode).
* the flush that empties the database after a ``transaction=True`` test is retried when
  PostgreSQL aborts it as a deadlock victim (it can collide with that worker).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import OperationalError
from hypothesis import settings as hypothesis_settings

from config.services import ForegroundWorker, purge_worker_queues

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
# HYPOTHESIS_PROFILE=ci (set by .ci/run): the property tests draw the same examples on every
# run, so a failure in CI reproduces; elsewhere they draw new ones each run.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
DEADLOCK_DETECTED = "40P01"  # PostgreSQL's SQLSTATE for a deadlock victim
FLUSH_ATTEMPTS = 5


def run_python(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` (this interpreter) in the checkout, output captured; a failure is
    returned, not raised, for the test to say what it expected."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_services(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the real services manager (``python -m config.services ARGS``) in a subprocess."""
    return run_python("-m", "config.services", *args, env=env, timeout=timeout)


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; return it, or fail the test.

    A predicate that raises (a service still coming back, say) counts as not yet: the last
    exception is reported if the time runs out.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as exc:
            error, last = exc, None
        else:
            error = None
            if last:
                return last
        time.sleep(interval)
    detail = f"last error: {error!r}" if error is not None else f"last value: {last!r}"
    pytest.fail(f"condition not met within {timeout}s ({detail})")


class WorkerProcess(ForegroundWorker):
    """The tests' real Celery worker, bound to the test database, broker and index prefix.

    ``name`` tells workers apart (hostname, log and beat schedule files under
    tests/artifacts); ``env_extra`` is added to its environment (e.g. ``ELASTICSEARCH_HOSTS``
    for a scratch cluster).
    """

    # The session's worker (the ``celery_worker`` fixture), once started: a test that needs a
    # worker of its own on the same broker stops it meanwhile.
    session: WorkerProcess | None = None

    def __init__(
        self, db_name: str, *, name: str = "test", env_extra: dict[str, str] | None = None
    ) -> None:
        environment = dict(os.environ)
        environment.update(
            DJANGO_SETTINGS_MODULE="config.test_settings",
            POSTGRES_DB=db_name,
            SEARCH_INDEX_PREFIX=settings.SEARCH_INDEX_PREFIX,
            CELERY_TASK_ALWAYS_EAGER="0",
        )
        environment.update(env_extra or {})
        suffix = "" if name == "test" else f"-{name}"
        super().__init__(
            hostname=f"{name}-{os.getpid()}",
            logfile=ARTIFACTS / f"celery-worker{suffix}.log",
            schedule=ARTIFACTS / f"celerybeat-schedule{suffix}",
            env=environment,
        )


# --------------------------------------------------------------------------- reporting

# (test id, phase, innermost exception) of each failure, printed at the end of the run: a
# failure's root cause (a deadlock under a "database couldn't be flushed", say) is often a
# chained exception far above the summary, out of sight in a CI log's tail.
_ROOT_CAUSES: list[tuple[str, str, str]] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and call.excinfo is not None:
        exc: BaseException = call.excinfo.value
        seen = {id(exc)}
        while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
            seen.add(id(inner))
            exc = inner
        message = " | ".join(line.strip() for line in str(exc).strip().splitlines()[:2])
        _ROOT_CAUSES.append((item.nodeid, call.when, f"{type(exc).__name__}: {message[:300]}"))
    return report


def pytest_terminal_summary(terminalreporter) -> None:
    if _ROOT_CAUSES:
        terminalreporter.section("root causes (innermost exception of each failure)")
        for nodeid, when, cause in _ROOT_CAUSES:
            terminalreporter.line(f"{nodeid} [{when}]: {cause}")


@pytest.fixture(scope="session", autouse=True)
def _flush_retries_deadlocks() -> Iterator[None]:
    """Retry a test-database flush that PostgreSQL aborted as a deadlock victim.

    After each ``transaction=True`` test, pytest-django empties the database with one
    ``TRUNCATE`` of every table, which locks them one by one. The session's real worker
    shares that database: if it is still indexing the test's last edits, it holds a lock on
    one table and wants another that the ``TRUNCATE`` already holds, and PostgreSQL aborts
    one of the two. A worker that loses retries its batch; here the flush does the same.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                return original(self, sql_list)
            except OperationalError as exc:
                if getattr(exc.__cause__, "pgcode", None) != DEADLOCK_DETECTED:
                    raise
                if attempt == FLUSH_ATTEMPTS:
                    raise
                time.sleep(0.2 * attempt)

    patch = pytest.MonkeyPatch()
    patch.setattr(DatabaseOperations, "execute_sql_flush", execute_sql_flush)
    yield
    patch.undo()


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker) -> Iterator[WorkerProcess]:
    """A real worker process for the whole session (tests needing one use transaction=True)."""
    purge_worker_queues()
    db_name = settings.DATABASES["default"]["NAME"]
    worker = WorkerProcess(db_name)
    worker.start()
    WorkerProcess.session = worker
    yield worker
    WorkerProcess.session = None
    worker.stop()


@pytest.fixture
def search_index(settings) -> Iterator[str]:
    """A fresh, empty test index behind the test aliases; removed after the test."""
    from indexing import rebuild
    from search import freshness, stores

    assert settings.SEARCH_INDEX_PREFIX.startswith("test"), "tests must use a test index"
    drop_test_indices()
    # A new index: forget every per-process memo (the previous test's index name, tag
    # facets, curation) and any index write registered by a worker a fault test killed
    # mid-write (it would keep the cache off until its deadline), and the cached entries.
    stores.Memo.reset_all()
    coordination = stores.coordination()
    coordination.delete(stores.key(freshness.WRITING_KEY), stores.key("indexing:rebuild-lease"))
    stores.cache().clear()
    name = rebuild.ensure_index().live
    yield name
    drop_test_indices()


def drop_test_indices() -> None:
    from search import indices

    client = indices.client()
    for name in client.indices.get(index=indices.index_pattern(), expand_wildcards="all"):
        client.indices.delete(index=name)
    indices.protect_prefix(client)
