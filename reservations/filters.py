import django_filters

from reservations.models import Reservation, ReservationStatus


class ReservationFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ReservationStatus.choices)

    class Meta:
        model = Reservation
        fields = ["status"]
