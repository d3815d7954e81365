"""Project wiring: settings, the Celery app, URL root, WSGI and the local services manager."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
