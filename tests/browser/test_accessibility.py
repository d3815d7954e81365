"""Accessibility as a test (issue #14): axe-core (shipped inside axe-playwright-python, no
download) finds no critical or serious violation on the landing page, results, results
with filters, no results and a package page, at desktop (1366x900) and phone (390x844)
sizes. The same walk takes the README's screenshots: into tests/artifacts/screenshots/
accessibility/, or into docs/screenshots/ with README_SCREENSHOTS=1 (to refresh them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
]

SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
ROOT = Path(__file__).resolve().parents[2]
README_SHOTS = (
    ROOT / "docs" / "screenshots"
    if os.environ.get("README_SCREENSHOTS") == "1"
    else ROOT / "tests" / "artifacts" / "screenshots" / "accessibility"
)
BLOCKING = {"critical", "serious"}


def pages(catalog) -> dict[str, str]:
    viewer = catalog.viewers[0].name
    return {
        "landing": "/",
        "results": f"/?q={catalog.word}",
        "filtered": f"/?q={catalog.word}&section=graphics&tag.interface=x11",
        "no-results": "/?q=zzzqqqxxxnothing",
        "package": f"/packages/{viewer}/",
    }


def violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in BLOCKING:
            where = [" ".join(node["target"]) for node in violation["nodes"][:3]]
            found.append(f"{violation['impact']} {violation['id']}: {violation['help']} at {where}")
    return found


@pytest.mark.parametrize("size", list(SIZES))
def test_no_serious_accessibility_violations(catalog, browser, live_server, size):
    context = browser.new_context(base_url=live_server.url, viewport=SIZES[size], locale="en-US")
    try:
        page = context.new_page()
        problems = {}
        for name, url in pages(catalog).items():
            page.goto(url)
            page.wait_for_load_state("networkidle")
            found = violations(page)
            if found:
                problems[name] = found
            if name in {"results", "package"}:
                README_SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(README_SHOTS / f"{name}-{size}.png"), full_page=False)
        assert not problems, "axe found:\n" + "\n".join(
            f"{name}: {line}" for name, lines in problems.items() for line in lines
        )
    finally:
        context.close()
