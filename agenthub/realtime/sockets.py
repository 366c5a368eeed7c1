"""The live sockets of this process: who each one is, where it is present, and what can be
done to it (enter and leave rooms, send, kick, forget). The namespace and the service-event
listener both work through this one object; neither reaches into the other."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import socketio

from agenthub.actors import Principal
from agenthub.realtime import NAMESPACE
from agenthub.realtime.connections import Connections, SocketState
from agenthub.realtime.fanout import DirectManager
from agenthub.realtime.presence import Presence
from agenthub.realtime.rate_limit import FloodGuard
from agenthub.realtime.shared_presence import SharedPresence
from agenthub.realtime.transport import name_connection

log = logging.getLogger("agenthub.realtime")


class LiveSockets:
    def __init__(self, sio: socketio.AsyncServer, guard: Callable[[], FloodGuard]) -> None:
        self._sio = sio
        self._guard = guard
        self.connections = Connections()
        self.presence = Presence()
        # REDIS_URL: whether an agent is online anywhere (realtime.shared_presence).
        self.shared: SharedPresence | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Shutdown: once False, events are answered `unavailable` and handshakes refused.
        self.accepting = True
        self._events_in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # --- lifecycle of one socket -------------------------------------------------------------

    def admit(
        self, sid: str, principal: Principal, expires_at: datetime, environ: dict[str, Any]
    ) -> SocketState:
        name_connection(environ, f"socket {sid} of agent {principal.name}")
        state = SocketState(
            sid=sid, principal=principal, expires_at=expires_at, guard=self._guard()
        )
        self.connections.add(state)
        self.presence.add_socket(sid, principal.agent_id)
        if isinstance(self._sio.manager, DirectManager):
            eio_sid = self._sio.manager.eio_sid_from_sid(sid, NAMESPACE)
            if eio_sid is not None:
                self._sio.manager.attach(eio_sid, environ)
        self.refreshed(state)
        return state

    def state(self, sid: str) -> SocketState | None:
        return self.connections.get(sid)

    async def forget(self, sid: str) -> None:
        """Drop what this process knows about a socket (idempotent) and tell its rooms when
        its agent went offline because of it."""
        state = self.connections.remove(sid)
        offline = self.presence.remove_socket(sid)
        if state is not None:
            for room_id in offline:
                if await self._gone_everywhere(room_id, state.agent_id):
                    await self.announce(room_id, state.agent_id, "offline")

    def refreshed(self, state: SocketState) -> None:
        """(Re)arm the timer that ends the socket when its session expires."""
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

    async def kick(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        """Tell the socket why, then disconnect it. The namespace disconnect comes first, so
        socket.io clients see the server's decision ("io server disconnect") and do not
        reconnect on their own with a credential that will be refused; then the transport
        closes, so a client that ignores the disconnect cannot keep sending."""
        state = self.connections.get(sid)
        if state is None or state.closing:
            return
        state.closing = True
        log.info("disconnecting socket %s of agent %s: %s", sid, state.principal.name, event)
        with contextlib.suppress(Exception):
            await self.send(sid, event, payload)
        eio_sid = self._sio.manager.eio_sid_from_sid(sid, NAMESPACE)
        await self.forget(sid)
        # Mid-handshake this does nothing; the handshake sees `closing` and refuses.
        await self._sio.disconnect(sid, namespace=NAMESPACE)
        if eio_sid is not None:
            await self._sio.eio.disconnect(eio_sid)

    # --- rooms and emits ------------------------------------------------------------------------

    async def enter(self, sid: str, room_id: uuid.UUID) -> bool:
        """Join the socket to the room's broadcasts; True when its agent came online there."""
        await self._sio.enter_room(sid, str(room_id), namespace=NAMESPACE)
        if not self.presence.join(sid, room_id):
            return False
        state = self.connections.get(sid)
        if self.shared is None or state is None:
            return True
        return await self.shared.arrived(room_id, state.agent_id)

    async def leave(self, sid: str, room_id: uuid.UUID) -> bool:
        await self._sio.leave_room(sid, str(room_id), namespace=NAMESPACE)
        state = self.connections.get(sid)
        if not self.presence.leave(sid, room_id):
            return False
        return state is None or await self._gone_everywhere(room_id, state.agent_id)

    async def _gone_everywhere(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
        """The agent just went offline in the room on this process: is it offline anywhere?"""
        if self.shared is None:
            return True
        return await self.shared.departed(room_id, agent_id)

    async def send(
        self,
        to: str | list[str],
        event: str,
        payload: dict[str, Any],
        skip: Sequence[str] = (),
        *,
        here_only: bool = False,
    ) -> None:
        """``event`` to sockets (sids) or to everyone in rooms (room ids), but ``skip``.
        ``here_only``: to this process's sockets alone, for an event every process hears and
        sends to its own sockets (agenthub.scaleout); without REDIS_URL it changes nothing."""
        await self._sio.emit(
            event,
            payload,
            to=to,
            skip_sid=list(skip),
            namespace=NAMESPACE,
            ignore_queue=here_only,
        )

    def sockets_in(self, room_id: uuid.UUID, agents: Iterable[uuid.UUID]) -> list[str]:
        """The sockets of ``agents`` that are in the room."""
        return [
            state.sid
            for agent_id in agents
            for state in self.connections.of_agent(agent_id)
            if self.presence.in_room(state.sid, room_id)
        ]

    async def announce(
        self,
        room_id: uuid.UUID,
        agent_id: uuid.UUID,
        status: str,
        extra_sids: Sequence[str] = (),
    ) -> None:
        payload = {"roomId": str(room_id), "agentId": str(agent_id), "status": status}
        await self._sio.emit(
            "presence:update", payload, to=[str(room_id), *extra_sids], namespace=NAMESPACE
        )

    async def member_added(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> None:
        """Put the agent's live sockets in the room (a no-op for those already in it)."""
        came_online = False
        for state in self.connections.of_agent(agent_id):
            came_online = await self.enter(state.sid, room_id) or came_online
        if came_online:
            await self.announce(room_id, agent_id, "online")

    async def member_removed(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> None:
        sids = [state.sid for state in self.connections.of_agent(agent_id)]
        went_offline = False
        for sid in sids:
            went_offline = await self.leave(sid, room_id) or went_offline
        if went_offline:
            # The removed agent's own sockets hear it too: they no longer get the room's events.
            await self.announce(room_id, agent_id, "offline", sids)

    # --- background work and events in flight -------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    @contextlib.contextmanager
    def handling(self) -> Iterator[None]:
        """Count an event as in flight until its ack is decided (shutdown waits for them)."""
        self._events_in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._events_in_flight -= 1
            if self._events_in_flight == 0:
                self._idle.set()

    async def idle(self) -> None:
        """Return once no event is being handled."""
        await self._idle.wait()
