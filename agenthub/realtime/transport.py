"""The Tornado handler engine.io runs on: python-engineio's, with what this server adds at
the transport (websocket) level."""

from __future__ import annotations

import logging
from typing import Any

import socketio
import tornado.web

log = logging.getLogger("agenthub.realtime")

SOCKETIO_PATH = "/socket.io/"

# engine.io packet types, as the first character of a text packet.
_ENGINEIO_TYPES = frozenset("0123456")
_MESSAGE = "4"


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


def handler_class(sio: socketio.AsyncServer) -> type[tornado.web.RequestHandler]:
    base: type[tornado.web.RequestHandler] = socketio.get_tornado_handler(sio)

    class SocketIOHandler(base):  # type: ignore[valid-type,misc]
        route = SOCKETIO_PATH

        async def open(self, *args: Any, **kwargs: Any) -> None:
            # Tornado leaves Nagle on for websockets: an ack written right after a
            # broadcast would then wait for the client's delayed TCP ACK (~40 ms).
            self.set_nodelay(True)
            await super().open(*args, **kwargs)

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
