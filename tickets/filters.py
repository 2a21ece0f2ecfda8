import django_filters

from tickets.models import Ticket


class TicketFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        field_name="title", lookup_expr="icontains", help_text="Keep tickets whose title contains this, ignoring case."
    )

    class Meta:
        model = Ticket
        fields = ["search"]
