"""Live ``message:new`` in seq order per room.

Posts into one room commit in seq order (the room's row lock), but their coroutines resume
in whatever order the event loop picks their database replies up, so two back-to-back posts
can reach the broadcast the other way round. The sequencer puts them back in order: a
message whose predecessor has not been broadcast yet is held until it has, or until
``hold_seconds`` pass (the predecessor may never come: its post may have failed after the
commit, or come from another process), after which the held messages go out in seq order and
the client's catch-up recipe (``room:sync``) fills the gap.

Where each room stands is read once at start (``seed``); a room created later starts at seq 1.
Until a seed has succeeded, the first message the process broadcasts in a room sets where that
room stands.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from agenthub.models import Message

log = logging.getLogger("agenthub.realtime")

Emit = Callable[[Message], Awaitable[None]]


class RoomSequencer:
    def __init__(self, emit: Emit, *, hold_seconds: float = 0.25) -> None:
        self._emit = emit
        self._hold = hold_seconds
        self._next: dict[uuid.UUID, int] = {}  # per room: the seq expected next
        self._held: dict[uuid.UUID, dict[int, Message]] = {}
        self._ready: dict[uuid.UUID, deque[Message]] = {}  # decided order, not yet emitted
        self._emitting: set[uuid.UUID] = set()
        self._timers: dict[uuid.UUID, asyncio.TimerHandle] = {}
        self._flushes: set[asyncio.Task[None]] = set()
        self._seeded = False

    def seed(self, last_seqs: dict[uuid.UUID, int]) -> None:
        """Every room's latest stored seq, read at start. A room already seen keeps what the
        broadcasts taught (it is newer)."""
        for room, last_seq in last_seqs.items():
            self._next.setdefault(room, last_seq + 1)
        self._seeded = True

    async def offer(self, message: Message) -> None:
        """Broadcast ``message`` now if it is next in its room, else hold it."""
        room = message.room_id
        expected = self._next.get(room)
        if expected is None and self._seeded:
            expected = 1  # a room created since the seed
        if expected is None or message.seq == expected:
            # The first message of a room this process sees sets where the room stands.
            self._release(room, [message])
        elif message.seq < expected:
            # Its gap was already given up on: late, but still news to live listeners.
            self._queue(room).append(message)
        else:
            self._held.setdefault(room, {})[message.seq] = message
            if room not in self._timers:
                loop = asyncio.get_running_loop()
                self._timers[room] = loop.call_later(self._hold, self._give_up, room)
        await self._drain(room)

    def _release(self, room: uuid.UUID, messages: list[Message]) -> None:
        """Queue ``messages`` (consecutive, in order) and whatever held ones now follow."""
        queue = self._queue(room)
        queue.extend(messages)
        following = messages[-1].seq + 1
        held = self._held.get(room, {})
        while following in held:
            queue.append(held.pop(following))
            following += 1
        self._next[room] = following
        if not held:
            self._held.pop(room, None)
            timer = self._timers.pop(room, None)
            if timer is not None:
                timer.cancel()

    def _give_up(self, room: uuid.UUID) -> None:
        self._timers.pop(room, None)
        held = self._held.pop(room, {})
        if not held:
            return
        seqs = sorted(held)
        log.debug(
            "room %s: seq %d never reached the broadcast within %.2fs; sending %d held",
            room,
            self._next.get(room, 0),
            self._hold,
            len(seqs),
        )
        queue = self._queue(room)
        queue.extend(held[s] for s in seqs)
        self._next[room] = seqs[-1] + 1
        task = asyncio.get_running_loop().create_task(self._drain(room))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    def _queue(self, room: uuid.UUID) -> deque[Message]:
        return self._ready.setdefault(room, deque())

    async def _drain(self, room: uuid.UUID) -> None:
        # One emitter per room at a time, so the wire order is the queue order even when an
        # emit suspends and another post of the room is offered meanwhile.
        if room in self._emitting:
            return
        self._emitting.add(room)
        try:
            queue = self._ready.get(room)
            while queue:
                message = queue.popleft()
                try:
                    await self._emit(message)
                except Exception:
                    log.exception("broadcast of message %s failed", message.id)
        finally:
            self._emitting.discard(room)
            if not self._ready.get(room):
                self._ready.pop(room, None)

    def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
