"""The base handler: JSON in and out, bearer auth, the error format, the body limit."""

from __future__ import annotations

import json
import logging
import uuid
from http import HTTPStatus
from typing import Any

import tornado.web
from marshmallow import Schema
from tornado.http1connection import HTTP1Connection

from agenthub import schemas
from agenthub.actors import Principal
from agenthub.api.security import CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE, HttpGuards
from agenthub.auth import jwt_tokens
from agenthub.errors import (
    AppError,
    Forbidden,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from agenthub.services.registry import Services

log = logging.getLogger("agenthub.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}

_BODY_METHODS = {"POST", "PUT", "PATCH"}


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Bodies are streamed so an oversized request gets a JSON 413, not a dropped socket."""

    route = "unmatched"
    auth_required = True
    # RequestHandler.__init__ runs clear(), hence set_default_headers(), before initialize().
    _initialized = False

    def initialize(self, services: Services, guards: HttpGuards) -> None:
        self.services = services
        self.settings_ = services.settings
        self.guards = guards
        self.principal: Principal | None = None
        self._body = bytearray()
        self._body_overflow = False
        self._initialized = True
        self._apply_cors()

    @classmethod
    def methods(cls) -> list[str]:
        """The HTTP methods this handler implements (OPTIONS, the CORS preflight, aside)."""
        base = tornado.web.RequestHandler
        return [
            m
            for m in ("GET", "POST", "PUT", "PATCH", "DELETE")
            if getattr(cls, m.lower()) is not getattr(base, m.lower())
        ]

    # --- plumbing -----------------------------------------------------------------------

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        if not self._initialized:
            return
        self._apply_cors()  # again after clear(): error responses keep their CORS headers

    def _apply_cors(self) -> None:
        self.set_header("Vary", "Origin")
        origin = self.request.headers.get("Origin")
        if origin is not None and self.guards.cors.allows(origin):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)

    def _check_origin_and_rate(self) -> None:
        """Before any work: refuse a browser origin outside ALLOWED_ORIGINS, then charge the
        request to its agent (a JWT with a valid signature) or else to its client address.
        Only the signature is checked here (no database), so a refused request costs nothing."""
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.guards.cors.allows(origin):
            raise Forbidden(
                "origin not allowed", {"origin": f"not in ALLOWED_ORIGINS: {origin[:200]}"}
            )
        if self.auth_required and self.request.method != "OPTIONS":
            agent_id = self._signed_agent_id()
            if agent_id is not None:
                self.guards.requests.check_agent(agent_id)
                return
        self.guards.requests.check_address(self.request.remote_ip or "unknown")

    def _signed_agent_id(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            return None
        try:
            claims = jwt_tokens.decode(self.settings_.jwt_secret, credential.strip())
        except jwt_tokens.InvalidSession:
            return None
        return str(claims.agent_id)

    async def prepare(self) -> None:
        self._check_origin_and_rate()
        if self.request.method not in (*self.methods(), "OPTIONS"):
            raise tornado.web.HTTPError(405)  # before auth: the route has no such method
        limit = self.settings_.max_request_bytes
        length = self.request.headers.get("Content-Length")
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                raise ValidationFailed("invalid Content-Length header") from None
            if too_big and self.request.method in _BODY_METHODS and int(length) <= limit * 4:
                # Read and discard it, then json_body answers 413: rejecting now makes tornado
                # close with unread input, and the client gets a reset instead of the 413.
                self._body_overflow = True
            elif too_big:
                raise PayloadTooLarge(f"request body exceeds {limit} bytes", {"limit": limit})
        # Stop reading a chunked upload that runs far past the limit.
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):
            connection.set_max_body_size(limit * 4)
        if self.auth_required and self.request.method != "OPTIONS":
            self.principal = await self.authenticate()

    async def options(self, *args: str) -> None:
        """CORS preflight (the origin was checked in ``prepare``) or a plain OPTIONS."""
        methods = ", ".join([*self.methods(), "OPTIONS"])
        self.set_header("Allow", methods)
        if self.request.headers.get("Origin") is not None:
            self.set_header("Access-Control-Allow-Methods", methods)
            self.set_header("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS)
            self.set_header("Access-Control-Max-Age", CORS_MAX_AGE)
        self.reply(204, None)

    def data_received(self, chunk: bytes) -> None:
        if len(self._body) + len(chunk) > self.settings_.max_request_bytes:
            self._body_overflow = True
            return
        self._body.extend(chunk)

    async def authenticate(self) -> Principal:
        header = self.request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthorized("missing bearer token")
        principal, _claims = await self.services.sessions.authenticate(credential.strip())
        return principal

    def bearer_credential(self) -> str:
        header = self.request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Unauthorized("missing bearer token")
        return credential.strip()

    def current(self) -> Principal:
        assert self.principal is not None
        return self.principal

    def json_body(self, schema: type[Schema]) -> dict[str, Any]:
        if self._body_overflow:
            limit = self.settings_.max_request_bytes
            raise PayloadTooLarge(f"request body exceeds {limit} bytes", {"limit": limit})
        # Content-Type is not enforced: `curl -d` labels JSON as a form by default, and
        # shell agents are first-class users. The body itself must be JSON.
        raw = bytes(self._body)
        if not raw.strip():
            data: Any = {}
        else:
            try:
                data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
            except (UnicodeDecodeError, ValueError) as exc:
                raise ValidationFailed(
                    "request body is not valid JSON", {"body": str(exc)[:200]}
                ) from None
            except RecursionError:
                raise ValidationFailed(
                    "request body is nested too deeply", {"body": "JSON nested too deeply"}
                ) from None
        return schemas.load(schema, data)

    def reply(self, status: int, payload: dict[str, Any] | list[Any] | None) -> None:
        self.set_status(status)
        if payload is None:
            self.clear_header("Content-Type")
            self.finish()
        else:
            self.finish(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))

    # --- parameters -----------------------------------------------------------------------

    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """Query parameters and path segments, as UTF-8 (tornado's own refusal is a bare 400)."""
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            if name is None:
                # A path segment, decoded before prepare(): every one is an id or a token
                # prefix, which this is not; the handler refuses it as such, after the body.
                return value.decode("utf-8", "replace")
            raise ValidationFailed(f"invalid {name}", {name: "not valid UTF-8"}) from None

    def path_uuid(self, value: str, name: str = "id") -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise ValidationFailed(f"invalid {name}", {name: "not a valid UUID"}) from None

    def query_int(self, name: str) -> int | None:
        """An integer query argument, or None when absent. Only the syntax is checked here:
        the services own the bounds (page sizes, seq ranges)."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return None
        if len(raw) > 32:
            raise ValidationFailed(f"invalid {name}", {name: "not an integer"})
        try:
            return int(raw, 10)
        except ValueError:
            raise ValidationFailed(f"invalid {name}", {name: "not an integer"}) from None

    def query_str(self, name: str, max_len: int = 512) -> str | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return None
        if len(raw) > max_len:
            raise ValidationFailed(f"invalid {name}", {name: f"at most {max_len} characters"})
        return raw

    # --- errors -----------------------------------------------------------------------------

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, AppError):
            if self._finished:
                return
            self._render_app_error(e)
            return
        super()._handle_request_exception(e)

    def _render_app_error(self, e: AppError) -> None:
        self.clear()
        self.set_status(e.status)
        if isinstance(e, Unauthorized):
            error = "invalid_token" if self.request.headers.get("Authorization") else None
            challenge = 'Bearer realm="agenthub"'
            if error:
                challenge += f', error="{error}"'
            self.set_header("WWW-Authenticate", challenge)
        if isinstance(e, RateLimited):
            self.set_header("Retry-After", str(e.retry_after))
        self.finish(json.dumps({"error": e.to_dict()}, separators=(",", ":")))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Reached for tornado's own HTTPErrors (405, malformed requests) and bugs (500).
        exc_info = kwargs.get("exc_info")
        try:
            message = HTTPStatus(status_code).phrase
        except ValueError:
            message = "error"
        exc = exc_info[1] if exc_info else None
        if isinstance(exc, tornado.web.HTTPError) and exc.log_message and status_code < 500:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        if status_code >= 500:
            message = "internal error"
        code = _HTTP_CODES.get(status_code, "internal" if status_code >= 500 else "error")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        if status_code == 405:  # RFC 9110: say which methods the resource does support
            self.set_header("Allow", ", ".join([*self.methods(), "OPTIONS"]))
        self.finish(
            json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":"))
        )

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # Client errors are already in the access log line; only bugs deserve a traceback.
        if isinstance(value, tornado.web.HTTPError) and value.status_code < 500:
            return
        super().log_exception(typ, value, tb)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class NotFoundHandler(BaseHandler):
    auth_required = False
    route = "unmatched"

    async def prepare(self) -> None:
        self._check_origin_and_rate()
        raise tornado.web.HTTPError(404, "no such route")
