"""Reading Debian's debtags vocabulary (no database needed)."""

from __future__ import annotations

from portal import vocabulary

SAMPLE = """\
Facet: use
Status: complete
Description: Purpose
 The general purpose of the software

Tag: use::editing
Description: Editing
 Editing of data, for example documents or images.
 .
 A second paragraph.

Tag: works-with::image
Description: Image
"""


def test_facets_and_tags_with_their_labels_and_descriptions():
    entries = {e.name: e for e in vocabulary.parse(SAMPLE.splitlines(keepends=True))}
    assert set(entries) == {"use", "use::editing", "works-with::image"}
    assert entries["use"].is_facet and not entries["use::editing"].is_facet
    assert entries["use::editing"].label == "Editing"
    assert entries["use::editing"].description == (
        "Editing of data, for example documents or images. A second paragraph."
    )
    assert entries["works-with::image"] == vocabulary.Entry("works-with::image", "Image", "")


def test_the_shipped_vocabulary_covers_the_catalogs_tags():
    entries = vocabulary.load()
    tags = [e for e in entries if not e.is_facet]
    assert len(tags) == 642 and len(entries) - len(tags) == 32
    labels = {e.name: e.label for e in tags}
    assert labels["use::editing"] == "Editing" and labels["works-with::image"] == "Image"


def test_unknown_tags_get_a_label_from_their_value():
    assert vocabulary.fallback_label("non-free-addons") == "Non free addons"
