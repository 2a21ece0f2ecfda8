"""Delete Idempotency-Key answers older than the 24 hours API.md keeps them for."""

from django.core.management.base import BaseCommand

from reservations.idempotency import idempotency_purge


class Command(BaseCommand):
    help = "Delete Idempotency-Key answers older than 24 hours (run daily, with flushexpiredtokens)."

    def handle(self, *args, **options) -> None:
        self.stdout.write(f"Deleted {idempotency_purge()} expired Idempotency-Key answer(s).")
