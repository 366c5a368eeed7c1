"""``subscribe()``: the events of the agent's rooms over socket.io, exactly once, in order.

The delivery rule (docs/API.md, "Delivery and the catch-up recipe") is implemented here so
callers never see a duplicate or a gap:

- ``last[room]`` is the highest seq yielded. A ``message:new`` at or below it is dropped; one
  right after it is yielded, followed by any held messages that now follow; one further ahead
  is held and the gap is filled with ``room:sync`` from ``last[room]``.
- On every (re)connection the ``connected`` event lists the rooms with their ``lastSeq``; each
  room that is behind is synced from ``last[room]`` until ``hasMore`` is false.
- The connection is this module's own loop (python-socketio's reconnection is off): after a
  disconnect it waits (backoff with jitter), gets a fresh JWT when the old one is due or was
  refused, connects again and catches up. A live socket's JWT is renewed with
  ``session:refresh`` before it expires.

``mention:new`` is not taken from the server (it is live only, so it would be lost during a
disconnect): it is yielded right after the ``message:new`` of a message that mentions the
agent, caught-up messages included. Other events (``presence:update``, ``room:updated``,
``message:redacted``, ``read:update``) are passed on as they come; a ``message:redacted`` of a
seq not yet yielded waits until that seq is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from agenthub.client.errors import (
    AgentHubError,
    ConnectionFailed,
    Forbidden,
    NotFound,
    Unauthorized,
    from_envelope,
)
from agenthub.client.http import RetryPolicy
from agenthub.client.models import Event, Message, Room
from agenthub.client.session import jwt_lifetime

if TYPE_CHECKING:
    import socketio

    from agenthub.client.asyncclient import AsyncAgentHub

log = logging.getLogger("agenthub.client")

NAMESPACE = "/agents"
PASSED_ON = ("presence:update", "room:updated", "message:redacted", "read:update")
SESSION_ENDS = ("session:expired", "session:revoked", "session:ended")
_DISCONNECTED = "__disconnected__"

# Reconnecting: quick at first (a restart takes a second or two), patient later.
DEFAULT_RECONNECT = RetryPolicy(attempts=1_000_000, base_delay=0.1, max_delay=2.0)


class _Lost(Exception):
    """The connection ended (or must be ended); reconnect."""


class Subscription:
    """An async iterator of ``Event`` (and an async context manager; ``aclose()`` ends it).

    It connects on the first ``__anext__`` (or ``start()``), and keeps reconnecting until
    closed: only a refused login (``Unauthorized``: the API token was revoked, the agent
    disabled) or ``max_reconnects`` failed attempts in a row (``ConnectionFailed``) end it,
    raised from ``__anext__``. ``positions`` is the highest seq yielded per room id: give it
    back as ``after=`` to resume in a later process.
    """

    def __init__(
        self,
        client: AsyncAgentHub,
        rooms: Iterable[str] | None = None,
        *,
        after: Mapping[str, int] | None = None,
        reconnect: RetryPolicy | None = None,
        max_reconnects: int | None = None,
        ack_timeout: float = 15.0,
        queue_size: int = 10_000,
        renew_live_session: bool = True,
    ) -> None:
        self._client = client
        self._room_refs = None if rooms is None else list(rooms)
        self._after_refs = dict(after or {})
        self._policy = reconnect or DEFAULT_RECONNECT
        self._max_reconnects = max_reconnects
        self._ack_timeout = ack_timeout
        # False: let the socket's JWT expire (the server ends the socket; a reconnection with a
        # new login follows). Only tests want that.
        self._renew_live_session = renew_live_session
        self._out: asyncio.Queue[Event | BaseException] = asyncio.Queue(queue_size)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._filter: set[str] | None = None
        self._last: dict[str, int] = {}
        self._held: dict[str, dict[int, dict[str, Any]]] = {}
        self._redactions: dict[str, dict[int, dict[str, Any]]] = {}
        self._slugs: dict[str, str] = {}
        self._agent_id: str | None = None
        self._first_connection = True
        self._connected = asyncio.Event()
        self.connections = 0  # successful connections so far
        self.connected_at: float | None = None  # time.monotonic() of the latest one
        self.live_refreshes = 0  # JWTs renewed on a live socket (session:refresh)

    # --- public -----------------------------------------------------------------------------

    @property
    def positions(self) -> dict[str, int]:
        return dict(self._last)

    async def start(self) -> None:
        """Connect now (in the background) instead of at the first ``__anext__``."""
        if self._task is None and not self._closed:
            self._client._subscriptions.add(self)
            self._task = asyncio.create_task(self._run(), name="agenthub-subscribe")

    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Until the socket is connected and caught up (the first time, or again)."""
        await self.start()
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def aclose(self) -> None:
        """Disconnect and end the iteration (a pending ``__anext__`` stops too)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(asyncio.QueueFull):
            self._out.put_nowait(StopAsyncIteration())
        self._client._subscriptions.discard(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        if self._closed and self._out.empty():
            raise StopAsyncIteration
        await self.start()
        item = await self._out.get()
        if isinstance(item, BaseException):
            self._closed = True
            if isinstance(item, StopAsyncIteration):
                raise StopAsyncIteration
            raise item
        return item

    async def __aenter__(self) -> Subscription:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the connection loop ----------------------------------------------------------------

    async def _run(self) -> None:
        # Imported here: python-socketio imports tornado when it is installed, and
        # ``import agenthub.client`` stays light for REST-only programs.
        import socketio

        try:
            await self._resolve()
            failures = 0
            while not self._closed:
                try:
                    await self._connection()
                except Unauthorized as exc:
                    await self._out.put(exc)  # a login was refused: nothing more to do
                    return
                except (_Lost, AgentHubError, socketio.exceptions.SocketIOError, OSError) as exc:
                    log.info("subscription: connection lost (%s)", exc)
                if self._connected.is_set():
                    failures = 0  # it worked for a while: start the backoff over
                self._connected.clear()
                failures += 1
                if self._max_reconnects is not None and failures > self._max_reconnects:
                    await self._out.put(
                        ConnectionFailed(None, f"gave up after {failures - 1} reconnections")
                    )
                    return
                await asyncio.sleep(self._policy.backoff(failures))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a bug, or the caller's: end the iterator with it
            log.exception("subscription failed")
            await self._out.put(exc)

    async def _resolve(self) -> None:
        """Room refs (slugs, ids) to ids, once, over REST."""
        if self._room_refs is not None:
            self._filter = {(await self._client.get_room(r)).id for r in self._room_refs}
        for ref, seq in self._after_refs.items():
            self._last[(await self._client.get_room(ref)).id] = int(seq)

    def _wanted(self, room_id: str) -> bool:
        return self._filter is None or room_id in self._filter

    async def _connection(self) -> None:
        """One socket, from connect to loss."""
        import socketio

        session = self._client.session
        token = await session.token()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        refused: list[Any] = []
        sio = socketio.AsyncClient(
            reconnection=False, handle_sigint=False, http_session=self._client.http.session()
        )

        def forward(name: str) -> Any:
            async def handler(data: Any = None) -> None:
                events.put_nowait((name, data))

            return handler

        for name in ("connected", "message:new", *PASSED_ON, *SESSION_ENDS):
            sio.on(name, forward(name), namespace=NAMESPACE)

        async def on_disconnect(*reason: Any) -> None:
            events.put_nowait((_DISCONNECTED, reason[0] if reason else None))

        async def on_connect_error(data: Any = None) -> None:
            refused.append(data)

        sio.on("disconnect", on_disconnect, namespace=NAMESPACE)
        sio.on("connect_error", on_connect_error, namespace=NAMESPACE)
        refresher: asyncio.Task[None] | None = None
        try:
            try:
                await sio.connect(
                    self._client.url,
                    namespaces=[NAMESPACE],
                    transports=["websocket"],
                    auth={"token": token},
                    wait_timeout=self._ack_timeout,
                )
            except socketio.exceptions.ConnectionError as exc:
                error = _refusal(refused)
                if isinstance(error, Unauthorized):
                    session.invalidate(token)  # the next attempt logs in again
                    await session.token()  # raises Unauthorized if the API token is refused
                raise _Lost(str(error or exc)) from None
            if self._renew_live_session:
                refresher = asyncio.create_task(self._refresh_loop(sio, token))
            while True:
                name, data = await events.get()
                if name == _DISCONNECTED:
                    raise _Lost(f"disconnected ({data})")
                if name in SESSION_ENDS:
                    session.invalidate()  # reconnect with a new login
                    raise _Lost(f"{name}: {(data or {}).get('message')}")
                await self._handle(sio, name, data)
        finally:
            if refresher is not None:
                refresher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await refresher
            with contextlib.suppress(Exception):
                await sio.disconnect()

    async def _refresh_loop(self, sio: socketio.AsyncClient, token: str) -> None:
        """Renew the live socket's JWT before it expires (``session:refresh``)."""
        session = self._client.session
        while True:
            if session.current is not None and session.current.token == token:
                delay = session.refresh_due_in()
            else:
                delay = (jwt_lifetime(token) or 60.0) * session.refresh_fraction
            await asyncio.sleep(max(1.0, delay))
            fresh = await session.token()
            if fresh == token:
                fresh = (await session.login()).token
            ack = await sio.call(
                "session:refresh", {"token": fresh}, namespace=NAMESPACE, timeout=self._ack_timeout
            )
            if not (isinstance(ack, dict) and ack.get("ok")):
                log.info("subscription: session:refresh refused (%s); reconnecting", ack)
                await sio.disconnect()
                return
            token = fresh
            self.live_refreshes += 1

    # --- events -----------------------------------------------------------------------------

    async def _handle(self, sio: socketio.AsyncClient, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if name == "connected":
            await self._on_connected(sio, data)
        elif name == "message:new":
            await self._on_message(sio, data)
        elif name == "message:redacted":
            await self._on_redacted(data)
        elif name == "presence:update":
            await self._on_presence(sio, data)
        else:
            room_id = str(data.get("roomId") or data.get("id") or "") or None
            if room_id is not None and not self._wanted(room_id):
                return
            room = Room.from_json(data) if name == "room:updated" else None
            await self._out.put(Event(name, room_id, data, room=room))

    async def _on_connected(self, sio: socketio.AsyncClient, info: dict[str, Any]) -> None:
        self._agent_id = str(info.get("agentId"))
        for room in info.get("rooms") or ():
            room_id, last_seq = str(room["id"]), int(room["lastSeq"])
            self._slugs[room_id] = str(room.get("slug", ""))
            if not self._wanted(room_id):
                continue
            if room_id not in self._last:
                # First connection: only new messages. Later: a room the agent joined while
                # disconnected, all of it.
                self._last[room_id] = last_seq if self._first_connection else 0
            held = self._held.get(room_id)
            if held:  # live messages that came before `connected`: drop those already had
                for seq in [s for s in held if s <= self._last[room_id]]:
                    del held[seq]
            if last_seq > self._last[room_id] or self._held.get(room_id):
                await self._sync(sio, room_id)
        self._first_connection = False
        self.connections += 1
        self.connected_at = time.monotonic()
        self._connected.set()

    async def _on_message(self, sio: socketio.AsyncClient, data: dict[str, Any]) -> None:
        room_id = str(data["roomId"])
        if not self._wanted(room_id):
            return
        if room_id not in self._last:
            if self._first_connection:  # before `connected`: hold until the start is known
                self._held.setdefault(room_id, {})[int(data["seq"])] = data
                return
            self._last[room_id] = 0  # a room the agent joined meanwhile: from its start
        await self._offer(data)
        if self._held.get(room_id):
            await self._sync(sio, room_id)

    async def _on_presence(self, sio: socketio.AsyncClient, data: dict[str, Any]) -> None:
        room_id = str(data.get("roomId"))
        if not self._wanted(room_id):
            return
        if (
            str(data.get("agentId")) == self._agent_id
            and data.get("status") == "online"
            and room_id not in self._last
            and not self._first_connection
        ):
            self._last[room_id] = 0  # the agent was added to a room: its whole history
            await self._sync(sio, room_id)
        await self._out.put(Event("presence:update", room_id, data))

    async def _on_redacted(self, data: dict[str, Any]) -> None:
        room_id, seq = str(data.get("roomId")), int(data.get("seq") or 0)
        if not self._wanted(room_id):
            return
        if room_id in self._last and seq > self._last[room_id]:
            # Not yielded yet: the copy held (if any) is stale; yield this after that seq.
            self._held.get(room_id, {}).pop(seq, None)
            self._redactions.setdefault(room_id, {})[seq] = data
            return
        await self._out.put(Event("message:redacted", room_id, data))

    async def _offer(self, data: dict[str, Any], fresh: bool = False) -> None:
        """Yield ``data`` if it is next in its room (then whatever it unblocks), hold it if it
        is ahead, drop it if it was yielded. ``fresh``: from room:sync, so it replaces a held
        copy (a stored message is at least as new as a live one)."""
        room_id, seq = str(data["roomId"]), int(data["seq"])
        last = self._last[room_id]
        if seq <= last:
            return
        held = self._held.setdefault(room_id, {})
        if fresh or seq not in held:
            held[seq] = data
        while last + 1 in held:
            message = held.pop(last + 1)
            last += 1
            self._last[room_id] = last
            await self._deliver(room_id, message)

    async def _deliver(self, room_id: str, data: dict[str, Any]) -> None:
        message = Message.from_json(data)
        await self._out.put(Event("message:new", room_id, data, message=message))
        me = self._agent_id
        if me is not None and message.redacted_at is None:
            named = me in message.mentions
            by_room = message.mentions_room and message.sender_id != me
            if named or by_room:
                payload = {
                    "message": data,
                    "room": {"id": room_id, "slug": self._slugs.get(room_id)},
                }
                await self._out.put(Event("mention:new", room_id, payload, message=message))
        redaction = self._redactions.get(room_id, {}).pop(message.seq, None)
        if redaction is not None and message.redacted_at is None:
            await self._out.put(Event("message:redacted", room_id, redaction))

    async def _sync(self, sio: socketio.AsyncClient, room_id: str) -> None:
        """``room:sync`` from ``last[room]`` until ``hasMore`` is false."""
        while True:
            before = self._last[room_id]
            ack = await sio.call(
                "room:sync",
                {"roomId": room_id, "afterSeq": before},
                namespace=NAMESPACE,
                timeout=self._ack_timeout,
            )
            if not isinstance(ack, dict) or not ack.get("ok"):
                error = from_envelope(ack if isinstance(ack, dict) else None)
                if isinstance(error, Forbidden | NotFound):
                    log.info("subscription: no longer in room %s (%s)", room_id, error.code)
                    self._held.pop(room_id, None)
                    return
                raise _Lost(f"room:sync refused: {error}")
            for data in ack.get("messages") or ():
                await self._offer(data, fresh=True)
            if not ack.get("hasMore") or self._last[room_id] == before:
                return


def _refusal(refused: list[Any]) -> AgentHubError | None:
    """The error a refused handshake carried (``connect_error`` data), if any."""
    for data in refused:
        if isinstance(data, dict):
            body = data.get("data") if isinstance(data.get("data"), dict) else data
            if isinstance(body, dict) and "code" in body:
                return from_envelope({"error": body})
    return None
