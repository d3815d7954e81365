"""WSGI entry point (gunicorn ``config.wsgi``).

gunicorn loads it once in its master (``preload_app``), so the meaning model (search.meaning,
about 0.3 s and 30 MB) is loaded here, before the workers fork and share it, rather than by
the first visitor's search in every worker.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from search import meaning  # noqa: E402  (needs the settings configured above)

meaning.warm()
