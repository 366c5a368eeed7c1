"""The base handler: JSON in and out, bearer auth, the error format, the body limit, and a
connection that stays usable after a refused request."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import uuid
from collections.abc import Awaitable
from http import HTTPStatus
from typing import Any, TypeVar

import tornado.web
from marshmallow import Schema

from agenthub import schemas
from agenthub.actors import Principal
from agenthub.api.security import CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, CORS_MAX_AGE, HttpGuards
from agenthub.auth import jwt_tokens
from agenthub.domain import REF_RE, REF_RULE, parse_ref
from agenthub.errors import (
    AppError,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
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

# A refused request's body (an oversized one included) is read and discarded before the answer
# while it stays under DRAIN_FACTOR x MAX_REQUEST_BYTES, so the connection stays usable; past
# that the answer goes at once, with "Connection: close" (docs/API.md, "HTTP limits").
DRAIN_FACTOR = 4
_DIGITS = re.compile(r"[0-9]+")
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?")

# Logged (and counted in /metrics) for a request whose client closed the connection while it
# waited: nothing was answered. nginx's code for the same.
CLIENT_CLOSED = 499

T = TypeVar("T")


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body exceeds {limit} bytes", {"limit": limit})


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Bodies are streamed so an oversized request gets a JSON 413, not a dropped socket.

    Tornado closes a connection whose request was answered before its body was read, and it
    decides so after the response headers are out, so they never say ``Connection: close``
    (``HTTP1Connection.finish``); a client reusing the connection then fails. So ``prepare``
    (origin, rate, method, size, authentication) does not answer a refusal at once: the body is
    read and discarded first, then the refusal is the answer, and the connection is kept.
    Only when that cannot be done (a body past the drain cap, ``Expect: 100-continue``) is the
    refusal answered at once, saying ``Connection: close``.
    """

    route = "unmatched"
    auth_required = True
    # Probes and scrapes (a balancer's health checks on every worker, Prometheus) come from a
    # few addresses many times a minute, summed over all processes once the limits are shared
    # in Redis: charging them would take every backend out of the balancer. Such handlers set
    # this to False; the origin check still applies.
    rate_limited = True
    # RequestHandler.__init__ runs clear(), hence set_default_headers(), before initialize().
    _initialized = False
    # prepare() has let the request through (or deferred its refusal until after the body).
    _admitted = False
    # Answered before the body was read, after prepare(): tornado closes the connection.
    _close_after_reply = False
    # The bearer JWT, verified once per request (or why it was refused); see _session_claims.
    _claims: jwt_tokens.Claims | Unauthorized | None = None
    # A long poll in progress (unless_client_leaves), cancelled if the client goes away.
    _waiting: asyncio.Future[Any] | None = None
    _client_gone = False

    def initialize(self, services: Services, guards: HttpGuards) -> None:
        self.services = services
        self.settings_ = services.settings
        self.guards = guards
        self.principal: Principal | None = None
        self._body = bytearray()
        self._received = 0
        self._refusal: AppError | None = None
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
        if self._close_after_reply or not self._admitted:
            # An error answered before the request's body was read: tornado will close the
            # connection, and HTTP/1.1 wants the response to say so.
            self.set_header("Connection", "close")

    def _apply_cors(self) -> None:
        self.set_header("Vary", "Origin")
        origin = self.request.headers.get("Origin")
        if origin is not None and self.guards.cors.allows(origin, self.request.host):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)

    async def _check_origin_and_rate(self) -> None:
        """Before any work: refuse a browser origin outside ALLOWED_ORIGINS, then charge the
        request to its agent (a JWT with a valid signature) or else to its client address.
        Only the signature is checked here (no database), so a refused request costs nothing."""
        origin = self.request.headers.get("Origin")
        if origin is not None and not self.guards.cors.allows(origin, self.request.host):
            raise Forbidden(
                "origin not allowed", {"origin": f"not in ALLOWED_ORIGINS: {origin[:200]}"}
            )
        if not self.rate_limited:
            return
        if self.auth_required and self.request.method != "OPTIONS":
            agent_id = self._signed_agent_id()
            if agent_id is not None:
                await self.guards.requests.admit_agent(agent_id)
                return
        await self.guards.requests.admit_address(self.client_address())

    def client_address(self) -> str:
        """Whom a per-address limit charges: the TCP peer, or the client behind a trusted proxy."""
        return self.guards.client_address.of(self.request)

    def _signed_agent_id(self) -> str | None:
        try:
            return str(self._session_claims().agent_id)
        except Unauthorized:
            return None

    def _session_claims(self) -> jwt_tokens.Claims:
        """The bearer JWT's claims, its signature, algorithm and expiry checked: the header is
        parsed and the JWT decoded once per request, whoever asks first (the rate limit)."""
        if self._claims is None:
            try:
                self._claims = self.services.sessions.verify(self.bearer_credential())
            except Unauthorized as exc:
                self._claims = exc
        if isinstance(self._claims, Unauthorized):
            raise self._claims
        return self._claims

    async def prepare(self) -> None:
        # data_received counts the body and answers a JSON 413; tornado's own limit would
        # answer first, with a bare "400 Bad Request". (Looked up by name: the connection may
        # be a wrapper around tornado's HTTP1Connection, e.g. the shutdown drain's.)
        set_max_body_size = getattr(self.request.connection, "set_max_body_size", None)
        if set_max_body_size is not None:
            set_max_body_size(sys.maxsize)
        try:
            await self.admit()
        except AppError as refusal:
            if not self._body_can_be_drained():
                raise  # answered now, with "Connection: close"
            self._refuse_after_body(refusal)
        self._admitted = True

    async def admit(self) -> None:
        """Let the request through or raise its refusal, before the body is read: the checks
        cost no database query except authentication, which comes last."""
        await self._check_origin_and_rate()
        if self.request.method not in (*self.methods(), "OPTIONS"):
            # Before auth: the route has no such method.
            allowed = ", ".join([*self.methods(), "OPTIONS"])
            raise MethodNotAllowed(f"{self.request.method} is not allowed here; use {allowed}")
        self._check_framing()
        if self.auth_required and self.request.method != "OPTIONS":
            self.principal = await self.authenticate()

    def _check_framing(self) -> None:
        """Refuse what tornado would refuse while reading the body (it would answer a bare
        400), and a declared body over the limit."""
        headers = self.request.headers
        length = headers.get("Content-Length")
        encoding = headers.get("Transfer-Encoding")
        if encoding is not None and (length is not None or encoding.lower() != "chunked"):
            raise ValidationFailed(
                "unsupported request framing",
                {"Transfer-Encoding": "only chunked, and never with Content-Length"},
            )
        if length is None:
            return
        if not _DIGITS.fullmatch(length):
            raise ValidationFailed(
                "invalid Content-Length header", {"Content-Length": "not a decimal integer"}
            )
        if int(length) > self.settings_.max_request_bytes:
            raise too_large(self.settings_.max_request_bytes)

    def _body_can_be_drained(self) -> bool:
        """Whether a refused request's body can be read (and discarded) before the answer."""
        headers = self.request.headers
        if headers.get("Expect", "").lower() == "100-continue":
            return False  # the client sends the body only once told to: the refusal is final
        encoding = headers.get("Transfer-Encoding")
        length = headers.get("Content-Length")
        if encoding is not None:
            return length is None and encoding.lower() == "chunked"  # counted as it arrives
        if length is None:
            return True  # no body
        drain = self.settings_.max_request_bytes * DRAIN_FACTOR
        return _DIGITS.fullmatch(length) is not None and int(length) <= drain

    def _refuse_after_body(self, refusal: AppError) -> None:
        self._refusal = refusal
        self._body = bytearray()
        # Tornado calls the method the request names once the body is in, with no hook in
        # between: for this request, the refusal takes that method's place.
        setattr(self, (self.request.method or "get").lower(), self._answer_refusal)

    async def _answer_refusal(self, *args: str, **kwargs: str) -> None:
        assert self._refusal is not None
        raise self._refusal

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
        self._received += len(chunk)
        limit = self.settings_.max_request_bytes
        if self._refusal is None and self._received > limit:
            self._refuse_after_body(too_large(limit))
        if self._refusal is None:
            self._body.extend(chunk)
        elif self._received > limit * DRAIN_FACTOR and not self._finished:
            # Past the drain cap (a chunked upload that goes on): answer now; tornado stops
            # handing over the body and closes the connection once the answer is written.
            self._close_after_reply = True
            self._render_app_error(self._refusal)

    async def authenticate(self) -> Principal:
        return await self.services.sessions.principal_for(self._session_claims())

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
        # Content-Type is not enforced: `curl -d` labels JSON as a form by default, and
        # shell agents are first-class users. The body itself must be JSON.
        raw = bytes(self._body)
        if not raw.strip():
            data: Any = {}
        else:
            try:
                data = _DECODER.decode(raw.decode("utf-8"))
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

    def path_ref(self, value: str, name: str = "id") -> uuid.UUID | str:
        """A room (id or slug) or an agent (id, name or ``me``) named in the path. Only the
        shape is checked here; the services look names up."""
        if not REF_RE.match(value):
            raise ValidationFailed(f"invalid {name}", {name: REF_RULE})
        return parse_ref(value)

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

    def query_seconds(self, name: str) -> float | None:
        """A duration in seconds (``5``, ``0.5``), or None when absent. Syntax only: the
        services own the bounds."""
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return None
        if len(raw) > 32 or not _SECONDS.fullmatch(raw):
            raise ValidationFailed(f"invalid {name}", {name: "not a number of seconds"})
        return float(raw)  # no "inf" or "nan"; an overflow (1e999) fails the range check

    def query_str(self, name: str, max_len: int = 512) -> str | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return None
        if len(raw) > max_len:
            raise ValidationFailed(f"invalid {name}", {name: f"at most {max_len} characters"})
        return raw

    # --- waiting ----------------------------------------------------------------------------

    async def unless_client_leaves(self, work: Awaitable[T]) -> T | None:
        """Run ``work`` (which may wait long: a long poll) and return its result, unless the
        client closes the connection first: ``work`` is then cancelled (a waiter it holds is
        unregistered), None is returned, the caller answers nothing, and the request is
        logged with status 499."""
        task = asyncio.ensure_future(work)
        self._waiting = task
        try:
            return await task
        except asyncio.CancelledError:
            if not self._client_gone:
                raise  # this request itself was cancelled
            self.set_status(CLIENT_CLOSED, "Client Closed Request")
            return None
        finally:
            self._waiting = None

    def on_connection_close(self) -> None:
        self._client_gone = True
        if self._waiting is not None:
            self._waiting.cancel()
        super().on_connection_close()

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
        if e.retry_after is not None:  # 429 rate_limited, 503 too_many_waiters
            self.set_header("Retry-After", str(e.retry_after))
        if isinstance(e, MethodNotAllowed):  # RFC 9110: say which methods the resource supports
            self.set_header("Allow", ", ".join([*self.methods(), "OPTIONS"]))
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


# One decoder for every body: json.loads with an argument builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class NotFoundHandler(BaseHandler):
    auth_required = False
    route = "unmatched"

    async def admit(self) -> None:
        await self._check_origin_and_rate()
        raise NotFound("no such route")
