"""The read-replica router (config/db_routers.py) against a real second PostgreSQL database.

The stand-in replica is a database of its own on the same server, built by ``migrate`` like
the primary, then given rows that differ from the primary's, as a lagging replica's would:
a package only the replica has, and a package whose replica copy is older. What a response
shows (and which connection ran queries) tells which database it read.

Tests that read through the router run with ``transaction=True``: inside the usual test
transaction every read goes to the primary, by design. The stand-in is created and dropped by
the module; the suite's own test database stays as it is.
"""

from __future__ import annotations

import logging
import runpy
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import MiddlewareNotUsed
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import Model
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from config import db_routers
from config.db_routers import REPLICA, PrimaryReplicaRouter, ReplicaReadsMiddleware, replica_reads
from config.env import POSTGRES_REPLICA_VARIABLES
from indexing import writer
from portal.models import Maintainer, Package, Section
from search import stores
from search.indices import client as es_client
from search.indices import read_alias
from search.models import Promotion
from tests.conftest import ROOT
from tests.helpers import change_form_data, make_package
from tests.integration.support import wait_until_indexed

pytestmark = [pytest.mark.integration]
PRIMARY = DEFAULT_DB_ALIAS
# Inside the usual per-test transaction every read goes to the primary, by design.
transactional = pytest.mark.django_db(transaction=True, databases=[PRIMARY, REPLICA])

FRESH = "fresh summary written on the primary"
STALE = "stale summary of the lagging replica"
REPLICA_ONLY = "a package only the replica has"


# --------------------------------------------------------------------------- the stand-in


def _install_replica(settings_dict: dict[str, Any]) -> None:
    """Configure the ``replica`` alias in this process, as settings.py does from the env."""
    configured = connections.configure_settings(
        {PRIMARY: connections.settings[PRIMARY], REPLICA: dict(settings_dict)}
    )
    connections.settings[REPLICA] = configured[REPLICA]


def _uninstall_replica() -> None:
    if REPLICA in connections.settings:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]


@pytest.fixture(scope="module")
def stand_in(django_db_setup, django_db_blocker) -> Iterator[dict[str, Any]]:
    """A second database on the same server with the primary's schema, configured as this
    process's ``replica`` for the module's tests (which list it in their ``databases``)."""
    primary = connections[PRIMARY].settings_dict
    name = f"{primary['NAME']}_replica"
    settings_dict = {**primary, "NAME": name, "TEST": {}}
    quoted = connections[PRIMARY].ops.quote_name(name)

    def drop() -> None:
        _uninstall_replica()
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")

    with django_db_blocker.unblock():
        drop()
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {quoted}")
        _install_replica(settings_dict)
        # The router never migrates a replica (its schema comes by replication), so the
        # stand-in is built the way the primary is: migrated with no router in the way.
        with override_settings(DATABASE_ROUTERS=[]):
            call_command("migrate", database=REPLICA, verbosity=0)
    try:
        yield settings_dict
    finally:
        with django_db_blocker.unblock():
            drop()


@pytest.fixture
def replica(stand_in, monkeypatch) -> Iterator[None]:
    """The stand-in replica, emptied after each test; the router's state and the search
    service's cached curation reset around it."""
    db_routers.replica_breaker.reset()
    stores.Memo.reset_all()
    yield
    stores.Memo.reset_all()
    # Drain the outbox of this test's writes before pytest-django flushes the primary: a
    # worker transaction still open on the tables can deadlock with the flush's TRUNCATE.
    writer.process_outbox()
    wait_until_indexed(timeout=30)
    tables = ", ".join(m._meta.db_table for m in (Promotion, Package, Maintainer, Section))
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")


@pytest.fixture
def without_replica(stand_in) -> Iterator[None]:
    """No ``replica`` alias for one test, as without POSTGRES_REPLICA_* settings."""
    _uninstall_replica()
    yield
    _install_replica(stand_in)


def copy_to_replica(obj: Model, **changes: Any) -> Model:
    """Insert ``obj``'s row (same primary key) into the replica, with ``changes``."""
    model = type(obj)
    values = {f.attname: getattr(obj, f.attname) for f in model._meta.concrete_fields}
    values.update(changes)
    # bulk_create: a plain INSERT, no model signals (nothing to index).
    model.objects.using(REPLICA).bulk_create([model(**values)], ignore_conflicts=True)
    # A real replica shares the primary's sequences: move the stand-in's past the copied key.
    with connections[REPLICA].cursor() as cursor:
        for sql in connections[REPLICA].ops.sequence_reset_sql(no_style(), [model]):
            cursor.execute(sql)
    return model.objects.using(REPLICA).get(pk=obj.pk)


def replica_package(package: Package, **changes: Any) -> Package:
    copy_to_replica(package.section)
    copy_to_replica(package.maintainer)
    return copy_to_replica(package, **changes)


@pytest.fixture
def lagging(replica) -> Package:
    """A package on both databases whose replica copy is older, and one only the replica has."""
    shared = make_package("lagging-pkg", summary=FRESH)
    replica_package(shared, summary=STALE)
    section = Section.objects.using(REPLICA).create(name="replica-section")
    maintainer = Maintainer.objects.using(REPLICA).create(name="Rep Lica", email="r@example.org")
    Package.objects.using(REPLICA).bulk_create(
        [
            Package(
                name="replica-only-pkg",
                version="1.0",
                summary=REPLICA_ONLY,
                section=section,
                maintainer=maintainer,
            )
        ]
    )
    return shared


def primary_summary(name: str) -> str:
    return Package.objects.using(PRIMARY).get(name=name).summary


def replica_summary(name: str) -> str:
    return Package.objects.using(REPLICA).get(name=name).summary


@pytest.fixture
def editor(client) -> Client:
    user = get_user_model().objects.create_superuser("ed", "ed@example.org", "pw")
    client.force_login(user)
    return client


# --------------------------------------------------------------------------- visitors


@transactional
def test_anonymous_page_reads_go_to_the_replica(client, lagging):
    assert not Package.objects.filter(name="replica-only-pkg").exists()  # the primary lacks it
    with (
        CaptureQueriesContext(connections[PRIMARY]) as on_primary,
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
    ):
        page = client.get("/packages/replica-only-pkg/")
        shared = client.get("/packages/lagging-pkg/")
        head = client.head("/packages/replica-only-pkg/")
    assert page.status_code == 200
    assert REPLICA_ONLY in page.content.decode()
    assert shared.status_code == 200
    assert STALE in shared.content.decode()
    assert FRESH not in shared.content.decode()
    assert head.status_code == 200
    assert on_replica.captured_queries, "no query reached the replica"
    assert on_primary.captured_queries == [], "an anonymous page read the primary"


@transactional
def test_search_page_and_api_read_curation_from_the_replica(client, replica, search_index):
    """An editor's pick the replica already has (and the primary no longer) is applied."""
    pick = make_package("promo-target", summary="unrelated words")
    writer.write_documents({pick.pk: 0})
    replica_package(pick)
    Promotion.objects.using(REPLICA).create(query="Zebra Crossing", package_id=pick.pk)
    assert not Promotion.objects.exists()

    hits = client.get("/api/search", {"q": "zebra crossing"}).json()["hits"]
    assert [(h["name"], h["promoted"]) for h in hits] == [("promo-target", "Editor's pick")]
    page = client.get("/", {"q": "zebra crossing"})
    assert page.status_code == 200
    assert "promo-target" in page.content.decode()


@transactional
def test_a_package_the_replica_lacks_yet_is_looked_up_on_the_primary(client, replica):
    """The search index follows the primary within a second and may link to a package the
    replica has not received yet: the page must not answer 404 for it."""
    make_package("just-created-pkg", summary=FRESH)
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        response = client.get("/packages/just-created-pkg/")
    assert response.status_code == 200
    assert FRESH in response.content.decode()
    assert on_replica.captured_queries, "the replica was not asked first"
    assert client.get("/packages/no-such-package/").status_code == 404


# --------------------------------------------------------------------------- the primary


@transactional
def test_editors_and_the_admin_read_and_write_the_primary(editor, lagging):
    # A logged-in editor reads the primary, on the public pages too (read-your-writes).
    assert editor.get("/packages/replica-only-pkg/").status_code == 404
    assert FRESH in editor.get("/packages/lagging-pkg/").content.decode()
    listed = editor.get("/admin/portal/package/")
    assert {p.name for p in listed.context["cl"].result_list} == {"lagging-pkg"}

    data = change_form_data(lagging, summary="edited in the admin")
    response = editor.post(f"/admin/portal/package/{lagging.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert primary_summary("lagging-pkg") == "edited in the admin"
    assert replica_summary("lagging-pkg") == STALE  # the write went to the primary only
    assert "edited in the admin" in editor.get("/packages/lagging-pkg/").content.decode()
    # Visitors still read the (lagging) replica.
    assert STALE in Client().get("/packages/lagging-pkg/").content.decode()


@transactional
def test_writes_transactions_and_reads_after_a_write_use_the_primary(lagging):
    with replica_reads():
        assert Package.objects.get(name="lagging-pkg").summary == STALE
        with transaction.atomic():
            assert Package.objects.get(name="lagging-pkg").summary == FRESH
        # An object read from the replica is saved to the primary...
        copy = Package.objects.get(name="lagging-pkg")
        copy.summary = "saved from a replica copy"
        copy.save(update_fields=["summary"])
        # ...and from then on this scope reads its own writes from the primary.
        assert Package.objects.get(name="lagging-pkg").summary == "saved from a replica copy"
    assert primary_summary("lagging-pkg") == "saved from a replica copy"
    assert replica_summary("lagging-pkg") == STALE


@transactional
def test_indexer_and_commands_read_the_primary(search_index, lagging, capsys):
    """Outside a page's read scope (Celery tasks, management commands) reads are the
    primary's: the indexer must index what was committed, not an older copy."""
    assert replica_summary("lagging-pkg") == STALE
    writer.write_documents({lagging.pk: 0})
    doc = es_client().get(index=read_alias(), id=lagging.pk)
    assert doc["_source"]["summary"] == FRESH

    call_command("search_status", "--json")
    status = capsys.readouterr().out
    assert '"rows": 1' in status  # the replica has two packages
    assert Package.objects.using(REPLICA).count() == 2


# --------------------------------------------------------------------------- failures


@transactional
def test_an_unreachable_replica_falls_back_to_the_primary(client, lagging, monkeypatch, caplog):
    monkeypatch.setattr(db_routers.replica_breaker, "seconds", 5.0)
    replica_settings = connections[REPLICA].settings_dict
    port = replica_settings["PORT"]
    connections[REPLICA].close()
    replica_settings["PORT"] = 1  # nothing listens there
    try:
        with caplog.at_level(logging.WARNING, logger="config.db_routers"):
            first = client.get("/packages/lagging-pkg/")
            second = client.get("/packages/lagging-pkg/")
    finally:
        replica_settings["PORT"] = port
    for response in (first, second):
        assert response.status_code == 200
        assert FRESH in response.content.decode()
    warnings = [r for r in caplog.records if "read replica unavailable" in r.getMessage()]
    assert len(warnings) == 1, "the second request should not have tried the replica again"

    # Back after the retry interval.
    time.sleep(db_routers.replica_breaker.remaining() + 0.1)
    assert STALE in client.get("/packages/lagging-pkg/").content.decode()


@transactional
def test_a_replica_error_mid_page_retries_the_view_on_the_primary(client, lagging, caplog):
    """The replica answers, then a query fails on it (here: it has not replayed a schema
    change yet): the page is served from the primary."""
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("ALTER TABLE portal_maintainer RENAME COLUMN email TO email_later")
    try:
        with caplog.at_level(logging.WARNING, logger="config.db_routers"):
            response = client.get("/packages/lagging-pkg/")
    finally:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("ALTER TABLE portal_maintainer RENAME COLUMN email_later TO email")
    assert response.status_code == 200
    assert FRESH in response.content.decode()
    assert any("read replica unavailable" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- no replica


@transactional
def test_without_a_replica_the_router_and_middleware_are_inert(client, without_replica):
    assert REPLICA not in connections.settings
    make_package("plain-pkg", summary=FRESH)
    with pytest.raises(MiddlewareNotUsed):
        ReplicaReadsMiddleware(lambda request: None)
    router = PrimaryReplicaRouter()
    with replica_reads():
        assert router.db_for_read(Package) is None
        assert Package.objects.get(name="plain-pkg").summary == FRESH
    assert router.db_for_read(Package) is None
    assert router.db_for_write(Package) is None
    assert FRESH in client.get("/packages/plain-pkg/").content.decode()


def _settings_with(monkeypatch, **variables: str) -> dict[str, Any]:
    """config/settings.py run afresh with these POSTGRES_REPLICA_* variables (and no others)."""
    for name in POSTGRES_REPLICA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "config" / "settings.py"))


def test_settings_configure_a_replica_only_when_asked(monkeypatch):
    plain = _settings_with(monkeypatch)
    assert set(plain["DATABASES"]) == {"default"}
    assert plain["DATABASE_ROUTERS"] == ["config.db_routers.PrimaryReplicaRouter"]
    assert plain["MIDDLEWARE"][-1] == "config.db_routers.ReplicaReadsMiddleware"

    configured = _settings_with(
        monkeypatch, POSTGRES_REPLICA_HOST="replica.internal", POSTGRES_REPLICA_PORT="6432"
    )
    primary, replica = configured["DATABASES"]["default"], configured["DATABASES"]["replica"]
    assert (replica["HOST"], replica["PORT"]) == ("replica.internal", 6432)
    # Unset parts are the primary's: same database name, user and password.
    for key in ("NAME", "USER", "PASSWORD", "ENGINE", "CONN_MAX_AGE"):
        assert replica[key] == primary[key], key
