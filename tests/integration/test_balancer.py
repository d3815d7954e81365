"""Several web processes behind HAProxy (issue #15), against the real processes: a stream of
searches (page and API) and edits while one instance is SIGKILLed, then while every instance
is restarted in turn. No visitor request may fail: HAProxy retries it on another instance,
takes the dead one out within its health checks and puts it back when it answers again.
127.0.0.1 only, bounded in time; what was measured goes to tests/artifacts/balancer.json."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests
from django.conf import settings

from config.services.process import pid_alive, wait_until
from config.services.web import Balancer, WebInstance
from indexing import writer
from portal.models import Package
from tests.conftest import ARTIFACTS
from tests.helpers import make_package

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

PORT_BASE, BALANCER, STATS = 28101, 28080, 28404
WORDS = ["balance", "tool", "viewer", "editor", "server", "library"]


@pytest.fixture
def balanced(search_index, monkeypatch):
    """Two gunicorn instances on the test database and index, and HAProxy in front."""
    for i in range(30):
        make_package(f"balance-{i:02d}", summary=f"a balance {random.choice(WORDS[1:])} number {i}")
    writer.process_outbox()
    monkeypatch.setenv("WEB_PORT_BASE", str(PORT_BASE))
    monkeypatch.setenv("BALANCER_PORT", str(BALANCER))
    monkeypatch.setenv("BALANCER_STATS_PORT", str(STATS))
    child = {
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "POSTGRES_DB": settings.DATABASES["default"]["NAME"],
        "SEARCH_INDEX_PREFIX": settings.SEARCH_INDEX_PREFIX,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WEB_INSTANCE_WORKERS": "2",
    }
    webs = [WebInstance(n, child, prefix="test-web") for n in (1, 2)]
    balancer = Balancer(2, name="test-balancer")
    try:
        for service in [*webs, balancer]:
            service.up()
        assert wait_until(lambda: states() == {"web1": "UP", "web2": "UP"}, 15)
        yield webs
    finally:
        for service in [balancer, *webs]:
            service.down()


def states() -> dict[str, str]:
    """Each server's state as HAProxy sees it (UP, DOWN, ...)."""
    try:
        text = requests.get(f"http://127.0.0.1:{STATS}/haproxy-stats;csv", timeout=2).text
    except requests.RequestException:
        return {}
    rows = [line.split(",") for line in text.splitlines() if line.startswith("web,web")]
    return {row[1]: row[17].split()[0] for row in rows}


@dataclass
class Stream:
    """Visitors' GETs (the page and the API) through the balancer, from a few threads."""

    sent: int = 0
    failed: list[str] = field(default_factory=list)
    longest: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def visitor(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            word = random.choice(WORDS)
            path = random.choice([f"/api/search?q={word}", f"/?q={word}", "/api/suggest?q=bal"])
            started = time.monotonic()
            try:
                response = session.get(f"http://127.0.0.1:{BALANCER}{path}", timeout=15)
                if response.status_code != 200:
                    self.failed.append(f"{path}: HTTP {response.status_code}")
            except requests.RequestException as exc:
                self.failed.append(f"{path}: {exc}")
            self.longest = max(self.longest, time.monotonic() - started)
            self.sent += 1

    def editor(self) -> None:
        """Edits while visitors search (saved through the ORM: the web processes only read)."""
        from django.db import connection

        try:
            while not self.stop.is_set():
                package = Package.objects.order_by("?").first()
                package.summary = f"a balance tool edited at {time.time():.3f}"
                package.save()
                time.sleep(0.2)
        finally:
            connection.close()

    def __enter__(self) -> Stream:
        self.threads = [threading.Thread(target=self.visitor) for _ in range(4)]
        self.threads.append(threading.Thread(target=self.editor))
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def record(name: str, data: dict) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "balancer.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    found[name] = data
    path.write_text(json.dumps(found, indent=2) + "\n")
    print(name, data)


def test_a_killed_instance_costs_visitors_nothing(balanced):
    web1, _ = balanced
    with Stream() as stream:
        time.sleep(2)
        killed = time.monotonic()
        os.killpg(os.getpgid(web1.our_pid()), signal.SIGKILL)  # the master and its workers
        assert wait_until(lambda: states().get("web1") == "DOWN", 10, 0.1)
        taken_out = time.monotonic() - killed
        time.sleep(2)
        web1.up()
        back = time.monotonic()
        assert wait_until(lambda: states().get("web1") == "UP", 15, 0.1)
        put_back = time.monotonic() - back
        time.sleep(2)
    record(
        "sigkill",
        {
            "requests": stream.sent,
            "failed": len(stream.failed),
            "longest_request_s": round(stream.longest, 3),
            "taken_out_after_s": round(taken_out, 2),
            "back_after_s": round(put_back, 2),
        },
    )
    assert stream.sent > 50
    assert stream.failed == []
    assert taken_out < 4  # two failed checks a second apart, and some slack


def test_a_rolling_restart_loses_nothing(balanced):
    with Stream() as stream:
        time.sleep(1)
        for web in balanced:
            pid = web.our_pid()
            web.down()  # SIGTERM: gunicorn finishes what it is answering, then exits
            assert not pid_alive(pid)
            web.up()
            assert wait_until(lambda w=web: states().get(f"web{w.number}") == "UP", 15, 0.1)
        time.sleep(1)
    record(
        "rolling_restart",
        {
            "requests": stream.sent,
            "failed": len(stream.failed),
            "longest_request_s": round(stream.longest, 3),
        },
    )
    assert stream.sent > 50
    assert stream.failed == []
