"""The package page (issue #14): how to install it, where it lives at Debian, its tags in
words, the way back to the search the visitor came from, and real error pages."""

from __future__ import annotations

import pytest
from django.template.loader import render_to_string

from portal.models import Tag, TagFacet
from tests.helpers import make_package

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def gimp():
    TagFacet.objects.update_or_create(name="use", defaults={"label": "Purpose"})
    editing, _ = Tag.objects.update_or_create(
        facet="use", value="editing", defaults={"label": "Editing"}
    )
    untagged, _ = Tag.objects.get_or_create(facet="special", value="not-yet-tagged")
    package = make_package("gimp-pp", source="gimp", summary="GNU Image Manipulation Program")
    package.tags.add(editing, untagged)
    return package


def test_install_line_debian_links_and_tags_in_words(client, gimp):
    html = client.get("/packages/gimp-pp/").content.decode()
    assert '<code id="apt-line">sudo apt install gimp-pp</code>' in html
    assert 'data-copy-from="apt-line" hidden' in html  # shown by the script, with a clipboard
    assert 'href="https://tracker.debian.org/pkg/gimp"' in html  # the source package
    assert 'href="https://bugs.debian.org/gimp-pp"' in html
    assert 'href="https://sources.debian.org/src/gimp/"' in html
    assert ">Purpose: Editing</a>" in html and 'title="use::editing"' in html
    assert "not-yet-tagged" not in html  # a placeholder, not a property


def test_an_unknown_package_is_a_real_404_page_even_in_debug(client, settings):
    settings.DEBUG = True  # as under make run
    page = client.get("/packages/no-such-thing/")
    assert page.status_code == 404
    html = page.content.decode()
    assert "There is no package called <strong>no-such-thing</strong>" in html
    assert 'href="/?q=no-such-thing"' in html


def test_a_name_with_a_nul_is_a_404_not_a_500(client):
    # PostgreSQL refuses a NUL in a string literal: the lookup raised and the page was a 500.
    page = client.get("/packages/%00/")
    assert page.status_code == 404
    assert client.get("/packages/vim%00x/").status_code == 404


def test_a_500_page_exists_and_needs_nothing_to_render():
    html = render_to_string("500.html")
    assert "Something went wrong on our side" in html and 'href="/"' in html


def test_a_package_name_the_admin_refuses_still_never_breaks_the_search_page(client, search_index):
    # A name with a slash (saved by an editor) made every search that found it a 500 (no
    # URL for its page). The admin now refuses such names; one already stored still links
    # to its page.
    from django.contrib.auth import get_user_model
    from django.core.exceptions import ValidationError

    from indexing import writer
    from portal.models import Package

    make_package("foo/bar", summary="slashy package")
    writer.process_outbox()
    page = client.get("/", {"q": "slashy"})
    assert page.status_code == 200
    assert 'href="/packages/foo/bar/"' in page.content.decode()
    assert client.get("/packages/foo/bar/").status_code == 200
    hit = client.get("/api/search", {"q": "slashy"}).json()["hits"][0]
    assert hit["url"] == "/packages/foo/bar/"
    with pytest.raises(ValidationError) as refused:
        Package(name="foo/bar", version="1").clean_fields(exclude=["section", "maintainer"])
    assert "name" in refused.value.message_dict
    editor = get_user_model().objects.create_superuser("namer", "n@example.org", "pw")
    client.force_login(editor)
    assert client.get("/admin/portal/package/").status_code == 200
