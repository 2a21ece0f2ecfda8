"""WSGI entry point: `fastticket.wsgi:application` (Django's handler, with the bearer-token API lane)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fastticket.settings")
django.setup(set_prefix=False)

from fastticket.handlers import FastTicketWSGIHandler  # noqa: E402 (needs the apps loaded)

application = FastTicketWSGIHandler()
