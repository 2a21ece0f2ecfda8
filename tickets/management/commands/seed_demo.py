"""Create a few demo tickets for local use, once: nothing happens while any ticket exists."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from tickets.models import Ticket
from tickets.services import ticket_create

# (title, quantity, days until the event, hours until the sale opens or None for open now)
DEMO_TICKETS = [
    ("Jazz Night at the Blue Room", 120, 14, None),
    ("Flash Sale: Stadium Concert", 5, 30, None),
    ("Developer Conference 2-Day Pass", 300, 45, None),
    ("Theatre Premiere (sale opens soon)", 80, 60, 2),
]


class Command(BaseCommand):
    help = "Create demo tickets (future events, one whose sale opens later) when there are no tickets."

    def handle(self, *args, **options) -> None:
        if Ticket.objects.exists():
            self.stdout.write("Tickets exist already; no demo tickets created.")
            return
        now = timezone.now()
        with transaction.atomic():
            for title, quantity, days, sale_in_hours in DEMO_TICKETS:
                ticket_create(
                    title=title,
                    quantity=quantity,
                    event_time=now + timedelta(days=days),
                    sale_starts_at=None if sale_in_hours is None else now + timedelta(hours=sale_in_hours),
                )
        self.stdout.write(self.style.SUCCESS(f"Created {len(DEMO_TICKETS)} demo tickets."))
