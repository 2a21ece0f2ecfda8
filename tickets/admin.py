"""The Django admin for sale day: every write goes through tickets.services."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet
from django.http import HttpResponseRedirect
from django.utils import timezone

from fastticket.errors import DomainError
from reservations.admin import TicketReservationInline
from tickets import services
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


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    form = TicketAdminForm
    list_display = [
        "title",
        "event_time",
        "sale_starts_at",
        "quantity",
        "issued_count",
        "remaining",
        "percent_sold",
        "sale_status_display",
    ]
    search_fields = ["title"]
    list_filter = [SaleStatusFilter, EventWhenFilter]
    date_hierarchy = "event_time"
    ordering = ["event_time", "id"]
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
    inlines = [TicketReservationInline]

    def get_fields(self, request, obj=None):
        # An unsaved ticket has no counts or sale status to show yet.
        return self.fields if obj is not None else TicketAdminForm.Meta.fields

    @admin.display(description="remaining")
    def remaining(self, ticket: Ticket) -> int:
        return ticket.remaining

    @admin.display(description="% sold")
    def percent_sold(self, ticket: Ticket) -> str:
        return f"{100 * ticket.issued_count / ticket.quantity:.1f}%" if ticket.quantity else "-"

    @admin.display(description="sale status")
    def sale_status_display(self, ticket: Ticket) -> str:
        return ticket.sale_status().label

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The form checked the rules, but a booking can commit between that check and the save
        # (e.g. quantity now below issued_count): the service refuses, and nothing was saved.
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (ValidationError, DomainError) as exc:
            detail = exc.detail if isinstance(exc, DomainError) else " ".join(exc.messages)
            self.message_user(request, f"Not saved: {detail}", level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj: Ticket, form: TicketAdminForm, change: bool) -> None:
        data = {name: form.cleaned_data.get(name) for name in TicketAdminForm.Meta.fields}
        if change:
            changes = {name: data[name] for name in form.changed_data if name in data}
            saved = services.ticket_update(ticket_id=obj.pk, **changes) if changes else obj
        else:
            saved = services.ticket_create(**data)
        obj.pk = saved.pk
        obj.__dict__.update({k: v for k, v in saved.__dict__.items() if not k.startswith("_")})

    def get_deleted_objects(self, objs, request):
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Reservations are never deleted (PROTECT): list them as what stops the delete, not as a
        # permission the user lacks.
        return to_delete, model_count, set() if protected else perms_needed, protected

    def delete_model(self, request, obj: Ticket) -> None:
        services.ticket_delete(ticket_id=obj.pk)

    def delete_queryset(self, request, queryset: QuerySet[Ticket]) -> None:
        for ticket in queryset:
            try:
                services.ticket_delete(ticket_id=ticket.pk)
            except DomainError as exc:
                self.message_user(request, f"{ticket}: {exc.detail}", level=messages.ERROR)
