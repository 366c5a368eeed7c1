"""In-process notifications from services to whoever listens (the socket layer).

Services publish after their transaction commits, so a listener never sees an event
for something that was rolled back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agenthub.models import Message

log = logging.getLogger("agenthub.events")


@dataclass(frozen=True)
class MessagePosted:
    message: Message


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


Event = MessagePosted | MemberAdded | MemberRemoved | TokenRevoked | AgentDisabled | SessionsStale
Listener = Callable[[Event], Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def publish(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                await listener(event)
            except Exception:
                # A listener's failure must not undo or fail the committed operation.
                log.exception("event listener failed for %s", type(event).__name__)
