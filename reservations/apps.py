from django.apps import AppConfig


class ReservationsConfig(AppConfig):
    name = "reservations"
    verbose_name = "Reservations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The waiting room adds itself to the ticket's mirror: each write first admits the places
        # due under the mirror as it was (reservations.room.room_sale_update).
        from reservations.room import ROOM_SALE_WRITE
        from tickets.sale_state import sale_state_writer

        sale_state_writer(ROOM_SALE_WRITE)
