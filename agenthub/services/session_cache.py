"""Sessions known to be in good standing, remembered so a request need not ask the database.

An entry says: this API token exists, is not revoked, belongs to this agent, which is not
disabled and has this role; the token expires at ``expires_at`` (checked against the clock on
every use). Only good standing is remembered: a refusal is always re-read.

The cache is trusted only while the notification listener is up (``go_live``), because that is
what tells it of revocations made by other processes; while it is down every lookup misses.
A lookup that starts before an invalidation and finishes after it must not store what it read
(it may predate the change): ``ticket()`` before reading, ``put(..., ticket)`` after, and any
invalidation in between makes ``put`` a no-op.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from agenthub.actors import Principal

DEFAULT_CAPACITY = 10_000  # entries of a few hundred bytes: a few MB at most


@dataclass(frozen=True)
class GoodStanding:
    principal: Principal
    expires_at: datetime | None  # the API token's expiry

    def current(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class SessionCache:
    """Token prefix -> GoodStanding, least recently used evicted past ``capacity``."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._entries: OrderedDict[str, GoodStanding] = OrderedDict()
        self._generation = 0
        self.live = False

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, prefix: str) -> GoodStanding | None:
        if not self.live:
            return None
        entry = self._entries.get(prefix)
        if entry is not None:
            self._entries.move_to_end(prefix)
        return entry

    def ticket(self) -> int:
        """Take before reading the database; hand to ``put``."""
        return self._generation

    def put(self, prefix: str, standing: GoodStanding, ticket: int) -> bool:
        """Remember ``standing`` unless something was invalidated since ``ticket`` was taken
        (or the cache is not live); True when stored."""
        if not self.live or ticket != self._generation:
            return False
        self._entries[prefix] = standing
        self._entries.move_to_end(prefix)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return True

    def forget_token(self, prefix: str) -> None:
        self._generation += 1
        self._entries.pop(prefix, None)

    def forget_agent(self, agent_id: uuid.UUID) -> None:
        self._generation += 1
        for prefix in [p for p, e in self._entries.items() if e.principal.agent_id == agent_id]:
            del self._entries[prefix]

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()

    def go_live(self) -> None:
        """The listener is (back) up: start afresh, as notifications may have been missed."""
        self.clear()
        self.live = True

    def go_dark(self) -> None:
        """The listener is down: nothing remembered can be trusted, and nothing is stored."""
        self.live = False
        self.clear()
