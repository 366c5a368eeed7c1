"""Requests waiting for a message (long poll): no database connection, no thread.

A waiting request is a ``Waiter``: a set of rooms it watches (and, optionally, an agent whose
mentions it watches), a test a message must pass, and an asyncio future. ``Waiters`` is an
EventBus listener: each ``MessagePosted`` (published after the commit, in the room's seq order)
wakes the waiters of its room and of the agents it mentions whose test it passes. Nothing but
the future is held while a request waits; the request's database session was released before.

The race between "the listing was empty" and "a message was stored meanwhile" is closed by the
order: register first, query second (``Waiters.poll`` does it). A message committed before the
query is in its result; one committed after it is published after the registration, so it
wakes the waiter. A wake may be spurious (a message the query already saw): ``poll`` queries
again and, finding nothing, waits again until the deadline.

Bounded: past ``limit`` live waiters, ``watch`` raises ``TooManyWaiters`` (503). A message
into a room where N requests wait costs N queries again; at most ``requeries`` run at once
(the rest queue in memory, not on the database pool). On shutdown
``close`` releases every waiter at once (the request answers with what it has: nothing) and any
waiter created afterwards starts released.

How ``GET /inbox?wait=`` uses it (the caller's rooms are known only once the query has read
them, so the query adds them to the waiter before it reads the inbox)::

    async def query(waiter: Watch) -> Inbox:
        async with db.session() as s:
            waiter.watch_rooms(await room_ids_of(s, agent_id))  # before the inbox query
            return await inbox_of(s, agent_id)

    inbox = await waiters.poll(
        query,
        found=lambda inbox: bool(inbox.rooms),
        seconds=wait,
        mentioning=agent_id,  # a mention in a room joined after the room list was read
        accept=lambda m: m.sender_id != agent_id,  # the caller's own posts wake nothing
    )

That wakes on the first new message in any of the caller's rooms not sent by the caller, or a
message mentioning the caller anywhere, and answers the inbox as read after the wake (the
empty inbox on timeout or shutdown).
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from agenthub.errors import TooManyWaiters
from agenthub.events import Event, MessagePosted
from agenthub.models import Message

T = TypeVar("T")


class Watch(Protocol):
    """What ``Waiters.poll`` hands its query: a way to watch rooms learnt by the query."""

    def watch_rooms(self, room_ids: Iterable[uuid.UUID]) -> None: ...


class Wake(enum.Enum):
    MESSAGE = "message"  # a message passed the waiter's test
    TIMEOUT = "timeout"  # the time ran out
    CLOSING = "closing"  # the server is shutting down


class Waiter:
    """One waiting request. Use it as a context manager: leaving it (normally, by an exception,
    or by the task being cancelled when the client went away) unregisters it."""

    def __init__(
        self,
        registry: Waiters,
        mentioning: uuid.UUID | None,
        accept: Callable[[Message], bool] | None,
    ) -> None:
        self._registry = registry
        self.rooms: set[uuid.UUID] = set()
        self.mentioning = mentioning
        self._accept = accept
        self._woken: asyncio.Future[Wake] = asyncio.get_running_loop().create_future()
        self.message: Message | None = None  # the first message that woke it
        self._open = True

    def watch_rooms(self, room_ids: Iterable[uuid.UUID]) -> None:
        """Watch these rooms too (before running the query the wait stands for)."""
        if self._open:
            self._registry._add_rooms(self, set(room_ids) - self.rooms)

    def offer(self, message: Message) -> None:
        """Wake on ``message`` if it passes the test (the registry calls this)."""
        if self._woken.done() or (self._accept is not None and not self._accept(message)):
            return
        self.message = message
        self._woken.set_result(Wake.MESSAGE)

    def release(self) -> None:
        if not self._woken.done():
            self._woken.set_result(Wake.CLOSING)

    @property
    def woken(self) -> bool:
        return self._woken.done()

    async def wait(self, seconds: float) -> Wake:
        """Until a message passes the test, ``seconds`` pass, or the server closes."""
        if not self._woken.done() and seconds > 0:
            await asyncio.wait([self._woken], timeout=seconds)
        return self._woken.result() if self._woken.done() else Wake.TIMEOUT

    def close(self) -> None:
        if self._open:
            self._open = False
            self._registry._remove(self)

    def __enter__(self) -> Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Waiters:
    """The registry of waiting requests, fed by the EventBus (subscribe ``on_event``)."""

    def __init__(self, limit: int, requeries: int = 4) -> None:
        self.limit = limit
        # One message can wake thousands of waiters at once, each to query again: at most
        # ``requeries`` of those queries run at a time, the others queue here (not on the
        # database pool, whose acquire timeout would answer them 503), so the pool keeps
        # connections for other requests.
        self._requeries = asyncio.Semaphore(requeries)
        self._all: set[Waiter] = set()
        self._by_room: dict[uuid.UUID, set[Waiter]] = {}
        self._by_mention: dict[uuid.UUID, set[Waiter]] = {}
        self._closing = False

    def __len__(self) -> int:
        return len(self._all)

    def watch(
        self,
        *,
        rooms: Iterable[uuid.UUID] = (),
        mentioning: uuid.UUID | None = None,
        accept: Callable[[Message], bool] | None = None,
    ) -> Waiter:
        """A new waiter woken by the first message posted in one of ``rooms`` (more can be
        added with ``Waiter.watch_rooms``) or mentioning ``mentioning``, that ``accept``
        (default: any) passes. Raises ``TooManyWaiters`` when ``limit`` waiters exist; once
        the server is closing, the waiter starts released."""
        if len(self._all) >= self.limit:
            raise TooManyWaiters(self.limit)
        waiter = Waiter(self, mentioning, accept)
        self._all.add(waiter)
        if mentioning is not None:
            self._by_mention.setdefault(mentioning, set()).add(waiter)
        waiter.watch_rooms(rooms)
        if self._closing:
            waiter.release()
        return waiter

    async def poll(
        self,
        query: Callable[[Watch], Awaitable[T]],
        *,
        found: Callable[[T], bool],
        seconds: float,
        rooms: Iterable[uuid.UUID] = (),
        mentioning: uuid.UUID | None = None,
        accept: Callable[[Message], bool] | None = None,
    ) -> T:
        """Run ``query`` with a waiter registered; while ``found`` says its result is empty,
        wait (up to ``seconds`` in all) for a message the waiter watches, then run it
        again. Returns the first result found, else the last (empty) one on timeout or
        shutdown. ``seconds`` <= 0: the query once, nothing registered. The query is where the
        database is used: its session must be released when it returns."""
        if seconds <= 0:
            return await query(_NO_WAIT)
        rooms = tuple(rooms)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        woken = False
        while True:
            with self.watch(rooms=rooms, mentioning=mentioning, accept=accept) as waiter:
                if woken:
                    async with self._requeries:
                        result = await query(waiter)
                else:
                    result = await query(waiter)
                if found(result):
                    return result
                wake = await waiter.wait(deadline - loop.time())
            if wake is not Wake.MESSAGE:
                return result
            woken = True

    def close(self) -> None:
        """Shutdown: release every waiter now, and any created from now on at once."""
        self._closing = True
        for waiter in list(self._all):
            waiter.release()

    async def on_event(self, event: Event) -> None:
        if isinstance(event, MessagePosted):
            self.offer(event.message)

    def offer(self, message: Message) -> None:
        candidates = set(self._by_room.get(message.room_id, ()))
        for agent_id in message.mentions:
            candidates.update(self._by_mention.get(agent_id, ()))
        for waiter in candidates:
            waiter.offer(message)

    # --- bookkeeping (Waiter calls these) ---------------------------------------------------

    def _add_rooms(self, waiter: Waiter, room_ids: set[uuid.UUID]) -> None:
        waiter.rooms.update(room_ids)
        for room_id in room_ids:
            self._by_room.setdefault(room_id, set()).add(waiter)

    def _remove(self, waiter: Waiter) -> None:
        self._all.discard(waiter)
        for room_id in waiter.rooms:
            _discard(self._by_room, room_id, waiter)
        if waiter.mentioning is not None:
            _discard(self._by_mention, waiter.mentioning, waiter)


def _discard(index: dict[uuid.UUID, set[Waiter]], key: uuid.UUID, waiter: Waiter) -> None:
    waiters = index.get(key)
    if waiters is not None:
        waiters.discard(waiter)
        if not waiters:
            del index[key]


class _NotWaiting:
    """What ``poll`` hands the query when it does not wait: watching rooms does nothing."""

    def watch_rooms(self, room_ids: Iterable[uuid.UUID]) -> None:
        pass


_NO_WAIT = _NotWaiting()
