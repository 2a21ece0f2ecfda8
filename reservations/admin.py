"""Reservations in the admin: read-only, with a "cancel selected" action that calls the service."""

from django.contrib import admin, messages
from django.db.models import QuerySet

from fastticket.errors import DomainError
from reservations import services
from reservations.models import Reservation, ReservationStatus


class ReadOnlyMixin:
    """Reservations change only through the booking services."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class TicketReservationInline(ReadOnlyMixin, admin.TabularInline):
    model = Reservation
    fields = ["id", "user", "status", "reserved_at", "cancelled_at"]
    readonly_fields = fields
    ordering = ["reserved_at", "id"]
    extra = 0
    show_change_link = True
    classes = ["collapse"]


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
    def cancel_selected(self, request, queryset: QuerySet[Reservation]) -> None:
        cancelled = 0
        for reservation in queryset.filter(status=ReservationStatus.CONFIRMED).select_related("user"):
            try:
                services.reservation_cancel(user=reservation.user, reservation_id=reservation.pk)
                cancelled += 1
            except DomainError as exc:
                self.message_user(request, f"{reservation.id}: {exc.detail}", level=messages.ERROR)
        self.message_user(request, f"Cancelled {cancelled} reservation(s).", level=messages.SUCCESS)
