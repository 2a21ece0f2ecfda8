from django.urls import path
from rest_framework.routers import SimpleRouter

from reservations import views

router = SimpleRouter(use_regex_path=False)
router.register("reservations", views.ReservationViewSet, basename="reservation")

urlpatterns = [
    path("tickets/<uuid:ticket_id>/reserve/", views.ReserveView.as_view(), name="ticket-reserve"),
    path("tickets/<uuid:ticket_id>/queue/", views.QueueView.as_view(), name="ticket-queue"),
    path("tickets/<uuid:ticket_id>/queue/stats/", views.QueueStatsView.as_view(), name="ticket-queue-stats"),
    path(
        "tickets/<uuid:ticket_id>/reservations/",
        views.TicketReservationViewSet.as_view({"get": "list"}),
        name="ticket-reservations",
    ),
    path("tickets/<uuid:ticket_id>/sales/", views.TicketSalesView.as_view(), name="ticket-sales"),
    *router.urls,
]
