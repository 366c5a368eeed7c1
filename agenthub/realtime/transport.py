"""The Tornado handler engine.io runs on: python-engineio's, with what this server adds at
the transport level: junk refused before engine.io parses it, and a bound on what may wait
to be sent to a websocket.

engine.io's writer hands every packet to Tornado without waiting for the write, and Tornado
buffers whatever the peer does not take, without limit: a client that answers pings but never
reads would hold an ever-growing buffer. So each connection counts the bytes handed to Tornado
and not yet written to the kernel (each write's future says when), and a connection that has
more than ``max_buffer_bytes`` waiting behind the frame being written is closed at once, its
buffer dropped. Not counting that frame lets one frame of any size (a large ``room:sync``
page) through to a client that reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import socketio
import tornado.web
import tornado.websocket
from tornado.iostream import StreamClosedError
from tornado.websocket import WebSocketClosedError, WebSocketProtocol13

log = logging.getLogger("agenthub.realtime")

SOCKETIO_PATH = "/socket.io/"

# engine.io packet types, as the first character of a text packet.
_ENGINEIO_TYPES = frozenset("0123456")
_MESSAGE = "4"
_NOOP = "6"
_RESTARTING = 1012  # websocket close code "Service Restart"


def packet_problem(text: str) -> str | None:
    """What is wrong with an engine.io text packet from a client, if anything. engine.io
    decodes without checking (a bad one ends its read loop, or its JSON parse recurses
    without limit), and a message must carry a socket.io packet, which starts with its type."""
    if text[:1] not in _ENGINEIO_TYPES:
        return "not an engine.io packet"
    if text[:1] == _MESSAGE and not text[1:2].isdigit():
        return "not a socket.io packet"
    return None


def payload_problem(body: bytes) -> str | None:
    """The same for a polling POST body: packets separated by U+001E; ``b`` starts a
    base64 binary packet."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return "not UTF-8"
    if text.startswith("d="):
        return None  # JSONP: engine.io unwraps it
    for part in text.split("\x1e"):
        problem = None if part.startswith("b") else packet_problem(part)
        if problem is not None:
            return problem
    return None


class Websockets:
    """The open websocket connections of one server, for shutdown: once ``closing``, each
    closes itself right after writing an engine.io NOOP, which the server sends through
    every session's queue, so whatever was queued before it (acks) goes out first."""

    def __init__(self) -> None:
        self.closing = False
        self._open: set[tornado.websocket.WebSocketHandler] = set()
        self._none_open = asyncio.Event()
        self._none_open.set()

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, handler: tornado.websocket.WebSocketHandler) -> None:
        self._open.add(handler)
        self._none_open.clear()

    def closed(self, handler: tornado.websocket.WebSocketHandler) -> None:
        self._open.discard(handler)
        if not self._open:
            self._none_open.set()

    async def all_closed(self) -> None:
        await self._none_open.wait()

    def close_all(self) -> None:
        """Close the connections still open without waiting for anything."""
        for handler in list(self._open):
            handler.close(_RESTARTING, "the server is restarting")


def name_connection(environ: dict[str, Any], name: str) -> None:
    """Tell a connection's handler whose it is, for its log lines."""
    handler = environ.get("tornado.handler")
    if handler is not None and hasattr(handler, "connection_name"):
        handler.connection_name = name


def handler_class(
    sio: socketio.AsyncServer,
    websockets: Websockets,
    *,
    max_buffer_bytes: int,
    on_slow_consumer: Callable[[], None],
) -> type[tornado.web.RequestHandler]:
    base: type[tornado.web.RequestHandler] = socketio.get_tornado_handler(sio)

    class SocketIOHandler(base):  # type: ignore[valid-type,misc]
        route = SOCKETIO_PATH
        connection_name = "a socket not yet connected"

        async def open(self, *args: Any, **kwargs: Any) -> None:
            self.connection_name = f"a socket from {self.request.remote_ip}"
            self._unsent = 0  # bytes handed to Tornado, not yet written to the kernel
            self._frames: deque[int] = deque()  # their sizes, oldest first
            self._cut_off = False
            # Tornado leaves Nagle on for websockets: an ack written right after a
            # broadcast would then wait for the client's delayed TCP ACK (~40 ms).
            self.set_nodelay(True)
            websockets.opened(self)
            await super().open(*args, **kwargs)

        def on_close(self) -> None:
            websockets.closed(self)
            super().on_close()

        def write_message(
            self, message: bytes | str | dict[str, Any], binary: bool = False
        ) -> asyncio.Future[None]:
            size = len(message)  # engine.io sends str (ASCII JSON) or bytes: one byte each
            behind = self._unsent - (self._frames[0] if self._frames else 0)
            if behind + size > max_buffer_bytes:
                self._cut_off_slow_consumer(behind + size)
                raise WebSocketClosedError()
            written = self._write_frame(message, binary)
            self._unsent += size
            self._frames.append(size)
            written.add_done_callback(self._written)
            if websockets.closing and message == _NOOP:
                # Shutdown's barrier: everything queued before it is written. A close
                # frame, not an engine.io CLOSE packet, so clients treat it as a lost
                # transport and reconnect by themselves (to the next process).
                self.close(_RESTARTING, "the server is restarting")
            return written

        def _write_frame(
            self, message: bytes | str | dict[str, Any], binary: bool
        ) -> asyncio.Future[None]:
            """Tornado's ``write_message`` without the task it wraps every write's future in
            (to turn ``StreamClosedError`` into ``WebSocketClosedError``): one task per frame,
            on every delivery. Nobody awaits these futures but ``_written``, which only
            counts bytes. Compression is off (``get_compression_options``)."""
            conn = self.ws_connection
            if (
                not isinstance(conn, WebSocketProtocol13)
                or conn._compressor is not None
                or isinstance(message, dict)
            ):
                written: asyncio.Future[None] = super().write_message(message, binary)
                return written
            if conn.is_closing():
                raise WebSocketClosedError()
            data = message.encode() if isinstance(message, str) else message
            conn._message_bytes_out += len(data)
            try:
                return conn._write_frame(True, 0x2 if binary else 0x1, data)
            except StreamClosedError:
                raise WebSocketClosedError() from None

        def _written(self, written: asyncio.Future[None]) -> None:
            if not written.cancelled():
                written.exception()  # a closed connection: nobody else will look
            self._unsent -= self._frames.popleft()

        def _cut_off_slow_consumer(self, waiting: int) -> None:
            if self._cut_off:
                return
            self._cut_off = True
            log.warning(
                "%s is not reading: %d bytes would wait to be sent (SOCKET_MAX_BUFFER_BYTES"
                " is %d); closing its connection, it will catch up with room:sync",
                self.connection_name,
                waiting,
                max_buffer_bytes,
            )
            on_slow_consumer()
            if self.ws_connection is not None:
                # Not a close frame: it would queue behind what the client does not read.
                self.ws_connection.stream.close()

        def get_compression_options(self) -> dict[str, Any] | None:
            # python-engineio turns permessage-deflate on for clients that offer it
            # (browsers, Node's ws). Tornado deflates every frame separately for every
            # recipient, so a fan-out pays a zlib pass per socket to save bytes on a LAN.
            return None

        async def on_message(self, message: str | bytes) -> None:
            # A client's mistake: one warning, and the frame is dropped.
            problem = packet_problem(message) if isinstance(message, str) else None
            if problem is not None:
                log.warning("websocket from %s sent %s; dropped", self.request.remote_ip, problem)
                return
            await super().on_message(message)

        async def post(self, *args: Any, **kwargs: Any) -> None:
            problem = payload_problem(self.request.body)
            if problem is not None:
                log.warning("polling POST from %s: %s; refused", self.request.remote_ip, problem)
                self.set_status(400)
                self.finish({"error": {"code": "validation_failed", "message": problem}})
                return
            await super().post(*args, **kwargs)

    return SocketIOHandler
