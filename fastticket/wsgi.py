"""WSGI entry point: `fastticket.wsgi:application`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fastticket.settings")

application = get_wsgi_application()
