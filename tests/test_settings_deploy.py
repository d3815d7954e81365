"""Production settings pass Django's deployment checks; health probes answer."""

from __future__ import annotations

import json
import logging
import os
import secrets

import pytest

from config.logs import JsonFormatter
from tests.conftest import run_python


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "search.example.org",
        "DJANGO_SECURE_SSL_REDIRECT": "1",
    }
    result = run_python(
        "manage.py", "check", "--deploy", "--fail-level", "WARNING", env=env, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_a_missing_secret():
    env = {**os.environ, "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": ""}
    result = run_python("-c", "import config.settings", env=env, timeout=60)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_json_log_lines_are_json():
    record = logging.LogRecord("portal", logging.WARNING, __file__, 1, 'say "hi" %s', ("x",), None)
    line = JsonFormatter().format(record)
    assert json.loads(line)["message"] == 'say "hi" x'


@pytest.mark.django_db
def test_healthz_is_always_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def _gunicorn_settings(**env: str) -> dict[str, object]:
    """gunicorn's effective settings from gunicorn.conf.py under ``env``."""
    code = (
        "from gunicorn.app.wsgiapp import WSGIApplication\n"
        "import json, sys\n"
        "sys.argv = ['gunicorn', 'config.wsgi']\n"
        "app = WSGIApplication()\n"
        "c = app.cfg\n"
        "print(json.dumps({'workers': c.workers, 'threads': c.threads, 'bind': c.bind,"
        " 'worker_class': c.worker_class_str, 'preload': c.preload_app,"
        " 'max_requests': c.max_requests, 'accesslog': c.accesslog}))\n"
    )
    result = run_python("-c", code, env={**os.environ, **env}, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_gunicorn_config_is_sized_from_the_cpu_count_and_overridable():
    cores = os.cpu_count() or 1
    default = _gunicorn_settings()
    assert default["workers"] == cores + 1
    assert default["worker_class"] == "gthread" and default["threads"] == 4
    assert default["bind"] == ["127.0.0.1:8000"]
    assert default["preload"] is True and default["max_requests"] > 0
    assert default["accesslog"] == "-"
    custom = _gunicorn_settings(
        GUNICORN_WORKERS="7", GUNICORN_THREADS="2", WEB_BIND="0.0.0.0:9000", WEB_ACCESS_LOG=""
    )
    assert (custom["workers"], custom["threads"]) == (7, 2)
    assert custom["bind"] == ["0.0.0.0:9000"] and custom["accesslog"] is None
