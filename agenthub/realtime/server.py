"""The socket.io server: built from settings, fed by the service event bus, mounted in the
Tornado app on the REST port, drained on shutdown."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import engineio.packet
import tornado.web

from agenthub.events import (
    AgentDisabled,
    Event,
    MemberAdded,
    MemberRemoved,
    MessagePosted,
    MessageRedacted,
    ReadMarked,
    RoomUpdated,
    SessionsStale,
    TokenRevoked,
)
from agenthub.metrics import Metrics
from agenthub.models import Message
from agenthub.origins import cors_setting
from agenthub.realtime.connections import SocketState
from agenthub.realtime.fanout import DirectManager, DirectServer, RedisDirectManager
from agenthub.realtime.namespace import AgentsNamespace
from agenthub.realtime.packets import AgentsPacket
from agenthub.realtime.rate_limit import FloodGuard
from agenthub.realtime.revalidation import SessionRevalidator
from agenthub.realtime.shared_presence import SharedPresence
from agenthub.realtime.sockets import LiveSockets
from agenthub.realtime.transport import SOCKETIO_PATH, Websockets, handler_class
from agenthub.services.registry import Services
from agenthub.services.sessions import SessionStanding
from agenthub.shutdown import within

log = logging.getLogger("agenthub.realtime")


class _LibraryLog(logging.LoggerAdapter[logging.Logger]):
    """The log python-socketio and python-engineio write to. They report a client's mistake
    (an origin not allowed) with ``error``; that is not a server fault, so it becomes a
    warning and ``journalctl -p err`` keeps meaning "look at the server". A failure in their
    own code comes through ``exception`` and stays an error, with its traceback (malformed
    packets never get that far: see realtime.packets and realtime.transport). Their
    per-packet info lines stay below the logger's WARNING level."""

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)


def _library_log(name: str) -> _LibraryLog:
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    return _LibraryLog(logger, {})


# What a socket is told when a re-check finds its session no longer valid; the
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
        # engine.io pings every third of the presence timeout and waits two thirds for the
        # pong. A client that stops answering sends nothing more: engine.io closes its
        # connection once it has heard nothing for the whole timeout, and the namespace's
        # disconnect handler takes the agent offline.
        timeout = float(settings.presence_timeout_seconds)
        self.ping_interval = timeout / 3
        self.ping_timeout = timeout - self.ping_interval
        self.manager: DirectManager
        if settings.redis_url:
            # Every emit to a room reaches the sockets of every process (docs/CONFIG.md).
            self.manager = RedisDirectManager(
                settings.redis_url, f"{settings.redis_prefix}:socketio", self._redis_state
            )
        else:
            self.manager = DirectManager()
        self.sio = DirectServer(
            client_manager=self.manager,
            async_mode="tornado",
            cors_allowed_origins=cors_setting(settings.allowed_origins),
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_http_buffer_size=settings.max_request_bytes,
            serializer=AgentsPacket,
            logger=_library_log("agenthub.socketio"),
            engineio_logger=_library_log("agenthub.engineio"),
        )
        self.sockets = LiveSockets(
            self.sio,
            lambda: FloodGuard(
                settings.socket_events_per_second,
                settings.socket_burst,
                settings.socket_flood_disconnect_after,
            ),
        )
        self.connections = self.sockets.connections
        self.presence = self.sockets.presence
        self.shared_presence: SharedPresence | None = None
        if settings.redis_url:
            self.shared_presence = SharedPresence(
                settings.redis_url,
                settings.redis_prefix,
                timeout,
                self._offline_elsewhere,
                self.presence.entries,
            )
            self.sockets.shared = self.shared_presence
            services.rooms.set_online_lookup(self._online_anywhere)
        self.sio.register_namespace(AgentsNamespace(services, self.sockets, self._observe_event))
        self.revalidator = SessionRevalidator(
            self.connections, services.sessions.standing, self.end_session
        )
        self._websockets = Websockets()
        self._handler = handler_class(
            self.sio,
            self._websockets,
            max_buffer_bytes=settings.socket_max_buffer_bytes,
            on_slow_consumer=self._slow_consumer,
        )
        services.bus.subscribe(self.on_event, everywhere=True)
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

    def _redis_state(self, up: bool) -> None:
        if not up and self.metrics is not None:
            self.metrics.redis_connection_lost()

    async def _offline_elsewhere(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> None:
        """A dead process's agent is offline now (shared presence's sweep)."""
        await self.sockets.announce(room_id, agent_id, "offline")

    async def _online_anywhere(self, room_id: uuid.UUID, agents: list[uuid.UUID]) -> set[uuid.UUID]:
        assert self.shared_presence is not None
        return await self.shared_presence.online(
            room_id, agents, lambda agent: self.presence.is_online(room_id, agent)
        )

    def start(self) -> None:
        """Start the manager now (python-socketio would at the first handshake), so its Redis
        subscription, when REDIS_URL is set, is in force and reported from the start."""
        if not self.sio.manager_initialized:
            self.sio.manager_initialized = True
            self.manager.initialize()
        if self.shared_presence is not None:
            self.shared_presence.start()

    async def stop(self) -> None:
        """After ``close``: this process no longer counts as alive for shared presence."""
        if self.shared_presence is not None:
            await self.shared_presence.stop()

    @property
    def redis_listening(self) -> bool | None:
        """None without REDIS_URL; else whether socket.io's subscription is in force."""
        if isinstance(self.manager, RedisDirectManager):
            return self.manager.listening
        return None

    def _observe_event(self, event: str, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_ws(event, seconds)

    def _slow_consumer(self) -> None:
        if self.metrics is not None:
            self.metrics.slow_consumer_disconnected()

    # --- wiring ---------------------------------------------------------------------------

    def url_spec(self) -> tuple[str, type[tornado.web.RequestHandler]]:
        return (SOCKETIO_PATH, self._handler)

    async def drain(self, deadline: float) -> None:
        """First half of a shutdown: take no new work (events are answered `unavailable`,
        handshakes refused) and wait, until ``deadline`` (loop time), for the events in
        progress to be answered."""
        self.sockets.accepting = False
        await self.revalidator.stop()
        for state in self.connections.all():
            if state.expiry is not None:
                state.expiry.cancel()
        await within(self.sockets.idle(), deadline, "socket events in progress")

    async def close(self, deadline: float) -> None:
        """Second half: close every socket at the transport level, after what is queued for
        it (acks, broadcasts) has been written, so clients treat it as a lost transport and
        reconnect by themselves, to the next process. Polling sessions end when the HTTP
        server closes their connections."""
        self._websockets.closing = True
        count = len(self._websockets)
        log.info("closing %d socket(s)", count)
        for eio_sid in list(self.sio.eio.sockets):
            await self.sio.eio.send_packet(eio_sid, engineio.packet.Packet(engineio.packet.NOOP))
        await within(self._websockets.all_closed(), deadline, "sockets closing")
        self._websockets.close_all()
        self.sockets.cancel_tasks()

    # --- sockets ----------------------------------------------------------------------------

    async def kick(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        await self.sockets.kick(sid, event, payload)

    async def end_session(self, state: SocketState, standing: SessionStanding) -> None:
        """A re-check found this socket's session no longer valid: end it the way
        an in-process revocation does (``session:revoked``, then disconnect)."""
        reason = standing.problem or "unknown"
        message = _ENDED_BECAUSE.get(reason, _ENDED_BECAUSE["unknown"])
        await self.kick(state.sid, "session:revoked", {"code": "unauthorized", "message": message})

    # --- service events -------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if isinstance(event, MessagePosted):
            # The bus publishes a room's messages in seq order, one at a time.
            message = event.message
            payload = message.to_dict()
            await self.sockets.send(str(message.room_id), "message:new", payload, here_only=True)
            await self._mentioned(message, payload)
        elif isinstance(event, MessageRedacted):
            # After the message:new of that seq (the bus keeps the room's order).
            payload = {"roomId": str(event.room_id), "seq": event.seq}
            await self.sockets.send(str(event.room_id), "message:redacted", payload, here_only=True)
        elif isinstance(event, RoomUpdated):
            # Everyone who hears it is a member (the room's sockets are its members'); a
            # member's read state is its own, so none is in it (Room.shared).
            room = event.room.shared()
            await self.sockets.send(str(room.id), "room:updated", room.to_dict())
        elif isinstance(event, ReadMarked):
            # The agent's other sockets: the one that sent room:read has its ack.
            payload = {"roomId": str(event.room_id), "lastReadSeq": event.last_read_seq}
            sids = [
                state.sid
                for state in self.connections.of_agent(event.agent_id)
                if state.sid != event.origin_sid
            ]
            if sids:
                await self.sockets.send(sids, "read:update", payload, here_only=True)
        elif isinstance(event, MemberAdded):
            await self.sockets.member_added(event.room_id, event.agent_id)
        elif isinstance(event, MemberRemoved):
            await self.sockets.member_removed(event.room_id, event.agent_id)
        elif isinstance(event, TokenRevoked):
            for state in self.connections.of_agent(event.agent_id):
                if state.principal.token_prefix == event.prefix:
                    await self._revoked(state.sid, "the API token was revoked")
        elif isinstance(event, AgentDisabled):
            for state in self.connections.of_agent(event.agent_id):
                await self._revoked(state.sid, "the agent was disabled")
        elif isinstance(event, SessionsStale):
            self.revalidator.request()

    async def _mentioned(self, message: Message, payload: dict[str, Any]) -> None:
        """``mention:new`` to the sockets (in the room) of each member the message mentions, or
        of every member but the sender for @room."""
        if not message.mentions and not message.mentions_room:
            return
        event = {
            "message": payload,
            "room": {"id": str(message.room_id), "slug": message.room_slug},
        }
        senders = self.sockets.sockets_in(message.room_id, [message.sender_id])
        if message.mentions_room:
            await self.sockets.send(
                str(message.room_id), "mention:new", event, skip=senders, here_only=True
            )
            return
        named = [agent for agent in message.mentions if agent != message.sender_id]
        sids = self.sockets.sockets_in(message.room_id, named)
        if sids:
            await self.sockets.send(sids, "mention:new", event, here_only=True)

    async def _revoked(self, sid: str, why: str) -> None:
        await self.kick(sid, "session:revoked", {"code": "unauthorized", "message": why})
