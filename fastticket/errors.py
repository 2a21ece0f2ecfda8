"""Domain errors and the one exception handler that maps every error to API.md's shapes."""

import logging
import math
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

UNAUTHENTICATED_CODES = {"not_authenticated", "authentication_failed", "token_not_valid"}


class DomainError(Exception):
    """A business rule stopped the action; carries its own HTTP status, code and message."""

    status_code: int = status.HTTP_409_CONFLICT
    code: str = "conflict"
    detail: str = "The request conflicts with the current state."
    # Every subclass by its code, so that an answer made in another process (a booking booked by
    # the lock holder of its line) is raised here as the same error.
    by_code: dict[str, type["DomainError"]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        DomainError.by_code[cls.code] = cls

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.detail = detail or self.detail
        self.extra = extra or {}
        self.retry_after = retry_after
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        """Return the JSON body API.md gives this error."""
        return {"code": self.code, "detail": self.detail, **self.extra}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class SoldOut(DomainError):
    code = "sold_out"
    detail = "This ticket is sold out."


class AlreadyReserved(DomainError):
    code = "already_reserved"
    detail = "You already hold a seat for this ticket."


class SaleNotOpen(DomainError):
    code = "sale_not_open"
    detail = "The sale for this ticket has not opened yet."


class SaleClosed(DomainError):
    code = "sale_closed"
    detail = "The sale for this ticket has closed: the event has started."


class AlreadyCancelled(DomainError):
    code = "already_cancelled"
    detail = "This reservation is already cancelled."


class NotAdmitted(DomainError):
    code = "not_admitted"
    detail = "This ticket's sale has a waiting room: join it and book when you are admitted."


class NoWaitingRoom(DomainError):
    code = "no_waiting_room"
    detail = "This ticket has no waiting room: book it directly."


class TicketHasReservations(DomainError):
    code = "ticket_has_reservations"
    detail = "This ticket has reservations and cannot be deleted."


class Busy(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "busy"
    detail = "Too many people are booking this ticket right now; please retry shortly."


class Unavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    code = "unavailable"
    detail = "The service is temporarily unavailable; please retry shortly."


class IdempotencyKeyReused(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "idempotency_key_reused"
    detail = "This Idempotency-Key was already used for a different request."

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail}


class TicketNotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"
    detail = "No such ticket."

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail}


class IdempotentReplay(Exception):
    """A repeat of an Idempotency-Key: the first answer, sent again byte for byte."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code = status_code
        self.body = body
        super().__init__(status_code)


def _flatten_detail(detail: Any) -> str:
    """Turn simplejwt's nested `{"detail", "code", "messages"}` detail into one message."""
    if isinstance(detail, dict):
        return str(detail.get("detail") or next(iter(detail.values()), ""))
    if isinstance(detail, list):
        return str(detail[0]) if detail else ""
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """Render every handled error in API.md's shapes; anything unknown stays a 500."""
    if isinstance(exc, DomainError):
        return Response(exc.body(), status=exc.status_code, headers=exc.headers())
    if isinstance(exc, IdempotentReplay):
        replay = HttpResponse(exc.body, status=exc.status_code, content_type="application/json")
        replay["Idempotent-Replayed"] = "true"
        return replay
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, ObjectDoesNotExist):
        exc = exceptions.NotFound()
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        exc = exceptions.ParseError(f"{exc.detail} Send a JSON body with 'Content-Type: application/json'.")
    elif isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DatabaseError) and _is_connection_loss(exc)
    ):
        logger.warning("database unavailable: %s", exc.__class__.__name__)
        return exception_handler(Unavailable(retry_after=2), context)

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if response.status_code == status.HTTP_401_UNAUTHORIZED:
        code = getattr(exc, "default_code", "authentication_failed")
        if isinstance(exc.detail, dict) and "code" in exc.detail:
            code = str(exc.detail["code"])
        elif hasattr(exc, "get_codes") and isinstance(exc.get_codes(), str):
            code = exc.get_codes()
        if code not in UNAUTHENTICATED_CODES:
            code = "authentication_failed"
        response.data = {"detail": _flatten_detail(exc.detail), "code": code}
    elif isinstance(response.data, dict) and isinstance(response.data.get("detail"), dict):
        response.data = {"detail": _flatten_detail(response.data["detail"])}
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS and "Retry-After" not in response:
        response["Retry-After"] = "1"
    return response


def _is_connection_loss(exc: DatabaseError) -> bool:
    """Tell a lost connection (server terminated it) from a real query bug."""
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or ""
    # 57P01 admin_shutdown (pg_terminate_backend), 08xxx connection exceptions.
    return sqlstate.startswith("08") or sqlstate in {"57P01", "57P02", "57P03"}
