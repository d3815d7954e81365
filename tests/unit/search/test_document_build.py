"""Documents built differently need a rebuild: ``search.documents.BUILD_VERSION`` (part of
the schema digest) must move whenever what the builder stores changes.

The builder of one document from its row (``indexing.documents._row``, pure) and the text of
its meaning vector run on fixed rows; the digest of what they return is pinned here with the
build version. A change to the prior's weights, a kind rule or an ecosystem pattern changes
the digest: bump ``BUILD_VERSION`` (every live index then reports another schema and is
rebuilt by ``load_demo``) and pin both here.
"""

from __future__ import annotations

import hashlib
import json

from indexing.documents import _row
from search import documents, meaning

# (pk, row_version, name, version, summary, description, section, priority, architecture,
#  maintainer, tags, tag labels, homepage, installed KB, download bytes, reverse depends,
#  reverse recommends, family size, source)
ROWS = [
    (1, 10, "gimp", "2.10", "GNU Image Manipulation Program", "Edit images. More text.",
     "graphics", "optional", "amd64", "Debian GNOME", ["role::program", "interface::x11",
     "use::editing"], ["Program", "X Window System", "Editing"], "https://gimp.org", 20_000,
     5_000_000, 12, 40, 4, "gimp"),
    (2, 11, "grep", "3.8", "GNU grep", "Search text.", "utils", "required", "amd64",
     "Anibal", ["role::program"], ["Program"], "", 1_500, 400_000, 2, 0, 1, "grep"),
    (3, 12, "python3-yaml", "6.0", "YAML parser and emitter for Python3", "", "python",
     "optional", "amd64", "Debian Python Team", [], [], "", 700, 170_000, 80, 3, 2,
     "pyyaml"),
    (4, 13, "libyaml-perl", "1.3", "Perl interface to libyaml", "", "perl", "optional",
     "all", "Debian Perl Group", ["devel::lang:perl"], ["Perl"], "", 90, 40_000, 5, 0, 1,
     "libyaml-perl"),
    (5, 14, "librust-serde-dev", "1.0", "generic serialization framework", "", "rust",
     "optional", "amd64", "Debian Rust Maintainers", [], [], "", 300, 60_000, 900, 0, 40,
     "rust-serde"),
    (6, 15, "gimp-help-en", "2.10", "Documentation for the GIMP (English)", "", "doc",
     "optional", "all", "Debian GNOME", [], [], "", 90_000, 30_000_000, 0, 5, 4,
     "gimp-help"),
    (7, 16, "foo-dbgsym", "1", "debug symbols for foo", "", "debug", "extra", "amd64",
     "X", [], [], "", 5_600_000, None, 0, 0, 1, "foo"),
    (8, 17, "oldthing", "1", "transitional package", "", "oldlibs", "optional", "all",
     "X", [], [], "", None, None, 0, 0, 1, ""),
]  # fmt: skip
PINNED = (2, "aee1400146acd1d8")


def built() -> str:
    sources = [_row(row, "2026-01-01T00:00:00+00:00").source for row in ROWS]
    texts = [meaning.document_text(r[2], r[4], r[5], r[11]) for r in ROWS]
    payload = json.dumps({"documents": sources, "texts": texts}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def test_the_build_version_moves_with_what_documents_hold():
    assert (documents.BUILD_VERSION, built()) == PINNED, (
        "what the document builder stores changed: bump search.documents.BUILD_VERSION "
        "(live indices then need a rebuild) and pin the new (version, digest) here"
    )
