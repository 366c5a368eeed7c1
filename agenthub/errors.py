"""Errors the service layer raises; each maps to one HTTP status and one JSON error code.

REST handlers and socket acks render them the same way: ``{"code", "message", "details"}``.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

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


class Conflict(AppError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class RateLimited(AppError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, {"retryAfter": max(1, round(retry_after))})
        self.retry_after = max(1, round(retry_after))


class Unavailable(AppError):
    status = 503
    code = "unavailable"
