"""Liveness and readiness probes (API.md, Operations)."""

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

from fastticket import redis as ft_redis

logger = logging.getLogger(__name__)

# The database check runs in a worker thread so that an unreachable server (packets dropped, no
# refusal) answers 503 within the deadline instead of waiting out libpq's connect timeout.
DATABASE_DEADLINE_SECONDS = 1.5
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="readyz")


def healthz(request: HttpRequest) -> JsonResponse:
    """Say the process serves; check nothing else."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        connection.close()
        return False


def _redis_ok() -> bool:
    try:
        return bool(ft_redis.get_redis_connection("default").ping())
    except ft_redis.REDIS_ERRORS:
        return False


def readyz(request: HttpRequest) -> JsonResponse:
    """Report the database and Redis; only a dead database makes the service unready."""
    future = _executor.submit(_database_ok)
    try:
        database_ok = future.result(timeout=DATABASE_DEADLINE_SECONDS)
    except FutureTimeout:
        database_ok = False
    redis_ok = _redis_ok()
    body = {"database": "ok" if database_ok else "error", "redis": "ok" if redis_ok else "error"}
    if not database_ok:
        logger.warning("readiness check failed: database unreachable")
    return JsonResponse(body, status=200 if database_ok else 503)
