"""English formats with seconds in every time the admin shows (Django's own show minutes only)."""

from django.conf.locale.en.formats import *  # noqa: F403

DATETIME_FORMAT = "j M Y, H:i:s"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
TIME_FORMAT = "H:i:s"
