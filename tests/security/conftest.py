"""Security test fixtures: throttle rates set per test."""

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

SCOPES = ("anon", "user", "auth", "booking")


@pytest.fixture
def throttle_rates(monkeypatch):
    """Set DRF throttle rates for one test; every scope not named is off."""
    overrides = []

    def set_rates(**rates: str | None) -> None:
        values = {**dict.fromkeys(SCOPES), **rates}
        override = override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": values})
        override.enable()  # setting_changed makes DRF reload api_settings
        overrides.append(override)
        # SimpleRateThrottle bound THROTTLE_RATES to the settings' dict when DRF was first imported.
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", api_settings.DEFAULT_THROTTLE_RATES)

    yield set_rates
    for override in reversed(overrides):
        override.disable()
