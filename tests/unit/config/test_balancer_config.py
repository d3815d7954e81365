"""The HAProxy configuration the services manager writes (config/services/web.py)."""

from __future__ import annotations

from config.services.web import haproxy_config


def test_the_balancer_checks_readiness_and_retries_on_another_instance():
    text = haproxy_config(
        [("web1", "127.0.0.1:8101"), ("web2", "127.0.0.1:8102")], "127.0.0.1:8080", "127.0.0.1:8404"
    )
    lines = [line.strip() for line in text.splitlines()]
    assert "bind 127.0.0.1:8080" in lines
    assert "server web1 127.0.0.1:8101 check" in lines
    assert "server web2 127.0.0.1:8102 check" in lines
    # Readiness, not liveness: an instance whose database or engine is gone is drained.
    assert "http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host 127.0.0.1" in lines
    assert "http-check expect status 200" in lines
    assert (
        "default-server inter 1000ms fall 2 rise 2 observe layer4 error-limit 1 on-error mark-down"
        in lines
    )
    # A request that failed on a dead instance goes to another one.
    assert "retry-on conn-failure empty-response response-timeout" in lines
    assert "option redispatch 1" in lines and "retries 5" in lines
    assert "resolvers docker" not in lines  # only for replicas behind a DNS name
