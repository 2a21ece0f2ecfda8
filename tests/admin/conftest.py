"""Admin test fixtures: the staff persona with the box office's rights, and a superuser apart."""

import pytest
from django.contrib.auth.models import Permission

# What a box-office staff account is given: every right on tickets and reservations, nothing else.
STAFF_APPS = ("tickets", "reservations")


@pytest.fixture
def staff_client(client, staff):
    """A Django test client logged in as `staff`: the tickets and reservations rights, not a superuser."""
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label__in=STAFF_APPS))
    client.force_login(staff)
    return client


@pytest.fixture
def superuser_client(client, superuser):
    """A Django test client logged in as the superuser, for what only a superuser may do."""
    client.force_login(superuser)
    return client
