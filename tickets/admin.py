"""The Django admin for sale day: every write goes through tickets.services.

The services write the history entries (LogEntry) of staff changes in the change's own
transaction, so this admin does not log them a second time. The controls of the live page (pause,
resume, waiting room, rate, quantity) confirm first, then call `ticket_update` like the form. The
reservations app adds its inline, the live page and the overview to this admin
(reservations/admin.py).
"""

import hashlib

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from fastticket.errors import DomainError
from tickets import services
from tickets.controls import CONTROLS, Plan
from tickets.models import ADMISSION_SECONDS_RANGE, ADMIT_PER_MINUTE_RANGE, MAX_QUANTITY, SaleStatus, Ticket


class SaleStatusFilter(admin.SimpleListFilter):
    title = "sale status"
    parameter_name = "sale_status"

    def lookups(self, request, model_admin):
        return SaleStatus.choices

    def queryset(self, request, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        now = timezone.now()
        not_upcoming = Q(sale_starts_at__isnull=True) | Q(sale_starts_at__lte=now)
        open_window = not_upcoming & Q(event_time__gt=now)
        conditions = {
            SaleStatus.UPCOMING: Q(sale_starts_at__gt=now),
            SaleStatus.CLOSED: not_upcoming & Q(event_time__lte=now),
            SaleStatus.SOLD_OUT: open_window & Q(issued_count__gte=F("quantity")),
            SaleStatus.ON_SALE: open_window & Q(issued_count__lt=F("quantity")),
        }
        condition = conditions.get(self.value())
        return queryset if condition is None else queryset.filter(condition)


class EventWhenFilter(admin.SimpleListFilter):
    title = "event"
    parameter_name = "when"

    def lookups(self, request, model_admin):
        return [("upcoming", "Upcoming"), ("past", "Past")]

    def queryset(self, request, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        now = timezone.now()
        if self.value() == "upcoming":
            return queryset.filter(event_time__gt=now)
        if self.value() == "past":
            return queryset.filter(event_time__lte=now)
        return queryset


class TicketAdminForm(forms.ModelForm):
    """Shows the service's rule messages on the form; the save itself goes through the service."""

    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY)
    admit_per_minute = forms.IntegerField(
        min_value=ADMIT_PER_MINUTE_RANGE[0],
        max_value=ADMIT_PER_MINUTE_RANGE[1],
        initial=600,
        help_text="Waiting room: places admitted a minute, at an even pace.",
    )
    admission_seconds = forms.IntegerField(
        min_value=ADMISSION_SECONDS_RANGE[0],
        max_value=ADMISSION_SECONDS_RANGE[1],
        initial=300,
        help_text="Waiting room: how long an admitted user may book before the seat goes to the next place.",
    )

    class Meta:
        model = Ticket
        fields = [
            "title",
            "quantity",
            "event_time",
            "sale_starts_at",
            "waiting_room",
            "admit_per_minute",
            "admission_seconds",
        ]

    def clean_event_time(self):
        return self._stored_if_untouched("event_time")

    def clean_sale_starts_at(self):
        return self._stored_if_untouched("sale_starts_at")

    def _stored_if_untouched(self, name: str):
        # The time widget shows whole seconds: an untouched time set through the API keeps its
        # microseconds, so it does not count as changed (a past event time may stay as it is).
        value = self.cleaned_data[name]
        stored = getattr(self.instance, name) if self.instance.pk else None
        if value is not None and stored is not None and value == stored.replace(microsecond=0):
            return stored
        return value

    def clean(self):
        cleaned = super().clean()
        if self.errors or not {"quantity", "event_time"} <= cleaned.keys():
            return cleaned
        existing = self.instance if self.instance.pk else None
        try:
            services.ticket_validate(
                quantity=cleaned["quantity"],
                event_time=cleaned["event_time"],
                sale_starts_at=cleaned.get("sale_starts_at"),
                issued_count=existing.issued_count if existing else 0,
                event_time_changed=existing is None or cleaned["event_time"] != existing.event_time,
            )
        except ValidationError as exc:
            for field, messages_ in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, messages_)
        return cleaned


class ControlForm(forms.Form):
    """The number a control takes (minutes of a pause, a rate, a quantity), within its bounds."""

    value = forms.IntegerField()
    next = forms.CharField(required=False)

    def __init__(self, *args, control, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if control.takes_value:
            low, high = control.value_range
            self.fields["value"] = forms.IntegerField(label=control.value_label, min_value=low, max_value=high)
        else:
            self.fields["value"].required = False


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    form = TicketAdminForm
    list_display = [
        "title",
        "event_time",
        "sale_starts_at",
        "quantity_shown",
        "issued_count_shown",
        "remaining_shown",
        "percent_sold",
        "sale_status_display",
    ]
    list_display_links = ["title"]
    search_fields = ["title"]
    list_filter = [SaleStatusFilter, EventWhenFilter]
    date_hierarchy = "event_time"
    ordering = ["event_time", "id"]
    list_per_page = 50
    readonly_fields = [
        "id",
        "issued_count",
        "remaining",
        "percent_sold",
        "sale_status_display",
        "created_at",
        "updated_at",
    ]
    fields = [*TicketAdminForm.Meta.fields, *readonly_fields]

    class Media:
        css = {"all": ["tickets/admin/tickets.css"]}

    def get_fields(self, request, obj=None):
        # An unsaved ticket has no counts or sale status to show yet.
        return self.fields if obj is not None else TicketAdminForm.Meta.fields

    @admin.display(description="remaining")
    def remaining(self, ticket: Ticket) -> int:
        return ticket.remaining

    # The list's counts with thousands separators ("12,500"); the change page keeps the plain numbers.
    @admin.display(description="quantity", ordering="quantity")
    def quantity_shown(self, ticket: Ticket) -> str:
        return f"{ticket.quantity:,}"

    @admin.display(description="issued count", ordering="issued_count")
    def issued_count_shown(self, ticket: Ticket) -> str:
        return f"{ticket.issued_count:,}"

    @admin.display(description="remaining")
    def remaining_shown(self, ticket: Ticket) -> str:
        return f"{ticket.remaining:,}"

    @admin.display(description="% sold")
    def percent_sold(self, ticket: Ticket) -> str:
        return f"{100 * ticket.issued_count / ticket.quantity:.1f}%" if ticket.quantity else "-"

    @admin.display(description="sale status")
    def sale_status_display(self, ticket: Ticket) -> str:
        status = ticket.sale_status()
        return format_html('<span class="ft-status ft-status-{}">{}</span>', status.value, status.label)

    # Writes: through the services, which also write the history -------------------------------

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The form checked the rules, but a booking can commit between that check and the save
        # (e.g. quantity now below issued_count): the service refuses, and nothing was saved.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (ValidationError, DomainError) as exc:
            self.message_user(request, f"Not saved: {_reason(exc)}", level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj: Ticket, form: TicketAdminForm, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in TicketAdminForm.Meta.fields}
        if change:
            changes = {name: data[name] for name in form.changed_data if name in data}
            saved = services.ticket_update(ticket_id=obj.pk, by=request.user, **changes) if changes else obj
        else:
            saved = services.ticket_create(**data, by=request.user)
        obj.pk = saved.pk
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})

    def log_addition(self, request, obj, message):
        """The service logged the addition with the ticket."""

    def log_change(self, request, obj, message):
        """The service logged the change, with old and new values, in the change's transaction."""

    def log_deletions(self, request, queryset):
        """The service logs each deletion that really happens."""

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Reservations are never deleted (PROTECT): list them as what stops the delete, not as a
        # permission the user lacks.
        return to_delete, model_count, set() if protected else perms_needed, protected

    def delete_model(self, request, obj: Ticket) -> None:
        services.ticket_delete(ticket_id=obj.pk, by=request.user)

    def delete_queryset(self, request, queryset: QuerySet[Ticket]) -> None:
        for ticket in queryset:
            try:
                services.ticket_delete(ticket_id=ticket.pk, by=request.user)
            except DomainError as exc:
                self.message_user(request, f"{ticket}: {exc.detail}", level=messages.ERROR)

    # The live page's controls: a confirmation page, then one ticket_update --------------------

    def get_urls(self):
        control = path(
            "<path:object_id>/control/<str:name>/",
            self.admin_site.admin_view(self.control_view),
            name="tickets_ticket_control",
        )
        return [control, *super().get_urls()]

    def control_view(self, request: HttpRequest, object_id: str, name: str) -> HttpResponse:
        """Say what a control will do (GET); do it when confirmed (POST)."""
        control = CONTROLS.get(name)
        ticket = self.get_object(request, object_id)
        if control is None or ticket is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_change_permission(request, ticket):
            raise PermissionDenied
        form = ControlForm(request.POST if request.method == "POST" else request.GET, control=control)
        back = self._safe_next(request, form.data.get("next"), ticket)
        plan, error = None, None
        if form.is_valid():
            try:
                plan = control.plan(ticket, form.cleaned_data["value"], timezone.now())
            except ValidationError as exc:
                error = _reason(exc)
        else:
            error = " ".join(message for messages_ in form.errors.values() for message in messages_)
        # Only the confirmation page's own POST acts: it says "confirm" and what it was shown.
        posted = request.method == "POST" and plan is not None
        seen = form.data.get("seen")
        basis = _basis(ticket, plan) if plan is not None else None
        changed = posted and seen is not None and seen != basis
        confirmed = posted and "confirm" in form.data and seen == basis
        if confirmed:
            try:
                services.ticket_update(ticket_id=ticket.pk, by=request.user, note=plan.note, **plan.changes)
            except (ValidationError, DomainError) as exc:
                self.message_user(request, f"Not done: {_reason(exc)}", level=messages.ERROR)
            else:
                self.message_user(request, f"{plan.note}.", level=messages.SUCCESS)
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{control.title}?",
            "subtitle": ticket.title,
            "opts": self.opts,
            "original": ticket,
            "control": control,
            "plan": plan,
            "changed": changed,
            "seen": basis,
            "error": error,
            "value": form.cleaned_data.get("value") if plan else None,
            "next": back,
            "time_zone": timezone.get_current_timezone_name(),
        }
        return TemplateResponse(request, "admin/tickets/ticket/control_confirmation.html", context)

    def _safe_next(self, request: HttpRequest, target: str | None, ticket: Ticket) -> str:
        if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
            return target
        return reverse("admin:tickets_ticket_change", args=[ticket.pk])


def _basis(ticket: Ticket, plan: Plan) -> str:
    """A digest of what a control starts from: its change and the current values of the fields it changes.

    The confirmation page sends it back: when another change came first (another staff member,
    the API), the digest differs and the control asks again instead of doing what nobody
    confirmed. Bookings change no field a control sets, so a live sale does not stop a change.
    """
    now = {name: str(getattr(ticket, name)) for name in sorted(plan.changes)}
    return hashlib.sha256(f"{plan.note}\x1e{now}".encode()).hexdigest()[:32]


def _reason(exc: ValidationError | DomainError) -> str:
    return exc.detail if isinstance(exc, DomainError) else " ".join(exc.messages)
