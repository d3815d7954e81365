"""Derived data that must stay right whoever writes and however concurrently (issue #10,
items 3 and 4): reverse-dependency counts, and every change that alters a document.

The concurrency tests interleave real transactions on their own connections: one holds
its transaction open at a known point, the test waits until PostgreSQL shows the other
one blocked on a lock, then lets the first commit.
"""

from __future__ import annotations

import gzip
import json
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import close_old_connections, connection, transaction
from elasticsearch import helpers

from indexing import writer
from portal.catalog_import import import_catalog
from portal.models import Dependency, Package, Tag
from search import ranking
from search.indices import client as es
from search.indices import read_alias, write_alias
from tests.conftest import wait_for
from tests.helpers import make_package

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def doc(pk: int) -> dict:
    return es().get(index=read_alias(), id=pk)["_source"]


def blocked_on_a_lock() -> int:
    """Sessions of the test database waiting for a lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


class Transaction(threading.Thread):
    """Runs ``work`` in a transaction on its own connection; commits when released."""

    def __init__(self, work) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.ready = threading.Event()
        self.release = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                self.work()
                self.ready.set()
                assert self.release.wait(60), "never released"
        except BaseException as exc:
            self.error = exc
            self.ready.set()
        finally:
            close_old_connections()
            connection.close()


def real_count(package: Package) -> int:
    return Dependency.objects.filter(target=package, kind="depends").count()


# ------------------------------------------------------------------ 3. reverse counts


@pytest.mark.django_db(transaction=True)
def test_concurrent_new_dependencies_are_all_counted():
    target = make_package("libcounted1")
    users = [make_package(f"counted-user-{i}") for i in range(2)]

    def add(user: Package):
        return lambda: Dependency.objects.create(
            package=user, kind="depends", target_name=target.name
        )

    first, second = Transaction(add(users[0])), Transaction(add(users[1]))
    first.start()
    assert first.ready.wait(30) and first.error is None
    second.start()
    try:
        # The second transaction waits for the first one's lock on the counted row.
        wait_for(lambda: blocked_on_a_lock() >= 1, timeout=30)
    finally:
        first.release.set()
        first.join(30)
        second.release.set()
        second.join(30)
    assert first.error is None and second.error is None
    target.refresh_from_db()
    assert real_count(target) == 2
    assert target.reverse_dependency_count == 2


@pytest.mark.django_db(transaction=True)
def test_an_import_does_not_overwrite_a_concurrent_admin_count(tmp_path: Path):
    target = make_package("libshared1")
    editor_user = make_package("edited-by-an-editor")
    catalog = tmp_path / "catalog.jsonl.gz"
    entry = {
        "name": "imported-user",
        "version": "1.0",
        "section": "utils",
        "priority": "optional",
        "architecture": "amd64",
        "maintainer": {"name": "Importer", "email": "imp@example.org"},
        "summary": "depends on libshared1",
        "depends": ["libshared1"],
    }
    with gzip.open(catalog, "wt") as handle:
        handle.write(json.dumps(entry) + "\n")
    # An editor's transaction adds a dependency and is still open when the import runs.
    editor = Transaction(
        lambda: Dependency.objects.create(
            package=editor_user, kind="depends", target_name=target.name
        )
    )
    editor.start()
    assert editor.ready.wait(30) and editor.error is None
    errors: list[BaseException] = []

    def run_import() -> None:
        try:
            import_catalog(catalog)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    importer = threading.Thread(target=run_import, daemon=True)
    importer.start()
    try:
        wait_for(lambda: blocked_on_a_lock() >= 1, timeout=60)
    finally:
        editor.release.set()
        editor.join(30)
        importer.join(120)
    assert not errors and editor.error is None
    target.refresh_from_db()
    assert real_count(target) == 2
    assert target.reverse_dependency_count == 2


def test_dependencies_written_without_the_orm_are_counted_and_indexed(search_index):
    target = make_package("libraw1")
    users = [make_package(f"raw-user-{i}") for i in range(3)]
    writer.process_outbox()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO portal_dependency (package_id, kind, target_name) VALUES (%s, %s, %s)",
            [users[0].pk, "depends", target.name],
        )
    Dependency.objects.bulk_create(
        [Dependency(package=users[1], kind="depends", target_name=target.name)]
    )
    Dependency.objects.create(package=users[2], kind="recommends", target_name="libraw1")
    Dependency.objects.filter(package=users[2]).update(kind="depends")
    writer.process_outbox()
    target.refresh_from_db()
    assert real_count(target) == 3
    assert target.reverse_dependency_count == 3
    assert doc(target.pk)["popularity"] == 3


# ------------------------------------------------------------------ 4. tags and content


def test_moving_package_tags_to_another_tag_reaches_the_index(search_index):
    old, _ = Tag.objects.get_or_create(facet="use", value="browsing")
    new, _ = Tag.objects.get_or_create(facet="use", value="viewing")
    package = make_package("tagged-browser")
    package.tags.add(old)
    writer.process_outbox()
    assert doc(package.pk)["tags"] == ["use::browsing"]
    # "Merge tags": every link of one tag moved to another in one UPDATE.
    Package.tags.through.objects.filter(tag=old).update(tag=new)
    writer.process_outbox()
    assert doc(package.pk)["tags"] == ["use::viewing"]


def test_verify_compares_content_not_only_versions(search_index):
    package = make_package("content-checked", summary="the true summary")
    writer.process_outbox()
    stored = es().get(index=read_alias(), id=package.pk)
    # A document with the right version but the wrong content (written behind our back).
    helpers.bulk(
        es(),
        [
            {
                "_op_type": "index",
                "_index": write_alias(),
                "_id": package.pk,
                "version": stored["_version"],
                "version_type": "external_gte",
                "_source": {**stored["_source"], "summary": "a wrong summary"},
            }
        ],
        refresh=True,
    )
    with pytest.raises(CommandError, match="drift"):
        call_command("search_status", "--verify", stdout=StringIO())


# ------------------------------------------------------------------ ranking inputs


def family(name: str) -> int:
    return Package.objects.get(name=name).source_family_size


def test_source_family_sizes_follow_every_writer(search_index):
    app = make_package("fam-app", source="fam")
    make_package("fam-data", source="fam")
    assert (family("fam-app"), family("fam-data")) == (2, 2)
    writer.process_outbox()
    in_a_family = doc(app.pk)["prior"]
    with connection.cursor() as cursor:  # raw SQL is counted too
        cursor.execute(
            "INSERT INTO portal_package (name, version, source, summary, description, "
            "section_id, priority, architecture, homepage, maintainer_id, created_at, "
            "updated_at) SELECT 'fam-doc', version, 'fam', summary, description, section_id, "
            "priority, architecture, homepage, maintainer_id, now(), now() "
            "FROM portal_package WHERE name = 'fam-app'"
        )
    assert family("fam-app") == family("fam-doc") == 3
    Package.objects.filter(name="fam-doc").update(source="other")
    assert family("fam-app") == 2 and family("fam-doc") == 1
    Package.objects.filter(name="fam-data").delete()
    assert family("fam-app") == 1
    writer.process_outbox()
    # The prior of a document follows its family (and so needs its reindex).
    alone = doc(app.pk)
    assert alone["prior"] < in_a_family
    assert alone["prior"] == ranking.prior(
        depends=0, recommends=0, family=1, tags=[], kind=alone["kind"]
    )


def test_a_relabelled_tag_reindexes_its_packages_as_words(search_index):
    from portal import vocabulary

    tag, _ = Tag.objects.get_or_create(facet="use", value="viewing")
    package = make_package("labelled-viewer")
    package.tags.add(tag)
    shipped = {e.name: e.label for e in vocabulary.load()}["use::viewing"]
    vocabulary.apply(vocabulary.load())
    writer.process_outbox()
    assert doc(package.pk)["tag_words"] == [shipped]
    entries = [
        vocabulary.Entry("use::viewing", "Looking at things", "a newer vocabulary")
        if e.name == "use::viewing"
        else e
        for e in vocabulary.load()
    ]
    assert vocabulary.apply(entries).tags == 1
    assert writer.process_outbox()[0] >= 1  # the label change was captured
    assert doc(package.pk)["tag_words"] == ["Looking at things"]
    assert vocabulary.apply(entries).tags == 0  # unchanged: nothing written


def test_import_vocabulary_command(tmp_path):
    path = tmp_path / "vocabulary"
    path.write_text("Tag: use::viewing\nDescription: Seeing\n long text\n")
    Tag.objects.get_or_create(facet="use", value="viewing")
    out = StringIO()
    call_command("import_vocabulary", str(path), stdout=out)
    assert "1 tags changed" in out.getvalue()
    assert Tag.objects.get(facet="use", value="viewing").label == "Seeing"
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_vocabulary", str(tmp_path / "missing"))


def test_a_bulk_update_of_many_packages_is_not_quadratic():
    """Every UPDATE of packages runs two statement triggers that look for a renamed package
    or a changed source. They joined the statement's old and new rows, which PostgreSQL
    planned as a nested loop: n x n comparisons whenever nothing was renamed (the usual
    case: nothing stops the search early). 1,254 rows took 0.3-0.45 s per check, and an
    import updates every package three or four times (family and reverse-dependency
    recounts, tag links), so these checks were a third of a fresh import; 12,000 rows in
    one UPDATE took about a minute. Bounded here by a statement timeout 5 to 10 times what
    the linear checks need on a slow machine."""
    from tests.helpers import make_packages

    ids = make_packages(12_000, prefix="bulk-linear")
    keeper = make_package("user-of-linear")
    Dependency.objects.create(package=keeper, kind="depends", target_name="renamed-linear")
    make_package("sibling-of-linear", source="linear-family")
    renamed, moved = ids[-1], ids[-2]  # last in the statement's rows
    with transaction.atomic(), connection.cursor() as cursor:
        # PL/pgSQL plans each statement of a trigger once per session and may keep that
        # plan (a generic one) for later runs: planned for a one-row update, the check's
        # join stayed a nested loop for every later update, whatever its size. An
        # import's session got there after a few batches; here, a few one-row updates.
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        for pk in ids[:6]:
            Package.objects.filter(pk=pk).update(version="1.1-1")
        cursor.execute("SET LOCAL statement_timeout = '15s'")
        cursor.execute(
            "UPDATE portal_package SET version = '2.0-1' WHERE name LIKE 'bulk-linear-%%'"
        )
        assert cursor.rowcount == 12_000
        # The checks still find one renamed package and one changed source among many.
        cursor.execute(
            "UPDATE portal_package SET version = '3.0-1', "
            "name = CASE WHEN id = %s THEN 'renamed-linear' ELSE name END, "
            "source = CASE WHEN id = %s THEN 'linear-family' ELSE source END "
            "WHERE name LIKE 'bulk-linear-%%'",
            [renamed, moved],
        )
    assert Dependency.objects.get(package=keeper).target_id == renamed
    assert family("sibling-of-linear") == 2
    assert Package.objects.get(pk=moved).source_family_size == 2
