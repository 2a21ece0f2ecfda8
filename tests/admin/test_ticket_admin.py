"""The ticket admin for sale day: the changelist, the form's rules, deleting, the reservations inline."""

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from django.utils import timezone

from reservations.services import reservation_cancel, reservation_create
from tests.factories import make_ticket
from tickets.models import ADMISSION_SECONDS_RANGE, ADMIT_PER_MINUTE_RANGE, Ticket

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/tickets/ticket/"
ADD = f"{CHANGELIST}add/"
DATETIME_FIELDS = {"event_time", "sale_starts_at"}


class _FormInputs(HTMLParser):
    """Collect the named inputs of a page as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs) -> None:
        attributes = dict(attrs)
        if tag == "input" and attributes.get("name") and attributes.get("type") != "submit":
            self.values[attributes["name"]] = attributes.get("value") or ""


def _split(name: str, value: datetime | None) -> dict[str, str]:
    if value is None:
        return {f"{name}_0": "", f"{name}_1": ""}
    value = value.astimezone(UTC)
    return {f"{name}_0": value.strftime("%Y-%m-%d"), f"{name}_1": value.strftime("%H:%M:%S")}


def _submit(client, url: str, **changes):
    """Open the form at `url`, fill in `changes` as a browser user would, and save it."""
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    inputs = _FormInputs()
    inputs.feed(page.content.decode())
    data = inputs.values
    for name, value in changes.items():
        data.update(_split(name, value) if name in DATETIME_FIELDS else {name: str(value)})
    return client.post(url, data)


def _change_url(ticket) -> str:
    return f"{CHANGELIST}{ticket.pk}/change/"


def _whole_seconds(delta: timedelta) -> datetime:
    return (timezone.now() + delta).replace(microsecond=0)


def _results(response) -> list[Ticket]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def _form_errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code
    assert "adminform" in response.context, "not a form page"
    return {name: list(messages) for name, messages in response.context["adminform"].form.errors.items()}


def _status_cell(label: str) -> str:
    key = label.lower().replace(" ", "_")
    return f'<td class="field-sale_status_display"><span class="ft-status ft-status-{key}">{label}</span></td>'


def _sell(ticket: Ticket, *users) -> None:
    for user in users:
        reservation_create(user=user, ticket_id=ticket.id)


# The changelist ---------------------------------------------------------------------------------


def test_changelist_shows_the_sale_day_columns(staff_client, alice):
    ticket = make_ticket(title="Opera night", quantity=4)
    _sell(ticket, alice)

    response = staff_client.get(CHANGELIST)

    html = response.content.decode()
    for column in (
        "title",
        "event_time",
        "sale_starts_at",
        "quantity_shown",
        "issued_count_shown",
        "remaining_shown",
        "percent_sold",
        "sale_status_display",
    ):
        assert f"column-{column}" in html, column
    assert "Opera night" in html
    assert '<td class="field-quantity_shown">4</td>' in html
    assert '<td class="field-issued_count_shown">1</td>' in html
    assert '<td class="field-remaining_shown">3</td>' in html
    assert '<td class="field-percent_sold">25.0%</td>' in html
    assert _status_cell("On sale") in html


def test_changelist_counts_have_thousands_separators_and_sort_as_numbers(staff_client, alice):
    # The stadium's event comes first, so only the quantity's order puts the club first.
    big = make_ticket(title="Stadium", quantity=12_500, event_time=timezone.now() + timedelta(days=2))
    small = make_ticket(title="Club", quantity=900, event_time=timezone.now() + timedelta(days=3))
    _sell(big, alice)

    response = staff_client.get(CHANGELIST, {"o": "4"})  # the fourth column, quantity, ascending

    html = response.content.decode()
    assert '<td class="field-quantity_shown">12,500</td>' in html
    assert '<td class="field-issued_count_shown">1</td>' in html
    assert '<td class="field-remaining_shown">12,499</td>' in html
    assert [ticket.pk for ticket in response.context["cl"].result_list] == [small.pk, big.pk]


def test_changelist_searches_by_title(staff_client):
    jazz = make_ticket(title="Late Night Jazz")
    make_ticket(title="Rock opera")

    assert _results(staff_client.get(CHANGELIST, {"q": "jazz"})) == [jazz]


@pytest.fixture
def tickets_in_every_state(alice):
    now = timezone.now()
    sold_out = make_ticket(title="Sold out", quantity=1)
    _sell(sold_out, alice)
    return {
        "upcoming": make_ticket(title="Upcoming", sale_starts_at=now + timedelta(days=1)),
        "on_sale": make_ticket(title="On sale", sale_starts_at=now - timedelta(days=1)),
        "sold_out": sold_out,
        "closed": make_ticket(title="Closed", event_time=now - timedelta(hours=1)),
    }


@pytest.mark.parametrize("status", ["upcoming", "on_sale", "sold_out", "closed"])
def test_changelist_filters_by_sale_status(staff_client, tickets_in_every_state, status):
    response = staff_client.get(CHANGELIST, {"sale_status": status})

    assert _results(response) == [tickets_in_every_state[status]]


def test_changelist_shows_each_sale_status_label(staff_client, tickets_in_every_state):
    html = staff_client.get(CHANGELIST).content.decode()

    for label in ("Upcoming", "On sale", "Sold out", "Closed"):
        assert _status_cell(label) in html


def test_changelist_filters_upcoming_and_past_events(staff_client, tickets_in_every_state):
    past = _results(staff_client.get(CHANGELIST, {"when": "past"}))
    upcoming = _results(staff_client.get(CHANGELIST, {"when": "upcoming"}))

    assert past == [tickets_in_every_state["closed"]]
    assert set(upcoming) == {tickets_in_every_state[s] for s in ("upcoming", "on_sale", "sold_out")}


def test_changelist_has_a_date_hierarchy_on_event_time(staff_client):
    this_year = make_ticket(title="Soon", event_time=timezone.now() + timedelta(days=2))
    make_ticket(title="Far", event_time=timezone.now() + timedelta(days=800))

    response = staff_client.get(CHANGELIST)
    drilled = staff_client.get(CHANGELIST, {"event_time__year": this_year.event_time.year})

    assert response.context["cl"].date_hierarchy == "event_time"
    assert '<nav class="toplinks">' in response.content.decode()
    assert this_year in _results(drilled)
    assert "Far" not in [t.title for t in _results(drilled)]


# Adding and changing ----------------------------------------------------------------------------


def _new_ticket(**changes) -> dict:
    return {"title": "Gala", "quantity": 10, "event_time": _whole_seconds(timedelta(days=10)), **changes}


def test_add_form_opens(staff_client):
    response = staff_client.get(ADD)

    assert response.status_code == 200
    assert "issued_count" not in response.context["adminform"].form.fields


def test_staff_adds_a_ticket_through_the_form(staff_client):
    event_time = _whole_seconds(timedelta(days=12))
    sale = _whole_seconds(timedelta(days=1))

    response = _submit(
        staff_client, ADD, title="New year gala", quantity=300, event_time=event_time, sale_starts_at=sale
    )

    assert response.status_code == 302, _form_errors(response)
    ticket = Ticket.objects.get()
    assert (ticket.title, ticket.quantity, ticket.issued_count) == ("New year gala", 300, 0)
    assert (ticket.event_time, ticket.sale_starts_at) == (event_time, sale)


def test_staff_changes_a_ticket_through_the_form(staff_client, alice, bob):
    ticket = make_ticket(title="Old", quantity=5, event_time=_whole_seconds(timedelta(days=9)))
    _sell(ticket, alice, bob)
    reservation_cancel(user=bob, reservation_id=ticket.reservations.get(user=bob).id)

    response = _submit(staff_client, _change_url(ticket), title="New", quantity=7)

    assert response.status_code == 302, _form_errors(response)
    ticket.refresh_from_db()
    assert (ticket.title, ticket.quantity, ticket.issued_count) == ("New", 7, 1)
    statuses = dict(ticket.reservations.values_list("user__username", "status"))
    assert statuses == {"alice": "confirmed", "bob": "cancelled"}


def test_issued_count_is_read_only_in_the_form(staff_client, alice):
    ticket = make_ticket(quantity=5, event_time=_whole_seconds(timedelta(days=9)))
    _sell(ticket, alice)

    response = _submit(staff_client, _change_url(ticket), title="Renamed", issued_count=4)

    assert response.status_code == 302, _form_errors(response)
    ticket.refresh_from_db()
    assert (ticket.title, ticket.issued_count) == ("Renamed", 1)


def test_inline_reservation_fields_posted_by_hand_change_nothing(staff_client, alice):
    ticket = make_ticket(quantity=5, event_time=_whole_seconds(timedelta(days=9)))
    _sell(ticket, alice)

    response = _submit(
        staff_client, _change_url(ticket), **{"reservations-0-status": "cancelled", "reservations-0-user": ""}
    )

    assert response.status_code == 302, _form_errors(response)
    ticket.refresh_from_db()
    assert ticket.issued_count == 1
    assert ticket.reservations.get().status == "confirmed"


def test_quantity_below_issued_count_shows_the_rule_on_the_form(staff_client, alice, bob):
    ticket = make_ticket(quantity=5, event_time=_whole_seconds(timedelta(days=9)))
    _sell(ticket, alice, bob)

    response = _submit(staff_client, _change_url(ticket), quantity=1)

    assert _form_errors(response) == {"quantity": ["Quantity cannot be below the 2 seats already issued."]}
    assert "Quantity cannot be below the 2 seats already issued." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.quantity == 5


def test_past_event_time_on_add_shows_the_rule_on_the_form(staff_client):
    response = _submit(staff_client, ADD, **_new_ticket(event_time=_whole_seconds(timedelta(hours=-1))))

    assert _form_errors(response) == {"event_time": ["The event time must be in the future."]}
    assert "The event time must be in the future." in response.content.decode()
    assert not Ticket.objects.exists()


def test_moving_the_event_into_the_past_shows_the_rule_on_the_form(staff_client):
    ticket = make_ticket(event_time=_whole_seconds(timedelta(days=9)))

    response = _submit(staff_client, _change_url(ticket), event_time=_whole_seconds(-timedelta(days=1)))

    assert _form_errors(response) == {"event_time": ["The event time must be in the future."]}
    ticket.refresh_from_db()
    assert ticket.event_time > timezone.now()


def test_renaming_a_past_event_through_the_form_is_accepted(staff_client):
    ticket = make_ticket(title="Old", event_time=_whole_seconds(-timedelta(days=1)))

    response = _submit(staff_client, _change_url(ticket), title="Archived")

    assert response.status_code == 302, _form_errors(response)
    ticket.refresh_from_db()
    assert ticket.title == "Archived"


def test_renaming_a_past_event_whose_time_has_microseconds_is_accepted(staff_client):
    event_time = timezone.now().replace(microsecond=123456) - timedelta(days=1)
    ticket = make_ticket(title="Old", event_time=event_time)

    response = _submit(staff_client, _change_url(ticket), title="Archived")

    assert response.status_code == 302, _form_errors(response)
    ticket.refresh_from_db()
    assert (ticket.title, ticket.event_time) == ("Archived", event_time)


@pytest.mark.parametrize("after", [timedelta(0), timedelta(hours=1)])
def test_sale_start_not_before_the_event_shows_the_rule_on_the_form(staff_client, after):
    event_time = _whole_seconds(timedelta(days=5))

    response = _submit(staff_client, ADD, **_new_ticket(event_time=event_time, sale_starts_at=event_time + after))

    assert _form_errors(response) == {"sale_starts_at": ["The sale must start before the event time."]}
    assert "The sale must start before the event time." in response.content.decode()
    assert not Ticket.objects.exists()


def test_moving_the_sale_start_after_the_event_shows_the_rule_on_the_form(staff_client):
    ticket = make_ticket(event_time=_whole_seconds(timedelta(days=5)))

    response = _submit(staff_client, _change_url(ticket), sale_starts_at=_whole_seconds(timedelta(days=6)))

    assert _form_errors(response) == {"sale_starts_at": ["The sale must start before the event time."]}
    ticket.refresh_from_db()
    assert ticket.sale_starts_at is None


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001, "ten"])
def test_quantity_out_of_range_shows_a_message_on_the_quantity_field(staff_client, quantity):
    ticket = make_ticket(quantity=5, event_time=_whole_seconds(timedelta(days=9)))

    response = _submit(staff_client, _change_url(ticket), quantity=quantity)

    assert list(_form_errors(response)) == ["quantity"]
    assert "Please correct the error below." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.quantity == 5


@pytest.mark.parametrize(("field", "value"), [("quantity", 0), ("quantity", "ten"), ("title", "")])
def test_add_form_with_a_bad_value_shows_the_error(staff_client, field, value):
    response = _submit(staff_client, ADD, **_new_ticket(**{field: value}))

    assert list(_form_errors(response)) == [field]
    assert not Ticket.objects.exists()


# The waiting room's fields ----------------------------------------------------------------------

WAITING_ROOM_FIELDS = ("waiting_room", "admit_per_minute", "admission_seconds")
OUT_OF_BOUNDS = [
    ("admit_per_minute", ADMIT_PER_MINUTE_RANGE[0] - 1),
    ("admit_per_minute", ADMIT_PER_MINUTE_RANGE[1] + 1),
    ("admission_seconds", ADMISSION_SECONDS_RANGE[0] - 1),
    ("admission_seconds", ADMISSION_SECONDS_RANGE[1] + 1),
]


def _waiting_room(ticket: Ticket) -> tuple[bool, int, int]:
    return ticket.waiting_room, ticket.admit_per_minute, ticket.admission_seconds


def test_add_form_shows_the_waiting_room_fields_with_their_defaults(staff_client):
    response = staff_client.get(ADD)

    form = response.context["adminform"].form
    html = response.content.decode()
    for name in WAITING_ROOM_FIELDS:
        assert name in form.fields, name
        assert f'name="{name}"' in html, name
    assert 'type="checkbox" name="waiting_room"' in html
    assert (form["admit_per_minute"].value(), form["admission_seconds"].value()) == (600, 300)


@pytest.mark.parametrize(
    ("admit_per_minute", "admission_seconds"),
    [(120, 90), (ADMIT_PER_MINUTE_RANGE[0], ADMISSION_SECONDS_RANGE[0])],
    ids=["inside", "lowest"],
)
def test_staff_adds_a_ticket_with_a_waiting_room_through_the_form(staff_client, admit_per_minute, admission_seconds):
    changes = {"waiting_room": "on", "admit_per_minute": admit_per_minute, "admission_seconds": admission_seconds}

    response = _submit(staff_client, ADD, **_new_ticket(**changes))

    assert response.status_code == 302, _form_errors(response)
    assert _waiting_room(Ticket.objects.get()) == (True, admit_per_minute, admission_seconds)


def test_the_highest_waiting_room_values_are_saved_through_the_change_form(staff_client):
    ticket = make_ticket(event_time=_whole_seconds(timedelta(days=9)))
    high = (ADMIT_PER_MINUTE_RANGE[1], ADMISSION_SECONDS_RANGE[1])

    response = _submit(staff_client, _change_url(ticket), admit_per_minute=high[0], admission_seconds=high[1])

    assert response.status_code == 302, _form_errors(response)
    ticket.refresh_from_db()
    assert _waiting_room(ticket) == (False, *high)


@pytest.mark.parametrize(("field", "value"), OUT_OF_BOUNDS)
def test_a_waiting_room_value_out_of_bounds_on_add_is_a_form_error_and_stores_nothing(staff_client, field, value):
    response = _submit(staff_client, ADD, **_new_ticket(waiting_room="on", **{field: value}))

    assert list(_form_errors(response)) == [field]
    assert "Please correct the error below." in response.content.decode()
    assert not Ticket.objects.exists()


@pytest.mark.parametrize(("field", "value"), OUT_OF_BOUNDS)
def test_a_waiting_room_value_out_of_bounds_on_change_is_a_form_error_and_changes_nothing(staff_client, field, value):
    ticket = make_ticket(event_time=_whole_seconds(timedelta(days=9)))
    stored = _waiting_room(ticket)

    response = _submit(staff_client, _change_url(ticket), title="Renamed", **{field: value})

    assert list(_form_errors(response)) == [field]
    ticket.refresh_from_db()
    assert (ticket.title, _waiting_room(ticket)) == ("Concert", stored)


# Deleting ---------------------------------------------------------------------------------------


@pytest.fixture
def booked_ticket(alice, bob):
    """A ticket with one confirmed and one cancelled reservation."""
    ticket = make_ticket(title="Booked")
    _sell(ticket, alice, bob)
    reservation = ticket.reservations.get(user=bob)
    reservation_cancel(user=bob, reservation_id=reservation.id)
    return ticket


def test_delete_view_refuses_a_ticket_with_reservations(staff_client, booked_ticket):
    url = f"{CHANGELIST}{booked_ticket.pk}/delete/"

    page = staff_client.get(url)
    response = staff_client.post(url, {"post": "yes"})

    assert page.status_code == 200
    assert "protected related objects" in page.content.decode()
    assert "alice - Booked (confirmed)" in page.content.decode()
    assert "bob - Booked (cancelled)" in page.content.decode()
    assert response.status_code == 200
    assert "protected related objects" in response.content.decode()
    assert Ticket.objects.filter(pk=booked_ticket.pk).exists()


def test_delete_view_refuses_a_ticket_with_only_cancelled_reservations(staff_client, alice):
    ticket = make_ticket()
    _sell(ticket, alice)
    reservation_cancel(user=alice, reservation_id=ticket.reservations.get().id)

    response = staff_client.post(f"{CHANGELIST}{ticket.pk}/delete/", {"post": "yes"})

    assert response.status_code == 200
    assert "protected related objects" in response.content.decode()
    assert Ticket.objects.filter(pk=ticket.pk).exists()


def test_delete_view_deletes_a_ticket_without_reservations(staff_client):
    ticket = make_ticket(title="Unsold")

    response = staff_client.post(f"{CHANGELIST}{ticket.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Ticket.objects.filter(pk=ticket.pk).exists()


def _delete_selected(client, *tickets):
    return client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [str(t.pk) for t in tickets], "post": "yes"},
        follow=True,
    )


def test_delete_selected_refuses_tickets_with_reservations(staff_client, booked_ticket):
    unsold = make_ticket(title="Unsold")

    response = _delete_selected(staff_client, booked_ticket, unsold)

    assert response.status_code == 200
    assert "protected related objects" in response.content.decode()
    assert Ticket.objects.filter(pk__in=[booked_ticket.pk, unsold.pk]).count() == 2


def test_delete_selected_deletes_tickets_without_reservations(staff_client):
    unsold = [make_ticket(title=f"Unsold {n}") for n in range(2)]

    response = _delete_selected(staff_client, *unsold)

    assert response.status_code == 200
    assert "Successfully deleted 2 tickets." in response.content.decode()
    assert not Ticket.objects.exists()


# The reservations inline ------------------------------------------------------------------------


def test_ticket_page_lists_its_reservations_read_only_with_the_user(staff_client, booked_ticket):
    response = staff_client.get(_change_url(booked_ticket))

    html = response.content.decode()
    (inline,) = response.context["inline_admin_formsets"]
    assert not inline.has_change_permission
    assert not inline.has_add_permission
    assert not inline.has_delete_permission
    assert "alice" in html
    assert "bob" in html
    assert "Confirmed" in html
    assert "Cancelled" in html
    assert 'name="reservations-0-status"' not in html
    assert 'name="reservations-0-user"' not in html


# Who may enter ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/", CHANGELIST, "/admin/reservations/reservation/"])
def test_non_staff_user_cannot_reach_the_admin(client, alice, path):
    client.force_login(alice)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_anonymous_visitor_is_sent_to_the_admin_login(client):
    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_ticket_page_shows_its_waiting_room_counts(staff_client, alice):
    from reservations.services import queue_join
    from tickets.models import Ticket

    ticket = make_ticket(quantity=5)
    Ticket.objects.filter(pk=ticket.pk).update(waiting_room=True, queue_generation=1, sale_version=1)
    queue_join(user=alice, ticket_id=ticket.pk)

    html = staff_client.get(f"/admin/tickets/ticket/{ticket.pk}/change/").content.decode()

    assert "waiting room now" in html.lower()
    assert "1 admitted" in html or "1 waiting" in html
