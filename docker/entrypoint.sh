#!/bin/sh
# FastTicket container entrypoint.
#   web      (default) serve with gunicorn; never migrates, so replicas can start in any order
#   migrate  one-shot: apply migrations, set the session timeouts as the role's defaults in the
#            database (what connections through a transaction pooler start with), then create the
#            superuser named by DJANGO_SUPERUSER_USERNAME (with _EMAIL and _PASSWORD) if it does
#            not exist yet. Run it against PostgreSQL itself, not through the pooler.
#   anything else is run as given, e.g. `python manage.py shell`
set -eu

# Run from the project root wherever we are called from (the image's /app, or a checkout).
cd "$(dirname "$0")/.."

# prometheus_client keeps each process's metrics there (see gunicorn.conf.py); any Django command
# records metrics, so the directory must exist before one starts.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi

command="${1:-web}"
if [ "$#" -gt 0 ]; then shift; fi

case "$command" in
    web)
        exec gunicorn -c gunicorn.conf.py "$@" fastticket.wsgi:application
        ;;
    migrate)
        # A migration may run long (an index build on a big table): the web requests' statement
        # timeout does not apply to it; the lock timeout still keeps it from stalling the sale.
        DATABASE_STATEMENT_TIMEOUT_MS="${MIGRATE_STATEMENT_TIMEOUT_MS:-0}" python manage.py migrate --noinput "$@"
        # With the web processes' timeouts, not the migration's.
        python manage.py set_database_defaults
        if [ -n "${DJANGO_SUPERUSER_USERNAME:-}" ]; then
            # Usernames are unique ignoring case, so look the user up the way login does.
            found=0
            python manage.py shell --no-imports -c '
import os, sys
from django.contrib.auth import get_user_model
User = get_user_model()
name = os.environ["DJANGO_SUPERUSER_USERNAME"]
sys.exit(0 if User.objects.filter(**{User.USERNAME_FIELD + "__iexact": name}).exists() else 3)
' || found=$?
            case "$found" in
                0) echo "Superuser ${DJANGO_SUPERUSER_USERNAME} already exists." ;;
                3) python manage.py createsuperuser --noinput ;;
                *) exit "$found" ;;
            esac
        fi
        ;;
    *)
        exec "$command" "$@"
        ;;
esac
