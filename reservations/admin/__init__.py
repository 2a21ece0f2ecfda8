"""The reservations app in the admin: its own list, and its sale-day pages in the ticket admin.

The ticket admin (tickets/admin.py) knows nothing of reservations; sale_day adds the reservations
inline, the live page and the overview to it, as reservations/urls.py adds this app's routes.
"""

from reservations.admin import reservation, sale_day  # noqa: F401
