"""Several server processes sharing one Redis (``REDIS_URL``): the service events every process
must hear, in each room's seq order.

A process publishes the events its listeners must hear wherever they live (a posted message,
a redaction, a moved read marker, a member added or removed: ``SHARED_EVENTS``) on one Redis
pub/sub channel, after their commit, and every process (itself included, without the Redis
round trip) hands them to its own listeners: the socket layer addresses its own sockets
(``mention:new`` and ``read:update`` need this process's table of who is where) and the
long-poll waiters wake. Everything else a socket hears goes through python-socketio's
``AsyncRedisManager`` (realtime.fanout).

Order. Posts into a room commit in seq order, but two processes publish them in whatever order
their event loops get to it, so a receiver may hear seq 6 (from B) before seq 5 (from A).
``SeqOrder`` holds a room's messages until the previous seq has been handed on; a gap that
stays open ``GAP_WAIT`` seconds is filled from PostgreSQL (committed rows only: a published seq
is committed, and so is every smaller one) and whatever PostgreSQL does not have is skipped.
A room heard of for the first time starts after a short window (the smallest seq heard in it).

Redis down: the post still commits and is answered; its event reaches this process's
listeners (local delivery never waits for Redis) but not the others, whose clients catch up
by seq (``room:sync``). Publishing and listening reconnect by themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from agenthub.events import (
    Event,
    MemberAdded,
    MemberRemoved,
    MessagePosted,
    MessageRedacted,
    ReadMarked,
)
from agenthub.models import Message
from agenthub.realtime.fanout import redis_options
from agenthub.store import messages as message_store
from agenthub.store.db import Database

log = logging.getLogger("agenthub.scaleout")

SHARED_EVENTS = (MessagePosted, MessageRedacted, ReadMarked, MemberAdded, MemberRemoved)

# How long a room's messages wait for a missing seq before it is read from PostgreSQL. Two
# processes publish a few milliseconds apart at most when neither is overloaded.
GAP_WAIT = 0.25

# Published events not yet written to Redis; past this (Redis far behind or down) the oldest
# are dropped: the other processes' clients catch up by seq.
PUBLISH_BACKLOG = 50_000
PUBLISH_BATCH = 500

Deliver = Callable[[Event], Awaitable[None]]


def redis_client(url: str) -> aioredis.Redis:
    """A client that gives up quickly on an unreachable Redis (the callers retry by themselves)
    and does not retry behind their back, so a lost connection is seen and counted."""
    client: aioredis.Redis = aioredis.Redis.from_url(url, **redis_options())
    return client


class RedisLink:
    """One pub/sub channel: publish in order (batched, in the background) and listen, each
    reconnecting by itself. ``up`` is True while the subscription is in force."""

    def __init__(
        self,
        url: str,
        channel: str,
        on_message: Callable[[bytes], None],
        on_state: Callable[[bool], None],
    ) -> None:
        self.channel = channel
        self.up = False
        self._redis = redis_client(url)
        self._on_message = on_message
        self._on_state = on_state
        self._outbox: deque[str] = deque(maxlen=PUBLISH_BACKLOG)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._publish_failing = False

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name=f"redis listen {self.channel}"),
            asyncio.create_task(self._publisher(), name=f"redis publish {self.channel}"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self._redis.aclose()

    def publish(self, payload: str) -> None:
        self._outbox.append(payload)
        self._wake.set()

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._redis.ping(), timeout=2.0))
        except (redis.exceptions.RedisError, OSError, TimeoutError):
            return False

    async def _publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                count = min(PUBLISH_BATCH, len(self._outbox))
                batch = [self._outbox.popleft() for _ in range(count)]
                try:
                    await self._send(batch)
                    if self._publish_failing:
                        log.info("publishing to redis again")
                        self._publish_failing = False
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Lost for the other processes (this one delivered them already); they
                    # fill the gap from PostgreSQL when the next message of the room comes.
                    if not self._publish_failing:
                        log.warning("cannot publish to redis (%s)", exc)
                        self._publish_failing = True
                    await asyncio.sleep(0.5)

    async def _send(self, batch: list[str]) -> None:
        # Twice: the first attempt may take a pooled connection Redis closed when it restarted.
        for attempt in (1, 2):
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for payload in batch:
                        pipe.publish(self.channel, payload)
                    await asyncio.wait_for(pipe.execute(), timeout=5.0)
                return
            except (redis.exceptions.ConnectionError, OSError):
                if attempt == 2:
                    raise

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._set_up(True)
                delay = 0.2
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._on_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.up:
                    log.warning("redis subscription lost: %s", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            self._set_up(False)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _set_up(self, up: bool) -> None:
        if up != self.up:
            self.up = up
            self._on_state(up)


# --- events on the wire ---------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _message_to_wire(message: Message) -> dict[str, Any]:
    return {f.name: _plain(getattr(message, f.name)) for f in dataclasses.fields(message)}


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _message_from_wire(data: dict[str, Any]) -> Message:
    return Message(
        id=uuid.UUID(data["id"]),
        room_id=uuid.UUID(data["room_id"]),
        seq=int(data["seq"]),
        sender_id=uuid.UUID(data["sender_id"]),
        body=data["body"],
        client_msg_id=data["client_msg_id"],
        created_at=datetime.fromisoformat(data["created_at"]),
        kind=data["kind"],
        data=data["data"],
        reply_to=data["reply_to"],
        thread_root=data["thread_root"],
        mentions=tuple(uuid.UUID(agent) for agent in data["mentions"]),
        mentions_room=bool(data["mentions_room"]),
        edited_at=_when(data["edited_at"]),
        redacted_at=_when(data["redacted_at"]),
        reply_count=int(data["reply_count"]),
        room_slug=data["room_slug"],
    )


def encode_event(event: Event) -> dict[str, Any]:
    if isinstance(event, MessagePosted):
        return {"t": "posted", "message": _message_to_wire(event.message)}
    if isinstance(event, MessageRedacted):
        return {"t": "redacted", "room": str(event.room_id), "seq": event.seq}
    if isinstance(event, ReadMarked):
        return {
            "t": "read",
            "agent": str(event.agent_id),
            "room": str(event.room_id),
            "seq": event.last_read_seq,
            "sid": event.origin_sid,
        }
    if isinstance(event, MemberAdded):
        return {"t": "member+", "room": str(event.room_id), "agent": str(event.agent_id)}
    if isinstance(event, MemberRemoved):
        return {"t": "member-", "room": str(event.room_id), "agent": str(event.agent_id)}
    raise TypeError(f"{type(event).__name__} is not shared between processes")


def decode_event(data: dict[str, Any]) -> Event:
    kind = data["t"]
    if kind == "posted":
        return MessagePosted(message=_message_from_wire(data["message"]))
    if kind == "redacted":
        return MessageRedacted(room_id=uuid.UUID(data["room"]), seq=int(data["seq"]))
    if kind == "read":
        return ReadMarked(
            agent_id=uuid.UUID(data["agent"]),
            room_id=uuid.UUID(data["room"]),
            last_read_seq=int(data["seq"]),
            origin_sid=data["sid"],
        )
    if kind == "member+":
        return MemberAdded(room_id=uuid.UUID(data["room"]), agent_id=uuid.UUID(data["agent"]))
    if kind == "member-":
        return MemberRemoved(room_id=uuid.UUID(data["room"]), agent_id=uuid.UUID(data["agent"]))
    raise ValueError(f"unknown event type {kind!r}")


# --- seq order across processes ---------------------------------------------------------------


@dataclasses.dataclass
class _Room:
    next_seq: int | None = None  # the seq to hand on next (None: none heard yet)
    held: dict[int, MessagePosted] = dataclasses.field(default_factory=dict)
    # News about a seq not handed on yet (a redaction): after that seq, in arrival order.
    after: list[tuple[int, Event]] = dataclasses.field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    filling: bool = False


class SeqOrder:
    """Hands each room's messages on in seq order, whichever process published them."""

    def __init__(
        self, emit: Callable[[Event], None], db: Database | None, gap_wait: float = GAP_WAIT
    ) -> None:
        self._emit = emit
        self._db = db
        self._gap_wait = gap_wait
        self._rooms: dict[uuid.UUID, _Room] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.filled = 0  # messages read from PostgreSQL to close a gap
        self.skipped = 0  # seqs given up on (not in PostgreSQL)

    def offer(self, event: MessagePosted) -> None:
        message = event.message
        room = self._rooms.get(message.room_id)
        if room is None:
            room = self._rooms[message.room_id] = _Room()
            if message.seq == 1:
                room.next_seq = 1
        if room.next_seq is not None and message.seq < room.next_seq:
            return  # handed on already (read from PostgreSQL to fill a gap)
        room.held[message.seq] = event
        self._release(room)
        self._arm(message.room_id, room)

    def offer_after(self, room_id: uuid.UUID, seq: int, event: Event) -> None:
        """Hand ``event`` on once the message ``seq`` of the room has been (at once if it
        has, or if this process is not ordering that room)."""
        room = self._rooms.get(room_id)
        if room is None or (room.next_seq is not None and seq < room.next_seq):
            self._emit(event)
        else:
            room.after.append((seq, event))

    def _release(self, room: _Room) -> None:
        if room.next_seq is None:
            return
        while room.next_seq in room.held:
            self._emit(room.held.pop(room.next_seq))
            room.next_seq += 1
            self._release_after(room)
        self._release_after(room)

    def _release_after(self, room: _Room) -> None:
        if not room.after or room.next_seq is None:
            return
        waiting = []
        for seq, event in room.after:
            if seq < room.next_seq:
                self._emit(event)
            else:
                waiting.append((seq, event))
        room.after = waiting

    def _arm(self, room_id: uuid.UUID, room: _Room) -> None:
        if not room.held:
            if room.timer is not None:
                room.timer.cancel()
                room.timer = None
            return
        if room.timer is None and not room.filling:
            loop = asyncio.get_running_loop()
            room.timer = loop.call_later(self._gap_wait, self._gap_open, room_id, room)

    def _gap_open(self, room_id: uuid.UUID, room: _Room) -> None:
        room.timer = None
        if not room.held:
            return
        if room.next_seq is None:
            # The first messages heard in this room: start at the smallest.
            room.next_seq = min(room.held)
            self._release(room)
            self._arm(room_id, room)
            return
        room.filling = True
        task = asyncio.get_running_loop().create_task(self._fill(room_id, room))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill(self, room_id: uuid.UUID, room: _Room) -> None:
        assert room.next_seq is not None
        first_held = min(room.held)
        start = room.next_seq
        found: list[Message] = []
        try:
            if self._db is not None:
                async with self._db.session() as s:
                    rows = await message_store.after(
                        s, room_id, after_seq=start - 1, limit=first_held - start
                    )
                found = [Message.from_row(row) for row in rows]
        except Exception:
            log.exception("reading seqs %d..%d of room %s failed", start, first_held - 1, room_id)
        finally:
            room.filling = False
        slug = room.held[first_held].message.room_slug if first_held in room.held else None
        for message in found:
            fresh = room.next_seq is not None and message.seq >= room.next_seq
            if fresh and message.seq not in room.held:
                self.filled += 1
                message = dataclasses.replace(message, room_slug=message.room_slug or slug)
                room.held[message.seq] = MessagePosted(message=message)
        self._release(room)
        if room.held and room.next_seq is not None and room.next_seq < min(room.held):
            skipped = min(room.held) - room.next_seq
            self.skipped += skipped
            log.warning("room %s: seqs %d.. (%d) not found; going on", room_id, start, skipped)
            room.next_seq = min(room.held)
            self._release(room)
        self._arm(room_id, room)

    def close(self) -> None:
        for room in self._rooms.values():
            if room.timer is not None:
                room.timer.cancel()
                room.timer = None
        for task in self._tasks:
            task.cancel()


class EventRelay:
    """The EventBus's path for ``SHARED_EVENTS`` when ``REDIS_URL`` is set: out to every
    process through Redis, in to this process's listeners in room order."""

    def __init__(self, url: str, prefix: str, db: Database | None, deliver: Deliver) -> None:
        self.origin = uuid.uuid4().hex
        self._deliver = deliver
        self._order = SeqOrder(self._ready_put, db)
        self._ready: deque[Event] = deque()
        self._task: asyncio.Task[None] | None = None
        self._on_state: list[Callable[[bool], None]] = []
        self.link = RedisLink(url, f"{prefix}:events", self._received, self._state)

    def on_state(self, callback: Callable[[bool], None]) -> None:
        """``callback(up)`` whenever the subscription is established or lost."""
        self._on_state.append(callback)

    def _state(self, up: bool) -> None:
        if up:
            log.info("listening to redis channel %s", self.link.channel)
        for callback in self._on_state:
            callback(up)

    @property
    def up(self) -> bool:
        return self.link.up

    def start(self) -> None:
        self.link.start()

    async def stop(self) -> None:
        self._order.close()
        await self.link.stop()

    @staticmethod
    def carries(event: Event) -> bool:
        return isinstance(event, SHARED_EVENTS)

    def send(self, event: Event) -> None:
        """A committed event of this process: to the others, and to this one's listeners."""
        wire = encode_event(event)
        wire["o"] = self.origin
        self.link.publish(json.dumps(wire, separators=(",", ":")))
        self._receive(event)

    def _received(self, raw: bytes) -> None:
        try:
            data = json.loads(raw)
            if data.get("o") == self.origin:
                return  # delivered here when it was sent
            event = decode_event(data)
        except Exception:
            log.exception("undecodable event on %s", self.link.channel)
            return
        self._receive(event)

    def _receive(self, event: Event) -> None:
        if isinstance(event, MessagePosted):
            self._order.offer(event)
        elif isinstance(event, MessageRedacted):
            self._order.offer_after(event.room_id, event.seq, event)
        else:
            self._ready_put(event)

    def _ready_put(self, event: Event) -> None:
        self._ready.append(event)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._hand_on())

    async def _hand_on(self) -> None:
        # One task: the order of ``_ready`` is the order listeners hear.
        try:
            while self._ready:
                event = self._ready.popleft()
                try:
                    await self._deliver(event)
                except Exception:
                    log.exception("handing on %s failed", type(event).__name__)
        finally:
            self._task = None

    async def settle(self) -> None:
        while self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
