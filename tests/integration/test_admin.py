"""Editors in the Django admin: lists, filters, edits, and edits reaching search."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from portal.models import Dependency, Package, Tag
from search import service
from tests.conftest import wait_for
from tests.helpers import change_form_data, make_package

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor_client(client):
    user = get_user_model().objects.create_superuser("ed", "ed@example.org", "pw")
    client.force_login(user)
    return client


def test_change_list_filters(editor_client):
    x11, _ = Tag.objects.get_or_create(facet="interface", value="x11")
    cli, _ = Tag.objects.get_or_create(facet="interface", value="commandline")
    a = make_package("alpha-viewer", section="graphics", maintainer="Alice Team")
    b = make_package("beta-shell", section="shells", maintainer="Bob")
    a.tags.add(x11)
    b.tags.add(cli)
    url = "/admin/portal/package/"

    def names(params):
        response = editor_client.get(url, params)
        assert response.status_code == 200
        return {p.name for p in response.context["cl"].result_list}

    assert names({}) == {"alpha-viewer", "beta-shell"}
    assert names({"section__id__exact": a.section_id}) == {"alpha-viewer"}
    assert names({"tag_facet": "interface", "tag": cli.pk}) == {"beta-shell"}
    assert names({"tag_facet": "interface"}) == {"alpha-viewer", "beta-shell"}
    assert names({"maintainer_name": "alice"}) == {"alpha-viewer"}
    assert names({"q": "beta"}) == {"beta-shell"}
    assert names({"priority__exact": "required"}) == set()
    # The tag-value filter lists the values of the chosen facet.
    html = editor_client.get(url, {"tag_facet": "interface"}).content.decode()
    assert "commandline" in html and "x11" in html
    # Another facet chosen (its links kept the old tag): the tag of the first one, which
    # the "By tag" filter no longer shows, no longer narrows the list out of sight.
    role, _ = Tag.objects.get_or_create(facet="role", value="program")
    a.tags.add(role)
    b.tags.add(role)
    assert names({"tag_facet": "role", "tag": cli.pk}) == {"alpha-viewer", "beta-shell"}
    assert names({"tag": cli.pk}) == {"alpha-viewer", "beta-shell"}, "no facet"


def test_tag_autocomplete_accepts_facet_and_value(editor_client):
    Tag.objects.get_or_create(facet="interface", value="x11")
    Tag.objects.get_or_create(facet="uitoolkit", value="gtk")
    response = editor_client.get(
        "/admin/autocomplete/",
        {
            "term": "interface::x",
            "app_label": "portal",
            "model_name": "package",
            "field_name": "tags",
        },
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["interface::x11"]


@pytest.mark.parametrize("name", ["selfish", "renamed-selfish"])
def test_a_package_cannot_depend_on_itself(editor_client, name):
    """It saved, and the package counted as its own reverse dependency (popularity in
    search), and the rename check listed it among its own dependents. Also under the name
    the same form gives it."""
    package = make_package("selfish")
    data = change_form_data(package, name=name)
    data.update(
        {
            "dependencies-TOTAL_FORMS": 1,
            "dependencies-0-kind": "depends",
            "dependencies-0-target_name": name,
        }
    )
    response = editor_client.post(f"/admin/portal/package/{package.pk}/change/", data)
    assert response.status_code == 200
    assert "cannot depend on itself" in response.content.decode()
    package.refresh_from_db()
    assert package.reverse_dependency_count == 0 and package.name == "selfish"


@pytest.mark.parametrize(("field", "value"), [("source", "Foo Bar!!"), ("version", "1.0 beta")])
def test_the_package_form_refuses_a_source_or_version_no_package_has(editor_client, field, value):
    """`Foo Bar!!` saved as the source and became the links
    tracker.debian.org/pkg/Foo%20Bar%21%21 and sources.debian.org/src/Foo%20Bar%21%21/."""
    package = make_package("linked")
    response = editor_client.post(
        f"/admin/portal/package/{package.pk}/change/", change_form_data(package, **{field: value})
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field]


def test_dependency_edits_keep_reverse_counts(editor_client):
    lib = make_package("libfoo1")
    app = make_package("foo-app")
    assert lib.reverse_dependency_count == 0
    data = change_form_data(app)
    data.update(
        {
            "dependencies-TOTAL_FORMS": 2,
            "dependencies-0-kind": "depends",
            "dependencies-0-target_name": "libfoo1",
            "dependencies-1-kind": "depends",
            "dependencies-1-target_name": "not-in-the-catalog",
        }
    )
    response = editor_client.post(f"/admin/portal/package/{app.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    lib.refresh_from_db()
    assert lib.reverse_dependency_count == 1
    dangling = Dependency.objects.get(package=app, target_name="not-in-the-catalog")
    assert dangling.target is None
    # The missing package appears: the dependency links to it and counts.
    newcomer = make_package("not-in-the-catalog")
    newcomer.refresh_from_db()
    assert newcomer.reverse_dependency_count == 1
    # Removing the dependency in the admin brings the count back down.
    data = change_form_data(app)
    dep_index = next(i for i in range(2) if data[f"dependencies-{i}-target_name"] == "libfoo1")
    data[f"dependencies-{dep_index}-DELETE"] = "on"
    response = editor_client.post(f"/admin/portal/package/{app.pk}/change/", data)
    assert response.status_code == 302
    lib.refresh_from_db()
    assert lib.reverse_dependency_count == 0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_admin_edit_reaches_search(celery_worker, search_index, editor_client):
    package = make_package("quuxedit", summary="before the edit")
    wait_for(lambda: service.search("quuxedit").total == 1, timeout=20)

    response = editor_client.post(
        f"/admin/portal/package/{package.pk}/change/",
        change_form_data(package, summary="now with zymurgical flavour"),
    )
    assert response.status_code == 302

    result = wait_for(lambda: (r := service.search("zymurgical")).total == 1 and r, timeout=20)
    assert [h.name for h in result.hits] == ["quuxedit"]
    assert service.search("quuxedit").hits[0].summary == ("now with zymurgical flavour")


@pytest.mark.parametrize("off_by", [-3, 30])
def test_estimated_count_never_hides_the_last_packages(off_by, monkeypatch):
    """The planner's estimate lags behind inserts and deletes: paging must still reach the
    last package, and no page may be empty."""
    from portal.admin import EstimatedCountPaginator
    from portal.models import Package

    for i in range(25):
        make_package(f"paged-{i:02d}")
    rows = Package.objects.order_by("name")
    exact = rows.count()
    monkeypatch.setattr(EstimatedCountPaginator, "estimate", lambda self: exact + off_by)
    paginator = EstimatedCountPaginator(rows, 10)
    assert paginator.count == exact + off_by  # the first pages use the estimate
    last = paginator.page(paginator.num_pages)
    assert list(last.object_list)  # never an empty page
    assert last.object_list[len(last.object_list) - 1].name == rows.last().name
    seen = []
    number = 1
    while True:
        page = EstimatedCountPaginator(rows, 10).page(number)
        seen += [p.name for p in page.object_list]
        if not page.has_next():
            break
        number += 1
    assert seen == [p.name for p in rows]


@pytest.mark.parametrize("page", ["4", "5000", "99999999999999999999"])
def test_a_page_past_the_end_of_the_package_list_shows_the_last_page(
    page, editor_client, monkeypatch
):
    """The paginator served the real last page, but the change list kept the asked-for
    number and its page links raised EmptyPage: a 500 for any page past the end, and for
    the last link of the pager whenever the planner's estimate was too high."""
    from portal.admin import EstimatedCountPaginator
    from portal.models import Package

    for i in range(25):
        make_package(f"paged-{i:02d}")
    exact = Package.objects.count()
    monkeypatch.setattr(EstimatedCountPaginator, "estimate", lambda self: exact + 30)
    monkeypatch.setattr("portal.admin.PackageAdmin.list_per_page", 10)
    response = editor_client.get("/admin/portal/package/", {"p": page, "o": "1"})
    assert response.status_code == 200
    assert response.context["cl"].page_num == 3
    assert response.context["cl"].result_count == exact
    assert [p.name for p in response.context["cl"].result_list][-1] == "paged-24"


@pytest.mark.parametrize(
    "url",
    [
        "/admin/portal/package/?priority__exact=%00",
        "/admin/portal/tag/?facet=%00",
        "/admin/portal/section/?q=%00",
        "/admin/portal/package/?q=%00",
        "/admin/portal/package/?maintainer_name=a%00",
        "/admin/portal/package/?tag_facet=%00",
        "/admin/portal/package/?tag_facet=x%00y",
        "/admin/autocomplete/?app_label=search&model_name=promotion&field_name=package&term=nul%00",
        "/admin/autocomplete/?app_label=portal&model_name=package&field_name=section&term=%00",
        "/admin/autocomplete/?app_label=portal&model_name=package&field_name=tags&term=%00",
        "/admin/autocomplete/?app_label=portal&model_name=package&field_name=maintainer&term=a%00",
    ],
)
def test_a_nul_character_anywhere_in_an_admin_address_is_a_400_that_says_so(editor_client, url):
    """Three parameters were guarded one by one; a review found five more that reached
    PostgreSQL (which cannot hold NUL in text) and were 500s."""
    make_package("nul-probe")
    response = editor_client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.parametrize("field", ["section", "maintainer", "tags"])
def test_an_add_form_with_an_initial_value_that_is_no_id_renders(editor_client, field):
    """`/admin/portal/package/add/?section=abc` (initial values from the address) was a 500:
    the autocomplete widget looked the value up as an id."""
    response = editor_client.get(f"/admin/portal/package/add/?{field}=abc")
    assert response.status_code == 200


def test_a_promotion_posted_with_a_package_that_is_no_id_is_a_form_error(editor_client):
    response = editor_client.post(
        "/admin/search/promotion/add/", {"query": "editor", "package": "abc", "position": "1"}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["package"]


def test_the_package_autocomplete_puts_the_package_named_so_first(editor_client):
    """Editors pinning a package type its name: ``vim`` first, before ``apvlv`` (whose
    summary says vim) and the alphabet's other ``vim-*``."""
    make_package("aaa-viewer", summary="vim-like keys for documents")
    make_package("vim-addon", summary="an add-on")
    make_package("vim", summary="Vi IMproved")
    response = editor_client.get(
        "/admin/autocomplete/",
        {"term": "vim", "app_label": "search", "model_name": "promotion", "field_name": "package"},
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]][:2] == ["vim", "vim-addon"]


def field_errors(response, form="adminform"):
    return response.context[form].form.errors


@pytest.mark.parametrize(
    "model, data, field",
    [
        ("section", {"name": "zz\u00adsec"}, "name"),
        ("maintainer", {"name": "ZZ Rev\u200bTeam", "email": "z@example.org"}, "name"),
        ("tag", {"facet": "zz::x", "value": "y", "label": "", "description": ""}, "facet"),
        ("tag", {"facet": "zz", "value": "a\u200bb", "label": "", "description": ""}, "value"),
    ],
)
def test_names_a_filter_could_never_select_are_refused(editor_client, model, data, field):
    """Search filters drop control and invisible characters (``search.params``): a section,
    maintainer or tag keeping one was offered as a filter that always found nothing; and a
    tag facet holding ``::`` (the separator of facet and value) broke every tag list."""
    response = editor_client.post(f"/admin/portal/{model}/add/", data)
    assert response.status_code == 200, response.status_code  # the form again, not a save
    assert field in field_errors(response)


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"installed_size_kb": 9223372036854775807}, "installed_size_kb"),
        ({"installed_size_kb": -5}, "installed_size_kb"),
        ({"download_size_bytes": 9223372036854775807}, "download_size_bytes"),
        ({"description": "x" * 1_000_001}, "description"),
    ],
)
def test_the_package_form_refuses_what_the_importer_refuses(editor_client, overrides, field):
    package = make_package("limits-probe")
    response = editor_client.post(
        f"/admin/portal/package/{package.pk}/change/", change_form_data(package, **overrides)
    )
    assert response.status_code == 200
    assert field in field_errors(response)


def test_a_dependency_on_an_invalid_package_name_is_refused(editor_client):
    package = make_package("deps-probe")
    data = change_form_data(package)
    data.update(
        {
            "dependencies-TOTAL_FORMS": 1,
            "dependencies-0-kind": "depends",
            "dependencies-0-target_name": "Bad Name!!",
            "dependencies-0-package": package.pk,
        }
    )
    response = editor_client.post(f"/admin/portal/package/{package.pk}/change/", data)
    assert response.status_code == 200
    inline = response.context["inline_admin_formsets"][0].formset
    assert "target_name" in inline.forms[0].errors
    assert not package.dependencies.exists()


def test_a_save_over_someone_elses_newer_save_is_refused_not_lost(editor_client):
    """Two editors open the same package; the second save used to overwrite the first one's
    change without a word."""
    package = make_package("two-editors", summary="as it was")
    url = f"/admin/portal/package/{package.pk}/change/"
    opened = change_form_data(package)  # both editors' forms, as opened
    assert opened["seen_version"]
    first = editor_client.post(url, {**opened, "summary": "the first editor's summary"})
    assert first.status_code == 302
    second = editor_client.post(url, {**opened, "version": "9.9-1"})
    assert second.status_code == 200
    assert "after you opened it" in second.content.decode()
    package.refresh_from_db()
    assert (package.summary, package.version) == ("the first editor's summary", "1.0-1")
    # Opened again, the second editor's change saves.
    again = editor_client.post(url, {**change_form_data(package), "version": "9.9-1"})
    assert again.status_code == 302
    package.refresh_from_db()
    assert (package.summary, package.version) == ("the first editor's summary", "9.9-1")


def test_the_maintainer_filter_box_keeps_the_search_and_the_sort(editor_client):
    """Typing in the maintainer box submitted only the other filters: the search words and
    the sort order were lost."""
    make_package("kept-a", maintainer="Alice Team")
    response = editor_client.get(
        "/admin/portal/package/", {"q": "kept", "o": "2", "section__id__exact": "1", "p": "2"}
    )
    html = response.content.decode()
    form = html[html.index('class="input-filter"') :]
    form = form[: form.index("</form>")]
    assert 'name="q" value="kept"' in form
    assert 'name="o" value="2"' in form
    assert 'name="section__id__exact" value="1"' in form
    assert 'name="p"' not in form  # a new filter starts at its first page


def test_an_oversized_description_gets_the_forms_message_not_a_bare_400(editor_client):
    """Django refused request bodies over 2.5 MB before the form saw them: a 4 MB description
    (1,000,000 four-byte characters is within the importer's limit) was a bare "Bad Request
    (400)", and the edit was lost without a word."""
    package = make_package("big-description")
    url = f"/admin/portal/package/{package.pk}/change/"
    response = editor_client.post(url, change_form_data(package, description="𝄞" * 1_000_001))
    assert response.status_code == 200
    assert "description" in field_errors(response)
    # Past any form's size, the answer still says what happened and what to do.
    huge = editor_client.post(url, change_form_data(package, description="x" * 9_000_000))
    assert huge.status_code == 400
    page = huge.content.decode()
    assert "too large" in page and "MB" in page


def test_renaming_a_package_others_depend_on_asks_first(editor_client):
    """Dependencies are by name: renaming a package unlinks every package that depends on
    it (its popularity, which ranks search results, drops to 0). The rename used to be
    saved without a word; now the form says what it would unlink and asks to confirm."""
    library = make_package("libexample1")
    for name in ("app-one", "app-two"):
        Dependency.objects.create(
            package=make_package(name), kind="depends", target_name="libexample1"
        )
    library.refresh_from_db()
    assert library.reverse_dependency_count == 2
    url = f"/admin/portal/package/{library.pk}/change/"
    data = {**change_form_data(library), "name": "libexample2"}
    refused = editor_client.post(url, data)
    assert refused.status_code == 200
    page = refused.content.decode()
    assert "2 packages depend on" in page and "app-one" in page and "app-two" in page
    checkbox = 'type="checkbox" name="confirm_rename"'
    assert checkbox in page and checkbox not in editor_client.get(url).content.decode()
    library.refresh_from_db()
    assert library.name == "libexample1" and library.reverse_dependency_count == 2
    confirmed = editor_client.post(url, {**data, "confirm_rename": "on"})
    assert confirmed.status_code == 302
    library.refresh_from_db()
    assert library.name == "libexample2" and library.reverse_dependency_count == 0
    # A package nobody depends on is renamed without a question; so is a change that
    # keeps the name.
    lone = make_package("lone-package")
    lone_url = f"/admin/portal/package/{lone.pk}/change/"
    assert (
        editor_client.post(lone_url, {**change_form_data(lone), "name": "lone-2"}).status_code
        == 302
    )
    edit = editor_client.post(url, {**change_form_data(library), "summary": "edited"})
    assert edit.status_code == 302


def test_a_delete_page_lists_a_few_of_many_related_rows_and_counts_the_rest(editor_client):
    """Deleting the tag role::program listed 8,335 lines of "Package-tag relationship:
    Package_tags object (4)" (554 KB, a second); a section, its 6,703 protected packages."""
    from portal.models import Section

    tag, _ = Tag.objects.get_or_create(facet="role", value="many")
    for i in range(60):
        make_package(f"many-{i:02d}", section="crowded").tags.add(tag)
    page = editor_client.get(f"/admin/portal/tag/{tag.pk}/delete/").content.decode()
    assert page.count("Package-tag relationship") <= 26 and "and 35 more" in page
    section = Section.objects.get(name="crowded")
    page = editor_client.get(f"/admin/portal/section/{section.pk}/delete/").content.decode()
    assert page.count("many-") <= 26 and "and 35 more" in page
    assert "protected related objects" in page  # refused, and said so
    maintainer = Package.objects.get(name="many-00").maintainer
    page = editor_client.get(f"/admin/portal/maintainer/{maintainer.pk}/delete/").content.decode()
    assert "protected related objects" in page and "many-00" in page
    empty = Section.objects.create(name="empty-one")
    response = editor_client.post(f"/admin/portal/section/{empty.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Section.objects.filter(name="empty-one").exists()
