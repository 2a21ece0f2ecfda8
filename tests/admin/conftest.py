"""Admin test fixtures: a logged-in superuser client and pages that render without collectstatic."""

import pytest


@pytest.fixture(autouse=True)
def _static_without_manifest(settings):
    """Render admin pages whether or not collectstatic has written the manifest."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def staff_client(client, staff):
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    client.force_login(staff)
    return client
