from rest_framework.routers import SimpleRouter

from tickets.views import TicketViewSet

router = SimpleRouter(use_regex_path=False)
router.register("tickets", TicketViewSet, basename="ticket")

urlpatterns = router.urls
