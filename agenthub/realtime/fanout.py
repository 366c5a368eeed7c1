"""Broadcasts written straight to the websockets, without a task per receiver.

python-socketio's ``AsyncManager.emit`` encodes a broadcast once, then creates one task per
receiver, each of which puts the packet on that socket's engine.io queue, from which the
socket's writer task takes it (``wait_for`` on ``Queue.get``: a timer and a future per
packet) and hands it to Tornado: about 3 tasks, 7 ``call_soon``s and a timer per delivery
(docs/ARCHITECTURE.md, "Fan-out"). That asyncio machinery, not the socket write, is most of
what a delivery costs.

``DirectManager`` keeps the library's path and adds a shorter one: when a receiver is a
websocket whose writer is parked on an empty queue (so everything queued before has been
handed to Tornado, in order), the encoded frame goes to Tornado's ``write_message`` at once,
from the emitting coroutine. Otherwise (packets still queued, an upgrade from polling, a
session past its ping timeout, a closing socket) the receiver gets the library's task, as
before, so per-socket order is the queue's order either way. Sockets are offered to the short
path with ``attach`` once the socket.io handshake is done (LiveSockets.admit).
``DirectServer`` sends the single-socket packets (an event's ack) the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from typing import Any

import socketio
import tornado.websocket
from engineio import packet as eio_packet
from socketio import packet


class DirectServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server whose single-socket packets (acks, the handshake's answer)
    take the manager's short path too."""

    manager: DirectManager

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        encoded = pkt.encode()
        if isinstance(encoded, str):
            frame = eio_packet.Packet(eio_packet.MESSAGE, encoded).encode()
            if self.manager.write_now(self.eio, eio_sid, frame):
                return
        await super()._send_packet(eio_sid, pkt)


class DirectManager(socketio.AsyncManager):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        # engine.io sid -> the Tornado websocket handler that engine.io's writer writes to.
        self._websockets: weakref.WeakValueDictionary[str, tornado.websocket.WebSocketHandler]
        self._websockets = weakref.WeakValueDictionary()

    def attach(self, eio_sid: str, environ: dict[str, Any]) -> None:
        """Offer a connected socket to the short path: only a websocket from its first request
        (whose handshake environ holds the websocket's handler); an upgraded polling session
        keeps the library's path."""
        handler = environ.get("tornado.handler")
        if isinstance(handler, tornado.websocket.WebSocketHandler):
            self._websockets[eio_sid] = handler

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to
            )
            return
        room = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        pkt = self.server.packet_class(packet.EVENT, namespace=namespace, data=[event, *args])
        encoded = pkt.encode()
        if isinstance(encoded, list):  # binary attachments: the library's path
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, to=to)
            return
        eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = eio_pkt.encode()
        eio = self.server.eio
        tasks = []
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            if not self.write_now(eio, eio_sid, frame):
                tasks.append(asyncio.create_task(self.server._send_eio_packet(eio_sid, eio_pkt)))
        if tasks:
            await asyncio.wait(tasks)

    def write_now(self, eio: Any, eio_sid: str, frame: str) -> bool:
        """Write ``frame`` to the socket now if that keeps its order; False: queue it."""
        handler = self._websockets.get(eio_sid)
        if handler is None:
            return False
        socket = eio.sockets.get(eio_sid)
        if socket is None or socket.closed or socket.closing or not socket.upgraded:
            return False
        queue = socket.queue
        # The writer is parked in queue.get(): what it took before is written already. (A
        # getter woken by a put leaves the packet in the queue until it runs: not empty.)
        if not queue.empty() or not any(not g.done() for g in queue._getters):
            return False
        last_ping = socket.last_ping
        if last_ping and time.time() - last_ping > eio.ping_timeout:
            return False  # engine.io's send closes it
        if handler.ws_connection is None:
            return False
        # Closed (or cut off as a slow consumer): engine.io's reader ends the session.
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            handler.write_message(frame)
        return True
