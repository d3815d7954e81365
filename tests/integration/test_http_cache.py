"""HTTP validators for anonymous reads (issue #15): an ETag from what determines the answer,
a 304 without running the search, Cache-Control a shared cache may use, never for
logged-in users, and a new validator once an edit is searchable."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from indexing import writer
from search import curation, service
from search.models import Promotion, SynonymSet
from tests.helpers import make_package

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

SEARCHES = ["/?q=cachetest", "/?q=cachetest&partial=1", "/api/search?q=cachetest"]


@pytest.fixture
def indexed(search_index):
    package = make_package("cachetest-tool", summary="a cachetest package")
    writer.process_outbox()
    return package


@pytest.mark.parametrize("url", SEARCHES)
def test_a_revalidated_search_is_a_304_without_searching(client, indexed, url, monkeypatch):
    first = client.get(url)
    assert first.status_code == 200
    etag = first["ETag"]
    cache_control = {part.strip() for part in first["Cache-Control"].split(",")}
    assert {"public", "max-age=0", "s-maxage=10"} <= cache_control
    assert "Cookie" in first["Vary"]
    monkeypatch.setattr(service, "search", lambda *a, **k: pytest.fail("searched for a 304"))
    again = client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag
    assert not again.content


@pytest.mark.parametrize("url", [*SEARCHES, "/packages/cachetest-tool/"])
def test_a_304_carries_the_validator_and_vary_of_the_200_it_confirms(client, indexed, url):
    """GZipMiddleware made the compressed 200's ETag weak and added Vary: Accept-Encoding,
    but the 304 confirming it had a strong ETag and only Vary: Cookie, so a shared cache
    freshening its compressed copy from the 304 lost Vary: Accept-Encoding (RFC 9110,
    15.4.5). The validator is weak throughout: the bytes of equal answers differ (the
    search's "took_ms", whether the cache answered)."""
    gzip = {"HTTP_ACCEPT_ENCODING": "gzip"}
    compressed, plain = client.get(url, **gzip), client.get(url)
    assert compressed.status_code == plain.status_code == 200
    etag = compressed["ETag"]
    assert etag.startswith('W/"') and plain["ETag"] == etag
    for response in (compressed, plain):
        assert {"Cookie", "Accept-Encoding"} <= {v.strip() for v in response["Vary"].split(",")}
    again = client.get(url, HTTP_IF_NONE_MATCH=etag, **gzip)
    assert again.status_code == 304 and again["ETag"] == etag
    assert {"Cookie", "Accept-Encoding"} <= {v.strip() for v in again["Vary"].split(",")}


def test_the_validator_follows_the_request_and_the_index(client, indexed):
    plain = client.get("/api/search?q=cachetest")["ETag"]
    assert client.get("/api/search?q=cachetest")["ETag"] == plain  # stable
    assert client.get("/api/search?q=cachetest&sort=name")["ETag"] != plain
    assert client.get("/?q=cachetest")["ETag"] != plain  # the page is another answer
    # An edit, once searchable, moves the generation on: a new validator, a full answer.
    make_package("cachetest-other", summary="another cachetest package")
    writer.process_outbox()
    after = client.get("/api/search?q=cachetest", HTTP_IF_NONE_MATCH=plain)
    assert after.status_code == 200 and after["ETag"] != plain
    assert after.json()["total"] == 2


def test_an_editors_promotion_or_synonym_moves_the_validator_on(client, indexed):
    # Curation changes answers without an index write: the validator stayed the same and a
    # revalidating browser or shared cache kept the old answer (304) until the next write.
    plain = client.get("/api/search?q=cachetest")["ETag"]
    other = make_package("cachetest-pinned", summary="pinned")
    writer.process_outbox()
    after_write = client.get("/api/search?q=cachetest")["ETag"]
    Promotion.objects.create(query="cachetest", package=other, position=1, label="Pinned")
    curation.reset()  # what the other processes do within curation.TTL
    promoted = client.get("/api/search?q=cachetest", HTTP_IF_NONE_MATCH=after_write)
    assert promoted.status_code == 200 and promoted["ETag"] not in (plain, after_write)
    assert promoted.json()["hits"][0]["name"] == "cachetest-pinned"
    SynonymSet.objects.create(terms="cachetest, cachecheck")
    curation.reset()
    assert client.get("/api/search?q=cachetest")["ETag"] != promoted["ETag"]


def test_logged_in_users_never_get_a_shared_cacheable_answer(client, indexed):
    editor = get_user_model().objects.create_user("cache-editor", password="pw", is_staff=True)
    client.force_login(editor)
    for url in [*SEARCHES, "/packages/cachetest-tool/"]:
        response = client.get(url)
        assert response.status_code == 200
        parts = {p.strip() for p in response["Cache-Control"].split(",")}
        assert {"private", "no-cache"} <= parts and "public" not in parts, url


def test_errors_are_not_shared_cacheable(client, indexed):
    response = client.get("/api/search?page=0")
    assert response.status_code == 400
    assert "public" not in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


@pytest.mark.parametrize("url", ["/api/search?page=0", "/?page=abc"])
def test_errors_carry_no_validator(client, indexed, url):
    # An error carried the ETag of the answer to the same URL: a cache holding the error
    # had it confirmed (304) until the index changed. (Django's ConditionalGetMiddleware may
    # still give it one of its own content, which is right: that one is the error's.)
    response = client.get(url)
    assert response.status_code == 400
    with service.request_scope():
        answer = service.validator(RequestFactory().get(url))
    assert answer and f'"{answer}"' != response.get("ETag")


def test_a_package_page_revalidates_on_its_row_version(client, indexed):
    first = client.get("/packages/cachetest-tool/")
    etag = first["ETag"]
    assert first.status_code == 200 and "public" in first["Cache-Control"]
    assert client.get("/packages/cachetest-tool/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    indexed.summary = "a changed cachetest package"
    indexed.save()
    changed = client.get("/packages/cachetest-tool/", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    assert b"a changed cachetest package" in changed.content


def test_a_package_page_revalidates_when_a_package_it_lists_changes(client, indexed):
    # The page lists the packages that depend on it, by name: renaming one left the page's
    # validator (its own row version) as it was, and a cache was told the old page, with a
    # link that now 404s, was current.
    from portal.models import Dependency, Package

    lib = make_package("libcachetest1", section="libs", summary="a library")
    app = make_package("cachetest-app", summary="uses it")
    Dependency.objects.create(package=app, kind="depends", target_name=lib.name)
    writer.process_outbox()
    first = client.get(f"/packages/{lib.name}/")
    assert first.status_code == 200 and "cachetest-app" in first.content.decode()
    Package.objects.filter(pk=app.pk).update(name="cachetest-app-renamed")
    writer.process_outbox()
    again = client.get(f"/packages/{lib.name}/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200
    assert "cachetest-app-renamed" in again.content.decode()


def test_a_hanging_coordination_redis_costs_one_wait_not_one_per_request(client, indexed, settings):
    # The validator read the generation with no breaker: each request waited out the
    # timeouts (4 s and more), and the breaker opened by the cache lookup never helped.
    import socket
    import threading
    import time

    from search import cache, stores

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(50)
    accepted = []
    threading.Thread(
        target=lambda: [accepted.append(silent.accept()) for _ in range(50)], daemon=True
    ).start()
    settings.COORDINATION_REDIS_URL = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
    stores.Memo.reset_all()
    try:
        took = []
        for i in range(3):
            started = time.monotonic()
            response = client.get("/api/search", {"q": f"cachetest{i}"})
            took.append(time.monotonic() - started)
            assert response.status_code == 200  # answered uncached
        assert cache.breaker.open
        assert max(took[1:]) < 1.0, took
    finally:
        silent.close()
        stores.Memo.reset_all()  # the clients and scripts of the silent server, the breakers
