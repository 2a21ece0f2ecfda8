"""The two CIs agree: .ci/run and the GitHub workflow both run .ci/checks.sh, which holds every check."""

import yaml

from tests.servers import PROJECT_DIR

CHECKS = PROJECT_DIR / ".ci" / "checks.sh"


def _workflow_commands() -> str:
    workflow = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "ci.yml").read_text())
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])


def test_both_cis_run_the_one_checks_script():
    assert ".ci/checks.sh" in _workflow_commands()
    assert "\n.ci/checks.sh\n" in (PROJECT_DIR / ".ci" / "run").read_text()


def test_the_checks_script_holds_every_check_neither_ci_repeats():
    checks = CHECKS.read_text()
    for command in (
        "ruff check",
        "ruff format --check",
        "manage.py check",
        "makemigrations --check",
        "spectacular --validate",
        "check --deploy",
        "bandit",
        ".ci/deploy-check.sh",
    ):
        assert command in checks, command
        assert command not in _workflow_commands().replace(".ci/checks.sh", ""), f"the workflow repeats {command}"
