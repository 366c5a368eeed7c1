"""Errors the service layer raises; each maps to one HTTP status and one JSON error code.

REST handlers and socket acks render them the same way: ``{"code", "message", "details"}``.
``details`` has one shape everywhere (docs/adr/0003-error-format.md): an object whose keys name
an input (a field, a query parameter, a header) and whose values are lists of messages, except
for the few documented numbers (``limit``, ``retryAfter``), which stay numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Details = dict[str, list[str] | int]


def normalize_details(raw: Mapping[Any, Any]) -> Details:
    """Messages become lists of strings (one message is a list of one); nested mappings (as
    marshmallow reports list items) flatten to dotted keys; integers stay integers."""
    out: Details = {}
    pending: list[tuple[str, Any]] = [(str(k), v) for k, v in raw.items()]
    while pending:
        key, value = pending.pop(0)
        if isinstance(value, Mapping):
            pending.extend((f"{key}.{k}", v) for k, v in value.items())
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = [str(item) for item in value]
        else:
            out[key] = [str(value)]
    return out


class AppError(Exception):
    status = 500
    code = "internal"
    retry_after: int | None = None  # seconds; answered as a Retry-After header when set

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = normalize_details(details or {})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ValidationFailed(AppError):
    status = 400
    code = "validation_failed"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class MethodNotAllowed(AppError):
    status = 405
    code = "method_not_allowed"


class Conflict(AppError):
    status = 409
    code = "conflict"


class RoomArchived(Conflict):
    """A write (a post) into an archived room; reading it still works."""

    code = "room_archived"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class UriTooLong(AppError):
    status = 414
    code = "uri_too_long"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, {"retryAfter": max(1, round(retry_after))})
        self.retry_after = max(1, round(retry_after))


class HeadersTooLarge(AppError):
    status = 431
    code = "headers_too_large"


class Unavailable(AppError):
    status = 503
    code = "unavailable"


class TooManyWaiters(Unavailable):
    """Every long-poll slot (MAX_WAITERS) is taken: retry shortly (agenthub.waiters)."""

    code = "too_many_waiters"

    def __init__(self, limit: int, retry_after: int = 1) -> None:
        super().__init__(
            f"too many requests are waiting (MAX_WAITERS={limit}); retry shortly",
            {"limit": limit, "retryAfter": retry_after},
        )
        self.retry_after = retry_after
