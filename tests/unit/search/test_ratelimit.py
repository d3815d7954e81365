"""Who a client is, for the rate limit."""

from __future__ import annotations

from types import SimpleNamespace

from search.ratelimit import client_address


def request(remote: str, forwarded: str | None = None) -> SimpleNamespace:
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return SimpleNamespace(META=meta)


def test_without_trusted_proxies_the_peer_is_the_client(settings):
    settings.SEARCH_TRUSTED_PROXIES = []
    assert client_address(request("203.0.113.5", "198.51.100.1")) == "203.0.113.5"


def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client(settings):
    settings.SEARCH_TRUSTED_PROXIES = ["10.0.0.0/8", "127.0.0.1/32"]
    # The client wrote the left part itself; the proxies appended the rest.
    chain = "1.2.3.4, 198.51.100.7, 10.0.0.2"
    assert client_address(request("127.0.0.1", chain)) == "198.51.100.7"
    assert client_address(request("10.0.0.9", "garbage, 10.0.0.2")) == "10.0.0.2"
    assert client_address(request("127.0.0.1")) == "127.0.0.1"


def test_ipv6_clients_are_their_64_bit_network(settings):
    settings.SEARCH_TRUSTED_PROXIES = []
    assert client_address(request("2001:db8:1:2::5")) == "2001:db8:1:2::/64"
    assert client_address(request("2001:db8:1:2:ffff::1")) == "2001:db8:1:2::/64"
    assert client_address(request("::ffff:192.0.2.7")) == "192.0.2.7"
    assert client_address(request("not an address")) == "not an address"
