"""The test database's flush survives a deadlock with another connection (tests/conftest.py).

The session's real worker shares the test database. A ``transaction=True`` test ends with a
flush (one ``TRUNCATE`` of every table) that can deadlock with the worker still indexing the
test's last edits. This test makes that deadlock happen on purpose, with a second connection
in place of the worker, and checks that the flush still empties the database.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import closing

import psycopg2
import pytest
from django.core.management import call_command
from django.core.management.color import no_style
from django.core.management.sql import sql_flush
from django.db import connection

from portal.models import Package
from tests.conftest import wait_for
from tests.helpers import make_package

pytestmark = [pytest.mark.integration]


def _truncate_order() -> list[str]:
    """The tables of the flush's TRUNCATE, in the order it locks them."""
    (truncate,) = [s for s in sql_flush(no_style(), connection) if s.startswith("TRUNCATE")]
    return re.findall(r'"([^"]+)"', truncate.split(";")[0])


def _observe(sql: str) -> list[tuple]:
    # closing(): psycopg2's own ``with`` ends the transaction but leaves the connection open.
    with closing(psycopg2.connect(**connection.get_connection_params())) as observer, observer:
        cursor = observer.cursor()
        cursor.execute(sql)
        return cursor.fetchall()


def _deadlocks() -> int:
    (row,) = _observe("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
    return row[0]


def _flush_waits_on(other_pid: int) -> bool:
    rows = _observe(
        "SELECT pg_blocking_pids(pid) FROM pg_stat_activity "
        "WHERE query LIKE 'TRUNCATE%' AND state = 'active'"
    )
    return any(other_pid in (blockers or []) for (blockers,) in rows)


@pytest.mark.django_db(transaction=True)
def test_flush_is_retried_when_postgresql_picks_it_as_a_deadlock_victim():
    make_package("flushed-pkg")
    tables = _truncate_order()
    first, last = tables[0], tables[-1]
    deadlocks_before = _deadlocks()
    other = psycopg2.connect(**connection.get_connection_params())
    errors: list[BaseException] = []

    def hold_then_cross() -> None:
        # Like the worker: it holds a lock on one table, then wants one the flush has.
        try:
            deadline = time.monotonic() + 30
            while not _flush_waits_on(other.info.backend_pid):
                if time.monotonic() > deadline:
                    raise TimeoutError("the flush never waited on the other connection")
                time.sleep(0.05)
            with other.cursor() as cursor:
                cursor.execute(f'SELECT count(*) FROM "{first}"')
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            other.rollback()  # ends the transaction either way: the flush can go on

    with other.cursor() as cursor:
        # This side checks for a deadlock only after 10 s, the flush after the default 1 s:
        # the flush finds the cycle first and is the victim, however the two are scheduled.
        cursor.execute("SET deadlock_timeout = '10s'")
        cursor.execute(f'LOCK TABLE "{last}" IN ACCESS SHARE MODE')
    crossing = threading.Thread(target=hold_then_cross)
    crossing.start()
    try:
        # The flush locks ``first`` and waits for ``last``; the other connection then waits
        # for ``first``: a deadlock. PostgreSQL aborts the flush (see deadlock_timeout
        # above); the retry goes through once the other connection has ended its transaction.
        call_command("flush", interactive=False, verbosity=0)
    finally:
        crossing.join(timeout=60)
        other.close()
    assert not crossing.is_alive()
    assert errors == [], "the other connection should have won the deadlock"
    assert Package.objects.count() == 0
    # A deadlock really happened (so the flush above was a retry).
    wait_for(lambda: _deadlocks() > deadlocks_before, timeout=10)
