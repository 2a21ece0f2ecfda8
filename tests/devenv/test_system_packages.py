"""The launcher's Debian packages (scripts/devenv/system.py): installed when missing, or named in one line."""

import shutil

import pytest

from scripts.devenv import LauncherError, system

ABSENT = "ft-no-such-package"


def test_packages_whose_binaries_are_there_are_left_alone(capsys):
    system.debian_packages_ensure(("sh",), needed_by="./dev test", required=True)

    assert capsys.readouterr().out == ""


@pytest.fixture
def no_apt(monkeypatch, tmp_path):
    """A machine with sh but without apt-get (or the package): nothing can be installed."""
    (tmp_path / "sh").symlink_to(shutil.which("sh"))
    monkeypatch.setenv("PATH", str(tmp_path))


def test_a_missing_package_that_cannot_be_installed_is_named_with_the_command_to_install_it(no_apt, capsys):
    system.debian_packages_ensure(("sh", ABSENT), needed_by="./dev test", required=False)

    said = capsys.readouterr().out
    assert f"./dev test needs {ABSENT}: apt-get install {ABSENT} (carrying on without)" in said
    assert "sh " not in said.replace("./dev test", "")


def test_a_required_package_that_cannot_be_installed_stops_the_launcher(no_apt):
    with pytest.raises(LauncherError, match=f"./dev stack needs {ABSENT}: apt-get install {ABSENT}"):
        system.debian_packages_ensure((ABSENT,), needed_by="./dev stack", required=True)


def test_the_tests_packages_are_those_the_browser_and_stack_tests_run():
    assert set(system.TESTS) == {"chromium", "nginx", "pgbouncer"}
    assert set(system.STACK) <= set(system.TESTS)
