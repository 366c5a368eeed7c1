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
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

import socketio
import tornado.websocket
from engineio import packet as eio_packet
from socketio import packet

log = logging.getLogger("agenthub.realtime")


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


class RedisDirectManager(socketio.AsyncRedisManager, DirectManager):  # type: ignore[misc]
    """python-socketio's Redis manager (every emit to a room reaches the sockets of every
    process sharing the channel) whose local delivery, of this process's emits and of those
    received from Redis, takes ``DirectManager``'s short path: ``AsyncPubSubManager`` hands
    both to ``super().emit``, which the method order makes ``DirectManager.emit``.

    An emit addressed only to sockets of this process (an ack's follow-up, a kick's reason)
    is not published: nobody else could deliver it. The subscription reconnects with a short
    backoff (the library's doubles up to a minute) and reports each loss to ``on_lost``."""

    def __init__(
        self, url: str, channel: str, on_state: Callable[[bool], None] | None = None
    ) -> None:
        # (Not super(): mypy sees the untyped library class as Any and picks DirectManager.)
        socketio.AsyncRedisManager.__init__(
            self, url, channel=channel, redis_options=redis_options()
        )
        self._report_state = on_state
        self.listening = False

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
        target = to or room
        if callback is None and self._all_local(target, namespace):
            kwargs["ignore_queue"] = True
        await super().emit(
            event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs
        )

    def _all_local(self, target: Any, namespace: str) -> bool:
        if target is None:
            return False
        targets = target if isinstance(target, list | tuple) else [target]
        return all(self.is_connected(sid, namespace) for sid in targets)

    def _set_listening(self, up: bool) -> None:
        if up != self.listening:
            self.listening = up
            if self._report_state is not None:
                self._report_state(up)

    async def _redis_listen_with_retries(self) -> Any:
        delay = 0.2
        while True:
            self._redis_connect()
            pubsub = self.pubsub  # _publish may connect anew meanwhile: keep this one
            try:
                await pubsub.subscribe(self.channel)
                self._set_listening(True)
                delay = 0.2
                async for message in pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.listening:
                    log.warning("socket.io redis subscription lost: %s", exc)
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            self._set_listening(False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _publish(self, data: Any) -> Any:
        # One attempt, bounded: an emit must not hang on an unreachable Redis (the sockets of
        # other processes then miss it and catch up by seq); the library logs each failure.
        if not self.listening:
            # The subscription is down, so Redis is: skip rather than wait on every emit
            # (the other processes' sockets miss it, as they would anyway, and catch up by seq).
            return None
        for attempt in (1, 2):  # the second on a new connection (Redis may have restarted)
            if not self.connected:  # type: ignore[has-type]
                self._redis_connect()
            try:
                return await asyncio.wait_for(
                    self.redis.publish(self.channel, self.json.dumps(data)), timeout=2.0
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                if attempt == 2 and self.listening:
                    log.warning("cannot publish to redis: %s", exc)
        return None


def redis_options() -> dict[str, Any]:
    """The redis-py client options both Redis users share (agenthub.scaleout)."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return {
        "socket_connect_timeout": 2.0,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "retry": Retry(NoBackoff(), 0),
    }
