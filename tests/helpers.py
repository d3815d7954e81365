"""Small factories for tests."""

from __future__ import annotations

import itertools
from typing import Any

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


def change_form_data(package: Any, **overrides: Any) -> dict[str, Any]:
    """The POST body of the package change form, as a browser sends it (tests and
    bench/freshness.py drive the admin with it)."""
    deps = list(package.dependencies.all())

    def number(value: int | None) -> Any:
        return "" if value is None else value

    data: dict[str, Any] = {
        "name": package.name,
        "version": package.version,
        "source": package.source,
        "summary": package.summary,
        "description": package.description,
        "section": package.section_id,
        "priority": package.priority,
        "architecture": package.architecture,
        "maintainer": package.maintainer_id,
        "tags": [t.pk for t in package.tags.all()],
        "homepage": package.homepage,
        "installed_size_kb": number(package.installed_size_kb),
        "download_size_bytes": number(package.download_size_bytes),
        "dependencies-TOTAL_FORMS": len(deps),
        "dependencies-INITIAL_FORMS": len(deps),
        "dependencies-MIN_NUM_FORMS": 0,
        "dependencies-MAX_NUM_FORMS": 1000,
        "_save": "Save",
        # The row version the editor's form was opened at (the admin refuses a save over a
        # newer one): what the database holds now.
        "seen_version": Package.objects.filter(pk=package.pk)
        .values_list("row_version", flat=True)
        .first(),
    }
    for i, dep in enumerate(deps):
        data.update(
            {
                f"dependencies-{i}-id": dep.pk,
                f"dependencies-{i}-package": package.pk,
                f"dependencies-{i}-kind": dep.kind,
                f"dependencies-{i}-target_name": dep.target_name,
            }
        )
    data.update(overrides)
    return data
