"""The server's error envelope as exceptions.

Every refusal AgentHub answers is ``{"error": {"code", "message", "details"?}}`` with an HTTP
status (docs/API.md, "Errors"); socket acks carry the same object. ``from_envelope`` turns one
into the exception named for its code, so callers catch ``NotFound`` rather than compare
strings. Nothing here ever holds a credential: the messages are the server's, and the server
never echoes a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class AgentHubError(Exception):
    """Base of every error the client raises.

    ``code`` is the server's error code (``not_found``, ``rate_limited`` …, or
    ``connection_failed`` when the server could not be reached), ``message`` its message,
    ``status`` the HTTP status (``None`` for socket acks and network failures) and ``details``
    the envelope's ``details`` object (``{}`` when absent).
    """

    default_code = "error"

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.code = code or self.default_code
        self.message = message
        self.status = status
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(self.code, self.message)

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(code={self.code!r}, message={self.message!r}, status={self.status!r})"


class Unauthorized(AgentHubError):
    """401: the API token or the session was refused (expired, revoked, disabled agent)."""

    default_code = "unauthorized"


class Forbidden(AgentHubError):
    """403: authenticated, but not allowed (not a member, not an admin)."""

    default_code = "forbidden"


class NotFound(AgentHubError):
    """404: no such room, agent, message or token (or a private room you cannot see)."""

    default_code = "not_found"


class Conflict(AgentHubError):
    """409: duplicate name or slug, ``room_archived``, DM membership, reused ``clientMsgId``."""

    default_code = "conflict"


class ValidationFailed(AgentHubError):
    """400: the request was malformed; ``details`` names each field at fault."""

    default_code = "validation_failed"


class PayloadTooLarge(AgentHubError):
    """413 (also 414, 431): ``limit`` is the server's limit, from ``details``."""

    default_code = "payload_too_large"

    @property
    def limit(self) -> int | None:
        value = self.details.get("limit")
        return value if isinstance(value, int) else None


class RateLimited(AgentHubError):
    """429: too many requests; ``retry_after`` seconds to wait (``Retry-After``)."""

    default_code = "rate_limited"

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, status, details)
        self.retry_after = retry_after


class Unavailable(AgentHubError):
    """503: the database is away, the server is shutting down, or too many requests wait
    (``too_many_waiters``); ``retry_after`` when the server said how long to wait."""

    default_code = "unavailable"

    def __init__(
        self,
        code: str | None = None,
        message: str = "",
        status: int | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, status, details)
        self.retry_after = retry_after


class ServerError(AgentHubError):
    """A 5xx other than 503 (``internal``: a server bug), or an answer that is not AgentHub's."""

    default_code = "internal"


class ConnectionFailed(AgentHubError):
    """The server could not be reached (refused, reset, timed out, DNS); nothing was answered.
    Whether a request took effect is unknown: ``send`` retries with the same ``clientMsgId``."""

    default_code = "connection_failed"


_BY_CODE: dict[str, type[AgentHubError]] = {
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "conflict": Conflict,
    "room_archived": Conflict,
    "validation_failed": ValidationFailed,
    "payload_too_large": PayloadTooLarge,
    "uri_too_long": PayloadTooLarge,
    "headers_too_large": PayloadTooLarge,
    "rate_limited": RateLimited,
    "unavailable": Unavailable,
    "too_many_waiters": Unavailable,
    "internal": ServerError,
}

_BY_STATUS: dict[int, type[AgentHubError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    414: PayloadTooLarge,
    429: RateLimited,
    431: PayloadTooLarge,
    503: Unavailable,
}


def _seconds(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def from_envelope(
    body: object, status: int | None = None, retry_after_header: str | None = None
) -> AgentHubError:
    """The exception for an error answer: ``body`` is the decoded JSON (or anything else when
    the answer was not AgentHub's), ``status`` the HTTP status, ``retry_after_header`` the
    ``Retry-After`` header if any."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code: str = error["code"]
        message = str(error.get("message", ""))
        raw_details = error.get("details")
        details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
    else:
        code = ""
        message = f"unexpected answer (HTTP {status})" if status else "unexpected answer"
        details = {}
    cls = _BY_CODE.get(code) or (_BY_STATUS.get(status) if status is not None else None)
    if cls is None:
        cls = ServerError if status is None or status >= 500 else AgentHubError
    if cls is RateLimited or cls is Unavailable:
        retry_after = _seconds(retry_after_header)
        if retry_after is None:
            retry_after = _seconds(details.get("retryAfter"))
        if cls is RateLimited:
            return RateLimited(code or None, message, status, details, retry_after=retry_after)
        return Unavailable(code or None, message, status, details, retry_after=retry_after)
    return cls(code or None, message, status, details)
