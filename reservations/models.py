"""Reservations (one seat of a ticket for one user) and stored answers to Idempotency-Keys."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class ReservationStatus(models.TextChoices):
    CONFIRMED = "confirmed", "Confirmed"
    CANCELLED = "cancelled", "Cancelled"


class Reservation(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # PROTECT: deleting a user or a ticket must never silently drop seats from the count.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reservations")
    ticket = models.ForeignKey("tickets.Ticket", on_delete=models.PROTECT, related_name="reservations")
    status = models.CharField(max_length=16, choices=ReservationStatus.choices, default=ReservationStatus.CONFIRMED)
    reserved_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-reserved_at", "-id"]
        constraints = [
            # Guarantee 2 of API.md: at most one confirmed reservation per user and ticket.
            models.UniqueConstraint(
                fields=["user", "ticket"],
                condition=Q(status="confirmed"),
                name="reservations_one_confirmed_per_user_ticket",
            ),
            models.CheckConstraint(
                condition=(Q(status="confirmed") & Q(cancelled_at__isnull=True))
                | (Q(status="cancelled") & Q(cancelled_at__isnull=False)),
                name="reservations_status_matches_cancelled_at",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "-reserved_at", "-id"], name="reservations_user_newest_idx"),
            models.Index(fields=["ticket", "reserved_at", "id"], name="reservations_ticket_order_idx"),
            # The sales API's cancellations per second. Partial: a booking (cancelled_at NULL)
            # never writes to it, so it costs the booking path nothing.
            models.Index(
                fields=["ticket", "cancelled_at"],
                condition=Q(cancelled_at__isnull=False),
                name="reservations_ticket_cancel_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} - {self.ticket} ({self.status})"


class IdempotencyRecord(models.Model):
    """The first answer to a user's Idempotency-Key, replayed byte for byte for 24 hours."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    # Not a foreign key: a 404 for an unknown ticket is an answer worth keeping too.
    ticket_id = models.UUIDField()
    status_code = models.PositiveSmallIntegerField()
    body = models.BinaryField()
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="reservations_idempotency_user_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key} -> {self.status_code}"


class BookingWithdrawal(models.Model):
    """A booking whose request answered before its line's holder did: it can never be booked.

    Its id is the reservation id the booking would have had. A waiting request writes it, under
    the ticket's row lock, when it must answer without its holder's answer (its wait ran out while
    a holder had taken it, or Redis failed); a holder's batch skips every withdrawn booking. So a
    request that answered 503 was never booked and never will be, whatever its holder does later.
    """

    id = models.UUIDField(primary_key=True)
    ticket_id = models.UUIDField()
    created_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"withdrawn {self.id}"
