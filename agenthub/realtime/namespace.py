"""Namespace ``/agents``: translate socket events into the same service calls REST makes.

Every event answers through its ack: ``{"ok": true, ...}`` or ``{"ok": false, "error":
{"code", "message", "details?"}}`` (the REST error object). Bad input never raises out of
here: a raised exception would leave the client waiting for an ack that never comes.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import socketio
from marshmallow import RAISE, Schema, fields

from agenthub import schemas
from agenthub.actors import Principal
from agenthub.errors import (
    AppError,
    Forbidden,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from agenthub.models import iso
from agenthub.realtime import NAMESPACE
from agenthub.realtime.connections import SocketState
from agenthub.realtime.packets import Malformed
from agenthub.services.registry import Services

log = logging.getLogger("agenthub.realtime")

Ack = dict[str, Any]
EventHandler = Callable[[SocketState, Any], Awaitable[dict[str, Any]]]
ObserveEvent = Callable[[str, float], None]


class Hub(Protocol):
    """What the namespace needs from the process's live sockets (realtime.sockets)."""

    accepting: bool

    def admit(
        self, sid: str, principal: Principal, expires_at: datetime, environ: dict[str, Any]
    ) -> SocketState: ...
    def state(self, sid: str) -> SocketState | None: ...
    def refreshed(self, state: SocketState) -> None: ...
    async def forget(self, sid: str) -> None: ...
    async def kick(self, sid: str, event: str, payload: dict[str, Any]) -> None: ...
    async def enter(self, sid: str, room_id: uuid.UUID) -> bool: ...
    async def leave(self, sid: str, room_id: uuid.UUID) -> bool: ...
    async def send(self, to: str, event: str, payload: dict[str, Any]) -> None: ...
    async def announce(
        self,
        room_id: uuid.UUID,
        agent_id: uuid.UUID,
        status: str,
        extra_sids: Sequence[str] = (),
    ) -> None: ...
    async def member_added(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None: ...
    def handling(self) -> AbstractContextManager[None]: ...


class RefreshSessionEvent(Schema):
    class Meta:
        unknown = RAISE

    token = fields.String(required=True)


class Refused(socketio.exceptions.ConnectionRefusedError):  # type: ignore[misc]
    """A refused handshake. socket.io sends ``error_args`` as the connect_error data: the
    JavaScript client exposes ``err.message`` and ``err.data``; python-socketio hands over the
    whole object. So the error object is at the top level and under ``data``."""

    def __init__(self, error: AppError) -> None:
        super().__init__(error.message)
        body = error.to_dict()
        self.error_args = {**body, "data": body}


def error_ack(error: AppError) -> Ack:
    return {"ok": False, "error": error.to_dict()}


def token_from_handshake(auth: Any, environ: dict[str, Any]) -> str | None:
    """The JWT from the socket.io v4 ``auth`` payload, else from ``?token=``."""
    candidate: Any = None
    if isinstance(auth, dict):
        candidate = auth.get("token")
    if candidate is None:
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        values = query.get("token")
        candidate = values[0] if values else None
    if not isinstance(candidate, str):
        return None
    candidate = candidate.strip()
    if candidate.lower().startswith("bearer "):
        candidate = candidate[7:].strip()
    return candidate or None


class AgentsNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, services: Services, hub: Hub, observe: ObserveEvent | None = None) -> None:
        super().__init__(NAMESPACE)
        self.services = services
        self.hub = hub
        self._observe = observe
        self._events: dict[str, EventHandler] = {
            "message:send": self._send_message,
            "room:join": self._join_room,
            "room:leave": self._leave_room,
            "room:sync": self._sync_room,
            "room:read": self._read_room,
            "session:refresh": self._refresh_session,
        }

    # --- lifecycle --------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        if not self.hub.accepting:
            raise Refused(Unavailable("the server is shutting down; connect again shortly"))
        if isinstance(auth, Malformed):
            log.warning("socket %s: malformed CONNECT packet (%s); refused", sid, auth.problem)
            raise Refused(ValidationFailed("malformed CONNECT packet", {"auth": auth.problem}))
        token = token_from_handshake(auth, environ)
        if token is None:
            raise Refused(Unauthorized("missing session token: send auth {token} or ?token="))
        try:
            principal, claims = await self.services.sessions.authenticate(token)
        except AppError as exc:
            raise Refused(exc) from None
        except Exception:
            log.exception("socket handshake failed")
            raise Refused(AppError("internal error")) from None
        state = self.hub.admit(sid, principal, claims.expires_at, environ)
        try:
            rooms, came_online = await self._enter_member_rooms(sid, principal.agent_id)
        except Exception as exc:
            await self.hub.forget(sid)
            if isinstance(exc, AppError):
                raise Refused(exc) from None
            log.exception("socket handshake failed")
            raise Refused(AppError("internal error")) from None
        if state.closing:
            # Revoked or expired while the handshake ran (kick could not disconnect it yet).
            await self.hub.forget(sid)
            raise Refused(Unauthorized("the session ended during the handshake"))
        log.info("socket %s connected: agent %s, %d room(s)", sid, principal.name, len(rooms))
        # socket.io queues the namespace CONNECT packet as soon as this returns, without
        # yielding to the loop in between; a task started now therefore runs after it, so
        # `connected` follows CONNECT (a client drops events of a namespace it has not joined).
        self.hub.spawn(self._greet(sid, rooms, came_online))
        return True

    async def _enter_member_rooms(
        self, sid: str, agent_id: uuid.UUID
    ) -> tuple[list[dict[str, Any]], list[uuid.UUID]]:
        """Join the socket to its agent's rooms, then read each room's lastSeq: anything after
        the reported lastSeq is sent live, so a client that holds lastSeq has no gap."""
        rooms = self.services.rooms
        first = {row["id"] for row in await rooms.rooms_of(agent_id)}
        came_online = [room_id for room_id in first if await self.hub.enter(sid, room_id)]
        # Memberships may change while the first read is in flight; the second read is the
        # truth the socket ends up with (later changes arrive as MemberAdded/Removed events).
        current = await rooms.rooms_of(agent_id)
        now = {row["id"] for row in current}
        for room_id in now - first:
            if await self.hub.enter(sid, room_id):
                came_online.append(room_id)
        for room_id in first - now:
            await self.hub.leave(sid, room_id)
            if room_id in came_online:
                came_online.remove(room_id)
        payload = [
            {"id": str(r["id"]), "slug": r["slug"], "lastSeq": int(r["last_seq"])} for r in current
        ]
        return payload, came_online

    async def _greet(
        self, sid: str, rooms: list[dict[str, Any]], came_online: list[uuid.UUID]
    ) -> None:
        state = self.hub.state(sid)
        if state is None or state.closing:
            return
        connected = {
            "agentId": str(state.agent_id),
            "rooms": rooms,
            "expiresAt": iso(state.expires_at),
        }
        await self.hub.send(sid, "connected", connected)
        for room_id in came_online:
            await self.hub.announce(room_id, state.agent_id, "online")

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        state = self.hub.state(sid)
        if state is not None:
            log.info("socket %s disconnected: agent %s (%s)", sid, state.principal.name, reason)
        await self.hub.forget(sid)

    # --- events -----------------------------------------------------------------------------

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid, data = args[0], args[1:]
        started = time.perf_counter()
        with self.hub.handling():
            ack = await self.dispatch(sid, event, data)
        if self._observe is not None:
            # Event names come from clients: only known ones become label values, so a client
            # cannot grow the metric's series without bound.
            known = isinstance(event, str) and event in self._events
            self._observe(event if known else "unknown", time.perf_counter() - started)
        return ack

    async def dispatch(self, sid: str, event: Any, data: tuple[Any, ...]) -> Ack:
        state = self.hub.state(sid)
        if state is None or state.closing:
            return error_ack(Unauthorized("this socket is not connected"))
        if not self.hub.accepting:
            # Shutting down: nothing new starts. The client retries once it has reconnected
            # (to the next process), with the same clientMsgId for a send.
            return error_ack(Unavailable("the server is shutting down; retry after reconnecting"))
        verdict = state.guard.check()
        if not verdict.allowed:
            if verdict.disconnect:
                log.warning("socket %s of %s is flooding; disconnecting", sid, state.principal.name)
                self.hub.spawn(
                    self.hub.kick(
                        sid,
                        "session:ended",
                        {"code": "rate_limited", "message": "too many events; disconnected"},
                    )
                )
            rate = self.services.settings.socket_events_per_second
            return error_ack(
                RateLimited(f"too many events: at most {rate:g} per second", verdict.retry_after)
            )
        if isinstance(event, Malformed):
            # The client's mistake, not ours: one line, and the ack says what was wrong.
            log.warning(
                "socket %s of %s sent a malformed packet: %s",
                sid,
                state.principal.name,
                event.problem,
            )
            return error_ack(ValidationFailed("malformed packet", {"packet": event.problem}))
        handler = self._events.get(event) if isinstance(event, str) else None
        if handler is None:
            return error_ack(
                ValidationFailed("unknown event", {"event": f"one of {', '.join(self._events)}"})
            )
        try:
            if len(data) != 1:
                raise ValidationFailed(
                    "expected exactly one argument: a JSON object",
                    {"payload": f"got {len(data)} arguments"},
                )
            async with state.lock:
                if state.closing:
                    raise Unauthorized("this socket is not connected")
                if state.expires_at.timestamp() <= time.time():
                    raise Unauthorized("session expired")
                result = await handler(state, data[0])
        except AppError as exc:
            return error_ack(exc)
        except Exception:
            log.exception("socket event %s failed", event)
            return error_ack(AppError("internal error"))
        return {"ok": True, **result}

    async def _send_message(self, state: SocketState, payload: Any) -> dict[str, Any]:
        data = schemas.load(schemas.SendMessageEvent, payload)
        result = await self.services.messages.post_message(
            state.principal,
            data["roomId"],
            data["body"],
            data["clientMsgId"],
            kind=data["kind"],
            data=data["data"],
            reply_to=data["replyTo"],
        )
        return {"message": result.message.to_dict(), "created": result.created}

    async def _join_room(self, state: SocketState, payload: Any) -> dict[str, Any]:
        data = schemas.load(schemas.RoomRef, payload)
        room_id = await self.services.directory.room_id(data["roomId"])
        _member, created = await self.services.rooms.add_member(
            state.principal, room_id, state.agent_id
        )
        if not created:
            # Already a member: the MemberAdded path did not run, so make sure this agent's
            # sockets are in the room (a no-op when they already are).
            await self.hub.member_added(room_id, state.agent_id)
        # Read after joining the broadcasts: messages after lastSeq all arrive live.
        room = await self.services.rooms.get_room(state.principal, room_id)
        return {"room": room.to_dict(), "created": created}

    async def _leave_room(self, state: SocketState, payload: Any) -> dict[str, Any]:
        data = schemas.load(schemas.RoomRef, payload)
        room_id = await self.services.directory.room_id(data["roomId"])
        await self.services.rooms.remove_member(state.principal, room_id, state.agent_id)
        return {"roomId": str(room_id)}

    async def _sync_room(self, state: SocketState, payload: Any) -> dict[str, Any]:
        data = schemas.load(schemas.SyncRoomEvent, payload)
        room_id = await self.services.directory.room_id(data["roomId"])
        page = await self.services.messages.list_messages(
            state.principal,
            room_id,
            limit=data["limit"],
            after_seq=data["afterSeq"],
            after_field="afterSeq",
            thread=data["thread"],
            kind=data["kind"],
        )
        return {
            "roomId": str(room_id),
            "messages": [m.to_dict() for m in page.messages],
            "hasMore": page.has_more,
        }

    async def _read_room(self, state: SocketState, payload: Any) -> dict[str, Any]:
        data = schemas.load(schemas.RoomReadEvent, payload)
        mark = await self.services.reads.mark_read(
            state.principal, data["roomId"], data["seq"], origin_sid=state.sid
        )
        return mark.to_dict()

    async def _refresh_session(self, state: SocketState, payload: Any) -> dict[str, Any]:
        data = schemas.load(RefreshSessionEvent, payload)
        principal, claims = await self.services.sessions.authenticate(data["token"])
        if principal.agent_id != state.agent_id:
            raise Forbidden("the new session belongs to another agent")
        state.principal = principal
        state.expires_at = claims.expires_at
        self.hub.refreshed(state)
        return {"expiresAt": iso(claims.expires_at)}
