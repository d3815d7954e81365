"""Who may do what (issue #10, items 8 and 9): the search rate limit covers every path that
runs a search and counts real clients behind a proxy; admin actions and pages check the
permission they need, each tried with a user who lacks it."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from indexing.models import OutboxEntry
from search import ratelimit
from tests.helpers import make_package

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def limited(settings, monkeypatch, search_index):
    """A limit of 5 searches a minute, all requests inside one window."""
    settings.SEARCH_API_RATE_LIMIT = "5/60"
    frozen = (time.time() // 60) * 60 + 10
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: frozen))
    make_package("limited-package")


def fresh_v6_prefix() -> str:
    return f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


# ------------------------------------------------------------------ 8. rate limit


def test_the_search_page_and_its_partial_are_limited_too(client, limited):
    address = {"REMOTE_ADDR": f"{fresh_v6_prefix()}::1"}
    codes = [client.get("/", {"q": "vim", "partial": "1"}, **address).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    page = client.get("/", {"q": "vim"}, **address)
    assert page.status_code == 429 and int(page["Retry-After"]) <= 60


def test_api_answers_say_where_the_client_stands(client, limited):
    address = {"REMOTE_ADDR": f"{fresh_v6_prefix()}::1"}
    answers = [client.get("/api/suggest", {"q": "vim"}, **address) for _ in range(6)]
    assert [a["RateLimit-Limit"] for a in answers] == ["5"] * 6
    assert [a["RateLimit-Remaining"] for a in answers] == ["4", "3", "2", "1", "0", "0"]
    assert {a["RateLimit-Reset"] for a in answers} == {"50"}  # the clock is frozen at :10
    assert answers[4].status_code == 200 and "Retry-After" not in answers[4]
    assert answers[5].status_code == 429 and answers[5]["Retry-After"] == "50"


def test_a_shared_cache_is_told_not_to_keep_one_clients_quota(client, limited):
    """An anonymous API answer may be kept by a shared cache (public, s-maxage=10), which
    then replayed one client's RateLimit-Remaining and -Reset to every other client."""
    address = {"REMOTE_ADDR": f"{fresh_v6_prefix()}::1"}
    answer = client.get("/api/search", {"q": "vim"}, **address)
    assert answer.status_code == 200 and answer["RateLimit-Remaining"] == "4"
    directives = {d.strip() for d in answer["Cache-Control"].split(",")}
    assert "public" in directives
    assert 'private="RateLimit-Remaining' in directives
    assert 'RateLimit-Reset"' in directives


def test_clients_behind_a_trusted_proxy_are_counted_apart(client, limited, settings):
    settings.SEARCH_TRUSTED_PROXIES = ["10.0.0.0/8"]
    proxy = {"REMOTE_ADDR": "10.1.2.3"}
    first = {**proxy, "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    second = {**proxy, "HTTP_X_FORWARDED_FOR": "198.51.100.8"}
    tag = uuid.uuid4().hex[:6]
    codes = [client.get("/api/suggest", {"q": tag}, **first).status_code for _ in range(6)]
    assert codes[-1] == 429
    assert client.get("/api/suggest", {"q": tag}, **second).status_code == 200
    # A forwarded header from an untrusted peer is ignored (it could be forged).
    forged = {"REMOTE_ADDR": "203.0.113.9", "HTTP_X_FORWARDED_FOR": "198.51.100.8"}
    assert ratelimit.client_address(SimpleNamespace(META=forged)) == "203.0.113.9"


def test_ipv6_clients_are_grouped_by_their_64_bit_prefix(client, limited):
    prefix = fresh_v6_prefix()
    for n in range(5):
        assert (
            client.get("/api/suggest", {"q": "v"}, REMOTE_ADDR=f"{prefix}::{n + 1}").status_code
            == 200
        )
    neighbour = client.get("/api/suggest", {"q": "v"}, REMOTE_ADDR=f"{prefix}::ffff")
    assert neighbour.status_code == 429


# ------------------------------------------------------------------ 9. admin permissions


def staff(*codenames: str):
    user = get_user_model().objects.create_user(f"staff-{uuid.uuid4().hex[:6]}", password="pw")
    user.is_staff = True
    user.save()
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_view_only_staff_cannot_queue_reindexing(client):
    package = make_package("viewed-only")
    OutboxEntry.objects.all().delete()
    client.force_login(staff("view_package"))
    page = client.get("/admin/portal/package/")
    assert page.status_code == 200
    assert b"reindex_selected" not in page.content
    response = client.post(
        "/admin/portal/package/",
        {"action": "reindex_selected", "select_across": "1", "_selected_action": [package.pk]},
    )
    assert response.status_code in (200, 302, 403)
    assert not OutboxEntry.objects.exists()


def test_pending_changes_cannot_be_deleted_in_the_admin(client):
    make_package("pending-change")
    entry = OutboxEntry.objects.first()
    admin = get_user_model().objects.create_superuser("root-x", "r@example.org", "pw")
    client.force_login(admin)
    assert client.get(f"/admin/indexing/outboxentry/{entry.pk}/delete/").status_code == 403
    listing = client.get("/admin/indexing/outboxentry/")
    assert b"delete_selected" not in listing.content
    assert OutboxEntry.objects.filter(pk=entry.pk).exists()


def test_status_and_report_pages_need_their_permissions(client, search_index):
    client.force_login(staff("view_package"))
    assert client.get("/admin/indexing/outboxentry/status/").status_code == 403
    assert client.get("/admin/search/querystat/report/").status_code == 403
    client.force_login(staff("view_outboxentry", "view_querystat"))
    assert client.get("/admin/indexing/outboxentry/status/").status_code == 200
    assert client.get("/admin/search/querystat/report/").status_code == 200
