"""The reservations admin: read-only lists, filters, search, and "cancel selected" through the service."""

import uuid
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError
from django.utils import timezone

from accounts.models import User
from reservations.models import Reservation, ReservationStatus
from reservations.services import reservation_cancel, reservation_create
from tests.factories import make_ticket
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/reservations/reservation/"


@pytest.fixture
def bookings(alice, bob):
    """alice holds seats of Opera and Ballet; bob cancelled his seat of Opera."""
    opera = make_ticket(title="Opera", quantity=5)
    ballet = make_ticket(title="Ballet", quantity=5)
    alice_opera = reservation_create(user=alice, ticket_id=opera.id)
    alice_ballet = reservation_create(user=alice, ticket_id=ballet.id)
    bob_opera = reservation_create(user=bob, ticket_id=opera.id)
    reservation_cancel(user=bob, reservation_id=bob_opera.id)
    return {
        "opera": opera,
        "ballet": ballet,
        "alice_opera": alice_opera,
        "alice_ballet": alice_ballet,
        "bob_opera": bob_opera,
    }


def _listed(response) -> set:
    assert response.status_code == 200
    return {reservation.pk for reservation in response.context["cl"].result_list}


def test_changelist_lists_every_reservation_with_user_ticket_and_status(staff_client, bookings):
    response = staff_client.get(CHANGELIST)

    html = response.content.decode()
    assert _listed(response) == {bookings[k].pk for k in ("alice_opera", "alice_ballet", "bob_opera")}
    for column in ("user", "ticket", "status", "reserved_at", "cancelled_at"):
        assert f"column-{column}" in html, column


def test_changelist_filters_by_status(staff_client, bookings):
    confirmed = staff_client.get(CHANGELIST, {"status__exact": "confirmed"})
    cancelled = staff_client.get(CHANGELIST, {"status__exact": "cancelled"})

    assert _listed(confirmed) == {bookings["alice_opera"].pk, bookings["alice_ballet"].pk}
    assert _listed(cancelled) == {bookings["bob_opera"].pk}


def test_changelist_filters_by_ticket(staff_client, bookings):
    response = staff_client.get(CHANGELIST, {"ticket__id__exact": str(bookings["ballet"].pk)})

    assert _listed(response) == {bookings["alice_ballet"].pk}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("BOB", {"bob_opera"}),
        ("alice@example.com", {"alice_opera", "alice_ballet"}),
        ("ballet", {"alice_ballet"}),
    ],
)
def test_changelist_searches_by_username_email_and_ticket_title(staff_client, bookings, query, expected):
    response = staff_client.get(CHANGELIST, {"q": query})

    assert _listed(response) == {bookings[k].pk for k in expected}


def test_reservation_page_is_read_only(staff_client, bookings):
    reservation = bookings["alice_opera"]
    url = f"{CHANGELIST}{reservation.pk}/change/"

    page = staff_client.get(url)
    staff_client.post(url, {"status": "cancelled"})

    assert page.status_code == 200
    assert 'name="status"' not in page.content.decode()
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    assert staff_client.post(f"{CHANGELIST}{reservation.pk}/delete/", {"post": "yes"}).status_code == 403
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED


def _cancel_selected(client, *reservations, confirm: bool = True, **extra):
    data = {"action": "cancel_selected", "_selected_action": [str(r.pk) for r in reservations], "index": "0"}
    if confirm:
        data["post"] = "yes"
    return client.post(CHANGELIST, data, follow=True, **extra)


def _history(obj) -> list[tuple[str, str]]:
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(type(obj)), object_id=str(obj.pk)
    ).order_by("action_time")
    return [(entry.user.username, entry.get_change_message()) for entry in entries]


def test_cancel_selected_first_lists_the_customers_and_seats_and_cancels_nothing(staff_client, bookings):
    selected = [bookings[k] for k in ("alice_opera", "alice_ballet", "bob_opera")]

    response = _cancel_selected(staff_client, *selected, confirm=False)

    html = response.content.decode()
    assert response.status_code == 200
    assert response.templates[0].name == "admin/reservations/reservation/cancel_selected_confirmation.html"
    assert "2 customers will lose their seats" in html
    for reservation in (bookings["alice_opera"], bookings["alice_ballet"]):
        assert str(reservation.pk) in html
    assert "alice@example.com" in html
    assert "Opera" in html and "Ballet" in html
    # bob's seat is already cancelled: listed apart, left as it is.
    assert "Left as they are (already cancelled)" in html
    assert str(bookings["bob_opera"].pk) in html
    assert 'value="Yes, cancel 2 reservations"' in html
    assert set(Reservation.objects.values_list("status", flat=True)) == {"confirmed", "cancelled"}
    assert Reservation.objects.filter(status=ReservationStatus.CONFIRMED).count() == 2
    assert not LogEntry.objects.exists()


def test_cancel_selected_cancels_confirmed_reservations_through_the_service(staff_client, bookings):
    opera, ballet = bookings["opera"], bookings["ballet"]
    selected = [bookings[k] for k in ("alice_opera", "alice_ballet", "bob_opera")]

    response = _cancel_selected(staff_client, *selected)

    assert response.status_code == 200
    # Listed in event order: Opera was made first, so its event comes first.
    assert "Cancelled 2 reservation(s): alice (Opera), alice (Ballet)." in response.content.decode()
    statuses = set(Reservation.objects.filter(pk__in=[r.pk for r in selected]).values_list("status", flat=True))
    assert statuses == {ReservationStatus.CANCELLED}
    opera.refresh_from_db()
    ballet.refresh_from_db()
    assert (opera.issued_count, ballet.issued_count) == (0, 0)


def test_cancel_selected_leaves_a_history_entry_naming_the_staff_member_and_the_customer(staff_client, bookings):
    seat = bookings["alice_opera"]

    _cancel_selected(staff_client, seat)

    (entry,) = _history(seat)
    assert entry[0] == "staff"
    assert "alice <alice@example.com>" in entry[1]
    assert "went back on sale" in entry[1]
    (ticket_entry,) = _history(bookings["opera"])
    assert ticket_entry[0] == "staff"
    assert str(seat.pk) in ticket_entry[1]
    history = staff_client.get(f"{CHANGELIST}{seat.pk}/history/")
    assert "alice &lt;alice@example.com&gt;" in history.content.decode()


def test_cancel_selected_frees_the_seat_for_someone_else(staff_client, alice_api, bob):
    ticket = make_ticket(quantity=1)
    seat = reservation_create(user=bob, ticket_id=ticket.id)
    assert alice_api.post(f"/api/v1/tickets/{ticket.id}/reserve/").json()["code"] == "sold_out"

    _cancel_selected(staff_client, seat)

    assert alice_api.post(f"/api/v1/tickets/{ticket.id}/reserve/").status_code == 201
    ticket.refresh_from_db()
    assert ticket.issued_count == 1


def test_cancel_selected_reports_a_reservation_whose_event_has_started(staff_client, alice):
    ticket = make_ticket(quantity=2)
    seat = reservation_create(user=alice, ticket_id=ticket.id)
    Ticket.objects.filter(pk=ticket.pk).update(event_time=timezone.now() - timedelta(minutes=1))

    response = _cancel_selected(staff_client, seat)

    html = response.content.decode()
    assert "The sale for this ticket has closed" in html
    assert '<li class="warning">No reservation was cancelled.</li>' in html
    assert "success" not in [m.level_tag for m in response.context["messages"]]
    seat.refresh_from_db()
    assert seat.status == ReservationStatus.CONFIRMED
    assert not LogEntry.objects.exists()


def test_cancel_selected_of_only_cancelled_reservations_is_a_warning(staff_client, bookings):
    page = _cancel_selected(staff_client, bookings["bob_opera"], confirm=False)
    response = _cancel_selected(staff_client, bookings["bob_opera"])

    assert "there is nothing to cancel" in page.content.decode()
    assert "Yes, cancel" not in page.content.decode()
    assert [(m.level_tag, m.message) for m in response.context["messages"]] == [
        ("warning", "No reservation was cancelled.")
    ]


def test_non_staff_user_cannot_cancel_through_the_admin(client, alice, bob):
    ticket = make_ticket()
    seat = reservation_create(user=bob, ticket_id=ticket.id)
    client.force_login(alice)

    response = client.post(CHANGELIST, {"action": "cancel_selected", "_selected_action": [str(seat.pk)]})

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    seat.refresh_from_db()
    assert seat.status == ReservationStatus.CONFIRMED


@pytest.mark.django_db(transaction=True)  # the history's foreign key to the staff member is checked at COMMIT
def test_a_staff_cancel_commits_with_its_history_entries_or_not_at_all(alice):
    ticket = make_ticket(quantity=2)
    seat = reservation_create(user=alice, ticket_id=ticket.id)
    gone = User(pk=uuid.uuid4(), username="gone")  # a staff member deleted meanwhile: no entry can name them

    with pytest.raises(IntegrityError):
        reservation_cancel(user=alice, reservation_id=seat.pk, by=gone)

    seat.refresh_from_db()
    ticket.refresh_from_db()
    assert (seat.status, ticket.issued_count) == (ReservationStatus.CONFIRMED, 1)
    assert not LogEntry.objects.exists()
