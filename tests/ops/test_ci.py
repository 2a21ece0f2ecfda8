"""The two CIs agree: .ci/run and the GitHub workflow both run .ci/checks.sh, which holds every check, then
the tests, the fuzzer and the quick benchmark."""

import re

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


def _workflow_job_running(command: str) -> dict:
    workflow = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "ci.yml").read_text())
    jobs = [job for job in workflow["jobs"].values() if any(command in step.get("run", "") for step in job["steps"])]
    assert len(jobs) == 1, f"{len(jobs)} jobs run {command}"
    return jobs[0]


def test_both_cis_run_the_fuzzer_and_the_quick_benchmark_after_the_tests():
    job = _workflow_job_running("./dev test")
    steps = [step.get("run", "") for step in job["steps"]]
    ci_run = (PROJECT_DIR / ".ci" / "run").read_text()
    tests_step = next(index for index, run in enumerate(steps) if "./dev test" in run)
    for command in ("python scripts/fuzz.py", "python -m bench flash-sale --quick"):
        assert f"\n{command}\n" in ci_run, f".ci/run does not run {command}"
        assert ci_run.index(command) > ci_run.index("\n./dev test"), f".ci/run runs {command} before the tests"
        at = [index for index, run in enumerate(steps) if command in run]
        assert at, f"the workflow does not run {command}"
        assert min(at) > tests_step, f"the workflow runs {command} before the tests"


def test_the_workflow_installs_what_the_quick_benchmark_needs():
    """wrk, and nginx and pgbouncer for its scale-out scenario (the stack)."""
    job = _workflow_job_running("./dev test")
    installed = " ".join(step.get("run", "") for step in job["steps"] if "apt-get install" in step.get("run", ""))
    packages = set(installed.replace("\\", " ").split())
    for package in ("wrk", "nginx", "pgbouncer"):
        assert package in packages, package


def test_the_workflow_installs_every_tool_the_deploy_check_asks_for():
    """Each tool .ci/deploy-check.sh checks for first, by the apt package or the action its message names."""
    job = _workflow_job_running(".ci/checks.sh")
    installed = " ".join(step.get("run", "") for step in job["steps"] if "apt-get install" in step.get("run", ""))
    packages = set(installed.replace("\\", " ").split())
    actions = {step["uses"].split("@")[0] for step in job["steps"] if "uses" in step}
    block = re.search(r"^TOOLS=\((.*?)^\)$", (PROJECT_DIR / ".ci" / "deploy-check.sh").read_text(), re.M | re.S)
    tools = re.findall(r'^  "([a-z]+):([^"]+)"$', block.group(1), re.M)
    assert {tool for tool, _ in tools} >= {"kubectl", "envsubst"}, tools
    for tool, why in tools:
        package = re.search(r"apt-get install (\S+)", why)
        action = re.search(r"the GitHub workflow uses (\S+)\)", why)
        assert package or action, f"deploy-check.sh does not say how {tool} is installed"
        if package:
            assert package.group(1) in packages, f"the workflow does not install {package.group(1)} ({tool})"
        else:
            assert action.group(1) in actions, f"the workflow does not use {action.group(1)} ({tool})"
