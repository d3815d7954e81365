"""Reading one line of the catalog (``portal.catalog_import.parse_record``)."""

from __future__ import annotations

import json

import pytest

from portal.catalog_import import LineError, parse_record

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


@pytest.mark.parametrize(
    ("field", "value"), [("source", "Foo Bar!!"), ("version", "1.0 beta"), ("version", "-1")]
)
def test_a_source_or_version_that_no_debian_package_has_is_refused(field, value):
    """They went into links (tracker.debian.org/pkg/Foo%20Bar%21%21) unchecked."""
    with pytest.raises(LineError, match=field):
        parse_record(1, json.dumps({**LINE, field: value}))


def test_the_model_refuses_them_too():
    from django.core.exceptions import ValidationError

    from portal.models import Package

    for field, value in (("source", "Foo Bar!!"), ("version", "1.0 beta")):
        with pytest.raises(ValidationError):
            Package._meta.get_field(field).run_validators(value)
    Package._meta.get_field("version").run_validators("1:2.3~rc1+dfsg-1")
    Package._meta.get_field("source").run_validators("gcc-12")
