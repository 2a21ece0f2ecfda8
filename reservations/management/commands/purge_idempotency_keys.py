"""Delete Idempotency-Key answers older than the 24 hours API.md keeps them for, and old booking withdrawals."""

from django.core.management.base import BaseCommand

from reservations.batch import booking_withdrawals_purge
from reservations.idempotency import idempotency_purge


class Command(BaseCommand):
    help = (
        "Delete Idempotency-Key answers older than 24 hours and booking withdrawals older than a day "
        "(run daily, with flushexpiredtokens)."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"Deleted {idempotency_purge()} expired Idempotency-Key answer(s).")
        self.stdout.write(f"Deleted {booking_withdrawals_purge()} booking withdrawal(s) older than a day.")
