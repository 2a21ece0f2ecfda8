"""What the browser tests share: Debian's chromium, their marks, and the steps they all take.

The fixtures (`page`, `shots`) are in conftest.py, which skips this folder when the playwright
package is missing.
"""

import json
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 30_000
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

# Every browser test module's marks (with its own database mark).
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install -y chromium)"),
]


def leaves_the_machine(url: str) -> bool:
    """Tell whether a request goes anywhere but this machine (data: and blob: URLs go nowhere)."""
    parts = urlsplit(url)
    return parts.scheme not in ("data", "blob", "about") and parts.hostname not in LOCAL_HOSTS


def open_page(page, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.ok, f"{url} answered {response and response.status}"


def log_in(page, live_server, user) -> None:
    open_page(page, f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(user.username)


def post_as(live_server, path: str, token: str) -> tuple[int, dict]:
    """POST with no body as the token's user; the status and the JSON answer."""
    request = urllib.request.Request(
        f"{live_server.url}{path}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def reserve(live_server, ticket_id, token: str) -> tuple[int, dict]:
    return post_as(live_server, f"/api/v1/tickets/{ticket_id}/reserve/", token)
