"""Posted messages handed on in seq order per room, without guessing.

Posts into one room commit in seq order (the room's row lock), but their coroutines resume in
whatever order the event loop picks their database replies up, so two back-to-back posts can
finish the other way round. So a post takes a ticket before its insert (``RoomOrder.reserve``)
and hands it back after (``PostSlot.complete``, with the stored message, or with nothing when
nothing new was stored). A completed message is handed on at once when it is the room's next
seq; otherwise it waits, but only for the posts that were already in flight when it completed:
one reserved later inserts after its commit and gets a higher seq, so it cannot be a
predecessor. When those are done, whatever gap is left was never going to be filled here (a
post whose commit succeeded but whose reply failed, another process): the message goes on and
clients fill the gap with ``room:sync``. This is the idea of Synapse's stream id tracking, with
the seq known only after the insert.

Handing on runs in one task per room, off the poster's path: the REST reply and the socket ack
never wait for the fan-out.

News about a message already stored (a redaction) goes the same way (``RoomOrder.after``): it
is handed on once the message itself, and whatever could still come before it, has been, so a
listener never hears of a change to a seq it has not been given yet.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

from agenthub.models import Message

log = logging.getLogger("agenthub.events")

Deliver = Callable[[Message], Awaitable[None]]
Action = Callable[[], Awaitable[None]]


@dataclass
class _Held:
    message: Message
    horizon: int  # the last ticket issued when it completed: it waits for tickets up to this


@dataclass
class _After:
    seq: int  # it follows every message up to this seq
    horizon: int  # the last ticket issued when it was asked for: it waits for those too
    action: Action


@dataclass
class _Room:
    issued: int = 0  # tickets handed out so far
    pending: set[int] = field(default_factory=set)  # tickets of posts still in flight
    next_seq: int | None = None  # the seq after the last one handed on (None: none yet)
    held: dict[int, _Held] = field(default_factory=dict)  # by seq
    ready: deque[Message | Action] = field(default_factory=deque)  # decided order, not yet run
    waiting: deque[_After] = field(default_factory=deque)  # actions not yet in ``ready``
    task: asyncio.Task[None] | None = None

    def oldest_pending(self) -> int | None:
        return min(self.pending) if self.pending else None


class PostSlot:
    """One post in flight in one room, from just before its insert to just after its commit.
    Used as a context manager, it completes with nothing if the body did not complete it (the
    post was refused, retried, or failed)."""

    __slots__ = ("_done", "_order", "_room", "_ticket")

    def __init__(self, order: RoomOrder, room: _Room, ticket: int) -> None:
        self._order = order
        self._room = room
        self._ticket = ticket
        self._done = False

    def complete(self, message: Message | None = None) -> None:
        """The post is over: ``message`` was stored by it, or (None) nothing new was."""
        if self._done:
            return
        self._done = True
        self._order._complete(self._room, self._ticket, message)

    def __enter__(self) -> PostSlot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.complete(None)


class RoomOrder:
    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._rooms: dict[uuid.UUID, _Room] = {}

    def reserve(self, room_id: uuid.UUID) -> PostSlot:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = _Room()
        room.issued += 1
        room.pending.add(room.issued)
        return PostSlot(self, room, room.issued)

    def _complete(self, room: _Room, ticket: int, message: Message | None) -> None:
        room.pending.discard(ticket)
        if message is not None:
            if room.next_seq is not None and message.seq < room.next_seq:
                # Cannot come from this process (see the module docstring); still news.
                room.ready.append(message)
            else:
                room.held[message.seq] = _Held(message, room.issued)
        self._release(room)
        self._start(room)

    def after(self, room_id: uuid.UUID, seq: int, action: Action) -> None:
        """Run ``action`` in the room's hand-on order, once every message up to ``seq`` that
        this process stored, or may still be storing (a post in flight now), has been handed
        on. It runs in the room's task, off the caller's path."""
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = _Room()
        room.waiting.append(_After(seq, room.issued, action))
        self._release(room)
        self._start(room)

    def _start(self, room: _Room) -> None:
        if room.ready and room.task is None:
            room.task = asyncio.get_running_loop().create_task(self._hand_on(room))

    @staticmethod
    def _release(room: _Room) -> None:
        """Move held messages to ``ready`` in seq order, as far as nothing in flight can still
        come before them."""
        oldest = room.oldest_pending()
        for seq in sorted(room.held):
            held = room.held[seq]
            is_next = room.next_seq is not None and seq == room.next_seq
            if not is_next and oldest is not None and oldest <= held.horizon:
                break  # a post in flight when it completed may still bring a smaller seq
            del room.held[seq]
            room.ready.append(held.message)
            room.next_seq = seq + 1
        while room.waiting:  # in the order they were asked for
            after = room.waiting[0]
            if oldest is not None and oldest <= after.horizon:
                break  # a post in flight when it was asked for may bring a seq before it
            if any(held_seq <= after.seq for held_seq in room.held):
                break
            room.ready.append(room.waiting.popleft().action)

    async def _hand_on(self, room: _Room) -> None:
        # One task per room: the order of ``ready`` is the order listeners see.
        try:
            while room.ready:
                item = room.ready.popleft()
                try:
                    if isinstance(item, Message):
                        await self._deliver(item)
                    else:
                        await item()
                except Exception:
                    what = f"message {item.id}" if isinstance(item, Message) else "room news"
                    log.exception("handing on %s failed", what)
        finally:
            room.task = None

    def in_flight(self) -> int:
        """Posts reserved and not yet completed, in all rooms."""
        return sum(len(room.pending) for room in self._rooms.values())

    async def settle(self) -> None:
        """Wait until every message completed so far has been handed on."""
        while True:
            tasks = [room.task for room in self._rooms.values() if room.task is not None]
            if not tasks:
                return
            await asyncio.gather(*tasks, return_exceptions=True)
