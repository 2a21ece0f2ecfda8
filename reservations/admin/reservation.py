"""Reservations in the admin: read-only, with a confirmed "cancel selected" that calls the service.

Every cancel leaves a history entry (LogEntry) on the reservation and on its ticket, naming the
staff member and the customer; the service writes them in the cancel's own transaction.
"""

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.template.response import TemplateResponse
from django.utils import timezone

from fastticket.errors import DomainError
from reservations import services
from reservations.models import Reservation, ReservationStatus

# The confirmation page lists this many reservations, then says how many more there are.
CONFIRMATION_ROWS = 200


class ReadOnlyMixin:
    """Reservations change only through the booking services."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["id", "user", "ticket", "status", "reserved_at", "cancelled_at"]
    list_filter = ["status", ("ticket", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "user__email", "ticket__title"]
    list_select_related = ["user", "ticket"]
    readonly_fields = ["id", "user", "ticket", "status", "reserved_at", "cancelled_at"]
    date_hierarchy = "reserved_at"
    actions = ["cancel_selected"]

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    @admin.action(description="Cancel selected reservations", permissions=["view"])
    def cancel_selected(self, request, queryset: QuerySet[Reservation]):
        """List the customers and seats first; cancel the confirmed ones once staff confirm."""
        chosen = queryset.select_related("user", "ticket").order_by("ticket__event_time", "ticket", "reserved_at")
        if request.POST.get("post") != "yes":
            return self._cancel_confirmation(request, chosen)
        cancelled = []
        for reservation in chosen.filter(status=ReservationStatus.CONFIRMED).iterator():
            try:
                services.reservation_cancel(user=reservation.user, reservation_id=reservation.pk, by=request.user)
            except DomainError as exc:
                self.message_user(request, f"{_seat(reservation)}: not cancelled: {exc.detail}", level=messages.ERROR)
                continue
            cancelled.append(reservation)
        if not cancelled:
            self.message_user(request, "No reservation was cancelled.", level=messages.WARNING)
            return None
        names = ", ".join(_seat(reservation) for reservation in cancelled[:10])
        more = f" and {len(cancelled) - 10} more" if len(cancelled) > 10 else ""
        self.message_user(
            request,
            f"Cancelled {len(cancelled)} reservation(s): {names}{more}. Their seats are back on sale.",
            level=messages.SUCCESS,
        )
        return None

    def _cancel_confirmation(self, request, chosen: QuerySet[Reservation]) -> TemplateResponse:
        to_cancel = chosen.filter(status=ReservationStatus.CONFIRMED)
        context = {
            **self.admin_site.each_context(request),
            "title": "Cancel these reservations?",
            "subtitle": None,
            "opts": self.opts,
            "queryset": chosen,
            "to_cancel": list(to_cancel[:CONFIRMATION_ROWS]),
            "to_cancel_count": to_cancel.count(),
            "skipped": list(chosen.exclude(status=ReservationStatus.CONFIRMED)[:CONFIRMATION_ROWS]),
            "skipped_count": chosen.exclude(status=ReservationStatus.CONFIRMED).count(),
            "rows_shown": CONFIRMATION_ROWS,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across") == "1",
            "time_zone": timezone.get_current_timezone_name(),
            "media": self.media,
        }
        return TemplateResponse(request, "admin/reservations/reservation/cancel_selected_confirmation.html", context)


def _seat(reservation: Reservation) -> str:
    return f"{reservation.user.username} ({reservation.ticket.title})"
