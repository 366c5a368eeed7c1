"""In-process notifications from services to whoever listens (the socket layer, metrics).

Services publish after their transaction commits, so a listener never sees an event
for something that was rolled back. A posted message takes its own path: the post reserves a
slot before its insert and completes it after the commit (``EventBus.reserve``); the bus then
publishes ``MessagePosted`` in seq order per room, in the background (``agenthub.ordering``).
News about a stored message (``MessageRedacted``) follows that order too (``publish_after``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from agenthub.models import Message, Room
from agenthub.ordering import PostSlot, RoomOrder

log = logging.getLogger("agenthub.events")


@dataclass(frozen=True)
class MessagePosted:
    message: Message


@dataclass(frozen=True)
class MessageRedacted:
    """A message became a tombstone (``message:redacted`` to its room). Published in the room's
    order (``EventBus.publish_after``): after the ``MessagePosted`` of that seq."""

    room_id: uuid.UUID
    seq: int


@dataclass(frozen=True)
class RoomUpdated:
    """A room's name, topic or archived flag changed (``room:updated`` to its members)."""

    room: Room


@dataclass(frozen=True)
class ReadMarked:
    """A member's read marker moved forward (``read:update`` to the agent's sockets, but
    ``origin_sid``: the socket that sent ``room:read`` has its ack; None for a REST mark)."""

    agent_id: uuid.UUID
    room_id: uuid.UUID
    last_read_seq: int
    origin_sid: str | None = None


@dataclass(frozen=True)
class MemberAdded:
    room_id: uuid.UUID
    agent_id: uuid.UUID


@dataclass(frozen=True)
class MemberRemoved:
    room_id: uuid.UUID
    agent_id: uuid.UUID


@dataclass(frozen=True)
class TokenRevoked:
    agent_id: uuid.UUID
    prefix: str


@dataclass(frozen=True)
class AgentDisabled:
    agent_id: uuid.UUID


@dataclass(frozen=True)
class SessionsStale:
    """Revocations may have been missed (the notification listener was down, or someone
    announced a change made by hand): every live session must be re-checked in the database."""


Event = (
    MessagePosted
    | MessageRedacted
    | RoomUpdated
    | ReadMarked
    | MemberAdded
    | MemberRemoved
    | TokenRevoked
    | AgentDisabled
    | SessionsStale
)
Listener = Callable[[Event], Awaitable[None]]


class Relay(Protocol):
    """Carries some events to every server process (agenthub.scaleout, when REDIS_URL is set)
    and hands them, from whichever process, to ``EventBus.deliver``."""

    def carries(self, event: Event) -> bool: ...
    def send(self, event: Event) -> None: ...


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []  # this process's events only
        self._everywhere: list[Listener] = []  # every process's, when a relay is set
        self._posts = RoomOrder(self._posted)
        self._relay: Relay | None = None

    def subscribe(self, listener: Listener, *, everywhere: bool = False) -> None:
        """``listener`` hears the events of this process (metrics count them once) or, with
        ``everywhere``, those of every process sharing the relay (sockets, long polls)."""
        (self._everywhere if everywhere else self._listeners).append(listener)

    def set_relay(self, relay: Relay) -> None:
        self._relay = relay

    def reserve(self, room_id: uuid.UUID) -> PostSlot:
        """Take a slot for a post into ``room_id`` right before its insert; complete it with
        the stored message after the commit (or with nothing). Listeners then get
        ``MessagePosted`` in the room's seq order; the poster does not wait for them."""
        return self._posts.reserve(room_id)

    def posts_in_flight(self) -> int:
        return self._posts.in_flight()

    async def settle(self) -> None:
        """Wait until every completed post has been published (used when shutting down)."""
        await self._posts.settle()

    def publish_after(self, room_id: uuid.UUID, seq: int, event: Event) -> None:
        """Publish ``event`` (news about the message ``seq`` of ``room_id``, already committed)
        in the room's order: once that message's ``MessagePosted``, and any still to come
        before it, have been published. In the background; ``settle`` waits for it."""

        async def publish() -> None:
            await self.publish(event)

        self._posts.after(room_id, seq, publish)

    async def _posted(self, message: Message) -> None:
        await self.publish(MessagePosted(message=message))

    async def publish(self, event: Event) -> None:
        await self._call(self._listeners, event)
        if self._relay is not None and self._relay.carries(event):
            self._relay.send(event)  # comes back through ``deliver``, in the room's order
        else:
            await self.deliver(event)

    async def deliver(self, event: Event) -> None:
        """Hand ``event`` (of any process) to the listeners of every process's events."""
        await self._call(self._everywhere, event)

    @staticmethod
    async def _call(listeners: list[Listener], event: Event) -> None:
        for listener in listeners:
            try:
                await listener(event)
            except Exception:
                # A listener's failure must not undo or fail the committed operation.
                log.exception("event listener failed for %s", type(event).__name__)
