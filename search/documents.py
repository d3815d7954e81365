"""The Elasticsearch schema of a package document.

The document class is registered with django-elasticsearch-dsl's registry (which knows the
model and how to turn a row into a document); the index lifecycle (concrete, timestamped
indices behind a read alias and a write alias) is owned by ``search.indices`` and the
``indexing`` app, not by django-elasticsearch-dsl's own signal processor, which is off.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django_elasticsearch_dsl import Document, fields
from django_elasticsearch_dsl.registries import registry

from portal.models import Package
from search import analysis


def alias_name() -> str:
    """The read alias that searches go through (``<prefix>-packages``)."""
    return f"{settings.SEARCH_INDEX_PREFIX}-packages"


@registry.register_document
class PackageDocument(Document):
    """One package, denormalised for search: section, maintainer and tags are inlined."""

    # The highlighted fields (name, summary, description) keep offsets in their postings:
    # the highlighter then finds the matches from the index instead of re-analysing each
    # hit's text (a large share of a search's time for long descriptions).
    name = fields.TextField(
        analyzer=analysis.package_name,
        search_analyzer=analysis.package_name_search,
        index_options="offsets",
        fields={
            "raw": fields.KeywordField(),
            "nolib": fields.TextField(
                analyzer=analysis.package_name_nolib,
                search_analyzer=analysis.package_name_search,
            ),
            "prefix": fields.TextField(
                analyzer=analysis.name_prefix,
                search_analyzer=analysis.name_prefix_search,
            ),
            # Autocomplete only: it matches on it, so no positions, frequencies or norms.
            "part_prefix": fields.TextField(
                analyzer=analysis.name_part_prefix,
                search_analyzer=analysis.name_part_prefix_search,
                index_options="docs",
                norms=False,
            ),
        },
    )
    version = fields.KeywordField(index=False)
    summary = fields.TextField(
        analyzer=analysis.english_text,
        index_options="offsets",
        fields={"exact": fields.TextField(analyzer=analysis.plain_text)},
    )
    description = fields.TextField(
        analyzer=analysis.english_text,
        index_options="offsets",
        fields={"exact": fields.TextField(analyzer=analysis.plain_text)},
    )
    section = fields.KeywordField()
    priority = fields.KeywordField()
    architecture = fields.KeywordField()
    maintainer = fields.TextField(
        analyzer=analysis.plain_text, fields={"raw": fields.KeywordField()}
    )
    tags = fields.KeywordField(
        multi=True, fields={"text": fields.TextField(analyzer=analysis.plain_text)}
    )
    homepage = fields.KeywordField(index=False)
    installed_size_kb = fields.LongField()
    download_size_bytes = fields.LongField()
    popularity = fields.IntegerField()
    row_version = fields.LongField()

    class Index:
        # Only a template: concrete index names and aliases come from ``search.indices``.
        name = "packages-template"
        settings = {"number_of_shards": 1, "number_of_replicas": 0}

    class Django:
        model = Package
        # Fields copied as-is from the model (the rest are prepared below).
        fields: list[str] = []
        ignore_signals = True
        auto_refresh = False

    # -- preparation ----------------------------------------------------------------

    def prepare_name(self, instance: Package) -> str:
        return instance.name

    def prepare_version(self, instance: Package) -> str:
        return instance.version

    def prepare_summary(self, instance: Package) -> str:
        return instance.summary

    def prepare_description(self, instance: Package) -> str:
        return instance.description

    def prepare_section(self, instance: Package) -> str:
        return instance.section.name

    def prepare_priority(self, instance: Package) -> str:
        return instance.priority

    def prepare_architecture(self, instance: Package) -> str:
        return instance.architecture

    def prepare_maintainer(self, instance: Package) -> str:
        return instance.maintainer.name

    def prepare_tags(self, instance: Package) -> list[str]:
        return sorted(str(tag) for tag in instance.tags.all())

    def prepare_homepage(self, instance: Package) -> str:
        return instance.homepage

    def prepare_installed_size_kb(self, instance: Package) -> int | None:
        return instance.installed_size_kb

    def prepare_download_size_bytes(self, instance: Package) -> int | None:
        return instance.download_size_bytes

    def prepare_popularity(self, instance: Package) -> int:
        return instance.reverse_dependency_count

    def prepare_row_version(self, instance: Package) -> int:
        return instance.row_version

    @classmethod
    def source_queryset(cls) -> Any:
        """Rows with everything a document needs, in a fixed number of queries."""
        return Package.objects.select_related("section", "maintainer").prefetch_related("tags")
