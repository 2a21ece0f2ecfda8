"""A ticket: a sellable event with a fixed stock, sold first come, first served."""

import uuid
from datetime import datetime

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

MAX_QUANTITY = 1_000_000
# The waiting room's bounds (API.md, Tickets): admissions a minute, and how long one lasts.
ADMIT_PER_MINUTE_RANGE = (1, 100_000)
ADMISSION_SECONDS_RANGE = (30, 3_600)


class SaleStatus(models.TextChoices):
    UPCOMING = "upcoming", "Upcoming"
    ON_SALE = "on_sale", "On sale"
    SOLD_OUT = "sold_out", "Sold out"
    CLOSED = "closed", "Closed"


def sale_window(*, now: datetime, event_time: datetime, sale_starts_at: datetime | None) -> SaleStatus | None:
    """Return UPCOMING or CLOSED when the sale window is shut at `now`, else None."""
    if sale_starts_at is not None and now < sale_starts_at:
        return SaleStatus.UPCOMING
    if now >= event_time:
        return SaleStatus.CLOSED
    return None


class Ticket(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    quantity = models.PositiveIntegerField()
    # Written only by the booking services, under the ticket's row lock.
    issued_count = models.PositiveIntegerField(default=0, editable=False)
    event_time = models.DateTimeField()
    sale_starts_at = models.DateTimeField(null=True, blank=True)
    # The waiting room (API.md, Waiting room): a line in Redis that admits users at this rate.
    waiting_room = models.BooleanField(default=False)
    admit_per_minute = models.PositiveIntegerField(default=600)
    admission_seconds = models.PositiveIntegerField(default=300)
    # Raised by each turn of the waiting room from off to on: each turn has a queue of its own.
    queue_generation = models.PositiveIntegerField(default=0, editable=False)
    # Raised by every write of the row (bookings, cancels, staff edits); orders the writes of the
    # ticket's mirror in Redis (tickets.sale_state), so that a late one never rolls it back.
    sale_version = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["event_time", "id"]
        indexes = [models.Index(fields=["event_time", "id"], name="tickets_event_time_id_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(issued_count__gte=0) & Q(issued_count__lte=F("quantity")),
                name="tickets_issued_count_within_quantity",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=1) & Q(quantity__lte=MAX_QUANTITY),
                name="tickets_quantity_range",
            ),
            models.CheckConstraint(
                condition=Q(sale_starts_at__isnull=True) | Q(sale_starts_at__lt=F("event_time")),
                name="tickets_sale_starts_before_event",
            ),
            models.CheckConstraint(
                condition=Q(admit_per_minute__gte=ADMIT_PER_MINUTE_RANGE[0])
                & Q(admit_per_minute__lte=ADMIT_PER_MINUTE_RANGE[1]),
                name="tickets_admit_per_minute_range",
            ),
            models.CheckConstraint(
                condition=Q(admission_seconds__gte=ADMISSION_SECONDS_RANGE[0])
                & Q(admission_seconds__lte=ADMISSION_SECONDS_RANGE[1]),
                name="tickets_admission_seconds_range",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def remaining(self) -> int:
        return self.quantity - self.issued_count

    @property
    def sold_out(self) -> bool:
        return self.issued_count >= self.quantity

    def sale_status(self, now: datetime | None = None) -> SaleStatus:
        """Return where the sale stands now, in the order the booking checks apply."""
        window = sale_window(now=now or timezone.now(), event_time=self.event_time, sale_starts_at=self.sale_starts_at)
        if window is not None:
            return window
        if self.sold_out:
            return SaleStatus.SOLD_OUT
        return SaleStatus.ON_SALE
