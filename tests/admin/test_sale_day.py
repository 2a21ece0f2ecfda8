"""Sale day in the ticket admin: live page, overview, controls, the history of staff changes, time zone."""

import ast
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.test.utils import override_settings
from django.utils import timezone
from django.utils.html import escape

from reservations.models import Reservation
from reservations.services import reservation_create
from tests.admin.test_ticket_admin import _submit
from tests.factories import make_ticket, make_user
from tests.reservations.helpers import reserve
from tests.reservations.waiting_room import join, room_ticket, settles, user_clients
from tickets.controls import CONTROLS
from tickets.models import Ticket

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/tickets/ticket/"
OVERVIEW = f"{CHANGELIST}live/"


def _live(ticket) -> str:
    return f"{CHANGELIST}{ticket.pk}/live/"


def _control(ticket, name: str) -> str:
    return f"{CHANGELIST}{ticket.pk}/control/{name}/"


def _confirm(client, ticket, name: str, data: dict | None = None, **kwargs):
    """Open a control's confirmation page, then send its form as the "Yes" button does."""
    page = client.get(_control(ticket, name), data or {})
    html = page.content.decode()
    seen = re.search(r'name="seen" value="([0-9a-f]+)"', html)
    confirm = re.search(r'name="confirm" value="([^"]+)"', html)
    assert seen and confirm, html
    return client.post(_control(ticket, name), {**(data or {}), "seen": seen[1], "confirm": confirm[1]}, **kwargs)


def _config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="ft-live-config" type="application/json">') + len(
        '<script id="ft-live-config" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def _history(ticket) -> list[tuple[str, int, str]]:
    entries = LogEntry.objects.filter(object_id=str(ticket.pk), content_type__model="ticket").order_by("action_time")
    return [(entry.user.username, entry.action_flag, entry.get_change_message()) for entry in entries]


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, message.message) for message in response.context["messages"]]


# The live page ----------------------------------------------------------------------------------


def test_live_page_shows_the_sale_with_its_numbers_and_controls(staff_client, alice):
    ticket = make_ticket(title="Opera night", quantity=4)
    reservation_create(user=alice, ticket_id=ticket.id)

    response = staff_client.get(_live(ticket))

    assert response.status_code == 200
    config = _config(response)
    assert config["salesUrl"] == f"/api/v1/tickets/{ticket.pk}/sales/"
    assert config["timeZone"] == "UTC"
    assert config["pollSeconds"] == 2
    assert (config["sales"]["issued_count"], config["sales"]["remaining"]) == (1, 3)
    assert len(config["sales"]["per_second"]) == 1
    html = response.content.decode()
    for control in ("pause", "resume", "waiting_room_on", "admit_per_minute", "quantity"):
        assert f'action="{_control(ticket, control)}"' in html, control
    assert "reservations/vendor/uplot/uPlot.iife.min.js" in html
    assert "https://" not in html.split("<body")[0], "the page head loads something from outside"


@pytest.mark.django_db(transaction=True)  # the ticket's mirror and its line are written in Redis on commit
def test_live_page_shows_the_waiting_rooms_counts_and_admission_rate(staff_client, staff_api):
    ticket = room_ticket(title="Queue night", quantity=3, admit_per_minute=6000, admission_seconds=45)
    fans = user_clients(6, "fan")
    for fan in fans:
        assert join(fan, ticket.pk).status_code == 201
    settles(staff_api, ticket.pk, {"waiting": 3, "admitted": 3, "booked": 0, "expired": 0})
    assert reserve(fans[0], ticket.pk).status_code == 201
    counts = {"waiting": 3, "admitted": 2, "booked": 1, "expired": 0}
    settles(staff_api, ticket.pk, counts)

    page = staff_client.get(_live(ticket))
    # What the page polls, with the admin session as its script sends it.
    polled = staff_client.get(_config(page)["salesUrl"], HTTP_ACCEPT="application/json")
    change = staff_client.get(f"{CHANGELIST}{ticket.pk}/change/")

    config = _config(page)
    assert (config["waitingRoom"], config["admitPerMinute"], config["admissionSeconds"]) == (True, 6000, 45)
    # The counts are drawn by sale-day.js from the rendered Sales, then from each poll's.
    assert config["sales"]["queue"] == counts
    assert polled.status_code == 200
    assert polled.json()["queue"] == counts
    html = page.content.decode()
    queue_card = html[html.index('aria-label="Waiting room"') : html.index('aria-label="Controls"')]
    for name in counts:
        assert f'<dt>{name}</dt><dd data-field="queue_{name}">' in queue_card, name
    assert "Admits <strong>6,000</strong> a minute, each for 45 s." in queue_card
    assert "3 waiting (sold_out too), 2 admitted, 1 booked, 0 expired" in change.content.decode()


def test_live_page_is_linked_from_the_change_page_and_the_list(staff_client):
    ticket = make_ticket()

    change = staff_client.get(f"{CHANGELIST}{ticket.pk}/change/").content.decode()
    listing = staff_client.get(CHANGELIST).content.decode()

    assert f'href="{_live(ticket)}"' in change
    assert f'href="{_live(ticket)}"' in listing
    assert f'href="{OVERVIEW}"' in listing


def test_live_page_of_an_unknown_ticket_goes_back_to_the_admin(staff_client):
    response = staff_client.get(f"{CHANGELIST}{uuid.uuid4()}/live/")

    assert response.status_code == 302


@pytest.mark.parametrize("path", [f"{CHANGELIST}{uuid.uuid4()}/live/", OVERVIEW, f"{OVERVIEW}data/"])
def test_non_staff_cannot_open_the_sale_day_pages(client, alice, path):
    client.force_login(alice)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# The overview -----------------------------------------------------------------------------------


def test_overview_lists_the_tickets_on_sale_now_and_opening_within_a_day(staff_client, alice):
    now = timezone.now()
    on_sale = make_ticket(title="On sale")
    sold_out = make_ticket(title="Sold out", quantity=1)
    reservation_create(user=alice, ticket_id=sold_out.id)
    opening = make_ticket(title="Opening", sale_starts_at=now + timedelta(hours=2))
    make_ticket(title="Far off", sale_starts_at=now + timedelta(days=3))
    make_ticket(title="Over", event_time=now - timedelta(hours=1))

    page = staff_client.get(OVERVIEW)
    data = staff_client.get(f"{OVERVIEW}data/").json()

    assert page.status_code == 200
    listed = {t["title"]: t for t in _config(page)["tickets"]}
    assert set(listed) == {"On sale", "Sold out", "Opening"}
    assert [t["title"] for t in data["tickets"]] == [t["title"] for t in _config(page)["tickets"]]
    assert listed["Sold out"]["sales"]["remaining"] == 0
    assert listed["Opening"]["saleStartsAt"] == opening.sale_starts_at.isoformat()
    assert listed["On sale"]["liveUrl"] == _live(on_sale)


# Controls: a confirmation that says what will happen, then ticket_update ------------------------


# Each control's confirmation: the ticket's fields as the control finds them, the value sent, what
# the page says, its rows (field, now, after as a pattern) and the button.
CONFIRMATIONS = {
    "pause": (
        {},
        30,
        "Every booking of “Gala” is refused with sale_not_open until ",
        [("sale starts at", "none (open from creation)", r"\d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d")],
        "Yes, pause for 30 minutes",
    ),
    "resume": (
        {"sale_starts_at": datetime(2031, 5, 4, 19, 30, 15, tzinfo=UTC)},
        None,
        "“Gala” takes bookings again from now on, first come, first served.",
        [("sale starts at", "4 May 2031, 19:30:15", r"\d{1,2} \w{3} \d{4}, \d\d:\d\d:\d\d \(now\)")],
        "Yes, open the sale now",
    ),
    "waiting_room_on": (
        {},
        None,
        "From now on, booking “Gala” needs an admission from its waiting room: buyers join the line and are "
        "admitted 600 a minute, each for 300 seconds. Bookings without one are refused with not_admitted.",
        [("waiting room", "off", "on")],
        "Yes, turn the waiting room on",
    ),
    "waiting_room_off": (
        {"waiting_room": True},
        None,
        "The waiting room of “Gala” ends: its places and admissions are gone, and everyone may book directly",
        [("waiting room", "on", "off")],
        "Yes, turn the waiting room off",
    ),
    "admit_per_minute": (
        {},
        1200,
        "The waiting room admits 1,200 places a minute from now on, instead of 600. It is off now: the rate "
        "applies once it is turned on.",
        [("admit per minute", "600", "1,200")],
        "Yes, admit 1,200 a minute",
    ),
    "quantity": (
        {},
        1500,
        "“Gala” gets 1,500 seats in all: 1,498 left to sell (more than the 0 left now). Buyers refused as sold out "
        "may book again.",
        [("quantity", "2", "1,500"), ("remaining", "0", "1,498")],
        "Yes, make it 1,500 seats",
    ),
}


def test_every_control_has_a_confirmation_test():
    assert set(CONFIRMATIONS) == set(CONTROLS)


@pytest.mark.parametrize("name", list(CONFIRMATIONS))
def test_every_control_first_says_what_it_will_do_with_the_values_now_and_after(staff_client, alice, bob, name):
    fields, value, says, rows, confirm = CONFIRMATIONS[name]
    ticket = make_ticket(title="Gala", quantity=2, event_time=datetime(2031, 6, 1, 20, 0, tzinfo=UTC))
    reservation_create(user=alice, ticket_id=ticket.id)
    reservation_create(user=bob, ticket_id=ticket.id)
    if fields:
        Ticket.objects.filter(pk=ticket.pk).update(**fields)
    stored = Ticket.objects.values().get(pk=ticket.pk)
    sent = {"next": _live(ticket)} | ({} if value is None else {"value": value})

    response = staff_client.get(_control(ticket, name), sent)

    assert response.status_code == 200
    html = response.content.decode()
    box = html[html.index('id="control-confirmation"') :]
    assert f'<p class="ft-confirm-says">{escape(says)}' in box
    for label, before, after in rows:
        cells = rf'<td>{re.escape(before)}</td><td class="ft-after">{after}</td>'
        row = rf'<tr><th scope="row">{re.escape(label)}</th>{cells}'
        assert re.search(row, box), f"no row {label}: {before} → {after}"
    assert f'name="confirm" value="{escape(confirm)}"' in box
    assert ('<input type="hidden" name="value"' in box) is (value is not None)
    assert f'href="{_live(ticket)}" class="button cancel-link">No, take me back' in box
    assert Ticket.objects.values().get(pk=ticket.pk) == stored
    assert not LogEntry.objects.exists()


def test_pausing_moves_the_sale_start_and_bookings_get_sale_not_open(staff_client, alice_api):
    ticket = make_ticket(title="Gala")
    before = timezone.now()

    response = _confirm(staff_client, ticket, "pause", {"value": 15, "next": _live(ticket)}, follow=True)

    assert response.redirect_chain[-1][0] == _live(ticket)
    assert ("success", "Paused the sale for 15 minutes.") in _messages(response)
    ticket.refresh_from_db()
    assert before + timedelta(minutes=15) - timedelta(seconds=1) <= ticket.sale_starts_at
    assert ticket.sale_starts_at <= timezone.now() + timedelta(minutes=15)
    refused = reserve(alice_api, ticket.id)
    assert (refused.status_code, refused.json()["code"]) == (409, "sale_not_open")
    ((who, flag, message),) = _history(ticket)
    assert (who, flag) == ("staff", CHANGE)
    assert message.startswith("Paused the sale for 15 minutes: sale starts at none → ")
    assert message.endswith(" UTC.")


def test_resuming_opens_the_sale_now(staff_client, alice_api):
    ticket = make_ticket(sale_starts_at=timezone.now() + timedelta(hours=1))

    _confirm(staff_client, ticket, "resume")

    ticket.refresh_from_db()
    assert ticket.sale_starts_at <= timezone.now()
    assert reserve(alice_api, ticket.id).status_code == 201
    assert _history(ticket)[0][2].startswith("Resumed the sale: sale starts at ")


def test_resuming_an_open_sale_says_so_and_changes_nothing(staff_client):
    ticket = make_ticket()

    page = staff_client.get(_control(ticket, "resume"))
    posted = staff_client.post(_control(ticket, "resume"), follow=True)

    assert "The sale is already open." in page.content.decode()
    assert "Yes," not in page.content.decode()
    assert ("error", "Not done: The sale is already open.") not in _messages(posted)
    assert Ticket.objects.get(pk=ticket.pk).sale_starts_at is None
    assert not LogEntry.objects.exists()


@pytest.mark.parametrize(("name", "value"), [("waiting_room_on", True), ("waiting_room_off", False)])
def test_the_waiting_room_control_turns_it_on_and_off(staff_client, name, value):
    ticket = make_ticket()
    Ticket.objects.filter(pk=ticket.pk).update(waiting_room=not value)

    page = staff_client.get(_control(ticket, name))
    _confirm(staff_client, ticket, name)

    assert ("needs an admission" if value else "everyone may book directly") in page.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).waiting_room is value
    assert _history(ticket)[0][2] == (
        f"Turned the waiting room {'on' if value else 'off'}: waiting room {'off → on' if value else 'on → off'}."
    )


def test_the_rate_and_quantity_controls_change_them(staff_client):
    ticket = make_ticket(quantity=10)

    _confirm(staff_client, ticket, "admit_per_minute", {"value": 1200})
    _confirm(staff_client, ticket, "quantity", {"value": 25})

    ticket.refresh_from_db()
    assert (ticket.admit_per_minute, ticket.quantity) == (1200, 25)
    assert [entry[2] for entry in _history(ticket)] == [
        "Changed the admission rate: admit per minute 600 → 1,200.",
        "Changed the quantity: quantity 10 → 25.",
    ]


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("quantity", 1, "Quantity cannot be below the 2 seats already issued."),
        ("quantity", 0, "greater than or equal to 1"),
        ("quantity", "many", "Enter a whole number."),
        ("admit_per_minute", 100_001, "less than or equal to 100000"),
        ("pause", "", "This field is required."),
        ("pause", 60 * 24 * 7, "pause for fewer minutes"),
    ],
)
def test_a_control_with_a_bad_value_says_why_and_stores_nothing(staff_client, alice, bob, name, value, error):
    ticket = make_ticket(quantity=5, event_time=timezone.now() + timedelta(days=2))
    reservation_create(user=alice, ticket_id=ticket.id)
    reservation_create(user=bob, ticket_id=ticket.id)
    stored = Ticket.objects.values().get(pk=ticket.pk)

    page = staff_client.get(_control(ticket, name), {"value": value})
    posted = staff_client.post(_control(ticket, name), {"value": value})

    assert page.status_code == posted.status_code == 200
    assert error in page.content.decode()
    assert error in posted.content.decode()
    assert 'name="confirm"' not in page.content.decode()
    assert Ticket.objects.values().get(pk=ticket.pk) == stored
    assert not LogEntry.objects.exists()


def test_a_control_goes_back_only_to_a_page_of_this_site(staff_client):
    ticket = make_ticket()

    response = _confirm(staff_client, ticket, "quantity", {"value": 11, "next": "https://evil.example/"})

    assert response["Location"] == f"{CHANGELIST}{ticket.pk}/change/"


def test_a_post_that_is_not_the_confirmation_shows_the_confirmation_and_changes_nothing(staff_client):
    ticket = make_ticket(quantity=10)

    unconfirmed = staff_client.post(_control(ticket, "quantity"), {"value": 25})
    unseen = staff_client.post(_control(ticket, "quantity"), {"value": 25, "confirm": "Yes"})

    for response in (unconfirmed, unseen):
        assert response.status_code == 200
        assert 'name="confirm"' in response.content.decode()
        assert "The ticket changed" not in response.content.decode()
    assert Ticket.objects.get(pk=ticket.pk).quantity == 10
    assert not LogEntry.objects.exists()


def test_a_confirmation_of_a_page_the_ticket_has_changed_since_asks_again(staff_client):
    ticket = make_ticket(quantity=10)
    page = staff_client.get(_control(ticket, "quantity"), {"value": 25}).content.decode()
    seen = re.search(r'name="seen" value="([0-9a-f]+)"', page)[1]
    # Another staff member changes the quantity while the page is open.
    Ticket.objects.filter(pk=ticket.pk).update(quantity=40)

    stale = staff_client.post(_control(ticket, "quantity"), {"value": 25, "seen": seen, "confirm": "Yes"})

    assert stale.status_code == 200
    html = stale.content.decode()
    assert "The ticket changed since that page was shown" in html
    assert "<td>40</td>" in html
    assert Ticket.objects.get(pk=ticket.pk).quantity == 40
    assert not LogEntry.objects.exists()
    _confirm(staff_client, ticket, "quantity", {"value": 25})
    assert Ticket.objects.get(pk=ticket.pk).quantity == 25


def test_a_booking_between_the_confirmation_page_and_its_yes_does_not_stop_the_change(staff_client, alice):
    ticket = make_ticket(quantity=10)
    page = staff_client.get(_control(ticket, "quantity"), {"value": 25}).content.decode()
    seen = re.search(r'name="seen" value="([0-9a-f]+)"', page)[1]
    # A live sale goes on while the page is open: the remaining seats change, the quantity does not.
    reservation_create(user=alice, ticket_id=ticket.id)

    staff_client.post(_control(ticket, "quantity"), {"value": 25, "seen": seen, "confirm": "Yes"})

    assert Ticket.objects.get(pk=ticket.pk).quantity == 25


def test_an_unknown_control_changes_nothing(staff_client):
    ticket = make_ticket()

    response = staff_client.post(_control(ticket, "delete_everything"))

    assert response.status_code == 302
    assert not LogEntry.objects.exists()


def test_a_staff_member_without_change_permission_cannot_use_the_controls(client):
    viewer = make_user("viewer", is_staff=True)
    client.force_login(viewer)
    ticket = make_ticket()

    response = client.post(_control(ticket, "quantity"), {"value": 11})

    assert response.status_code == 403
    assert Ticket.objects.get(pk=ticket.pk).quantity == 10


# The history of staff changes ---------------------------------------------------------------------


def test_a_change_through_the_form_is_logged_once_with_old_and_new_values(staff_client):
    ticket = make_ticket(
        title="Old", quantity=5, event_time=(timezone.now() + timedelta(days=9)).replace(microsecond=0)
    )

    response = _submit(staff_client, f"{CHANGELIST}{ticket.pk}/change/", title="New", quantity=7)

    assert response.status_code == 302
    assert _history(ticket) == [("staff", CHANGE, "Changed title Old → New; quantity 5 → 7.")]
    history = staff_client.get(f"{CHANGELIST}{ticket.pk}/history/").content.decode()
    assert "Changed title Old → New; quantity 5 → 7." in history


def test_staff_changes_through_the_api_are_logged_too(staff_api):
    created = staff_api.post(
        "/api/v1/tickets/",
        {"title": "API gala", "quantity": 3, "event_time": (timezone.now() + timedelta(days=3)).isoformat()},
        format="json",
    )
    ticket = Ticket.objects.get(pk=created.json()["id"])
    staff_api.patch(f"/api/v1/tickets/{ticket.pk}/", {"quantity": 9, "waiting_room": True}, format="json")
    staff_api.patch(f"/api/v1/tickets/{ticket.pk}/", {"quantity": 9}, format="json")
    staff_api.delete(f"/api/v1/tickets/{ticket.pk}/")

    assert _history(ticket) == [
        ("staff", ADDITION, "Added."),
        ("staff", CHANGE, "Changed quantity 3 → 9; waiting room off → on."),
        ("staff", DELETION, ""),
    ]


def test_a_refused_change_leaves_no_history(staff_api, alice):
    ticket = make_ticket(quantity=2)
    reservation_create(user=alice, ticket_id=ticket.id)

    response = staff_api.patch(f"/api/v1/tickets/{ticket.pk}/", {"quantity": 0}, format="json")
    below = staff_api.patch(f"/api/v1/tickets/{ticket.pk}/", {"sale_starts_at": "2100-01-01T00:00:00Z"}, format="json")

    assert response.status_code == below.status_code == 400
    assert not LogEntry.objects.exists()


# Readable at a glance -----------------------------------------------------------------------------


def test_the_list_shows_times_with_seconds(staff_client):
    make_ticket(event_time=datetime(2031, 5, 4, 19, 30, 15, tzinfo=UTC))

    html = staff_client.get(CHANGELIST).content.decode()

    assert '<td class="field-event_time nowrap">4 May 2031, 19:30:15</td>' in html


def test_the_admin_shows_times_in_django_time_zone_and_the_api_stays_in_utc(client, staff, api):
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    ticket = make_ticket(event_time=datetime(2031, 5, 4, 19, 30, 15, tzinfo=UTC))

    with override_settings(ADMIN_TIME_ZONE="Europe/Paris"):
        client.force_login(staff)
        html = client.get(CHANGELIST).content.decode()
        live = _config(client.get(_live(ticket)))
        api_time = api.get(f"/api/v1/tickets/{ticket.pk}/").json()["event_time"]

    assert '<td class="field-event_time nowrap">4 May 2031, 21:30:15</td>' in html
    assert live["timeZone"] == "Europe/Paris"
    assert api_time == "2031-05-04T19:30:15Z"


def test_an_unknown_time_zone_stops_the_settings_from_loading(monkeypatch):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    import fastticket.settings as project_settings

    monkeypatch.setenv("DJANGO_TIME_ZONE", "Mars/Olympus_Mons")
    with pytest.raises(ImproperlyConfigured, match="DJANGO_TIME_ZONE"):
        importlib.reload(project_settings)
    monkeypatch.delenv("DJANGO_TIME_ZONE")
    importlib.reload(project_settings)


def test_the_ticket_page_lists_only_its_latest_reservations(staff_client):
    ticket = make_ticket(quantity=60)
    users = [make_user() for _ in range(55)]
    for user in users:
        reservation_create(user=user, ticket_id=ticket.id)

    response = staff_client.get(f"{CHANGELIST}{ticket.pk}/change/")

    (inline,) = response.context["inline_admin_formsets"]
    shown = [form.instance for form in inline.formset.forms]
    newest = list(Reservation.objects.filter(ticket=ticket).order_by("-reserved_at", "-id")[:50])
    assert shown == newest


def test_the_tickets_app_imports_nothing_from_reservations():
    tickets = Path(__file__).resolve().parents[2] / "tickets"
    offenders = []
    for source in tickets.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{source.name}: {name}" for name in names if name.split(".")[0] == "reservations"]
    assert offenders == []
