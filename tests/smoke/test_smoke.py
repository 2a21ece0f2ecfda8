def test_healthz_answers_ok(api):
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_alice_books_a_seat(alice_api, db):
    from tests.factories import make_ticket

    ticket = make_ticket(quantity=1)
    response = alice_api.post(f"/api/v1/tickets/{ticket.id}/reserve/")
    assert response.status_code == 201, response.content
    ticket.refresh_from_db()
    assert ticket.issued_count == 1
    again = alice_api.post(f"/api/v1/tickets/{ticket.id}/reserve/")
    assert again.status_code == 409
    assert again.json()["code"] == "already_reserved"
