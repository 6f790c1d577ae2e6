"""WSGI entry point (gunicorn); the same application as over ASGI."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coordhub.settings")

application = get_wsgi_application()
