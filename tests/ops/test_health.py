"""/healthz in process (API.md, Operations); /readyz runs under gunicorn in test_probes_under_gunicorn."""

HOST_OUTSIDE_ALLOWED_HOSTS = "10.9.8.7:8000"


def test_healthz_answers_200_status_ok(api):
    response = api.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_healthz_answers_head(api):
    assert api.head("/healthz").status_code == 200


def test_healthz_answers_a_host_outside_allowed_hosts(api, settings):
    assert HOST_OUTSIDE_ALLOWED_HOSTS.split(":")[0] not in settings.ALLOWED_HOSTS

    response = api.get("/healthz", HTTP_HOST=HOST_OUTSIDE_ALLOWED_HOSTS)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_needs_no_auth_and_ignores_a_bad_token(api):
    response = api.get("/healthz", HTTP_AUTHORIZATION="Bearer not-a-token")

    assert response.status_code == 200


def test_healthz_is_not_redirected_even_when_https_is_enforced(api, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    probe = api.get("/healthz")
    api_call = api.get("/api/v1/tickets/")

    assert probe.status_code == 200
    assert api_call.status_code == 301, "control: plain HTTP to the API is redirected"


def test_healthz_without_trailing_slash_is_not_redirected(api):
    response = api.get("/healthz", follow=False)

    assert response.status_code == 200
    assert "Location" not in response


def test_healthz_refuses_post_with_405_allow_and_json(api):
    response = api.post("/healthz")

    assert response.status_code == 405
    assert "GET" in response["Allow"]
    assert set(response.json()) == {"detail"}
