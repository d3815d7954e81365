"""Fixtures for the browser tests: a small indexed catalog and a headless Chromium page.

The browser is Debian's ``chromium`` package (``make browser-deps`` installs it), driven by
Playwright's Python package; Playwright never downloads a browser of its own here. Without
Chromium the tests are skipped with the command that installs it.

Playwright's sync API keeps an asyncio loop running in the test's thread while it is started,
and Django refuses ORM calls from a thread with a running loop. So the catalog is written and
indexed *before* the browser starts, and the browser is stopped before pytest-django flushes
the database: the ``browser`` fixture depends on ``catalog``.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ARTIFACTS, wait_for
from tests.helpers import make_package

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ARTIFACTS / "screenshots"
TIMEOUT_MS = 15_000


# --------------------------------------------------------------------------- the catalog


@dataclass(frozen=True)
class Pkg:
    name: str
    section: str
    priority: str
    maintainer: str
    tags: tuple[str, ...]
    summary: str
    installed_size_kb: int
    depends: tuple[str, ...] = ()


@dataclass
class Catalog:
    packages: list[Pkg]
    word: str = "viewer"  # in the name and summary of every "viewer" package, of no other

    @property
    def viewers(self) -> list[Pkg]:
        return [p for p in self.packages if self.word in p.name]

    def where(self, **attrs: str) -> list[Pkg]:
        """The viewers whose attributes have these values."""
        return [p for p in self.viewers if all(getattr(p, k) == v for k, v in attrs.items())]

    @staticmethod
    def count(attr: str, packages: list[Pkg]) -> dict[str, int]:
        return dict(Counter(getattr(p, attr) for p in packages))

    def dependents(self, name: str) -> int:
        return sum(name in p.depends for p in self.packages)


def _viewer_catalog() -> list[Pkg]:
    graphics = [
        "quokka-viewer",
        "quokka-viewer-plugins",
        "pixel-viewer",
        "photon-viewer",
        "raster-viewer",
        "vector-viewer",
        "comic-viewer",
        "gallery-viewer",
        "exif-viewer",
        "tiff-viewer",
        "icon-viewer",
        "scan-viewer",
    ]
    x11 = [
        "xdots-viewer",
        "xpaint-viewer",
        "window-viewer",
        "font-viewer",
        "cursor-viewer",
        "xkb-viewer",
        "xres-viewer",
        "xlog-viewer",
    ]
    text = ["markdown-viewer", "manpage-viewer", "diff-viewer", "json-viewer", "csv-viewer"]
    maintainers = {"graphics": "Graphics Team", "x11": "X Strike Force", "text": "Jane Doe"}
    # None above "optional": Debian's priority counts in the popularity prior, and the
    # order below is the reverse dependencies' to decide.
    priorities = ["optional", "optional", "extra", "optional"]
    # Reverse dependencies are the popularity signal: pixel-viewer 3, quokka-viewer 1.
    depends = {
        "quokka-viewer-plugins": ("quokka-viewer",),
        "comic-viewer": ("pixel-viewer",),
        "gallery-viewer": ("pixel-viewer",),
        "scan-viewer": ("pixel-viewer", "libpixel-missing"),
    }
    packages = []
    for section, names in (("graphics", graphics), ("x11", x11), ("text", text)):
        for i, name in enumerate(names):
            interface = "commandline" if section == "text" else "x11"
            language = "c" if i % 2 == 0 else "python"
            packages.append(
                Pkg(
                    name=name,
                    section=section,
                    priority=priorities[i % len(priorities)],
                    maintainer=maintainers[section],
                    tags=(f"interface::{interface}", f"implemented-in::{language}"),
                    summary=f"{name.split('-')[0].capitalize()} viewer ({section} edition)",
                    installed_size_kb=50 + 400 * i,
                    depends=depends.get(name, ()),
                )
            )
    others = [
        ("tea-timer", "a kitchen timer for the terminal"),
        ("zstd-helper", "compression helper scripts"),
        ("battery-monitor", "shows the battery level in the panel"),
        ("disk-usage-meter", "measures disk usage per folder"),
        ("clock-widget", "a small analog clock"),
    ]
    for i, (name, summary) in enumerate(others):
        packages.append(
            Pkg(
                name=name,
                section="utils",
                priority="optional",
                maintainer="Jane Doe",
                tags=("interface::commandline", "implemented-in::shell"),
                summary=summary,
                installed_size_kb=20 + i,
            )
        )
    return packages


@pytest.fixture
def catalog(celery_worker, search_index, transactional_db) -> Catalog:
    """30 packages (25 "viewer"s in three sections, 5 utilities), indexed by the real worker."""
    from portal.models import Dependency, DependencyKind, Tag
    from search import service
    from search.params import SearchParams

    cat = Catalog(_viewer_catalog())
    rows = {}
    for pkg in cat.packages:
        row = make_package(
            pkg.name,
            section=pkg.section,
            maintainer=pkg.maintainer,
            priority=pkg.priority,
            summary=pkg.summary,
            description=f"{pkg.summary}. Made for the browser tests.",
            installed_size_kb=pkg.installed_size_kb,
        )
        tags = [Tag.objects.get_or_create(facet=f, value=v)[0] for f, v in map(Tag.split, pkg.tags)]
        row.tags.add(*tags)
        rows[pkg.name] = row
    for pkg in cat.packages:
        for target in pkg.depends:
            Dependency.objects.create(
                package=rows[pkg.name], kind=DependencyKind.DEPENDS, target_name=target
            )

    # Indexed, with the tags and the popularity, which later writes of the rows add.
    tagged = sum("implemented-in::shell" in p.tags for p in cat.packages)

    def hits(params: SearchParams) -> list:
        return service.search(params, with_facets=False).hits

    def total(params: SearchParams) -> int:
        return service.search(params, with_facets=False).total

    def indexed() -> bool:
        return (
            total(SearchParams()) == len(cat.packages)
            and total(SearchParams(q=cat.word)) == len(cat.viewers)
            and total(SearchParams(filters={"tag.implemented-in": ("shell",)})) == tagged
            and [(h.name, h.popularity) for h in hits(SearchParams(sort="popularity"))[:2]]
            == [(name, cat.dependents(name)) for name in ("pixel-viewer", "quokka-viewer")]
        )

    wait_for(indexed, timeout=60, interval=0.25)
    return cat


# --------------------------------------------------------------------------- the browser


@dataclass
class Shots:
    """Numbered full-page screenshots under tests/artifacts/screenshots/<test name>/."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def __call__(self, page, label: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{label}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def shot(request) -> Shots:
    folder = SCREENSHOTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return Shots(folder)


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return (
            f"{CHROMIUM} not found: the browser tests need Debian's chromium package "
            "(as root: `make browser-deps`, or `apt-get install -y chromium`)"
        )
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is missing (it is in the dev group: `make install`)"
    return None


def pytest_collection_modifyitems(config, items) -> None:
    """Skip the browser tests up front (before any worker or catalog) without Chromium."""
    reason = _missing()
    if reason:
        for item in items:
            if item.get_closest_marker("browser"):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def browser(catalog):
    """A headless Chromium for one test (after the catalog is written: see the module doc)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page_errors() -> list[str]:
    """JavaScript errors and console errors of ``page``; a test may remove the ones it
    provoked on purpose, any other fails it."""
    return []


@pytest.fixture
def page(browser, live_server, page_errors) -> Iterator[object]:
    """A page on the live server (a fresh browser context)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(TIMEOUT_MS)

    def on_console(msg) -> None:
        # The site has no favicon; Chromium logs the 404 of its automatic request.
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            page_errors.append(f"console.error: {msg.text} ({msg.location.get('url')})")

    page = context.new_page()
    page.on("pageerror", lambda exc: page_errors.append(f"uncaught: {exc}"))
    page.on("console", on_console)
    yield page
    context.close()
    assert not page_errors, "the page logged errors:\n" + "\n".join(page_errors)
