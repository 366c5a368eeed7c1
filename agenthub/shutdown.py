"""Stopping without dropping what is in flight (HTTP side).

Tornado's ``close_all_connections`` closes every connection at once, a request in progress
included: a post committed just before it lost its response. ``RequestDrain`` sits between the
HTTP server and the application and counts the requests in progress, from their headers to
their response having been written out; once shutdown begins it answers any new request on a
kept-alive connection ``503 unavailable`` with ``Connection: close``. Shutdown then waits
(bounded) for the count to reach zero before closing the connections.

Requests under ``exempt`` (the socket.io path) are neither counted nor refused: a long poll
lasts until the socket layer closes it, and the socket layer drains its own events.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from typing import Any

from tornado import httputil
from tornado.iostream import StreamClosedError

log = logging.getLogger("agenthub")

DRAIN_SECONDS = 10.0
"""How long a shutdown waits for work in progress (requests, socket events, broadcasts, acks
being written) before it closes connections anyway."""

_REFUSAL = json.dumps(
    {"error": {"code": "unavailable", "message": "the server is shutting down; retry shortly"}}
).encode()


async def within(awaitable: Awaitable[Any], deadline: float, what: str) -> bool:
    """Wait for ``awaitable`` until ``deadline`` (loop time); False, logged, if it did not
    finish by then."""
    remaining = deadline - asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(awaitable, timeout=max(0.0, remaining))
    except TimeoutError:
        log.warning("shutdown: %s still going at the drain deadline; closing anyway", what)
        return False
    return True


class RequestDrain(httputil.HTTPServerConnectionDelegate):
    def __init__(
        self, app: httputil.HTTPServerConnectionDelegate, *, exempt: tuple[str, ...] = ()
    ) -> None:
        self._app = app
        self._exempt = exempt
        self.draining = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        return _Request(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self._app.on_close(server_conn)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def idle(self) -> None:
        """Return once no counted request is in progress."""
        await self._idle.wait()

    def _begin(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def _end(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()


class _Request(httputil.HTTPMessageDelegate):
    """One request: refused while draining, else handed to the application (counted)."""

    def __init__(
        self, drain: RequestDrain, server_conn: object, conn: httputil.HTTPConnection
    ) -> None:
        self._drain = drain
        self._server_conn = server_conn
        self._conn = conn
        self._inner: httputil.HTTPMessageDelegate | None = None
        self._counted = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        assert isinstance(start_line, httputil.RequestStartLine)
        exempt = start_line.path.startswith(self._drain._exempt) if self._drain._exempt else False
        if self._drain.draining and not exempt:
            self._refuse()
            return None
        conn = self._conn
        if not exempt:
            self._counted = True
            self._drain._begin()
            conn = _Counted(self._conn, self._done)  # type: ignore[assignment]
        self._inner = self._drain._app.start_request(self._server_conn, conn)
        return self._inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        if self._inner is not None:
            return self._inner.data_received(chunk)
        return None

    def finish(self) -> None:
        if self._inner is not None:
            self._inner.finish()

    def on_connection_close(self) -> None:
        if self._inner is not None:
            self._inner.on_connection_close()
        self._done()

    def _done(self) -> None:
        if self._counted:
            self._counted = False
            self._drain._end()

    def _refuse(self) -> None:
        headers = httputil.HTTPHeaders(
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(_REFUSAL)),
                "Connection": "close",
                "Retry-After": "1",
            }
        )
        start = httputil.ResponseStartLine("HTTP/1.1", 503, "Service Unavailable")
        self._conn.write_headers(start, headers, _REFUSAL)
        self._conn.finish()


class _Counted:
    """The request's connection as the application sees it: the request stops counting once
    its response has been written out (or the connection is gone)."""

    def __init__(self, conn: httputil.HTTPConnection, done: Any) -> None:
        self._conn = conn
        self._done = done

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def finish(self) -> None:
        self._conn.finish()
        stream = getattr(self._conn, "stream", None)
        try:
            # An empty write resolves once everything written before it is out.
            flushed = stream.write(b"") if stream is not None else None
        except StreamClosedError:
            flushed = None
        if flushed is None:
            self._done()
        else:
            flushed.add_done_callback(self._flushed)

    def _flushed(self, flushed: asyncio.Future[None]) -> None:
        if not flushed.cancelled():
            flushed.exception()  # a connection closed meanwhile: nothing more to wait for
        self._done()

    def detach(self) -> Any:
        # A websocket upgrade takes the connection over: the request is over.
        self._done()
        return self._conn.detach()  # type: ignore[attr-defined]
