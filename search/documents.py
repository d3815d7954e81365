"""The Elasticsearch schema of a package document.

django-elasticsearch-dsl declares the document's fields and analyzers and gives the index
definition (``PackageDocument._index.to_dict()``, used by ``search.indices.index_body``).
Everything else is the project's own: documents are built from rows by one set-based
builder (``indexing.documents``; a test checks that every field it builds is declared here),
and the index lifecycle (concrete, timestamped indices behind aliases) is owned by
``search.indices`` and the ``indexing`` app. django-elasticsearch-dsl's signal processor is
off (``ELASTICSEARCH_DSL_AUTOSYNC = False``): it would write from requests, before commit.
"""

from __future__ import annotations

from django_elasticsearch_dsl import Document, fields
from django_elasticsearch_dsl.registries import registry
from elasticsearch.dsl.field import DenseVector

from portal.models import Package
from search import analysis, meaning

# How documents are built, beyond their mapping: bump it when ``indexing.documents``, or a
# function whose result a document stores (``search.ranking``'s kind, prior, ecosystem and
# size score; ``search.meaning``'s text), changes what documents hold. It is part of the
# schema digest (``search.indices.schema_digest``), so ``search_status`` reports the live
# index as built with another schema, ``load_demo`` rebuilds it, and the relevance evaluator
# measures on a rebuilt index (a change of the prior's weights had left every live index
# with the old priors, unnoticed). ``tests/unit/search/test_document_build.py`` fails when
# those results change and this number did not.
BUILD_VERSION = 2


class DenseVectorField(fields.DEDField, DenseVector):
    """django-elasticsearch-dsl has no wrapper for ``dense_vector``: the same pairing as its
    own fields (its field mixin, the DSL's field class)."""


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
        search_analyzer=analysis.english_search,
        index_options="offsets",
        fields={
            "exact": fields.TextField(analyzer=analysis.plain_text),
            # Two adjacent words as one ("anti virus" as "antivirus"): searched with the
            # words as typed, so a word typed whole finds a summary that splits it.
            "joined": fields.TextField(
                analyzer=analysis.joined_words,
                search_analyzer=analysis.english_search,
                index_options="freqs",
            ),
        },
    )
    description = fields.TextField(
        analyzer=analysis.english_text,
        search_analyzer=analysis.english_search,
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
    # The tags' labels from Debian's vocabulary, as words ("Editing", "Image", "Program"):
    # "image editing" finds what is tagged use::editing and works-with::image.
    tag_words = fields.TextField(
        analyzer=analysis.english_text, search_analyzer=analysis.english_search, multi=True
    )
    homepage = fields.KeywordField(index=False)
    installed_size_kb = fields.LongField()
    # The installed size's bucket of the size facet (search.facets.RangeFacet: a keyword to
    # filter and count by, much cheaper to aggregate than the number).
    size_range = fields.KeywordField()
    download_size_bytes = fields.LongField()
    popularity = fields.IntegerField()  # reverse depends (shown, and a sort)
    # search.ranking: the popularity prior in [0, 1) and what kind of package it is.
    prior = fields.FloatField()
    kind = fields.KeywordField()
    # The language whose modules Debian names like this package (python3-*, lib*-perl, ...);
    # absent for everything else.
    ecosystem = fields.KeywordField()
    # search.ranking.size_score: weighs needs of several words towards whole applications.
    size_score = fields.FloatField()
    # search.meaning: what the package means, for the kNN clauses of several-word queries.
    # Quantised to a byte per dimension in the HNSW graph (Elasticsearch's default for this
    # size); the floats stay on disk only.
    meaning = DenseVectorField(dims=meaning.DIMS, index=True, similarity="cosine")
    row_version = fields.LongField()
    # When the document was last built (any write, incremental or rebuild); shown to
    # editors on the package's admin page, ignored by content verification.
    indexed_at = fields.DateField()

    class Index:
        # Only a template: concrete index names and aliases come from ``search.indices``.
        name = "packages-template"
        settings = {"number_of_shards": 1, "number_of_replicas": 0}

    class Django:
        model = Package
        # Nothing is copied from the model by django-elasticsearch-dsl: indexing.documents
        # builds every field.
        fields: list[str] = []
        ignore_signals = True
        auto_refresh = False
