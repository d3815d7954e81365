"""The search page in a real browser, against the real stack.

Headless Chromium (Debian's package, driven by Playwright) on pytest-django's live server;
the catalog is written through the ORM and indexed by the real Celery worker into a test
index. The tests do what a visitor does (search, filter, remove filters, sort, page,
autocomplete with the keyboard, open a shared link, browse without JavaScript) and check what
the page shows: counts, names, chips, ARIA state and the URL. Screenshots of every step go to
``tests/artifacts/screenshots/<test>/``.
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
]

PAGE_SIZE = 20  # what the search page shows per page


# --------------------------------------------------------------------------- helpers


def query_of(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def total(page) -> int:
    return int(page.locator(".summary strong").inner_text().replace(",", ""))


def hit_names(page) -> list[str]:
    return page.locator(".hit h2 a").all_inner_texts()


def hit_sections(page) -> list[str]:
    return page.locator(".hit .badge").all_inner_texts()


def facet_counts(page, facet: str) -> dict[str, int]:
    return page.locator(f'.facet-value[data-facet="{facet}"]').evaluate_all(
        """(items) => Object.fromEntries(items.map(
             (li) => [li.dataset.value, Number(li.querySelector(".count").textContent)]))"""
    )


def checked_values(page, facet: str) -> list[str]:
    return page.locator(f'.facet-value[data-facet="{facet}"] input:checked').evaluate_all(
        "(boxes) => boxes.map((b) => b.value)"
    )


def chips(page) -> list[str]:
    return [" ".join(t.split()) for t in page.locator(".chips .chip span").all_inner_texts()]


def hit(page, name: str):
    return page.locator(".hit").filter(has=page.get_by_role("link", name=name, exact=True))


def checkbox(page, facet: str, value: str):
    return page.locator(f'.facet-value[data-facet="{facet}"][data-value="{value}"] input')


@contextmanager
def swapped(page):
    """Around an action the script handles in place: expect one ``?partial=1`` fetch, then
    wait until the results region holds the new HTML."""
    from playwright.sync_api import expect

    page.locator("#results-region .toolbar").evaluate("(el) => { el.dataset.stale = '1'; }")
    with page.expect_response(lambda r: "partial=1" in r.url) as response:
        yield
    assert response.value.status == 200, response.value.url
    page.locator("#results-region .toolbar:not([data-stale])").wait_for()
    expect(page.locator("#results-region")).not_to_have_class(re.compile(r"\bloading\b"))


class SuggestTraffic:
    """Counts the page's autocomplete requests, started and ended."""

    def __init__(self, page) -> None:
        self.started = self.ended = 0
        page.on("request", lambda r: self._count(r, "started"))
        page.on("requestfinished", lambda r: self._count(r, "ended"))
        page.on("requestfailed", lambda r: self._count(r, "ended"))

    def _count(self, request, which: str) -> None:
        if "/api/suggest" in request.url:
            setattr(self, which, getattr(self, which) + 1)

    def settled(self) -> bool:
        return self.started == self.ended


def wait_until(page, predicate, message: str, timeout_ms: int = 10_000) -> None:
    """Poll a condition on Python-side state; Playwright delivers page events (which update
    that state) only while one of its calls runs, hence ``wait_for_timeout``, not sleep."""
    waited = 0
    while not predicate():
        assert waited < timeout_ms, message
        page.wait_for_timeout(50)
        waited += 50


def no_full_reload_since_marked(page) -> bool:
    return page.evaluate("window.__sameDocument === true")


# --------------------------------------------------------------------------- tests


def test_search_facets_chips_sort_and_paging(catalog, page, shot):
    from playwright.sync_api import expect

    viewers = catalog.viewers
    graphics = catalog.where(section="graphics")
    text = catalog.where(section="text")

    page.goto("/")
    expect(page).to_have_title("Debian package search")
    # The static files are served (the live server serves them like runserver does).
    script = page.request.get("/static/portal/search.js")
    assert script.status == 200
    assert "javascript" in script.headers["content-type"]
    assert "results-region" in script.text()
    # No query: the whole catalog, with the search box focused.
    expect(page.locator("#q")).to_be_focused()
    assert total(page) == len(catalog.packages)
    assert facet_counts(page, "section") == catalog.count("section", catalog.packages)
    shot(page, "home")

    # Everything below happens in this one document (no full page load).
    page.evaluate("window.__sameDocument = true")

    suggest = SuggestTraffic(page)

    # ---- search (URLs leave out the defaults: sort=relevance, page 1)
    searched = {"q": [catalog.word]}
    with swapped(page):
        page.locator("#q").fill(catalog.word)
        page.locator("#q").press("Enter")
    assert query_of(page) == searched
    expect(page.locator(".summary")).to_contain_text(f"25 packages for “{catalog.word}”")
    expect(page).to_have_title(f"{catalog.word} — Debian package search")
    assert total(page) == len(viewers) == 25
    names = hit_names(page)
    assert len(names) == PAGE_SIZE
    assert all(catalog.word in n for n in names)
    assert set(names) <= {p.name for p in viewers}
    # Popularity (reverse dependencies) breaks the tie between equally good matches.
    assert names[:2] == ["pixel-viewer", "quokka-viewer"]
    expect(hit(page, "pixel-viewer").locator(".meta")).to_contain_text("⬑ 3 dependents")
    expect(hit(page, "quokka-viewer").locator(".meta")).to_contain_text("⬑ 1 dependent")
    expect(hit(page, "quokka-viewer").locator(".meta")).not_to_contain_text("dependents")
    expect(hit(page, "csv-viewer").locator(".meta")).not_to_contain_text("dependent")
    # The query is highlighted in names and summaries.
    marks = page.locator(".hit mark").all_inner_texts()
    assert marks
    assert {m.lower() for m in marks} == {catalog.word}
    assert facet_counts(page, "section") == {"graphics": 12, "x11": 8, "text": 5}
    assert facet_counts(page, "priority") == catalog.count("priority", viewers)
    assert facet_counts(page, "maintainer") == catalog.count("maintainer", viewers)
    assert chips(page) == []
    # Submitting closes the suggestions, and an answer to a request made while typing must
    # not reopen them: wait past the typing delay and for every suggestion request to end.
    page.wait_for_timeout(300)
    wait_until(page, suggest.settled, "suggestion requests still running")
    expect(page.get_by_role("listbox")).to_be_hidden()
    shot(page, "results")

    # ---- tick a facet: results and the other facets' counts follow
    with swapped(page):
        checkbox(page, "section", "graphics").click()
    # The focus stays on the box just ticked (in the new results region).
    expect(checkbox(page, "section", "graphics")).to_be_focused()
    assert query_of(page) == {**searched, "section": ["graphics"]}
    assert total(page) == len(graphics) == 12
    assert set(hit_sections(page)) == {"graphics"}
    assert set(hit_names(page)) == {p.name for p in graphics}
    assert checked_values(page, "section") == ["graphics"]
    # Facets are disjunctive: a facet's own counts ignore its own filter ...
    assert facet_counts(page, "section") == {"graphics": 12, "x11": 8, "text": 5}
    # ... the others are counted within it.
    assert facet_counts(page, "priority") == catalog.count("priority", graphics)
    assert facet_counts(page, "maintainer") == {"Graphics Team": 12}
    assert chips(page) == ["Section: graphics"]
    shot(page, "section-graphics")

    # ---- a second value of the same facet: OR within a facet
    with swapped(page):
        checkbox(page, "section", "text").click()
    assert query_of(page) == {**searched, "section": ["graphics", "text"]}
    assert total(page) == len(graphics) + len(text) == 17
    assert set(hit_sections(page)) == {"graphics", "text"}
    assert chips(page) == ["Section: graphics", "Section: text"]
    assert facet_counts(page, "maintainer") == {"Graphics Team": 12, "Jane Doe": 5}

    # ---- and a tag facet: AND across facets
    c_only = [p for p in graphics + text if "implemented-in::c" in p.tags]
    with swapped(page):
        checkbox(page, "tag.implemented-in", "c").click()
    assert total(page) == len(c_only)
    assert set(hit_names(page)) == {p.name for p in c_only}
    assert chips(page) == ["Section: graphics", "Section: text", "Implemented in: c"]
    shot(page, "three-filters")

    # ---- remove the chips one by one
    with swapped(page):
        page.get_by_role("link", name="Remove filter Implemented in: c").click()
    assert total(page) == 17
    with swapped(page):
        page.get_by_role("link", name="Remove filter Section: graphics").click()
    assert query_of(page) == {**searched, "section": ["text"]}
    assert total(page) == len(text) == 5
    assert set(hit_names(page)) == {p.name for p in text}
    assert chips(page) == ["Section: text"]
    assert checked_values(page, "section") == ["text"]
    with swapped(page):
        page.get_by_role("link", name="Remove filter Section: text").click()
    assert query_of(page) == searched
    assert total(page) == 25
    assert chips(page) == []
    assert checked_values(page, "section") == []
    shot(page, "filters-removed")

    # ---- the browser's Back button restores the previous state
    with swapped(page):
        page.go_back()
    assert query_of(page) == {**searched, "section": ["text"]}
    assert total(page) == 5
    assert chips(page) == ["Section: text"]
    with swapped(page):
        page.go_forward()
    assert total(page) == 25

    # ---- sort by name, then page 2
    alphabetical = sorted(p.name for p in viewers)
    with swapped(page):
        page.get_by_label("Sort").select_option("name")
    assert query_of(page) == {"q": [catalog.word], "sort": ["name"]}
    assert hit_names(page) == alphabetical[:PAGE_SIZE]
    pages = page.get_by_role("navigation", name="Pages")
    expect(pages.locator("[aria-current=page]")).to_have_text("1")
    with swapped(page):
        pages.get_by_role("link", name="2", exact=True).click()
    # Paging moves the focus (and the view) to the results summary, not the page's end.
    expect(page.locator(".summary")).to_be_focused()
    assert page.evaluate("document.querySelector('.summary').getBoundingClientRect().top") < 200
    assert query_of(page) == {"q": [catalog.word], "sort": ["name"], "page": ["2"]}
    assert total(page) == 25
    assert hit_names(page) == alphabetical[PAGE_SIZE:]
    expect(page.locator("ol.hits")).to_have_attribute("start", str(PAGE_SIZE + 1))
    expect(pages.locator("[aria-current=page]")).to_have_text("2")
    expect(pages.get_by_role("link", name="← Previous")).to_be_visible()
    expect(pages.get_by_role("link", name="Next →")).to_have_count(0)
    expect(page.get_by_label("Sort")).to_have_value("name")
    shot(page, "page-2")

    # ---- a new filter starts again at page 1
    with swapped(page):
        checkbox(page, "section", "x11").click()
    assert query_of(page) == {"q": [catalog.word], "sort": ["name"], "section": ["x11"]}
    assert hit_names(page) == sorted(p.name for p in catalog.where(section="x11"))

    # ---- the search box over a long facet narrows its values; a value found there filters
    with swapped(page):
        checkbox(page, "section", "x11").click()
    page.get_by_role("searchbox", name="Search maintainer values").fill("STRIKE")
    maintainers = page.locator('.facet-value[data-facet="maintainer"]')
    expect(maintainers).to_have_count(1)
    assert facet_counts(page, "maintainer") == {"X Strike Force": 8}
    with swapped(page):
        checkbox(page, "maintainer", "X Strike Force").click()
    assert query_of(page) == {
        "q": [catalog.word],
        "sort": ["name"],
        "maintainer": ["X Strike Force"],
    }
    assert hit_names(page) == sorted(p.name for p in catalog.where(maintainer="X Strike Force"))
    assert chips(page) == ["Maintainer: X Strike Force"]
    shot(page, "maintainer-found")

    # ---- a page size, kept when the sort changes (the form once dropped it)
    with swapped(page):
        checkbox(page, "maintainer", "X Strike Force").click()
    with swapped(page):
        page.get_by_label("Per page").select_option("50")
    assert query_of(page) == {"q": [catalog.word], "sort": ["name"], "page_size": ["50"]}
    with swapped(page):
        page.get_by_label("Sort").select_option("popularity")
    assert query_of(page) == {"q": [catalog.word], "sort": ["popularity"], "page_size": ["50"]}
    assert len(hit_names(page)) == 25

    assert no_full_reload_since_marked(page)


def test_autocomplete_with_the_keyboard(catalog, page, shot):
    from playwright.sync_api import expect

    page.goto("/")
    box = page.get_by_role("combobox", name="Search packages")
    listbox = page.get_by_role("listbox")
    combo = page.get_by_role("combobox", name="Search packages")  # ARIA 1.2: the input
    expect(box).to_be_focused()
    expect(listbox).to_be_hidden()
    expect(combo).to_have_attribute("aria-expanded", "false")

    box.press_sequentially("quo", delay=40)
    expect(listbox).to_be_visible()
    options = listbox.get_by_role("option")
    expect(options).to_have_count(2)
    box.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", "suggestion-0")
    # Typing on asks again: the new list has no selection, and the box points at none.
    with page.expect_response(lambda r: "/api/suggest?q=quok" in r.url):
        box.press("k")
    expect(box).not_to_have_attribute("aria-activedescendant", re.compile(".*"))
    expect(listbox.locator("[aria-selected=true]")).to_have_count(0)
    expect(listbox).to_be_visible()
    expect(options).to_have_count(2)
    suggested = options.locator(".s-name").all_inner_texts()
    # Names completing the prefix, the most depended-on first.
    assert suggested == ["quokka-viewer", "quokka-viewer-plugins"]
    expect(options.first.locator(".s-summary")).to_contain_text("Quokka viewer")
    expect(options.first.locator("mark")).to_have_text("quok")  # what was typed, marked
    expect(combo).to_have_attribute("aria-expanded", "true")
    shot(page, "suggestions")

    # Arrow keys move the selection; the box points at the selected option.
    box.press("ArrowDown")
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    expect(options.nth(1)).to_have_attribute("aria-selected", "false")
    expect(box).to_have_attribute("aria-activedescendant", options.nth(0).get_attribute("id"))
    box.press("ArrowDown")
    expect(options.nth(0)).to_have_attribute("aria-selected", "false")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    expect(box).to_have_attribute("aria-activedescendant", options.nth(1).get_attribute("id"))
    box.press("ArrowDown")  # wraps around
    expect(options.nth(0)).to_have_attribute("aria-selected", "true")
    box.press("ArrowUp")  # and back
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    chosen = suggested[1]
    shot(page, "suggestion-selected")

    # Escape closes the list and keeps what was typed (a search box would empty itself).
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("quok")

    # Enter on a package suggestion opens that package.
    box.press("ArrowDown")
    with page.expect_response(lambda r: "/api/suggest?q=quok" in r.url):
        box.press("Backspace")
        box.press("k")
    box.press("ArrowDown")
    box.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    box.press("Enter")
    page.wait_for_url(f"**/packages/{chosen}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(chosen)
    shot(page, "suggestion-opened")

    # A search for it (the form, not a suggestion): the URL carries no defaults.
    page.goto("/")
    box.fill(chosen)
    with swapped(page):
        box.press("Enter")
    expect(listbox).to_be_hidden()
    expect(combo).to_have_attribute("aria-expanded", "false")
    assert query_of(page) == {"q": [chosen]}
    assert hit_names(page)[0] == chosen  # the exact name comes first
    assert page.title() == f"{chosen} — Debian package search"
    shot(page, "suggestion-chosen")

    # Escape closes the list without searching.
    box.fill("")
    box.press_sequentially("xk", delay=40)
    expect(options).to_have_count(1)
    expect(options.first).to_have_attribute("data-name", "xkb-viewer")
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("xk")
    assert query_of(page) == {"q": [chosen]}

    # A hit opens the package page (a plain navigation), which links back to filtered search.
    page.locator(".hit h2 a", has_text=chosen).first.click()
    page.wait_for_url(f"**/packages/{chosen}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(chosen)
    expect(page.locator(".facts")).to_contain_text("Graphics Team")
    expect(page.get_by_role("heading", name="Depends on (1)")).to_be_visible()
    expect(
        page.locator(".relations").get_by_role("link", name="quokka-viewer", exact=True)
    ).to_have_attribute("href", "/packages/quokka-viewer/")
    shot(page, "package")
    page.locator(".facts").get_by_role("link", name="graphics", exact=True).click()
    page.wait_for_url(re.compile(r"/\?section=graphics$"))
    assert total(page) == len(catalog.where(section="graphics"))
    assert chips(page) == ["Section: graphics"]


def test_shared_link_and_browsing_without_javascript(
    catalog, page, page_errors, browser, live_server, shot
):
    from playwright.sync_api import expect

    graphics = catalog.where(section="graphics")
    graphics_names = sorted(p.name for p in graphics)

    def check_graphics_state(p) -> None:
        expect(p.locator("#q")).to_have_value(catalog.word)
        assert total(p) == len(graphics)
        assert hit_names(p) == graphics_names
        assert checked_values(p, "section") == ["graphics"]
        assert chips(p) == ["Section: graphics"]
        assert facet_counts(p, "priority") == catalog.count("priority", graphics)
        expect(p.get_by_label("Sort")).to_have_value("name")

    # A shared link opens in the state it names.
    page.goto(f"/?q={catalog.word}&section=graphics&sort=name")
    check_graphics_state(page)
    shot(page, "shared-link")

    # If an in-place update meets an error page (503: search unavailable), the script loads
    # the URL as a page instead of nesting that page in the results region. (The 503 is
    # simulated: the shared Elasticsearch stays up for the other tests.)
    page.evaluate("window.__sameDocument = true")
    unavailable = (
        '<!doctype html><header class="site-header">Debian package search</header>'
        '<main><div class="notice" role="alert"><h1>Search is temporarily unavailable</h1>'
        "</div></main>"
    )
    page.route(
        lambda url: "partial=1" in url,
        lambda route: route.fulfill(status=503, content_type="text/html", body=unavailable),
    )
    with page.expect_navigation():
        page.get_by_role("link", name="Remove filter Section: graphics").click()
    page.unroute_all()
    assert not no_full_reload_since_marked(page)
    assert query_of(page) == {"q": [catalog.word], "sort": ["name"]}
    expect(page.locator(".site-header")).to_have_count(1)
    assert total(page) == 25
    assert chips(page) == []
    provoked = [e for e in page_errors if "503" in e and "partial=1" in e]
    assert provoked, page_errors
    page_errors[:] = [e for e in page_errors if e not in provoked]

    # Without JavaScript, the same links and forms do the same through full page loads.
    context = browser.new_context(
        base_url=live_server.url, java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    try:
        plain = context.new_page()
        plain.goto(f"/?q={catalog.word}&sort=name")
        assert total(plain) == 25
        # The no-script "Apply" buttons are there for the sort box and the filters.
        expect(plain.get_by_role("button", name="Apply filters")).to_be_visible()
        plain.locator(
            '.facet-value[data-facet="section"][data-value="graphics"] a.facet-link'
        ).click()
        plain.wait_for_url(re.compile(r"section=graphics"))
        assert query_of(plain) == {"q": [catalog.word], "sort": ["name"], "section": ["graphics"]}
        check_graphics_state(plain)
        shot(plain, "no-js-filtered")

        plain.get_by_role("link", name="Remove filter Section: graphics").click()
        plain.wait_for_url(re.compile(r"^[^?]*\?q=viewer&sort=name$"))
        assert total(plain) == 25
        assert chips(plain) == []

        # The form itself: tick boxes, then the no-script button submits them.
        plain.locator('.facet-value[data-facet="section"][data-value="x11"] input').check()
        plain.locator('.facet-value[data-facet="section"][data-value="text"] input').check()
        plain.get_by_role("button", name="Apply filters").click()
        plain.wait_for_url(re.compile(r"section=text"))
        assert query_of(plain) == {
            "q": [catalog.word],
            "sort": ["name"],
            "page_size": [str(PAGE_SIZE)],  # the form's own fields, as the sort
            "section": ["x11", "text"],
        }
        assert total(plain) == len(catalog.where(section="x11")) + len(
            catalog.where(section="text")
        )
        shot(plain, "no-js-form")

        plain.get_by_role("link", name="Clear all").click()
        plain.wait_for_url(re.compile(r"\?q=viewer$"))
        assert total(plain) == 25
        plain.get_by_role("link", name="Next →").click()
        plain.wait_for_url(re.compile(r"page=2"))
        assert len(hit_names(plain)) == 25 - PAGE_SIZE
    finally:
        context.close()


def test_phone_filters_drawer_and_did_you_mean(catalog, browser, live_server, shot):
    """On a phone the filters are a drawer above the results, with touch-sized targets; a
    filter ticked there updates the results and keeps the drawer open. "Did you mean" puts
    the corrected words in the box."""
    from playwright.sync_api import expect

    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 390, "height": 844}, locale="en-US"
    )
    try:
        page = context.new_page()
        page.goto(f"/?q={catalog.word}")
        button = page.locator(".filters-button")
        expect(button).to_be_visible()
        expect(button).to_have_text("Filters")
        assert button.bounding_box()["y"] < page.locator(".hits").bounding_box()["y"]
        expect(page.locator("#facets")).to_be_hidden()
        button.click()
        expect(page.locator("#facets")).to_be_visible()
        box = checkbox(page, "section", "graphics")
        size = box.bounding_box()
        assert size["width"] >= 24 and size["height"] >= 24
        row = page.locator('.facet-value[data-facet="section"][data-value="graphics"] label')
        assert row.bounding_box()["height"] >= 44
        shot(page, "phone-drawer")
        with swapped(page):
            box.click()
        expect(page.locator("#facets")).to_be_visible()  # still open, with the new counts
        expect(page.locator(".drawer-close")).to_have_text("Show 12 results")
        page.locator(".drawer-close").click()
        expect(page.locator("#facets")).to_be_hidden()
        expect(button).to_have_text("Filters (1)")
        assert total(page) == 12

        # A package page's "← Search" returns to the search the visitor came from.
        page.goto(f"/?q={catalog.word}&section=graphics")
        page.locator(".hit h2 a").first.click()
        page.wait_for_url("**/packages/**")
        page.get_by_role("link", name="← Search").click()
        page.wait_for_url(re.compile(r"/\?q=viewer&section=graphics$"))
        assert total(page) == 12

        # Typos forgiven are said so.
        page.goto("/?q=veiwer")
        expect(page.locator(".approximate")).to_contain_text(
            "Including approximate matches for “veiwer”"
        )
        # "Did you mean" (a wrong first letter, which typo tolerance does not forgive): the
        # corrected query replaces the misspelling in the box.
        page.goto("/?q=biewer")
        suggestion = page.locator(".did-you-mean a")
        expect(suggestion).to_have_text("viewer")
        with swapped(page):
            suggestion.click()
        expect(page.locator("#q")).to_have_value("viewer")
        assert query_of(page) == {"q": ["viewer"]}
    finally:
        context.close()


def test_show_more_lists_every_value_of_a_long_facet(catalog, page):
    """Section lists its 12 most frequent values; "Show more" lists the rest in place."""
    from playwright.sync_api import expect

    from search import service
    from search.params import SearchParams
    from tests.conftest import wait_for
    from tests.helpers import make_package

    def add_sections() -> None:
        from django.db import connection

        try:
            for i in range(12):
                make_package(f"extra-{i:02d}", section=f"extra-section-{i:02d}")
            total = lambda: service.search(SearchParams(), with_facets=False).total  # noqa: E731
            wait_for(lambda: total() == 42, timeout=60)
        finally:
            connection.close()  # this thread's own connection

    # Database work in a thread of its own: Playwright's sync API runs an event loop in this
    # one, where Django refuses synchronous database calls.
    worker = threading.Thread(target=add_sections)
    worker.start()
    worker.join()
    page.goto("/")
    sections = page.locator('.facet-value[data-facet="section"]')
    expect(sections).to_have_count(12)
    more = page.get_by_role("button", name="Show more section")
    more.click()
    expect(sections).to_have_count(16)  # the catalog's 4 sections and the 12 new ones
    expect(more).to_be_hidden()
    expect(sections.first.locator("input")).to_be_focused()
