"""Small factories for tests."""

from __future__ import annotations

import itertools

from portal.models import Maintainer, Package, Section

_counter = itertools.count(1)


def make_package(name: str | None = None, **fields: object) -> Package:
    """Create a package with sensible defaults (section ``misc``, a test maintainer)."""
    section, _ = Section.objects.get_or_create(name=str(fields.pop("section", "misc")))
    maintainer, _ = Maintainer.objects.get_or_create(
        name=str(fields.pop("maintainer", "Test Maintainer")), email="test@example.org"
    )
    defaults: dict[str, object] = {
        "version": "1.0-1",
        "summary": "a package made by a test",
        "description": "",
        "priority": "optional",
        "architecture": "amd64",
    }
    defaults.update(fields)
    return Package.objects.create(
        name=name or f"test-package-{next(_counter)}",
        section=section,
        maintainer=maintainer,
        **defaults,
    )
