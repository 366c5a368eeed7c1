"""The Tornado handler engine.io runs on: python-engineio's, with what this server adds at
the transport (websocket) level."""

from __future__ import annotations

import logging
from typing import Any

import socketio
import tornado.web

log = logging.getLogger("agenthub.realtime")

SOCKETIO_PATH = "/socket.io/"

# engine.io packet types a client may send, as the first character of a text frame.
_ENGINEIO_TYPES = frozenset("0123456")


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
            # engine.io decodes a text frame without checking it: one that is not a packet
            # at all would end its read loop with a traceback. A client's mistake: say so
            # once in a warning and drop the frame.
            if isinstance(message, str) and message[:1] not in _ENGINEIO_TYPES:
                log.warning(
                    "websocket from %s sent a frame that is not an engine.io packet; dropped",
                    self.request.remote_ip,
                )
                return
            await super().on_message(message)

    return SocketIOHandler
