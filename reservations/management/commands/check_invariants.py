"""Check API.md's booking guarantees for every ticket; exit non-zero on any violation."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, F, Q

from reservations.models import Reservation, ReservationStatus
from tickets.models import Ticket


class Command(BaseCommand):
    help = "Check that issued_count equals confirmed reservations, never exceeds quantity, and one seat per user."

    def handle(self, *args, **options) -> None:
        confirmed = Q(reservations__status=ReservationStatus.CONFIRMED)
        tickets = Ticket.objects.annotate(confirmed=Count("reservations", filter=confirmed))
        problems = [
            f"ticket {t.pk} ({t.title}): issued_count {t.issued_count} != {t.confirmed} confirmed reservations"
            for t in tickets.exclude(issued_count=F("confirmed"))
        ]
        problems += [
            f"ticket {t.pk} ({t.title}): issued_count {t.issued_count} > quantity {t.quantity}"
            for t in Ticket.objects.filter(issued_count__gt=F("quantity"))
        ]
        doubles = (
            Reservation.objects.filter(status=ReservationStatus.CONFIRMED)
            .values("user_id", "ticket_id")
            .annotate(n=Count("id"))
            .filter(n__gt=1)
        )
        problems += [f"user {d['user_id']} holds {d['n']} confirmed seats of ticket {d['ticket_id']}" for d in doubles]
        total = Ticket.objects.count()
        seats = Reservation.objects.filter(status=ReservationStatus.CONFIRMED).count()
        for problem in problems:
            self.stdout.write(f"VIOLATION {problem}")
        if problems:
            raise CommandError(f"{len(problems)} invariant violation(s) across {total} tickets")
        self.stdout.write(f"OK: {total} tickets, {seats} confirmed reservations, all invariants hold")
