"""Every deployment renders deploy/nginx/nginx.conf.template whole, with the same timeouts.

The nginx image's envsubst fills only the variables that are set and that NGINX_ENVSUBST_FILTER
names; any other ${NAME} stays in the file and nginx refuses to start (or, for a timeout, would
start with what a deployment forgot). Read from the files, no servers.
"""

import re

import yaml

from scripts.harness.stack import NGINX_CLIENT_TIMEOUT, NGINX_PROXY_READ_TIMEOUT, NGINX_TEMPLATE, PLACEHOLDER
from tests.servers import PROJECT_DIR

PRODUCTION_TIMEOUTS = {"NGINX_CLIENT_TIMEOUT": "10s", "NGINX_PROXY_READ_TIMEOUT": "40s"}
# The image fills NGINX_LOCAL_RESOLVERS itself from /etc/resolv.conf when this one is set.
IMAGE_RESOLVERS = "NGINX_ENTRYPOINT_LOCAL_RESOLVERS"


def _placeholders() -> set[str]:
    return set(PLACEHOLDER.findall(NGINX_TEMPLATE.read_text()))


def _compose_nginx_env() -> dict[str, str]:
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    return {name: str(value) for name, value in compose["services"]["nginx"]["environment"].items()}


def _kubernetes_proxy_env() -> dict[str, str]:
    """The proxy container's env: the shared ConfigMap's literals (envFrom), then its own entries."""
    kubernetes = PROJECT_DIR / "deploy" / "kubernetes" / "base"
    kustomization = yaml.safe_load((kubernetes / "kustomization.yaml").read_text())
    deployment = yaml.safe_load((kubernetes / "proxy-deployment.yaml").read_text())
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "nginx"]
    config_maps = {ref["configMapRef"]["name"] for ref in container.get("envFrom", [])}
    env = {}
    for generator in kustomization["configMapGenerator"]:
        if generator["name"] in config_maps:
            env.update(literal.split("=", 1) for literal in generator.get("literals", []))
    env.update({entry["name"]: str(entry.get("value", "")) for entry in container["env"]})
    return env


def _documented_docker_run_env() -> dict[str, str]:
    """The -e NAME=VALUE of docs/deployment.md's `docker run ... nginx` command."""
    text = (PROJECT_DIR / "docs" / "deployment.md").read_text()
    command = re.search(r"^docker run -d --name nginx .*?nginx -c /tmp/nginx.conf", text, re.M | re.S).group(0)
    return {name: value.strip("'") for name, value in re.findall(r"-e ([A-Z][A-Z0-9_]*)=(\S+)", command)}


def test_the_harness_renders_the_proxy_with_the_production_timeouts_unless_told():
    assert {"NGINX_CLIENT_TIMEOUT": NGINX_CLIENT_TIMEOUT, "NGINX_PROXY_READ_TIMEOUT": NGINX_PROXY_READ_TIMEOUT} == (
        PRODUCTION_TIMEOUTS
    )
    assert set(PRODUCTION_TIMEOUTS) <= _placeholders()


def test_compose_kubernetes_and_the_documented_docker_run_give_every_placeholder_with_the_production_timeouts():
    for where, env in [
        ("docker-compose.yml", _compose_nginx_env()),
        ("deploy/kubernetes/base", _kubernetes_proxy_env()),
        ("docs/deployment.md", _documented_docker_run_env()),
    ]:
        given = set(env) | ({"NGINX_LOCAL_RESOLVERS"} if IMAGE_RESOLVERS in env else set())
        assert _placeholders() <= given, f"{where} does not set {sorted(_placeholders() - given)}"
        envsubst_filter = re.compile(env["NGINX_ENVSUBST_FILTER"].replace("$$", "$"))
        assert all(envsubst_filter.search(name) for name in _placeholders()), f"{where}'s filter leaves one out"
        assert {name: env[name] for name in PRODUCTION_TIMEOUTS} == PRODUCTION_TIMEOUTS, where
