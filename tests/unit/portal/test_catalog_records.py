"""Reading one line of the catalog (``portal.catalog_import.parse_record``)."""

from __future__ import annotations

import json

from portal.catalog_import import parse_record

LINE = {
    "name": "foo",
    "version": "1.0-1",
    "section": "utils",
    "priority": "optional",
    "architecture": "amd64",
    "maintainer": {"name": "A Maintainer", "email": "a@example.org"},
    "summary": "a tool",
}


def test_a_package_depending_on_itself_is_read_without_that_dependency():
    """Two packages of the real catalog list themselves: each counted as its own reverse
    dependency, which the ranking reads as popularity."""
    raw = json.dumps({**LINE, "depends": ["foo", "libc6"], "recommends": ["foo"]})
    record = parse_record(1, raw)
    assert record.depends == ["libc6"] and record.recommends == []
    assert any("itself" in w for w in record.warnings)
