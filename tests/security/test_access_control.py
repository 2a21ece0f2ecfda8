"""Who may see and change what: other users' reservations, staff endpoints, the admin, dead accounts."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from reservations.models import Reservation, ReservationStatus
from tests.factories import PASSWORD, access_token, make_ticket
from tests.servers import GunicornServer

TICKETS = "/api/v1/tickets/"
RESERVATIONS = "/api/v1/reservations/"


def _book(client: APIClient, ticket) -> str:
    response = client.post(f"{TICKETS}{ticket.pk}/reserve/")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_a_user_never_reads_another_users_reservation(alice_api, bob_api):
    reservation_id = _book(alice_api, make_ticket())

    response = bob_api.get(f"{RESERVATIONS}{reservation_id}/")

    assert response.status_code == 404
    assert set(response.json()) == {"detail"}
    assert alice_api.get(f"{RESERVATIONS}{reservation_id}/").status_code == 200


def test_a_user_never_cancels_another_users_reservation(alice_api, bob_api):
    ticket = make_ticket()
    reservation_id = _book(alice_api, ticket)

    response = bob_api.post(f"{RESERVATIONS}{reservation_id}/cancel/")

    assert response.status_code == 404
    assert Reservation.objects.get(pk=reservation_id).status == ReservationStatus.CONFIRMED
    ticket.refresh_from_db()
    assert ticket.issued_count == 1


@pytest.mark.parametrize("query", ["", "?status=confirmed", "?status=cancelled", "?page_size=100"])
def test_a_users_list_never_shows_another_users_reservations(alice_api, bob_api, query):
    alices = _book(alice_api, make_ticket(title="Alice's show"))
    alice_api.post(f"{RESERVATIONS}{alices}/cancel/")
    _book(alice_api, make_ticket(title="Alice's other show"))
    bobs = _book(bob_api, make_ticket(title="Bob's show"))

    listed = {item["id"] for item in bob_api.get(f"{RESERVATIONS}{query}").json()["results"]}

    assert listed == (set() if "cancelled" in query else {bobs})


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("post", "", {"title": "Mine now", "quantity": 5, "event_time": "2099-01-01T00:00:00Z"}),
        ("put", "{id}/", {"title": "Mine now", "quantity": 5, "event_time": "2099-01-01T00:00:00Z"}),
        ("patch", "{id}/", {"quantity": 1}),
        ("delete", "{id}/", None),
    ],
)
def test_a_non_staff_user_never_writes_tickets(alice_api, method, suffix, body):
    ticket = make_ticket(title="Original", quantity=10)

    response = getattr(alice_api, method)(TICKETS + suffix.format(id=ticket.pk), body, format="json")

    assert response.status_code == 403
    assert response.json()["detail"]
    ticket.refresh_from_db()
    assert (ticket.title, ticket.quantity) == ("Original", 10)
    assert not type(ticket).objects.exclude(pk=ticket.pk).exists()


def test_only_staff_list_a_tickets_reservations(api, alice_api, staff_api):
    ticket = make_ticket()
    _book(alice_api, ticket)
    path = f"{TICKETS}{ticket.pk}/reservations/"

    assert alice_api.get(path).status_code == 403
    assert api.get(path).status_code == 401
    assert staff_api.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/admin/", "/admin/tickets/ticket/", "/admin/accounts/user/"])
def test_a_non_staff_user_never_reaches_the_admin(alice, staff, path):
    client = APIClient()
    client.force_login(alice)

    response = client.get(path)

    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert response["Location"].startswith("/admin/login/")
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200


def test_a_deactivated_users_tokens_stop_working(api, alice):
    login = api.post("/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}, format="json")
    access, refresh = login.json()["access"], login.json()["refresh"]
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert api.get("/api/v1/auth/me/").status_code == 200

    alice.is_active = False
    alice.save()

    assert api.get("/api/v1/auth/me/").status_code == 401
    assert api.post(f"{TICKETS}{make_ticket().pk}/reserve/").status_code == 401
    api.credentials()
    assert api.post("/api/v1/auth/refresh/", {"refresh": refresh}, format="json").status_code == 401
    login_again = api.post("/api/v1/auth/login/", {"username": "alice", "password": PASSWORD}, format="json")
    assert login_again.status_code == 401


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_deactivation_reaches_the_tokens_another_process_has_cached(tmp_path, alice):
    token = access_token(alice)
    with GunicornServer(log_path=tmp_path / "gunicorn.log", AUTH_USER_CACHE_SECONDS="1") as server:
        assert server.request("GET", "/api/v1/auth/me/", token=token).status == 200

        User.objects.filter(pk=alice.pk).update(is_active=False)
        deadline = timezone.now() + timedelta(seconds=30)
        while (status := server.request("GET", "/api/v1/auth/me/", token=token).status) == 200:
            assert timezone.now() < deadline, "the server kept trusting a deactivated user"
            time.sleep(0.2)

    assert status == 401
