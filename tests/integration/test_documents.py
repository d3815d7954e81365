"""The one document builder (indexing.documents) against what the ORM says of each row, and
against what the index schema declares. (The rebuild used to compare a sample of its SQL
fast path with the ORM path at every run; with one builder, that comparison lives here.)"""

from __future__ import annotations

import pytest

from indexing import documents
from portal.models import Dependency, Package, Tag
from search import ranking
from search.facets import SIZE
from search.indices import index_body
from tests.helpers import make_package

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def expected(package: Package) -> dict:
    """A package's document, worked out from the ORM independently of the builder."""
    tags = sorted(str(t) for t in package.tags.all())
    kind = ranking.package_kind(package.name, package.section.name, package.summary, tags)
    return {
        "name": package.name,
        "version": package.version,
        "summary": package.summary,
        "description": package.description,
        "section": package.section.name,
        "priority": package.priority,
        "architecture": package.architecture,
        "maintainer": package.maintainer.name,
        "tags": tags,
        "tag_words": sorted({t.label for t in package.tags.all() if t.facet != "special"}),
        "homepage": package.homepage,
        "installed_size_kb": package.installed_size_kb,
        "size_range": SIZE.key_of(package.installed_size_kb),
        "download_size_bytes": package.download_size_bytes,
        "popularity": package.reverse_dependency_count,
        "prior": ranking.prior(
            depends=package.reverse_dependency_count,
            recommends=package.reverse_recommends_count,
            family=package.source_family_size,
            tags=tags,
            kind=kind,
            primary=package.name == package.source,
            priority=package.priority,
        ),
        "kind": kind,
        "ecosystem": ranking.ecosystem(package.name),
        "size_score": ranking.size_score(package.installed_size_kb),
        "row_version": package.row_version,
    }


@pytest.fixture
def varied():
    tags = [
        Tag.objects.get_or_create(facet=f, value=v, defaults={"label": label})[0]
        for f, v, label in [
            ("use", "editing", "Editing"),
            ("interface", "x11", "X Window System"),
            ("role", "program", "Program"),
            ("special", "not-yet-tagged", "Need an extra tag"),
        ]
    ]
    plain = make_package("doc-plain", summary="", description="")
    rich = make_package(
        "doc-rich",
        summary="Ünïcode “quotes” & <markup>",
        description="para one\n\npara two",
        homepage="https://example.org/x",
        installed_size_kb=1234,
        download_size_bytes=99,
        section="graphics",
        maintainer="Some Team",
    )
    rich.tags.add(*tags)
    Dependency.objects.create(package=plain, kind="depends", target_name="doc-rich")
    return [plain, rich]


def test_the_builder_agrees_with_the_orm(varied):
    ids = [p.pk for p in varied]
    built = {row.id: row for row in documents.rows_for(ids)}
    for package in Package.objects.filter(pk__in=ids).select_related("section", "maintainer"):
        row = built[package.pk]
        assert row.version == package.row_version
        assert documents.comparable(row.source) == expected(package), package.name
        assert row.source[documents.STAMP_FIELD]  # every write says when it was built
    rich = built[varied[1].pk].source
    assert rich["popularity"] == 1
    assert rich["tag_words"] == ["Editing", "Program", "X Window System"]  # not "special"
    assert rich["kind"] == "program" and 0 < rich["prior"] < 1
    assert rich["size_range"] == "medium"  # 1234 KB: from 1 to 10 MB


def test_keyset_batches_cover_every_row_once(varied):
    make_package("doc-third")
    seen = [row.id for batch in documents.batches(2) for row in batch]
    assert seen == sorted(Package.objects.values_list("pk", flat=True))


def test_every_field_built_is_declared_in_the_index_schema(varied):
    declared = set(index_body()["mappings"]["properties"])
    (row,) = documents.rows_for([varied[1].pk])
    assert set(row.source) == declared


def test_actions_carry_the_row_version_as_an_external_version():
    index_op = documents.action("idx", 7, 42, {"name": "x"})
    delete_op = documents.action("idx", 7, 43, None)
    assert index_op == {
        "_op_type": "index",
        "_index": "idx",
        "_id": 7,
        "version": 42,
        "version_type": "external_gte",
        "_source": {"name": "x"},
    }
    assert delete_op["_op_type"] == "delete" and "_source" not in delete_op
