"""Streaming, batched, idempotent import of a catalog file (JSON lines, optionally gzip).

The import runs in one transaction: a fatal problem (missing file, truncated gzip, a bad
line under ``--strict``) rolls everything back and leaves the database as it was. Bad lines
are otherwise reported with their line number and skipped.

Rows are written with set-based SQL (``INSERT ... ON CONFLICT ... DO UPDATE ... WHERE`` the
row really changed), a fixed number of queries per batch, so a re-import that changes
nothing bumps no row versions and causes no reindexing. The indexing app's database
triggers record every changed package in its outbox; bulk SQL fires no model signals, so the
importer calls ``hand_off`` (``indexing.enqueue``) once at the end to kick the worker.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from psycopg2.extras import execute_values

from portal import vocabulary
from portal.models import (
    HOMEPAGE_VALIDATOR,
    MAX_DESCRIPTION,
    MAX_DOWNLOAD_SIZE_BYTES,
    MAX_INSTALLED_SIZE_KB,
    NAME_RE,
    VERSION_RE,
    Architecture,
    Dependency,
    DependencyKind,
    Package,
    Priority,
    Tag,
)

DEFAULT_BATCH_SIZE = 2000
EMBEDDED_EMAIL_RE = re.compile(r"^\s*(.+?)\s*<([^<>\s]+@[^<>\s]+)>\s*,?\s*$")
MAX_LINE_BYTES = 2_000_000
REQUIRED = ("name", "version", "section", "priority", "architecture", "maintainer", "summary")
INVALID_UTF8 = "\0invalid-utf8"  # what read_lines yields for a line that is not UTF-8


class ImportAborted(Exception):
    """The import stopped and was rolled back; the message says why and where."""


@dataclass
class Record:
    line: int
    name: str
    version: str
    source: str
    section: str
    priority: str
    architecture: str
    maintainer_name: str
    maintainer_email: str
    homepage: str
    installed_size_kb: int | None
    download_size_bytes: int | None
    summary: str
    description: str
    tags: list[tuple[str, str]]
    depends: list[str]
    recommends: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass
class ImportStats:
    lines: int = 0
    valid: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    pruned: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)
    changed_ids: set[int] = field(default_factory=set)

    @property
    def skipped(self) -> int:
        return len(self.errors)


class LineError(ValueError):
    pass


# --------------------------------------------------------------------------- parsing


def _str(data: dict[str, Any], key: str, max_len: int, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise LineError(f"missing required field '{key}'")
        return ""
    if not isinstance(value, str):
        raise LineError(f"field '{key}' must be a string, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise LineError(f"field '{key}' must not be empty")
    if len(value) > max_len:
        raise LineError(f"field '{key}' is {len(value)} characters long (limit {max_len})")
    return value


def _matching(value: str, pattern: re.Pattern[str], key: str) -> str:
    """``value`` (empty, or written as the pattern wants; the models check the same)."""
    if value and not pattern.match(value):
        raise LineError(f"field '{key}' has an invalid value {value[:60]!r}")
    return value


def _size(data: dict[str, Any], key: str, limit: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise LineError(f"field '{key}' must be an integer or null, got {value!r}")
    if value < 0:
        raise LineError(f"field '{key}' must not be negative, got {value}")
    if value > limit:
        raise LineError(f"field '{key}' = {value} is absurdly large (limit {limit})")
    return value


def _names(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LineError(f"field '{key}' must be a list of package names")
    names = sorted({v.strip() for v in value if v.strip()})
    for name in names:
        if len(name) > 200 or not NAME_RE.match(name):
            raise LineError(f"field '{key}' has an invalid package name {name!r}")
    return names


def _others(name: str, names: list[str], key: str, warnings: list[str]) -> list[str]:
    """``names`` without the package's own: a package listing itself (two of the real
    catalog do) was counted as its own reverse dependency, which ranks as popularity."""
    if name not in names:
        return names
    warnings.append(f"'{key}' lists the package itself; imported without it")
    return [n for n in names if n != name]


def _json_object(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_LINE_BYTES:
        raise LineError(f"line is {len(raw)} bytes long (limit {MAX_LINE_BYTES})")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise LineError(f"expected a JSON object, got {type(data).__name__}")
    for key in REQUIRED:
        if key not in data or data[key] is None:
            raise LineError(f"missing required field '{key}'")
    return data


def _choice(data: dict[str, Any], key: str, known: Sequence[str]) -> str:
    value = _str(data, key, 16, required=True)
    if value not in known:
        raise LineError(f"unknown {key} {value!r} (known: {', '.join(known)})")
    return value


def _maintainer(data: dict[str, Any]) -> tuple[str, str]:
    """(name, email) of the maintainer object."""
    maintainer = data["maintainer"]
    if not isinstance(maintainer, dict):
        raise LineError("field 'maintainer' must be an object with 'name' and 'email'")
    name = _str(maintainer, "name", 200, required=True)
    if maintainer.get("email"):
        email = _str(maintainer, "email", 254, required=True)
    else:
        # Some upstream entries carry the address inside the name: "Team <a@b.org>,".
        match = EMBEDDED_EMAIL_RE.match(name)
        if not match:
            raise LineError("missing required field 'email' of 'maintainer'")
        name, email = match.group(1), match.group(2)
    if "@" not in email:
        raise LineError(f"maintainer email {email!r} has no '@'")
    return name, email


def _tags(data: dict[str, Any]) -> list[tuple[str, str]]:
    raw_tags = data.get("tags") or []
    if not isinstance(raw_tags, list) or not all(isinstance(t, str) for t in raw_tags):
        raise LineError("field 'tags' must be a list of 'facet::value' strings")
    tags: set[tuple[str, str]] = set()
    for raw_tag in raw_tags:
        try:
            facet, value = Tag.split(raw_tag.strip())
        except ValueError as exc:
            raise LineError(str(exc)) from None
        if len(facet) > 64 or len(value) > 128:
            raise LineError(f"tag {raw_tag!r} is too long")
        tags.add((facet, value))
    return sorted(tags)


def _homepage(data: dict[str, Any], warnings: list[str]) -> str:
    """The homepage, or "" with a warning when it is not a valid URL (an optional field:
    the package is kept without it)."""
    homepage = _str(data, "homepage", 500)
    if homepage:
        try:
            HOMEPAGE_VALIDATOR(homepage)
        except ValidationError:
            warnings.append(f"homepage {homepage!r} is not a valid URL; imported without it")
            return ""
    return homepage


def parse_record(line_no: int, raw: str) -> Record:
    """Validate one JSON line; raise LineError with a readable reason."""
    data = _json_object(raw)
    name = _str(data, "name", 200, required=True)
    if not NAME_RE.match(name):
        raise LineError(f"invalid package name {name!r}")
    priority = _choice(data, "priority", Priority.values)
    architecture = _choice(data, "architecture", Architecture.values)
    maintainer_name, maintainer_email = _maintainer(data)
    tags = _tags(data)
    warnings: list[str] = []
    return Record(
        line=line_no,
        name=name,
        version=_matching(_str(data, "version", 200, required=True), VERSION_RE, "version"),
        source=_matching(_str(data, "source", 200), NAME_RE, "source"),
        section=_str(data, "section", 64, required=True),
        priority=priority,
        architecture=architecture,
        maintainer_name=maintainer_name,
        maintainer_email=maintainer_email,
        homepage=_homepage(data, warnings),
        installed_size_kb=_size(data, "installed_size_kb", MAX_INSTALLED_SIZE_KB),
        download_size_bytes=_size(data, "download_size_bytes", MAX_DOWNLOAD_SIZE_BYTES),
        summary=_str(data, "summary", 500, required=True),
        description=_str(data, "description", MAX_DESCRIPTION),
        tags=tags,
        depends=_others(name, _names(data, "depends"), "depends", warnings),
        recommends=_others(name, _names(data, "recommends"), "recommends", warnings),
        warnings=warnings,
    )


def open_catalog(path: Path) -> IO[bytes]:
    """Open a catalog file, gzip or plain; raise ImportAborted with a clear message."""
    if not path.exists():
        raise ImportAborted(f"{path}: no such file. Pass the path of a catalog (JSON lines).")
    if path.is_dir():
        raise ImportAborted(f"{path}: is a directory, not a catalog file")
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return path.open("rb")


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, str]]:
    """Yield (line number, text); a truncated or corrupt gzip becomes ImportAborted."""
    line_no = 0
    try:
        for line_no, raw in enumerate(stream, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield line_no, INVALID_UTF8
                continue
            yield line_no, text
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
        raise ImportAborted(
            f"the file is truncated or corrupt after line {line_no} ({exc}); nothing was "
            f"imported. Fetch a complete copy and run the import again."
        ) from None


# --------------------------------------------------------------------------- writing


class CatalogWriter:
    """Writes batches of records with a fixed number of queries per batch.

    The database triggers that link dependencies and recount reverse dependencies run
    inside every batch, on tables this one transaction is filling, which no statistics
    describe (or stale ones do: an aborted import's dead rows, an empty test database).
    With such statistics the planner picks nested loops over whole tables and one batch
    took minutes. So the writer refreshes the statistics, inside the transaction (ANALYZE
    sees the transaction's own rows), whenever the packages it created have doubled since
    the last time: after 2,000, 4,000, ... 64,000 rows, six ANALYZEs of about 0.2 s for the
    real catalog. A re-import that creates nothing runs none: its tables are what their
    statistics describe, and the five ANALYZEs of full tables it used to run cost 6 s of
    its 44. It does so once a batch's packages are written and before their dependencies
    are: done before the packages, the first ANALYZE of an import after an aborted one saw
    no live package, and the dependency trigger's lookup of each target by name (a plan
    the session then keeps) scanned the whole (maintainer, name) index: 8 ms a dependency,
    36 s for the first 2,000 packages' 6,000 dependencies.
    """

    def __init__(self) -> None:
        self.sections: dict[str, int] = {}
        self.maintainers: dict[tuple[str, str], int] = {}
        self.tags: dict[tuple[str, str], int] = {}
        self.created = 0
        self.analyzed_at = 0
        self.vocabulary = {e.name: e for e in vocabulary.load()}

    def _tag_label(self, key: tuple[str, str]) -> tuple[str, str]:
        entry = self.vocabulary.get(f"{key[0]}::{key[1]}")
        if entry is None:
            return vocabulary.fallback_label(key[1]), ""
        return entry.label, entry.description

    def _refresh_statistics(self) -> None:
        if self.created > 0 and self.created >= 2 * self.analyzed_at:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE portal_package, portal_dependency, portal_package_tags")
            self.analyzed_at = self.created

    def _ensure(
        self,
        cache: dict[Any, int],
        keys: set[Any],
        table: str,
        columns: tuple[str, ...],
        extra: tuple[str, Callable[[Any], tuple[Any, ...]]] | None = None,
    ) -> None:
        """Insert missing lookup rows and cache their ids (two queries at most).

        ``extra``: more columns for the rows inserted, and their values for a key."""
        missing = sorted(k for k in keys if k not in cache)
        if not missing:
            return
        rows = [k if isinstance(k, tuple) else (k,) for k in missing]
        cols = ", ".join(columns)
        more, values_of = extra if extra else ("", None)
        inserted = (
            [row + values_of(key) for row, key in zip(rows, missing, strict=True)]
            if values_of
            else rows
        )
        width = len(inserted[0])
        with connection.cursor() as cursor:
            execute_values(
                cursor,
                f"INSERT INTO {table} ({cols}{', ' + more if more else ''}, updated_at) "
                f"VALUES %s ON CONFLICT ({cols}) DO NOTHING",
                inserted,
                template="(" + ", ".join(["%s"] * width) + ", now())",
                page_size=len(rows),
            )
            execute_values(
                cursor,
                f"SELECT id, {cols} FROM {table} WHERE ({cols}) IN (VALUES %s)",
                rows,
                page_size=len(rows),
            )
            for row in cursor.fetchall():
                key = row[1] if len(columns) == 1 else tuple(row[1:])
                cache[key] = row[0]

    def write(self, batch: list[Record], stats: ImportStats) -> None:
        self._ensure(self.sections, {r.section for r in batch}, "portal_section", ("name",))
        self._ensure(
            self.maintainers,
            {(r.maintainer_name, r.maintainer_email) for r in batch},
            "portal_maintainer",
            ("name", "email"),
        )
        self._ensure(
            self.tags,
            {t for r in batch for t in r.tags},
            "portal_tag",
            ("facet", "value"),
            # New tags get their vocabulary labels at once (before any package shows them,
            # so labelling them reindexes nothing).
            ("label, description", self._tag_label),
        )
        rows = [
            (
                r.name,
                r.version,
                r.source,
                r.summary,
                r.description,
                self.sections[r.section],
                r.priority,
                r.architecture,
                r.homepage,
                r.installed_size_kb,
                r.download_size_bytes,
                self.maintainers[(r.maintainer_name, r.maintainer_email)],
            )
            for r in batch
        ]
        columns = (
            "name, version, source, summary, description, section_id, priority, architecture, "
            "homepage, installed_size_kb, download_size_bytes, maintainer_id"
        )
        updatable = [c.strip() for c in columns.split(",")][1:]
        with connection.cursor() as cursor:
            written = execute_values(
                cursor,
                f"""
                INSERT INTO portal_package ({columns}, reverse_dependency_count, created_at,
                                            updated_at, row_version)
                VALUES %s
                ON CONFLICT (name) DO UPDATE SET
                    {", ".join(f"{c} = EXCLUDED.{c}" for c in updatable)},
                    updated_at = now()
                WHERE ({", ".join(f"portal_package.{c}" for c in updatable)})
                      IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in updatable)})
                RETURNING id, (xmax = 0) AS inserted
                """,
                rows,
                template="(" + ", ".join(["%s"] * 12) + ", 0, now(), now(), 0)",
                page_size=len(rows),
                fetch=True,
            )
            inserted = sum(1 for _, ins in written if ins)
            self.created += inserted
            self._refresh_statistics()  # the batch's packages are in; their links next
            stats.created += inserted
            stats.updated += len(written) - inserted
            stats.changed_ids.update(pk for pk, _ in written)

            names = [r.name for r in batch]
            cursor.execute("SELECT name, id FROM portal_package WHERE name = ANY(%s)", [names])
            ids = dict(cursor.fetchall())
            batch_ids = [ids[n] for n in names]

            # Tags: add the wanted pairs, remove the others, remember who changed.
            pairs = [(ids[r.name], self.tags[t]) for r in batch for t in r.tags]
            tag_changed, _ = self._sync_pairs(
                cursor,
                "portal_package_tags",
                ("package_id", "tag_id"),
                pairs,
                batch_ids,
                ("bigint", "bigint"),
            )
            # Dependencies: same, on (package, kind, name). The database links each to its
            # target and recounts the targets' reverse dependencies (portal migration 0006);
            # a target whose count changes is a changed document too.
            deps = [
                (ids[r.name], DependencyKind.DEPENDS.value, n) for r in batch for n in r.depends
            ] + [
                (ids[r.name], DependencyKind.RECOMMENDS.value, n)
                for r in batch
                for n in r.recommends
            ]
            _, recounted = self._sync_pairs(
                cursor,
                "portal_dependency",
                ("package_id", "kind", "target_name"),
                deps,
                batch_ids,
                ("bigint", "text", "text"),
                also_return="target_id",
            )
            # A tag change is a change of the package (the indexing triggers on the tags
            # table bump its row version); count it as an update.
            tag_only = tag_changed - stats.changed_ids
            stats.updated += len(tag_only)
            stats.changed_ids |= tag_only
            stats.changed_ids |= recounted
        stats.unchanged += len(batch) - len(written) - len(tag_only)

    @staticmethod
    def _sync_pairs(
        cursor: Any,
        table: str,
        columns: tuple[str, ...],
        wanted: list[tuple[Any, ...]],
        package_ids: list[int],
        types: tuple[str, ...],
        also_return: str | None = None,
    ) -> tuple[set[int], set[int]]:
        """Make ``table`` hold exactly ``wanted`` for these packages; return the ids of the
        packages whose rows changed, and the non-null values of ``also_return`` in the rows
        added or removed."""
        cols = ", ".join(columns)
        returning = "package_id" + (f", {also_return}" if also_return else "")
        rows: list[tuple[Any, ...]] = []
        if wanted:
            template = "(" + ", ".join(f"%s::{t}" for t in types) + ")"
            added = execute_values(
                cursor,
                f"INSERT INTO {table} ({cols}) VALUES %s "
                f"ON CONFLICT DO NOTHING RETURNING {returning}",
                wanted,
                template=template,
                page_size=max(1, len(wanted)),
                fetch=True,
            )
            rows += added
        arrays = [list(col) for col in zip(*wanted, strict=True)] if wanted else []
        if arrays:
            unnest = ", ".join(f"%s::{t}[]" for t in types)
            cursor.execute(
                f"DELETE FROM {table} WHERE package_id = ANY(%s) AND ({cols}) NOT IN "
                f"(SELECT * FROM unnest({unnest})) RETURNING {returning}",
                [package_ids, *arrays],
            )
        else:
            cursor.execute(
                f"DELETE FROM {table} WHERE package_id = ANY(%s) RETURNING {returning}",
                [package_ids],
            )
        rows += cursor.fetchall()
        return {row[0] for row in rows}, {row[1] for row in rows if also_return and row[1]}


# --------------------------------------------------------------------------- driver


class _Run:
    """One import: reading lines, rejecting bad ones, writing batches, the final steps."""

    def __init__(
        self,
        *,
        strict: bool,
        batch_size: int,
        on_progress: Callable[[int, int], None] | None,
        on_error: Callable[[int, str], None] | None,
    ) -> None:
        self.stats = ImportStats()
        self.seen: dict[str, int] = {}
        self.mentioned: set[str] = set()  # names of bad lines: in the file, never pruned
        self.writer = CatalogWriter()
        self.batch: list[Record] = []
        self.strict = strict
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.on_error = on_error

    def report(self, line_no: int, message: str) -> None:
        if self.on_error:
            self.on_error(line_no, message)

    def line(self, line_no: int, text: str) -> None:
        self.stats.lines = line_no
        if not text.strip():
            return
        try:
            record = self.parse(line_no, text)
        except LineError as exc:
            self.reject(line_no, text, exc)
            return
        self.seen[record.name] = line_no
        for warning in record.warnings:
            self.stats.warnings.append((line_no, warning))
            self.report(line_no, f"warning: {warning}")
        self.stats.valid += 1
        self.batch.append(record)

    def parse(self, line_no: int, text: str) -> Record:
        if text == INVALID_UTF8:
            raise LineError("line is not valid UTF-8")
        record = parse_record(line_no, text)
        if record.name in self.seen:
            raise LineError(
                f"duplicate package {record.name!r} (first on line {self.seen[record.name]})"
            )
        return record

    def reject(self, line_no: int, text: str, exc: LineError) -> None:
        named = _name_of(text)
        if named:
            self.mentioned.add(named)
        self.stats.errors.append((line_no, str(exc)))
        self.report(line_no, str(exc))
        if self.strict:
            raise ImportAborted(f"line {line_no}: {exc} (--strict: nothing was imported)") from None

    def flush(self, position: int, *, full_only: bool) -> None:
        """Write the pending batch (only once it is full, with ``full_only``)."""
        if full_only and len(self.batch) < self.batch_size:
            return
        if self.batch:
            self.writer.write(self.batch, self.stats)
            self.batch = []
        if self.on_progress:
            self.on_progress(position, self.stats.valid)

    def prune(self) -> None:
        if self.stats.valid == 0:
            message = "--prune skipped: the file has no valid line"
            self.stats.warnings.append((0, message))
            self.report(0, f"warning: {message}")
            return
        self.stats.pruned, recounted = _prune(set(self.seen) | self.mentioned)
        self.stats.changed_ids |= recounted


def import_catalog(
    path: Path,
    *,
    strict: bool = False,
    prune: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
    on_error: Callable[[int, str], None] | None = None,
    hand_off: Callable[[], object] | None = None,
) -> ImportStats:
    """Import ``path``; see the module docstring. ``on_progress(bytes_read, packages)``."""
    run = _Run(strict=strict, batch_size=batch_size, on_progress=on_progress, on_error=on_error)
    stream = open_catalog(path)
    raw_file = getattr(stream, "fileobj", None) or stream
    try:
        with transaction.atomic():
            for line_no, text in read_lines(stream):
                run.line(line_no, text)
                run.flush(raw_file.tell(), full_only=True)
            run.flush(raw_file.tell(), full_only=False)
            if prune:
                run.prune()
            # A vocabulary changed since the last import relabels existing tags.
            vocabulary.apply(run.writer.vocabulary.values())
            if hand_off and run.stats.changed_ids:
                hand_off()
    finally:
        stream.close()
    return run.stats


def _prune(keep: set[str]) -> tuple[int, set[int]]:
    """Delete packages not in ``keep`` (through the ORM, so cascades and hooks run); return
    how many, and the remaining packages whose reverse-dependency counts that changed."""
    doomed = Package.objects.exclude(name__in=keep)
    count = doomed.count()
    if not count:
        return 0, set()
    targets = set(
        Dependency.objects.filter(package__in=doomed, target__isnull=False)
        .exclude(target__in=doomed)
        .values_list("target_id", flat=True)
    )
    doomed.delete()
    return count, targets


def _name_of(text: str) -> str | None:
    """The package name of a line that failed validation, if it has a readable one."""
    try:
        data = json.loads(text)
    except (ValueError, TypeError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name.strip() if isinstance(name, str) and name.strip() else None
