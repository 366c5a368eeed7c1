"""Request heads over the limit: a JSON 414 or 431 instead of a silently dropped connection.

Tornado reads a request head (request line and header fields) up to its ``max_header_size`` and
past that closes the connection without a word. ``agenthub.app`` sets that to HEAD_HARD_LIMIT,
and the application enforces HEAD_LIMIT below it with JSON answers (docs/API.md, "Limits").
"""

from __future__ import annotations

from typing import Any

import tornado.httputil
import tornado.web

from agenthub.api.base import BaseHandler
from agenthub.api.security import HttpGuards
from agenthub.errors import AppError, HeadersTooLarge, UriTooLong
from agenthub.services.registry import Services

# The request line, and the header fields together, may each take this much.
HEAD_LIMIT = 64 * 1024
# Tornado's own limit on a whole head; past it the connection is closed unanswered.
HEAD_HARD_LIMIT = 256 * 1024


def head_refusal(request: tornado.httputil.HTTPServerRequest) -> AppError | None:
    """The refusal for a head over HEAD_LIMIT, or None. Sizes are counted as sent on the
    wire: ``METHOD SP target SP version`` and ``name: value CRLF`` per field."""
    line = len(request.method or "") + len(request.uri or "") + len(request.version) + 2
    if line > HEAD_LIMIT:
        return UriTooLong(f"request line exceeds {HEAD_LIMIT} bytes", {"limit": HEAD_LIMIT})
    fields = sum(len(name) + len(value) + 4 for name, value in request.headers.get_all())
    if fields > HEAD_LIMIT:
        return HeadersTooLarge(
            f"request header fields exceed {HEAD_LIMIT} bytes", {"limit": HEAD_LIMIT}
        )
    return None


class OversizedHeadHandler(BaseHandler):
    """Answers the refusal ``head_refusal`` found, whatever the route (charged to the client
    address: an oversized Authorization header is not worth decoding)."""

    auth_required = False
    route = "unmatched"

    def initialize(  # type: ignore[override]
        self, services: Services, guards: HttpGuards, refusal: AppError
    ) -> None:
        super().initialize(services, guards)
        self.refusal = refusal

    async def admit(self) -> None:
        await self._check_origin_and_rate()
        raise self.refusal


class Application(tornado.web.Application):
    """Tornado's application, with oversized heads routed to ``OversizedHeadHandler``
    (``find_handler`` is tornado's documented hook for choosing a request's handler)."""

    def find_handler(
        self, request: tornado.httputil.HTTPServerRequest, **kwargs: Any
    ) -> tornado.web._HandlerDelegate:
        refusal = head_refusal(request)
        if refusal is None:
            return super().find_handler(request, **kwargs)
        args = dict(self.settings["default_handler_args"], refusal=refusal)
        return self.get_handler_delegate(request, OversizedHeadHandler, args)
