#!/usr/bin/env bash
# The checks both CIs run, .ci/run here and .github/workflows/ci.yml on GitHub, so that they agree:
# lint and format, Django's system checks, migrations in step with the models, the OpenAPI schema,
# the production settings (check --deploy), bandit, and the deployment files with the container's
# entrypoint run outside Docker (.ci/deploy-check.sh, which needs PostgreSQL and Redis).
# Run from the repository root with the project's virtualenv active (./dev setup creates it).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [ -z "${VIRTUAL_ENV:-}" ]; then
  echo "checks: activate the project's virtualenv first (./dev setup && . .venv/bin/activate)" >&2
  exit 1
fi

step "Lint and format (ruff)"
ruff check .
ruff format --check .

step "Django checks, migrations in step with the models, OpenAPI schema"
DJANGO_DEBUG=true python manage.py check
# A model change without its migration fails here, on GitHub as in .ci/run.
DJANGO_DEBUG=true python manage.py makemigrations --check --dry-run
DJANGO_DEBUG=true python manage.py spectacular --validate --fail-on-warn --file /dev/null
DJANGO_DEBUG=false DJANGO_ALLOWED_HOSTS=example.com \
  DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
  python manage.py check --deploy --fail-level WARNING

step "Security lint (bandit)"
bandit -q -c pyproject.toml -r fastticket accounts tickets reservations

step "Deployment files (hadolint, actionlint, zizmor, compose) and the container entrypoint"
.ci/deploy-check.sh
