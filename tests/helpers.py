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


def make_packages(count: int, prefix: str = "bulk", section: str = "misc") -> list[int]:
    """Create ``count`` packages in one bulk insert; return their ids (in name order)."""
    section_obj, _ = Section.objects.get_or_create(name=section)
    maintainer, _ = Maintainer.objects.get_or_create(name="Bulk Maker", email="bulk@example.org")
    Package.objects.bulk_create(
        Package(
            name=f"{prefix}-{i:06d}",
            version="1.0",
            summary=f"bulk package number {i}",
            section=section_obj,
            maintainer=maintainer,
        )
        for i in range(count)
    )
    return list(
        Package.objects.filter(name__startswith=f"{prefix}-")
        .order_by("name")
        .values_list("pk", flat=True)
    )
