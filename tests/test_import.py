"""Tests of the catalog import (``manage.py import_catalog`` and ``portal.catalog_import``).

Small catalogs are written to ``tmp_path`` (plain and gzip); the bundled Debian catalog is
only read by the integration tests at the end. Nothing here needs a Celery worker. What
indexing would do is observed where it happens: the rows the capture triggers add to
``indexing_outbox`` in the import's transaction, and the after-commit kick (``hand_off=`` a
counter, or ``django_capture_on_commit_callbacks`` with ``indexing.tasks.kick`` replaced).
"""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import string
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F, Max
from django.test.utils import CaptureQueriesContext

from indexing.models import OutboxEntry
from portal import catalog_import
from portal.catalog_import import ImportAborted, ImportStats, import_catalog
from portal.models import Dependency, Maintainer, Package, Section, Tag
from tests.helpers import make_package

SUMMARY_RE = re.compile(
    r"Imported (?P<path>.+): (?P<lines>\d+) lines, (?P<valid>\d+) valid packages "
    r"\((?P<created>\d+) created, (?P<updated>\d+) updated, (?P<unchanged>\d+) unchanged, "
    r"(?P<pruned>\d+) pruned\), (?P<skipped>\d+) bad lines skipped, "
    r"(?P<changed>\d+) changed for indexing, in [\d.]+s\."
)


# --------------------------------------------------------------------------- helpers


def pkg(name: str, **fields: Any) -> dict[str, Any]:
    """A valid catalog entry; ``fields`` override (``None`` values are kept as JSON null)."""
    entry: dict[str, Any] = {
        "name": name,
        "version": "1.0-1",
        "source": name,
        "section": "utils",
        "priority": "optional",
        "architecture": "amd64",
        "maintainer": {"name": "Test Team", "email": "team@example.org"},
        "homepage": f"https://example.org/{name}",
        "installed_size_kb": 120,
        "download_size_bytes": 34567,
        "tags": ["role::program", "interface::commandline"],
        "depends": [],
        "recommends": [],
        "summary": f"the {name} package",
        "description": f"The {name} package.\n\nIt does things.",
    }
    entry.update(fields)
    return entry


def without(entry: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != key}


def write_catalog(path: Path, lines: list[dict[str, Any] | str], *, gz: bool = False) -> Path:
    """Write one line per item (dicts as JSON, strings verbatim); gzip if asked."""
    text = "".join((json.dumps(item) if isinstance(item, dict) else item) + "\n" for item in lines)
    data = text.encode("utf-8")
    if gz:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def run(path: Path | str, *args: str) -> tuple[dict[str, int], str, str]:
    """Run the command; return the parsed summary line, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command("import_catalog", str(path), *args, stdout=out, stderr=err)
    match = SUMMARY_RE.search(out.getvalue())
    assert match, out.getvalue()
    counts = {k: int(v) for k, v in match.groupdict().items() if k != "path"}
    assert match["path"] == str(path)
    return counts, out.getvalue(), err.getvalue()


def run_fails(path: Path | str, *args: str) -> tuple[str, str, str]:
    """Run the command expecting a CommandError; return its message, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("import_catalog", str(path), *args, stdout=out, stderr=err)
    return str(excinfo.value), out.getvalue(), err.getvalue()


class Imported(NamedTuple):
    stats: ImportStats
    kicks: int  # how many times the importer called hand_off (kick the worker)
    outboxed: set[int]  # package ids the import recorded in the indexing outbox


def outbox_mark() -> int:
    return OutboxEntry.objects.aggregate(last=Max("id"))["last"] or 0


def outbox_since(mark: int) -> set[int]:
    return set(OutboxEntry.objects.filter(id__gt=mark).values_list("object_id", flat=True))


def collect(path: Path, **kwargs: Any) -> Imported:
    """``import_catalog`` with the hand-off counted and the outbox rows it added."""
    mark = outbox_mark()
    kicks: list[None] = []
    stats = import_catalog(path, hand_off=lambda: kicks.append(None), **kwargs)
    return Imported(stats, len(kicks), outbox_since(mark))


def snapshot() -> dict[str, Any]:
    """Everything the import writes, to compare the database before and after."""
    packages = {
        row["name"]: row
        for row in Package.objects.values(
            "id",
            "name",
            "version",
            "source",
            "summary",
            "description",
            "section__name",
            "priority",
            "architecture",
            "homepage",
            "installed_size_kb",
            "download_size_bytes",
            "maintainer__name",
            "maintainer__email",
            "reverse_dependency_count",
            "row_version",
            "updated_at",
        )
    }
    return {
        "packages": packages,
        "tags": set(
            Package.tags.through.objects.values_list("package__name", "tag__facet", "tag__value")
        ),
        "dependencies": set(
            Dependency.objects.values_list("package__name", "kind", "target_name", "target_id")
        ),
        "sections": set(Section.objects.values_list("name", flat=True)),
        "maintainers": set(Maintainer.objects.values_list("name", "email")),
        "tag_rows": set(Tag.objects.values_list("facet", "value")),
        "outbox": set(OutboxEntry.objects.values_list("object_id", "version")),
    }


def versions() -> dict[str, int]:
    return dict(Package.objects.values_list("name", "row_version"))


def tags_of(name: str) -> set[str]:
    return {str(t) for t in Package.objects.get(name=name).tags.all()}


def deps_of(name: str) -> set[tuple[str, str, str | None]]:
    return {
        (d.kind, d.target_name, d.target.name if d.target else None)
        for d in Dependency.objects.filter(package__name=name).select_related("target")
    }


def assert_reverse_counts_consistent() -> None:
    """Every dependency on an existing name is linked, and every count is the real one."""
    assert not Dependency.objects.filter(
        target__isnull=True, target_name__in=Package.objects.values("name")
    ).exists()
    assert (
        not Dependency.objects.exclude(target__isnull=True)
        .exclude(target_name=F("target__name"))
        .exists()
    )
    for package in Package.objects.all():
        real = (
            Dependency.objects.filter(target=package, kind="depends")
            .values("package")
            .distinct()
            .count()
        )
        assert package.reverse_dependency_count == real, package.name


@pytest.fixture
def indexing_calls(monkeypatch, django_capture_on_commit_callbacks):
    """Count the command's hand-offs (``indexing.enqueue``) and the worker kicks sent.

    ``enqueue`` still runs (it registers the after-commit kick); ``capture()`` runs the
    on-commit callbacks of a block, with ``indexing.tasks.kick`` replaced by a counter, so
    no broker or worker is involved. One kick is registered per transaction at most, and a
    test's transaction never commits, so ``kicks`` only counts kicks first registered in a
    captured block.
    """
    import indexing
    from indexing import tasks

    real_enqueue = indexing.enqueue

    class Calls:
        enqueued = 0
        kicks = 0

        def capture(self):
            return django_capture_on_commit_callbacks(execute=True)

    calls = Calls()

    def enqueue(*args: Any, **kwargs: Any) -> int:
        calls.enqueued += 1
        return real_enqueue(*args, **kwargs)

    def kick() -> bool:
        calls.kicks += 1
        return True

    monkeypatch.setattr(indexing, "enqueue", enqueue)
    monkeypatch.setattr(tasks, "kick", kick)
    return calls


# --------------------------------------------------------------------------- 1. the path


@pytest.mark.django_db
def test_missing_file_is_a_command_error_naming_the_path(tmp_path):
    make_package("already-here")
    before = snapshot()
    missing = tmp_path / "nope" / "catalog.jsonl.gz"

    message, out, _ = run_fails(missing)

    assert str(missing) in message
    assert "no such file" in message
    assert out == ""
    assert snapshot() == before


@pytest.mark.django_db
def test_missing_file_through_the_api_is_import_aborted(tmp_path):
    with pytest.raises(ImportAborted, match=re.escape(f"{tmp_path / 'x.jsonl'}: no such file")):
        import_catalog(tmp_path / "x.jsonl")


@pytest.mark.django_db
def test_directory_is_a_command_error_naming_the_path(tmp_path):
    message, out, _ = run_fails(tmp_path)

    assert str(tmp_path) in message
    assert "is a directory" in message
    assert out == ""
    assert Package.objects.count() == 0


# --------------------------------------------------------------------------- 2. truncated gzip


def _varied_entries(count: int) -> list[dict[str, Any]]:
    rng = random.Random(1234)
    return [
        pkg(
            f"pkg-{i:04d}",
            description="".join(rng.choices(string.ascii_letters + " ", k=600)),
        )
        for i in range(count)
    ]


@pytest.mark.django_db
def test_gzip_cut_in_its_trailer_aborts_and_imports_nothing(tmp_path):
    make_package("already-here")
    before = snapshot()
    entries = [pkg(f"pkg-{i}") for i in range(1, 6)]
    full = write_catalog(tmp_path / "full.jsonl.gz", entries, gz=True).read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(full[:-6])  # all the compressed data, but not the CRC and length

    message, out, _ = run_fails(cut, "--no-index", "--batch-size", "2")

    # All five lines were read (and two batches written) before the cut was noticed.
    assert "truncated" in message
    assert "after line 5" in message
    assert str(cut) in message
    assert out == ""
    assert snapshot() == before


@pytest.mark.django_db
def test_gzip_cut_in_the_middle_aborts_with_a_line_number_and_imports_nothing(tmp_path):
    make_package("already-here")
    before = snapshot()
    entries = _varied_entries(200)
    full = write_catalog(tmp_path / "full.jsonl.gz", entries, gz=True).read_bytes()
    assert len(full) > 60_000  # several buffers' worth, so lines are read before the cut
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(full[: len(full) * 2 // 3])
    handed: list[None] = []

    with pytest.raises(ImportAborted) as excinfo:
        import_catalog(cut, batch_size=10, hand_off=lambda: handed.append(None))

    match = re.search(r"truncated or corrupt after line (\d+)", str(excinfo.value))
    assert match, str(excinfo.value)
    assert 10 < int(match[1]) < 200  # batches were written before the cut: all rolled back
    assert "nothing was imported" in str(excinfo.value)
    assert handed == []
    assert snapshot() == before


@pytest.mark.django_db
def test_gzip_garbage_after_the_header_aborts(tmp_path):
    full = write_catalog(tmp_path / "full.jsonl.gz", [pkg("a"), pkg("b")], gz=True).read_bytes()
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(full[:10] + b"\xff" * 40)

    message, _, _ = run_fails(bad, "--no-index")

    assert "truncated or corrupt after line 0" in message
    assert Package.objects.count() == 0


@pytest.mark.django_db
def test_plain_file_cut_mid_line_reports_the_partial_last_line(tmp_path):
    # A plain file has no end marker: the cut shows as a bad last line, and the rest imports.
    full = write_catalog(tmp_path / "c.jsonl", [pkg("a"), pkg("b"), pkg("c")]).read_bytes()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(full[:-40])

    counts, _, err = run(cut, "--no-index")

    assert "line 3: not valid JSON (Unterminated string" in err
    assert (counts["lines"], counts["valid"], counts["skipped"]) == (3, 2, 1)
    assert set(Package.objects.values_list("name", flat=True)) == {"a", "b"}


# --------------------------------------------------------------------------- 3. bad lines

MAX_KB = catalog_import.MAX_INSTALLED_SIZE_KB
MAX_BYTES = catalog_import.MAX_DOWNLOAD_SIZE_BYTES

BAD_LINES = [
    pytest.param('{"name": "broken", "version": ', "not valid JSON", id="not-json"),
    pytest.param("this is not json", "not valid JSON (Expecting value at column 1)", id="text"),
    pytest.param("[1, 2, 3]", "expected a JSON object, got list", id="json-list"),
    pytest.param('"a string"', "expected a JSON object, got str", id="json-string"),
    pytest.param("null", "expected a JSON object, got NoneType", id="json-null"),
    pytest.param(
        without(pkg("bad"), "version"), "missing required field 'version'", id="no-version"
    ),
    pytest.param(pkg("bad", summary=None), "missing required field 'summary'", id="null-summary"),
    pytest.param(pkg("bad", version=3), "field 'version' must be a string, got int", id="int"),
    pytest.param(pkg("bad", section=""), "field 'section' must not be empty", id="empty-section"),
    pytest.param(
        pkg("bad", installed_size_kb="12"),
        "field 'installed_size_kb' must be an integer or null, got '12'",
        id="size-string",
    ),
    pytest.param(
        pkg("bad", download_size_bytes=1.5),
        "field 'download_size_bytes' must be an integer or null, got 1.5",
        id="size-float",
    ),
    pytest.param(
        pkg("bad", installed_size_kb=True),
        "field 'installed_size_kb' must be an integer or null, got True",
        id="size-bool",
    ),
    pytest.param(
        pkg("bad", installed_size_kb=-1),
        "field 'installed_size_kb' must not be negative, got -1",
        id="negative-size",
    ),
    pytest.param(
        pkg("bad", download_size_bytes=-5),
        "field 'download_size_bytes' must not be negative, got -5",
        id="negative-download",
    ),
    pytest.param(
        pkg("bad", installed_size_kb=MAX_KB + 1),
        f"field 'installed_size_kb' = {MAX_KB + 1} is absurdly large (limit {MAX_KB})",
        id="huge-installed",
    ),
    pytest.param(
        pkg("bad", download_size_bytes=MAX_BYTES + 1),
        f"field 'download_size_bytes' = {MAX_BYTES + 1} is absurdly large (limit {MAX_BYTES})",
        id="huge-download",
    ),
    pytest.param(pkg("bad", priority="urgent"), "unknown priority 'urgent'", id="priority"),
    pytest.param(pkg("bad", architecture="sparc"), "unknown architecture 'sparc'", id="arch"),
    pytest.param(pkg("Bad_Name"), "invalid package name 'Bad_Name'", id="name-upper"),
    pytest.param(pkg("has space"), "invalid package name 'has space'", id="name-space"),
    pytest.param(pkg("-dash"), "invalid package name '-dash'", id="name-dash"),
    pytest.param(pkg(""), "field 'name' must not be empty", id="name-empty"),
    pytest.param(pkg("x" * 201), "field 'name' is 201 characters long (limit 200)", id="long"),
    pytest.param(
        pkg("bad", depends=["libc6", "Not A Name"]),
        "field 'depends' has an invalid package name 'Not A Name'",
        id="bad-dependency",
    ),
    pytest.param(
        pkg("bad", recommends="libc6"),
        "field 'recommends' must be a list of package names",
        id="recommends-string",
    ),
    pytest.param(
        pkg("bad", tags="role::program"),
        "field 'tags' must be a list of 'facet::value' strings",
        id="tags-string",
    ),
    pytest.param(
        pkg("bad", tags=["role::program", "nofacet"]),
        "tag 'nofacet' is not of the form facet::value",
        id="bad-tag",
    ),
    pytest.param(
        pkg("bad", maintainer="Someone <s@example.org>"),
        "field 'maintainer' must be an object with 'name' and 'email'",
        id="maintainer-string",
    ),
    pytest.param(
        pkg("bad", maintainer={"name": "No Mail", "email": None}),
        "missing required field 'email' of 'maintainer'",
        id="maintainer-no-email",
    ),
    pytest.param(
        pkg("bad", maintainer={"name": "Who", "email": "nobody"}),
        "maintainer email 'nobody' has no '@'",
        id="maintainer-bad-email",
    ),
    pytest.param(b"\xff\xfe{}".decode("latin-1"), "not valid JSON", id="junk-characters"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("bad", "reason"), BAD_LINES)
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_bad_line_is_reported_with_its_number_and_skipped(tmp_path, bad, reason, gz):
    path = write_catalog(
        tmp_path / ("catalog.jsonl.gz" if gz else "catalog.jsonl"),
        [pkg("good-one"), "", bad, pkg("good-two")],
        gz=gz,
    )

    counts, out, err = run(path, "--no-index")

    assert f"line 3: {reason}" in err
    assert counts == {
        "lines": 4,
        "valid": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "pruned": 0,
        "skipped": 1,
        "changed": 2,
    }
    assert "1 lines skipped and 0 warnings" in out
    assert set(Package.objects.values_list("name", flat=True)) == {"good-one", "good-two"}
    assert tags_of("good-two") == {"role::program", "interface::commandline"}


@pytest.mark.django_db
def test_invalid_utf8_line_is_reported_and_skipped(tmp_path):
    path = tmp_path / "catalog.jsonl"
    path.write_bytes(
        json.dumps(pkg("good-one")).encode()
        + b"\n"
        + json.dumps(pkg("bad")).encode().replace(b"the bad", b"the \xff\xfe")
        + b"\n"
        + json.dumps(pkg("good-two")).encode()
        + b"\n"
    )

    counts, _, err = run(path, "--no-index")

    assert "line 2: line is not valid UTF-8" in err
    assert (counts["valid"], counts["skipped"]) == (2, 1)
    assert set(Package.objects.values_list("name", flat=True)) == {"good-one", "good-two"}


@pytest.mark.django_db
def test_many_bad_lines_are_all_reported_in_order(tmp_path):
    lines: list[dict[str, Any] | str] = [pkg("ok-1")]
    expected: list[tuple[int, str]] = []
    for number, param in enumerate(BAD_LINES, start=2):
        bad, reason = param.values
        lines.append(bad)
        expected.append((number, reason))
    lines.append(pkg("ok-2"))
    path = write_catalog(tmp_path / "catalog.jsonl", lines)

    stats, kicks, outboxed = collect(path)

    assert [line for line, _ in stats.errors] == [line for line, _ in expected]
    for (line, message), (_, reason) in zip(stats.errors, expected, strict=True):
        assert reason in message, (line, message)
    assert stats.lines == len(lines)
    assert (stats.valid, stats.created, stats.skipped) == (2, 2, len(BAD_LINES))
    assert set(Package.objects.values_list("name", flat=True)) == {"ok-1", "ok-2"}
    assert kicks == 1
    assert outboxed == set(Package.objects.values_list("id", flat=True))


@pytest.mark.django_db
def test_errors_are_passed_to_on_error_with_line_numbers(tmp_path):
    path = write_catalog(
        tmp_path / "c.jsonl",
        [pkg("a"), "{", pkg("b", homepage="not a url"), pkg("c", priority="low")],
    )
    seen: list[tuple[int, str]] = []

    import_catalog(path, on_error=lambda line, message: seen.append((line, message)))

    assert seen == [
        (2, "not valid JSON (Expecting property name enclosed in double quotes at column 1)"),
        (3, "warning: homepage 'not a url' is not a valid URL; imported without it"),
        (
            4,
            "unknown priority 'low' (known: required, important, standard, optional, extra)",
        ),
    ]


# --------------------------------------------------------------------------- 4. --strict


@pytest.mark.django_db
def test_strict_aborts_on_a_bad_line_and_leaves_the_database_as_it_was(tmp_path, indexing_calls):
    first = write_catalog(tmp_path / "first.jsonl", [pkg("a"), pkg("b", depends=["a"]), pkg("c")])
    run(first, "--no-index")
    before = snapshot()
    second = write_catalog(
        tmp_path / "second.jsonl.gz",
        [
            pkg("a", summary="changed"),  # an update, rolled back
            pkg("b", depends=[]),  # a dependency removal, rolled back
            pkg("new-one", tags=["new::tag"]),  # a creation, rolled back
            pkg("d", installed_size_kb=-3),
            pkg("e"),
        ],
        gz=True,
    )

    with indexing_calls.capture() as callbacks:
        message, out, err = run_fails(second, "--strict", "--prune", "--batch-size", "1")

    assert "line 4" in message
    assert "field 'installed_size_kb' must not be negative, got -3" in message
    assert "--strict: nothing was imported" in message
    assert str(second) in message
    assert "line 4: field 'installed_size_kb' must not be negative" in err
    assert out == ""
    assert snapshot() == before  # rows, tags, dependencies, lookups and the outbox
    assert callbacks == []
    assert (indexing_calls.enqueued, indexing_calls.kicks) == (0, 0)


@pytest.mark.django_db
def test_strict_with_a_clean_file_imports_it(tmp_path):
    path = write_catalog(tmp_path / "c.jsonl", [pkg("a"), pkg("b")])

    counts, _, _ = run(path, "--strict", "--no-index")

    assert (counts["created"], counts["skipped"]) == (2, 0)


@pytest.mark.django_db
def test_strict_counts_a_duplicate_as_a_bad_line(tmp_path):
    path = write_catalog(tmp_path / "c.jsonl", [pkg("a"), pkg("b"), pkg("a")])

    message, _, _ = run_fails(path, "--strict", "--no-index")

    assert "line 3: duplicate package 'a' (first on line 1)" in message
    assert Package.objects.count() == 0


# --------------------------------------------------------------------------- 5. idempotency

SMALL = [
    pkg("alpha", depends=["libfoo"], tags=["role::program"]),
    pkg("beta", depends=["libfoo", "alpha"], recommends=["gamma"]),
    pkg("gamma", tags=[]),
    pkg("libfoo", section="libs", tags=["role::shared-lib"]),
    pkg("delta", maintainer={"name": "Other", "email": "other@example.org"}, homepage=None),
]


@pytest.mark.django_db
def test_second_import_of_the_same_file_changes_nothing(tmp_path, indexing_calls):
    path = write_catalog(tmp_path / "small.jsonl.gz", SMALL, gz=True)

    mark = outbox_mark()
    with indexing_calls.capture():
        counts, _, _ = run(path)
    assert counts == {
        "lines": 5,
        "valid": 5,
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "pruned": 0,
        "skipped": 0,
        "changed": 5,
    }
    assert (indexing_calls.enqueued, indexing_calls.kicks) == (1, 1)
    assert outbox_since(mark) == set(Package.objects.values_list("id", flat=True))
    first = snapshot()
    assert first["packages"]["libfoo"]["reverse_dependency_count"] == 2
    assert first["packages"]["alpha"]["reverse_dependency_count"] == 1
    assert first["packages"]["gamma"]["reverse_dependency_count"] == 0  # recommends only
    mark = outbox_mark()

    with indexing_calls.capture() as callbacks:
        counts, _, _ = run(path)

    assert counts == {
        "lines": 5,
        "valid": 5,
        "created": 0,
        "updated": 0,
        "unchanged": 5,
        "pruned": 0,
        "skipped": 0,
        "changed": 0,
    }
    assert callbacks == []
    assert indexing_calls.enqueued == 1  # not handed off again
    assert outbox_since(mark) == set()  # nothing recorded for indexing
    assert snapshot() == first  # no duplicates, no row version bumped, nothing touched
    assert Package.objects.count() == 5
    assert Section.objects.count() == 2
    assert Maintainer.objects.count() == 2
    assert Tag.objects.count() == 3
    assert Dependency.objects.count() == 4
    assert_reverse_counts_consistent()


@pytest.mark.django_db
def test_changed_summary_updates_and_bumps_exactly_that_row(tmp_path):
    path = write_catalog(tmp_path / "small.jsonl", SMALL)
    collect(path)
    before = snapshot()
    old = versions()
    changed = [dict(e, summary="a brand new summary") if e["name"] == "gamma" else e for e in SMALL]
    write_catalog(path, changed)

    stats, kicked, outboxed = collect(path)

    gamma = Package.objects.get(name="gamma")
    assert gamma.summary == "a brand new summary"
    assert (stats.created, stats.updated, stats.unchanged) == (0, 1, 4)
    assert (stats.changed_ids, kicked, outboxed) == ({gamma.pk}, 1, {gamma.pk})
    new = versions()
    assert new["gamma"] > old["gamma"]
    assert {n: v for n, v in new.items() if n != "gamma"} == {
        n: v for n, v in old.items() if n != "gamma"
    }
    after = snapshot()
    for name in ("alpha", "beta", "libfoo", "delta"):
        assert after["packages"][name] == before["packages"][name]
    assert after["tags"] == before["tags"]
    assert after["dependencies"] == before["dependencies"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "new_tags",
    [
        pytest.param(["role::program", "use::editing"], id="tag-added"),
        pytest.param([], id="tag-removed"),
        pytest.param(["role::shared-lib"], id="tag-replaced"),
    ],
)
def test_changed_tags_only_bump_exactly_that_row(tmp_path, new_tags):
    path = write_catalog(tmp_path / "small.jsonl", SMALL)
    collect(path)
    before = snapshot()
    old = versions()
    changed = [dict(e, tags=new_tags) if e["name"] == "alpha" else e for e in SMALL]
    write_catalog(path, changed)

    stats, kicked, outboxed = collect(path)

    alpha = Package.objects.get(name="alpha")
    assert tags_of("alpha") == set(new_tags)
    assert (stats.created, stats.updated, stats.unchanged) == (0, 1, 4)
    assert (stats.changed_ids, kicked, outboxed) == ({alpha.pk}, 1, {alpha.pk})
    new = versions()
    assert new["alpha"] > old["alpha"]
    assert {n: v for n, v in new.items() if n != "alpha"} == {
        n: v for n, v in old.items() if n != "alpha"
    }
    assert snapshot()["packages"]["alpha"]["summary"] == before["packages"]["alpha"]["summary"]
    # Tags of the other packages are untouched.
    assert {t for t in snapshot()["tags"] if t[0] != "alpha"} == {
        t for t in before["tags"] if t[0] != "alpha"
    }


@pytest.mark.django_db
def test_reimport_through_the_command_records_only_the_changed_package(tmp_path, indexing_calls):
    path = write_catalog(tmp_path / "small.jsonl", SMALL)
    run(path, "--no-index")
    changed = [dict(e, version="2.0-1") if e["name"] == "delta" else e for e in SMALL]
    write_catalog(path, changed)
    mark = outbox_mark()

    with indexing_calls.capture() as callbacks:
        counts, _, _ = run(path)

    assert (counts["updated"], counts["unchanged"], counts["changed"]) == (1, 4, 1)
    assert len(callbacks) == 1
    assert (indexing_calls.enqueued, indexing_calls.kicks) == (1, 1)
    assert outbox_since(mark) == {Package.objects.get(name="delta").pk}


@pytest.mark.django_db
def test_no_index_records_the_changes_but_does_not_kick(tmp_path, indexing_calls):
    path = write_catalog(tmp_path / "small.jsonl", SMALL)

    with indexing_calls.capture() as callbacks:
        counts, _, _ = run(path, "--no-index")

    assert (counts["created"], counts["changed"]) == (5, 5)
    assert callbacks == []  # the outbox waits for the periodic sweeper
    assert indexing_calls.enqueued == 0
    assert outbox_since(0) == set(Package.objects.values_list("id", flat=True))


# --------------------------------------------------------------------------- 6. --prune


@pytest.mark.django_db
def test_prune_removes_packages_absent_from_the_file(tmp_path, indexing_calls):
    path = write_catalog(tmp_path / "small.jsonl", SMALL)
    run(path, "--no-index")
    manual = make_package("made-in-the-admin")
    beta_id = Package.objects.get(name="beta").pk
    alpha_before = Package.objects.get(name="alpha")
    assert alpha_before.reverse_dependency_count == 1  # beta depends on alpha
    kept = [e for e in SMALL if e["name"] != "beta"]
    smaller = write_catalog(tmp_path / "smaller.jsonl", kept)

    # Without --prune nothing is removed.
    counts, _, _ = run(smaller, "--no-index")
    assert (counts["pruned"], counts["unchanged"]) == (0, 4)
    assert Package.objects.filter(name__in=["beta", "made-in-the-admin"]).count() == 2

    mark = outbox_mark()
    with indexing_calls.capture():
        counts, _, _ = run(smaller, "--prune")

    assert counts["pruned"] == 2
    assert set(Package.objects.values_list("name", flat=True)) == {e["name"] for e in kept}
    assert not Dependency.objects.filter(package_id=beta_id).exists()
    # beta's dependencies went with it: the counts of what it depended on drop.
    assert Package.objects.get(name="alpha").reverse_dependency_count == 0
    assert Package.objects.get(name="libfoo").reverse_dependency_count == 1
    assert_reverse_counts_consistent()
    # The deletions and the changed counts (of what beta depended on or recommended) are
    # recorded for indexing, and the worker kicked.
    alpha = Package.objects.get(name="alpha")
    libfoo = Package.objects.get(name="libfoo")
    gamma = Package.objects.get(name="gamma")
    assert gamma.reverse_recommends_count == 0
    assert outbox_since(mark) == {beta_id, manual.pk, alpha.pk, libfoo.pk, gamma.pk}
    # The importer hands off once; the ORM deletes' own receivers (portal.signals) may too.
    assert indexing_calls.enqueued >= 1
    assert alpha.row_version > alpha_before.row_version


@pytest.mark.django_db
def test_prune_unlinks_dependencies_on_the_pruned_package(tmp_path):
    path = write_catalog(tmp_path / "c.jsonl", [pkg("app", depends=["lib"]), pkg("lib")])
    collect(path)
    assert deps_of("app") == {("depends", "lib", "lib")}

    collect(write_catalog(path, [pkg("app", depends=["lib"])]), prune=True)

    assert deps_of("app") == {("depends", "lib", None)}
    assert_reverse_counts_consistent()


@pytest.mark.django_db
def test_prune_keeps_a_package_whose_line_was_skipped_as_bad(tmp_path):
    path = write_catalog(tmp_path / "c.jsonl", [pkg("a"), pkg("b"), pkg("c")])
    collect(path)

    # b's line is still in the file, with a typo: it is reported and skipped ...
    stats, _, _ = collect(
        write_catalog(path, [pkg("a"), pkg("b", installed_size_kb=-1), pkg("c")]), prune=True
    )

    assert [line for line, _ in stats.errors] == [2]
    # ... but it is not absent from the file, so --prune must not delete it.
    assert set(Package.objects.values_list("name", flat=True)) == {"a", "b", "c"}
    assert stats.pruned == 0


@pytest.mark.django_db
def test_prune_with_no_valid_line_does_not_empty_the_catalog(tmp_path):
    path = write_catalog(tmp_path / "c.jsonl", [pkg("a"), pkg("b")])
    collect(path)

    stats, _, _ = collect(write_catalog(path, ['{"some": "other format"}', "[]"]), prune=True)

    assert stats.valid == 0
    assert Package.objects.count() == 2


# --------------------------------------------------------------------------- 7. dependencies


@pytest.mark.django_db
def test_dependency_on_an_unknown_name_is_kept_then_linked(tmp_path):
    apps = [
        pkg("app-one", depends=["libfoo", "libc6"], recommends=["libbar"]),
        pkg("app-two", depends=["libfoo"]),
        pkg("app-three", depends=["libfoo"], recommends=["libfoo"]),
    ]
    first = write_catalog(tmp_path / "apps.jsonl", apps)
    collect(first)

    assert deps_of("app-one") == {
        ("depends", "libfoo", None),
        ("depends", "libc6", None),
        ("recommends", "libbar", None),
    }
    assert deps_of("app-three") == {("depends", "libfoo", None), ("recommends", "libfoo", None)}
    old = versions()

    # A later import brings libfoo (a different file, no --prune).
    second = write_catalog(tmp_path / "libs.jsonl", [pkg("libfoo", section="libs")])
    stats, kicked, outboxed = collect(second)

    libfoo = Package.objects.get(name="libfoo")
    assert Dependency.objects.filter(target_name="libfoo").exclude(target=libfoo).count() == 0
    assert deps_of("app-one") == {
        ("depends", "libfoo", "libfoo"),
        ("depends", "libc6", None),
        ("recommends", "libbar", None),
    }
    assert libfoo.reverse_dependency_count == 3  # recommends do not count
    assert stats.created == 1
    assert (kicked, outboxed) == (1, {libfoo.pk})
    assert {n: v for n, v in versions().items() if n != "libfoo"} == old
    assert_reverse_counts_consistent()

    # app-three drops its dependency on libfoo: the count follows, libfoo is re-indexed.
    libfoo_version = libfoo.row_version
    apps[2] = pkg("app-three", depends=["libc6"], recommends=["libfoo"])
    write_catalog(first, apps)
    stats, kicked, outboxed = collect(first)

    libfoo.refresh_from_db()
    assert libfoo.reverse_dependency_count == 2
    assert libfoo.row_version > libfoo_version
    assert deps_of("app-three") == {("depends", "libc6", None), ("recommends", "libfoo", "libfoo")}
    assert (kicked, outboxed) == (1, {libfoo.pk})  # app-three's document is unchanged
    assert (stats.updated, stats.unchanged) == (0, 3)
    assert_reverse_counts_consistent()


@pytest.mark.django_db
def test_package_depending_on_one_later_in_the_same_file_is_linked(tmp_path):
    entries = [pkg(f"app-{i}", depends=["zzz-lib"]) for i in range(5)] + [pkg("zzz-lib")]
    path = write_catalog(tmp_path / "c.jsonl", entries)

    collect(path, batch_size=2)

    assert Package.objects.get(name="zzz-lib").reverse_dependency_count == 5
    assert not Dependency.objects.filter(target__isnull=True).exists()
    assert_reverse_counts_consistent()


@pytest.mark.django_db
def test_duplicate_dependency_names_are_stored_once(tmp_path):
    path = write_catalog(
        tmp_path / "c.jsonl", [pkg("app", depends=["lib", " lib", "lib "]), pkg("lib")]
    )

    collect(path)

    assert deps_of("app") == {("depends", "lib", "lib")}
    assert Package.objects.get(name="lib").reverse_dependency_count == 1


# ------------------------------------------------------------------- 8. maintainer, homepage


@pytest.mark.django_db
def test_maintainer_with_the_address_in_the_name_is_recovered(tmp_path):
    path = write_catalog(
        tmp_path / "c.jsonl",
        [pkg("team-pkg", maintainer={"name": "Team <team@example.org>,", "email": None})],
    )

    counts, out, err = run(path, "--no-index")

    package = Package.objects.select_related("maintainer").get(name="team-pkg")
    assert (package.maintainer.name, package.maintainer.email) == ("Team", "team@example.org")
    assert (counts["valid"], counts["skipped"]) == (1, 0)
    assert "line" not in err
    assert "skipped and" not in out


@pytest.mark.django_db
def test_maintainer_without_email_key_and_with_the_address_in_the_name(tmp_path):
    path = write_catalog(
        tmp_path / "c.jsonl",
        [
            pkg("one", maintainer={"name": "  Some Team  <list@lists.example.org>  "}),
            pkg("two", maintainer={"name": "Some Team", "email": "list@lists.example.org"}),
        ],
    )

    collect(path)

    # Both lines land on the same maintainer row.
    assert list(Maintainer.objects.values_list("name", "email")) == [
        ("Some Team", "list@lists.example.org")
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "homepage",
    ["not a url", "http://http://code.google.com/p/ucpp/", "https://volans-.github.io/x/"],
)
def test_invalid_homepage_is_a_warning_and_the_package_is_imported_without_it(tmp_path, homepage):
    path = write_catalog(
        tmp_path / "c.jsonl", [pkg("fine"), pkg("no-home", homepage=homepage), pkg("also")]
    )

    counts, out, err = run(path, "--no-index")

    assert f"line 2: warning: homepage {homepage!r} is not a valid URL; imported without it" in err
    assert (counts["valid"], counts["created"], counts["skipped"]) == (3, 3, 0)
    assert "0 lines skipped and 1 warnings" in out
    assert Package.objects.get(name="no-home").homepage == ""
    assert Package.objects.get(name="fine").homepage == "https://example.org/fine"


@pytest.mark.django_db
def test_valid_unusual_homepages_are_kept(tmp_path):
    homepages = ["ftp://ftp.example.org/pub/", "gopher://gopher.example.org/", "http://[::1]/"]
    path = write_catalog(
        tmp_path / "c.jsonl", [pkg(f"p{i}", homepage=h) for i, h in enumerate(homepages)]
    )

    stats, _, _ = collect(path)

    assert stats.warnings == []
    assert [p.homepage for p in Package.objects.order_by("name")] == homepages


# --------------------------------------------------------------------------- 9. duplicates


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", [1, 100])
def test_duplicate_name_is_reported_with_both_lines_and_skipped(tmp_path, batch_size):
    path = write_catalog(
        tmp_path / "c.jsonl",
        [pkg("a", version="1"), pkg("b"), "", pkg("a", version="2"), pkg("c"), pkg("b")],
    )

    counts, _, err = run(path, "--no-index", "--batch-size", str(batch_size))

    assert "line 4: duplicate package 'a' (first on line 1)" in err
    assert "line 6: duplicate package 'b' (first on line 2)" in err
    assert counts == {
        "lines": 6,
        "valid": 3,
        "created": 3,
        "updated": 0,
        "unchanged": 0,
        "pruned": 0,
        "skipped": 2,
        "changed": 3,
    }
    assert Package.objects.get(name="a").version == "1"  # the first one wins


@pytest.mark.django_db
def test_a_bad_first_line_does_not_make_the_second_a_duplicate(tmp_path):
    path = write_catalog(tmp_path / "c.jsonl", [pkg("a", priority="bogus"), pkg("a")])

    stats, _, _ = collect(path)

    assert [line for line, _ in stats.errors] == [1]
    assert Package.objects.filter(name="a").count() == 1


# --------------------------------------------------------------------------- 10. queries


def _query_entries(count: int, offset: int = 0) -> list[dict[str, Any]]:
    """Packages that each bring a new section, maintainer and tag, and dependencies."""
    return [
        pkg(
            f"q-{i:05d}",
            section=f"section-{i}",
            maintainer={"name": f"Maintainer {i}", "email": f"m{i}@example.org"},
            tags=[f"facet-{i}::v", "role::program"],
            depends=[f"q-{(i + 1):05d}", "libc6"],
            recommends=[f"q-{(i + 2):05d}"],
        )
        for i in range(offset, offset + count)
    ]


# Per batch: 2 queries (insert missing, select ids) for each of sections, maintainers and
# tags, 1 package upsert, 1 select of the batch's ids, 2 for tags (insert, delete stale) and
# 2 for dependencies. (The indexing and dependency triggers run inside those statements.)
PER_BATCH = 12
# Per import: the savepoint and its release; applying the tag vocabulary (in a savepoint:
# the facets, the tags, and on an empty catalog creating the facets).
FIXED = 2 + 4
FIRST_VOCABULARY = 1
# Plus one ANALYZE before a batch whenever the packages created have doubled since the last
# (CatalogWriter): before batches 1, 2 and 4 of four batches of 50; before the only batch.


def _count_queries(path: Path, batch_size: int) -> tuple[int, ImportStats]:
    with CaptureQueriesContext(connection) as ctx:
        stats = import_catalog(path, batch_size=batch_size, hand_off=lambda: None)
    return len(ctx.captured_queries), stats


def _count_on_empty_catalog(path: Path, batch_size: int) -> tuple[int, ImportStats]:
    """Count the queries of one import, then roll it back (so each count starts empty)."""
    sid = connection.savepoint()
    try:
        return _count_queries(path, batch_size)
    finally:
        connection.savepoint_rollback(sid)


@pytest.mark.django_db
def test_queries_grow_with_batches_not_packages(tmp_path):
    path200 = write_catalog(tmp_path / "200.jsonl", _query_entries(200))
    path400 = write_catalog(tmp_path / "400.jsonl", _query_entries(400, offset=1000))

    four_batches, stats = _count_on_empty_catalog(path200, 50)
    assert stats.created == 200
    one_batch, stats = _count_on_empty_catalog(path200, 200)
    assert stats.created == 200
    one_big_batch, stats = _count_on_empty_catalog(path400, 400)
    assert stats.created == 400

    assert one_batch == PER_BATCH + FIXED + FIRST_VOCABULARY + 1
    assert four_batches == 4 * PER_BATCH + FIXED + FIRST_VOCABULARY + 3
    assert one_big_batch == one_batch  # twice the packages, same queries


@pytest.mark.django_db
def test_reimport_queries_are_bounded_per_batch(tmp_path, django_assert_max_num_queries):
    entries = _query_entries(200)
    path = write_catalog(tmp_path / "200.jsonl", entries)
    import_catalog(path, batch_size=50)

    # Unchanged: the same queries per batch, nothing updated, and no ANALYZE (nothing was
    # added that the statistics do not describe; each one reads the full tables).
    with django_assert_max_num_queries(4 * PER_BATCH + FIXED + 3) as unchanged:
        stats = import_catalog(path, batch_size=50)
    assert (stats.unchanged, stats.changed_ids) == (200, set())
    assert not [q for q in unchanged.captured_queries if q["sql"].startswith("ANALYZE")]

    # A tag-only change and a field change in every batch: still the same queries.
    for i in range(0, 200, 50):
        entries[i] = dict(entries[i], tags=["role::program"])
        entries[i + 1] = dict(entries[i + 1], summary="changed")
    write_catalog(path, entries)
    with django_assert_max_num_queries(4 * PER_BATCH + FIXED + 3):
        stats = import_catalog(path, batch_size=50)
    assert (stats.updated, stats.unchanged) == (8, 192)


# --------------------------------------------------------------------------- 11. the real file


def set_statement_timeout(seconds: int) -> None:
    """Make a pathological plan fail fast instead of hanging the run (this test only)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL statement_timeout = '{int(seconds)}s'")


@pytest.mark.integration
@pytest.mark.django_db
def test_import_of_the_bundled_catalog_twice():
    path = Path(settings.BASE_DIR) / "data" / "debian-bookworm-main.jsonl.gz"
    # No statement of a healthy import takes more than ~10 s; see the next test for why
    # one can take hours when the planner's statistics are stale.
    set_statement_timeout(120)

    counts, out, err = run(path, "--no-index", "--verbosity", "0")

    assert counts == {
        "lines": 63440,
        "valid": 63436,
        "created": 63436,
        "updated": 0,
        "unchanged": 0,
        "pruned": 0,
        "skipped": 4,
        "changed": 63436,
    }
    assert "4 lines skipped and 5 warnings" in out
    assert "line 34279: duplicate package 'linux-doc' (first on line 34278)" in err
    assert err.count("duplicate package") == 4
    assert err.count("is not a valid URL; imported without it") == 3
    assert err.count("lists the package itself; imported without it") == 2  # primus-libs
    assert Package.objects.count() == 63436
    assert Package.objects.get(name="libc6").reverse_dependency_count > 1000

    counts, out, _ = run(path, "--no-index", "--verbosity", "0")

    assert counts == {
        "lines": 63440,
        "valid": 63436,
        "created": 0,
        "updated": 0,
        "unchanged": 63436,
        "pruned": 0,
        "skipped": 4,
        "changed": 0,
    }
    assert Package.objects.count() == 63436


@pytest.mark.integration
@pytest.mark.django_db
def test_import_after_an_aborted_import_and_autovacuum_stays_fast(tmp_path):
    """Retrying after an aborted import must not be quadratic.

    The aborted import leaves its rows dead; autovacuum then records the tables as empty
    (``reltuples = 0``) but many pages long. The retry writes everything in one
    transaction, whose rows no statistics can see, so the planner believes
    ``portal_package`` and ``portal_dependency`` hold ~1 row each and runs the set-based
    statements of the dependency triggers (linking targets, recounting dependents) as
    nested loops over both tables: O(dependencies x packages). This test runs last in the
    file because the ANALYZE below outlives the test's rollback.
    """
    n = 3000
    entries = [
        pkg(f"p-{i:05d}", depends=[f"p-{(i + 1) % n:05d}", f"p-{(i + 7) % n:05d}", "libc6"])
        for i in range(n)
    ]
    full = write_catalog(tmp_path / "full.jsonl.gz", entries, gz=True)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(full.read_bytes()[:-6])
    with pytest.raises(ImportAborted, match="truncated"):
        import_catalog(cut, batch_size=500)  # all 3000 rows written, then rolled back
    assert Package.objects.count() == 0
    # What autovacuum does once those rows are dead (VACUUM cannot run in a transaction).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE portal_package, portal_dependency, portal_package_tags")
    # A healthy import of these 3000 packages takes ~2 s, no statement more than 0.2 s.
    set_statement_timeout(15)

    started = time.monotonic()
    stats = import_catalog(full, hand_off=lambda: None)
    elapsed = time.monotonic() - started

    assert stats.created == n
    assert Package.objects.get(name="p-00007").reverse_dependency_count == 2
    assert not Dependency.objects.filter(target__isnull=True).exclude(target_name="libc6").exists()
    assert elapsed < 30
