from django.apps import AppConfig


class FastTicketConfig(AppConfig):
    """The project's own app: settings checks and commands that belong to no domain app."""

    name = "fastticket"
    verbose_name = "FastTicket"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from fastticket import pooling

        connection_created.connect(pooling.session_settings_check, dispatch_uid="fastticket.pooling")
