"""The socket.io server: built from settings, fed by the service event bus, mounted in the
Tornado app on the REST port, drained on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime
from typing import Any

import socketio
import tornado.web

from agenthub.events import (
    AgentDisabled,
    Event,
    MemberAdded,
    MemberRemoved,
    MessagePosted,
    TokenRevoked,
)
from agenthub.metrics import Metrics
from agenthub.models import Message, Principal
from agenthub.realtime import NAMESPACE
from agenthub.realtime.connections import Connections, SocketState
from agenthub.realtime.namespace import AgentsNamespace
from agenthub.realtime.origins import cors_setting
from agenthub.realtime.presence import HeartbeatPruner, Presence
from agenthub.realtime.rate_limit import FloodGuard
from agenthub.realtime.revalidation import SessionRevalidator
from agenthub.services.registry import Services
from agenthub.services.sessions import SessionStanding

log = logging.getLogger("agenthub.realtime")

SOCKETIO_PATH = "/socket.io/"


class _LibraryLog(logging.LoggerAdapter[logging.Logger]):
    """The log python-socketio and python-engineio write to. They report a client's mistake
    (an origin not allowed, a malformed packet) with ``error``; that is not a server fault,
    so it becomes a warning and ``journalctl -p err`` keeps meaning "look at the server".
    Their per-packet info lines stay below the logger's WARNING level."""

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)


def _library_log(name: str) -> _LibraryLog:
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    return _LibraryLog(logger, {})


# What a socket is told when the periodic re-check finds its session no longer valid; the
# first two are the words the in-process (REST) revocation path uses.
_ENDED_BECAUSE = {
    "revoked": "the API token was revoked",
    "agent-disabled": "the agent was disabled",
    "expired": "the API token expired",
    "unknown": "the API token no longer exists",
}


class RealtimeServer:
    def __init__(self, services: Services, metrics: Metrics | None = None) -> None:
        settings = services.settings
        self.services = services
        self.metrics: Metrics | None = None
        self.connections = Connections()
        self.presence = Presence()
        # engine.io pings every third of the presence timeout and waits two thirds for the
        # pong: a client that stops answering is overdue exactly PRESENCE_TIMEOUT_SECONDS
        # after its last pong, and the pruner drops it on its next pass.
        timeout = float(settings.presence_timeout_seconds)
        self.ping_interval = timeout / 3
        self.ping_timeout = timeout - self.ping_interval
        self.sio = socketio.AsyncServer(
            async_mode="tornado",
            cors_allowed_origins=cors_setting(settings.allowed_origins),
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_http_buffer_size=settings.max_request_bytes,
            logger=_library_log("agenthub.socketio"),
            engineio_logger=_library_log("agenthub.engineio"),
        )
        self.sio.register_namespace(AgentsNamespace(self))
        self.pruner = HeartbeatPruner(
            self.presence, self.is_alive, self.drop, interval=max(0.5, timeout / 10)
        )
        self.revalidator = SessionRevalidator(
            self.connections,
            services.sessions.standing,
            self.end_session,
            interval=float(settings.socket_revalidate_seconds),
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        services.bus.subscribe(self.on_event)
        services.rooms.set_online_check(self.presence.is_online)
        if metrics is not None:
            self.bind_metrics(metrics)

    def bind_metrics(self, metrics: Metrics) -> None:
        """Report socket counts and event latency to ``metrics``. The gauges are read from
        the connection and presence tables when scraped, so they cannot drift from them."""
        self.metrics = metrics
        metrics.track_presence(
            lambda: float(self.connections.agent_count()),
            lambda: float(self.presence.room_count()),
        )

    # --- wiring ---------------------------------------------------------------------------

    def handler(self) -> type[tornado.web.RequestHandler]:
        base: type[tornado.web.RequestHandler] = socketio.get_tornado_handler(self.sio)

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

        return SocketIOHandler

    def url_spec(self) -> tuple[str, type[tornado.web.RequestHandler]]:
        return (SOCKETIO_PATH, self.handler())

    def start(self) -> None:
        self.pruner.start()
        self.revalidator.start()

    async def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Close every socket at the transport level, so clients reconnect to the next
        process instead of treating it as a deliberate server disconnect."""
        await self.pruner.stop()
        await self.revalidator.stop()
        for state in self.connections.all():
            state.closing = True
            if state.expiry is not None:
                state.expiry.cancel()
        if self.sio.eio.sockets:
            log.info("closing %d socket(s)", len(self.sio.eio.sockets))
            try:
                await asyncio.wait_for(self.sio.eio.disconnect(), timeout=grace_seconds)
            except TimeoutError:
                log.warning("sockets still open after %.0fs; closing anyway", grace_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.sio.shutdown(), timeout=grace_seconds)
        for task in list(self._tasks):
            task.cancel()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- sockets ----------------------------------------------------------------------------

    def register(self, sid: str, principal: Principal, expires_at: datetime) -> SocketState:
        settings = self.services.settings
        state = SocketState(
            sid=sid,
            principal=principal,
            expires_at=expires_at,
            guard=FloodGuard(
                settings.socket_events_per_second,
                settings.socket_burst,
                settings.socket_flood_disconnect_after,
            ),
        )
        self.connections.add(state)
        self.presence.add_socket(sid, principal.agent_id)
        self.schedule_expiry(state)
        return state

    def schedule_expiry(self, state: SocketState) -> None:
        if state.expiry is not None:
            state.expiry.cancel()
        delay = max(0.0, state.expires_at.timestamp() - time.time())
        loop = asyncio.get_running_loop()
        state.expiry = loop.call_later(delay, lambda: self.spawn(self._expire(state.sid)))

    async def _expire(self, sid: str) -> None:
        state = self.connections.get(sid)
        if state is None or state.expires_at.timestamp() > time.time():
            return  # refreshed in the meantime
        await self.kick(
            sid,
            "session:expired",
            {"code": "unauthorized", "message": "session expired; connect with a new token"},
        )

    async def enter(self, sid: str, room_id: uuid.UUID) -> bool:
        """Join the socket to the room's broadcasts; True when its agent came online there."""
        await self.sio.enter_room(sid, str(room_id), namespace=NAMESPACE)
        return self.presence.join(sid, room_id)

    async def leave(self, sid: str, room_id: uuid.UUID) -> bool:
        await self.sio.leave_room(sid, str(room_id), namespace=NAMESPACE)
        return self.presence.leave(sid, room_id)

    async def announce(
        self, room_id: uuid.UUID, agent_id: uuid.UUID, status: str, extra_sids: list[str]
    ) -> None:
        payload = {"roomId": str(room_id), "agentId": str(agent_id), "status": status}
        await self.sio.emit(
            "presence:update", payload, to=[str(room_id), *extra_sids], namespace=NAMESPACE
        )

    async def forget(self, sid: str) -> None:
        """Drop what this process knows about a socket (idempotent) and tell its rooms when
        its agent went offline because of it."""
        state = self.connections.remove(sid)
        offline = self.presence.remove_socket(sid)
        if state is not None:
            for room_id in offline:
                await self.announce(room_id, state.agent_id, "offline", [])

    async def drop(self, sid: str) -> None:
        """Forget a socket and close its connection, whatever state the handshake is in."""
        manager = self.sio.manager
        eio_sid = manager.eio_sid_from_sid(sid, NAMESPACE)
        await self.forget(sid)
        if manager.is_connected(sid, NAMESPACE):
            await self.sio.disconnect(sid, namespace=NAMESPACE)
        elif eio_sid is not None:
            # A handshake whose transport died: socket.io never ran its disconnect path.
            await manager.disconnect(sid, NAMESPACE, ignore_queue=True)
        if eio_sid is not None and eio_sid in self.sio.eio.sockets:
            await self.sio.eio.disconnect(eio_sid)

    async def kick(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        """Tell the socket why, then disconnect it. The namespace disconnect comes first, so
        socket.io clients see the server's decision ("io server disconnect") and do not
        reconnect on their own with a credential that will be refused."""
        state = self.connections.get(sid)
        if state is None or state.closing:
            return
        state.closing = True
        log.info("disconnecting socket %s of agent %s: %s", sid, state.principal.name, event)
        with contextlib.suppress(Exception):
            await self.sio.emit(event, payload, to=sid, namespace=NAMESPACE)
        await self.drop(sid)

    async def end_session(self, state: SocketState, standing: SessionStanding) -> None:
        """The periodic re-check found this socket's session no longer valid: end it the way
        an in-process revocation does (``session:revoked``, then disconnect)."""
        reason = standing.problem or "unknown"
        message = _ENDED_BECAUSE.get(reason, _ENDED_BECAUSE["unknown"])
        await self.kick(state.sid, "session:revoked", {"code": "unauthorized", "message": message})

    def is_alive(self, sid: str) -> bool:
        """False when the socket's engine.io connection is gone or its pong is overdue."""
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        sock = self.sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
        if sock is None or sock.closed:
            return False
        # engine.io sets last_ping when it sends a ping and clears it when the pong arrives.
        pinged_at = getattr(sock, "last_ping", None)
        return not (pinged_at and time.time() - pinged_at > self.ping_timeout)

    # --- service events -------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if isinstance(event, MessagePosted):
            # The bus publishes a room's messages in seq order, one at a time.
            await self._broadcast(event.message)
        elif isinstance(event, MemberAdded):
            await self.member_added(event.room_id, event.agent_id)
        elif isinstance(event, MemberRemoved):
            await self.member_removed(event.room_id, event.agent_id)
        elif isinstance(event, TokenRevoked):
            for state in self.connections.of_agent(event.agent_id):
                if state.principal.token_prefix == event.prefix:
                    await self.kick(
                        state.sid,
                        "session:revoked",
                        {"code": "unauthorized", "message": "the API token was revoked"},
                    )
        elif isinstance(event, AgentDisabled):
            for state in self.connections.of_agent(event.agent_id):
                await self.kick(
                    state.sid,
                    "session:revoked",
                    {"code": "unauthorized", "message": "the agent was disabled"},
                )

    async def _broadcast(self, message: Message) -> None:
        await self.sio.emit(
            "message:new", message.to_dict(), to=str(message.room_id), namespace=NAMESPACE
        )

    async def member_added(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> None:
        came_online = False
        for state in self.connections.of_agent(agent_id):
            came_online = await self.enter(state.sid, room_id) or came_online
        if came_online:
            await self.announce(room_id, agent_id, "online", [])

    async def member_removed(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> None:
        sids = [state.sid for state in self.connections.of_agent(agent_id)]
        went_offline = False
        for sid in sids:
            went_offline = await self.leave(sid, room_id) or went_offline
        if went_offline:
            # The removed agent's own sockets hear it too: they no longer get the room's events.
            await self.announce(room_id, agent_id, "offline", sids)
