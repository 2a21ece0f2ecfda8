"""Sale day in the ticket admin: the reservations inline, a live page per ticket and an overview.

The pages are drawn in the browser from the sales API (GET /api/v1/tickets/{id}/sales/, which the
admin session authenticates) and poll it every POLL_SECONDS; the overview polls one admin view that
gives the same Sales for every ticket it lists. The chart is uPlot, served as a static file
(reservations/static/reservations/vendor/uplot/), so nothing is fetched from outside.
"""

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from reservations import selectors
from reservations.admin.reservation import ReadOnlyMixin
from reservations.models import Reservation
from reservations.serializers import SalesSerializer
from tickets.admin import TicketAdmin
from tickets.controls import CONTROLS, PAUSE_MINUTES_DEFAULT
from tickets.models import Ticket
from tickets.selectors import ticket_list_live

POLL_SECONDS = 2
# The overview lists tickets on sale now and those whose sale opens within this time.
OPENING_WITHIN = timedelta(hours=24)
OVERVIEW_LIMIT = 50
INLINE_ROWS = 50
HISTORY_ROWS = 12


class LatestReservationsFormSet(BaseInlineFormSet):
    """The ticket's latest INLINE_ROWS reservations, newest first: a sold-out ticket has a million."""

    def get_queryset(self):
        if not hasattr(self, "_latest"):
            of_ticket = super().get_queryset()
            latest = of_ticket.order_by("-reserved_at", "-id").values("pk")[:INLINE_ROWS]
            self._latest = of_ticket.filter(pk__in=Subquery(latest)).order_by("-reserved_at", "-id")
        return self._latest


class TicketReservationInline(ReadOnlyMixin, admin.TabularInline):
    model = Reservation
    formset = LatestReservationsFormSet
    fields = ["id", "user", "status", "reserved_at", "cancelled_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    verbose_name_plural = f"latest reservations (newest first, at most {INLINE_ROWS})"
    classes = ["collapse"]


class TicketSaleDayAdmin(TicketAdmin):
    """The ticket admin with the reservations app's sale-day pages."""

    inlines = [*TicketAdmin.inlines, TicketReservationInline]
    list_display = [*TicketAdmin.list_display, "live_link"]
    readonly_fields = [*TicketAdmin.readonly_fields, "queue_counts"]
    change_form_template = "admin/reservations/ticket/change_form.html"
    change_list_template = "admin/reservations/ticket/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("live/", view(self.overview_view), name="tickets_ticket_live_overview"),
            path("live/data/", view(self.overview_data_view), name="tickets_ticket_live_overview_data"),
            path("<path:object_id>/live/", view(self.live_view), name="tickets_ticket_live"),
            *super().get_urls(),
        ]

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return [*fields, "queue_counts"] if obj is not None else fields

    @admin.display(description="waiting room now")
    def queue_counts(self, ticket: Ticket) -> str:
        if not ticket.waiting_room:
            return "no waiting room"
        stats = selectors.queue_counts(ticket)
        if stats is None:
            return "not known: Redis is unreachable"
        counts = "{waiting:,} waiting (sold_out too), {admitted:,} admitted, {booked:,} booked, {expired:,} expired"
        return counts.format(**stats)

    @admin.display(description="live")
    def live_link(self, ticket: Ticket) -> str:
        url = reverse("admin:tickets_ticket_live", args=[ticket.pk])
        return format_html('<a class="ft-live-link" href="{}" title="Live sales of {}">Live</a>', url, ticket.title)

    def live_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """One ticket's sale as it goes: big numbers, the chart, the key moments, the controls."""
        ticket = self.get_object(request, object_id)
        if ticket is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, ticket):
            raise PermissionDenied
        live_url = reverse("admin:tickets_ticket_live", args=[ticket.pk])
        context = {
            **self._page_context(request, title=ticket.title),
            "original": ticket,
            "config": {**_ticket_data(ticket, selectors.ticket_sales(ticket_id=ticket.pk)), **self._clock()},
            "can_change": self.has_change_permission(request, ticket),
            "controls": CONTROLS,
            "pause_minutes": PAUSE_MINUTES_DEFAULT,
            "live_url": live_url,
            "history": _history(ticket),
        }
        return TemplateResponse(request, "admin/reservations/ticket/live.html", context)

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        """The tickets on sale now and about to open, each with its live numbers."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self._page_context(request, title="Sales now"),
            "config": {**self._overview_data(), **self._clock()},
            "opening_hours": int(OPENING_WITHIN.total_seconds() // 3600),
        }
        return TemplateResponse(request, "admin/reservations/ticket/live_overview.html", context)

    def overview_data_view(self, request: HttpRequest) -> JsonResponse:
        """What the overview polls: the Sales of every ticket it lists, in one answer."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return JsonResponse(self._overview_data())

    def _overview_data(self) -> dict[str, Any]:
        now = timezone.now()
        tickets = list(ticket_list_live(now=now, opening_within=OPENING_WITHIN)[:OVERVIEW_LIMIT])
        sales = {s["ticket"]: s for s in selectors.ticket_sales_many(ticket_ids=[t.pk for t in tickets], now=now)}
        return {"tickets": [_ticket_data(ticket, sales[ticket.pk]) for ticket in tickets if ticket.pk in sales]}

    def _page_context(self, request: HttpRequest, *, title: str) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "title": title, "subtitle": None, "opts": self.opts}

    def _clock(self) -> dict[str, Any]:
        return {"timeZone": timezone.get_current_timezone_name(), "pollSeconds": POLL_SECONDS}


def _ticket_data(ticket: Ticket, sales: dict[str, Any]) -> dict[str, Any]:
    """What a page needs to draw a ticket's sale; the browser works its status out from it."""
    return {
        "id": str(ticket.pk),
        "title": ticket.title,
        "eventTime": ticket.event_time.isoformat(),
        "saleStartsAt": ticket.sale_starts_at.isoformat() if ticket.sale_starts_at else None,
        "createdAt": ticket.created_at.isoformat(),
        "waitingRoom": ticket.waiting_room,
        "admitPerMinute": ticket.admit_per_minute,
        "admissionSeconds": ticket.admission_seconds,
        "salesUrl": reverse("ticket-sales", kwargs={"ticket_id": ticket.pk}),
        "liveUrl": reverse("admin:tickets_ticket_live", args=[ticket.pk]),
        "sales": SalesSerializer(sales).data,
    }


def _history(ticket: Ticket) -> list[LogEntry]:
    """The ticket's latest history entries: staff changes and cancels, with who made them."""
    return list(
        LogEntry.objects.filter(content_type=ContentType.objects.get_for_model(Ticket), object_id=str(ticket.pk))
        .select_related("user")
        .order_by("-action_time")[:HISTORY_ROWS]
    )


admin.site.unregister(Ticket)
admin.site.register(Ticket, TicketSaleDayAdmin)
