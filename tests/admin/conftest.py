"""Admin test fixtures."""

import pytest


@pytest.fixture
def staff_client(client, staff):
    """A Django test client logged in as a staff superuser."""
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    client.force_login(staff)
    return client
