"""The public catalogue: list, search, pages and one ticket's detail."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from reservations.services import reservation_create
from tests.factories import make_ticket

pytestmark = pytest.mark.django_db

LIST = "/api/v1/tickets/"
TICKET_FIELDS = {
    "id",
    "title",
    "quantity",
    "issued_count",
    "remaining",
    "sold_out",
    "event_time",
    "sale_starts_at",
    "waiting_room",
    "admit_per_minute",
    "admission_seconds",
    "created_at",
}


def _ids(response) -> list[str]:
    return [item["id"] for item in response.json()["results"]]


def test_list_is_public_and_ordered_by_event_time_then_id(api):
    now = timezone.now()
    late = make_ticket(title="Late", event_time=now + timedelta(days=9))
    same_time = now + timedelta(days=3)
    twins = [make_ticket(title=f"Twin {n}", event_time=same_time) for n in range(3)]
    early = make_ticket(title="Early", event_time=now + timedelta(days=1))

    response = api.get(LIST)

    assert response.status_code == 200
    expected = [early.id, *sorted(t.id for t in twins), late.id]
    assert _ids(response) == [str(pk) for pk in expected]


def test_list_page_has_count_next_previous_and_results(api):
    make_ticket()

    body = api.get(LIST).json()

    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 1
    assert body["next"] is None
    assert body["previous"] is None
    assert set(body["results"][0]) == TICKET_FIELDS


def test_search_keeps_titles_containing_the_text_ignoring_case(api):
    jazz = make_ticket(title="Late Night JAZZ")
    also = make_ticket(title="jazzfest")
    make_ticket(title="Rock opera")

    response = api.get(LIST, {"search": "Jazz"})

    assert response.status_code == 200
    assert sorted(_ids(response)) == sorted([str(jazz.id), str(also.id)])
    assert response.json()["count"] == 2


def test_search_without_a_match_answers_an_empty_page(api):
    make_ticket(title="Rock opera")

    body = api.get(LIST, {"search": "polka"}).json()

    assert body["count"] == 0
    assert body["results"] == []


def test_list_pages_hold_twenty_by_default(api):
    tickets = [make_ticket(title=f"Show {n}") for n in range(25)]

    first = api.get(LIST).json()
    second = api.get(first["next"]).json()

    assert first["count"] == 25
    assert len(first["results"]) == 20
    assert "page=2" in first["next"]
    assert len(second["results"]) == 5
    assert second["next"] is None
    assert second["previous"] is not None
    listed = [item["id"] for item in first["results"] + second["results"]]
    assert sorted(listed) == sorted(str(t.id) for t in tickets)


def test_page_size_is_honoured_up_to_100_and_capped_above(api):
    for n in range(105):
        make_ticket(title=f"Show {n}")

    assert len(api.get(LIST, {"page_size": 7}).json()["results"]) == 7
    assert len(api.get(LIST, {"page_size": 100}).json()["results"]) == 100
    capped = api.get(LIST, {"page_size": 1000})
    assert capped.status_code == 200
    assert len(capped.json()["results"]) == 100


def test_page_past_the_end_answers_404_json(api):
    make_ticket()

    response = api.get(LIST, {"page": 2})

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


def test_detail_shows_every_field_with_counts(api, alice):
    sale = timezone.now() - timedelta(hours=1)
    ticket = make_ticket(title="Opera", quantity=3, sale_starts_at=sale)
    reservation_create(user=alice, ticket_id=ticket.id)

    response = api.get(f"{LIST}{ticket.id}/")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == TICKET_FIELDS
    assert body["id"] == str(ticket.id)
    assert body["title"] == "Opera"
    assert (body["quantity"], body["issued_count"], body["remaining"], body["sold_out"]) == (3, 1, 2, False)
    assert body["event_time"] is not None
    assert body["sale_starts_at"] is not None
    assert body["created_at"] is not None


def test_detail_of_a_sold_out_ticket_says_sold_out(api, alice):
    ticket = make_ticket(quantity=1)
    reservation_create(user=alice, ticket_id=ticket.id)

    body = api.get(f"{LIST}{ticket.id}/").json()

    assert (body["remaining"], body["sold_out"]) == (0, True)


def test_unknown_ticket_id_answers_404_json(api):
    response = api.get(f"{LIST}{uuid.uuid4()}/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "0f0f0f0f-zzzz-0000-0000-000000000000"])
def test_malformed_ticket_id_answers_404_json(api, bad_id):
    response = api.get(f"{LIST}{bad_id}/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()
