"""Production settings: Django's deployment checks and the refusal of the development key."""

import pytest
from django.core.management.utils import get_random_secret_key

from fastticket.settings import DEV_SECRET_KEY
from tests.ops.servers import needs_no_local_env_file, run_manage, run_python

pytestmark = pytest.mark.slow

PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "example.com",
    # DJANGO_HTTPS is left to its default, which is on when DEBUG is off.
    "DJANGO_HTTPS": None,
}
IMPORT_SETTINGS = "from django.conf import settings; print(settings.DEBUG)"


@needs_no_local_env_file
def test_check_deploy_reports_no_issues_for_a_production_configuration():
    secret = get_random_secret_key()
    assert len(secret) == 50

    result = run_manage("check", "--deploy", DJANGO_SECRET_KEY=secret, **PRODUCTION)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNING" not in output


@needs_no_local_env_file
def test_settings_refuse_to_start_with_debug_off_and_no_secret_key():
    result = run_python(IMPORT_SETTINGS, DJANGO_SECRET_KEY=None, **PRODUCTION)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_settings_refuse_to_start_with_debug_off_and_the_development_key_given_explicitly():
    result = run_python(IMPORT_SETTINGS, DJANGO_SECRET_KEY=DEV_SECRET_KEY, **PRODUCTION)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_settings_take_a_secret_key_starting_with_a_dollar_sign_as_it_is():
    secret = "$" + get_random_secret_key()[1:]

    result = run_python(
        "from django.conf import settings; print(settings.SECRET_KEY)", DJANGO_SECRET_KEY=secret, **PRODUCTION
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == secret


def test_settings_accept_the_development_key_when_debug_is_on():
    result = run_python(IMPORT_SETTINGS, DJANGO_SECRET_KEY=None, DJANGO_DEBUG="true")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
