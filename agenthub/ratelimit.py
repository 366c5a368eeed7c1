"""In-memory request limits for the HTTP API: token buckets keyed by client address, agent,
or API-token prefix.

A bucket holds ``per_minute`` tokens and refills at ``per_minute / 60`` per second, so a client
may burst up to its whole minute's allowance and then proceeds at the steady rate. State is per
process (one AgentHub process per host, docs/ARCHITECTURE.md §1); a restart forgets it.
Memory is bounded: idle buckets (full again) are dropped, and past ``max_keys`` the least
recently used key is evicted.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from agenthub.errors import RateLimited

Clock = Callable[[], float]


class KeyedLimiter:
    """Token buckets, one per key."""

    def __init__(
        self, per_minute: int, *, max_keys: int = 100_000, clock: Clock = time.monotonic
    ) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._max_keys = max_keys
        self._clock = clock
        # key -> (tokens, updated); most recently used last.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._last_sweep = clock()

    def _level(self, key: str, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return self.capacity
        tokens, updated = entry
        return min(self.capacity, tokens + (now - updated) * self.rate)

    def wait_time(self, key: str) -> float:
        """Seconds until ``key`` may be charged again; 0.0 when it may be now. Charges nothing."""
        level = self._level(key, self._clock())
        return 0.0 if level >= 1.0 else (1.0 - level) / self.rate

    def hit(self, key: str) -> float:
        """Charge one token: 0.0 when allowed, else the seconds to wait (nothing charged)."""
        now = self._clock()
        level = self._level(key, now)
        if level < 1.0:
            self._buckets[key] = (level, now)
            self._buckets.move_to_end(key)
            return (1.0 - level) / self.rate
        self._buckets[key] = (level - 1.0, now)
        self._buckets.move_to_end(key)
        self._housekeep(now)
        return 0.0

    def charge(self, key: str) -> bool:
        """Charge one token even past empty (used to count failures); True if it was there."""
        now = self._clock()
        level = self._level(key, now)
        self._buckets[key] = (max(0.0, level - 1.0), now)
        self._buckets.move_to_end(key)
        self._housekeep(now)
        return level >= 1.0

    def __len__(self) -> int:
        return len(self._buckets)

    def _housekeep(self, now: float) -> None:
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        # A bucket untouched for a full refill period is full again: same as no entry.
        refill_seconds = self.capacity / self.rate
        if now - self._last_sweep < refill_seconds:
            return
        self._last_sweep = now
        stale = [k for k, (_, updated) in self._buckets.items() if now - updated >= refill_seconds]
        for key in stale:
            del self._buckets[key]


def retry_after(seconds: float) -> int:
    """Whole seconds for ``Retry-After``, never early: a client that obeys it gets through."""
    return max(1, math.ceil(seconds))


class RequestLimits:
    """Every HTTP request is charged to its agent (authenticated) or its client address."""

    def __init__(
        self, anonymous_per_minute: int, agent_per_minute: int, *, clock: Clock = time.monotonic
    ) -> None:
        self.by_address = KeyedLimiter(anonymous_per_minute, clock=clock)
        self.by_agent = KeyedLimiter(agent_per_minute, clock=clock)

    def check_address(self, address: str) -> None:
        wait = self.by_address.hit(address)
        if wait:
            raise RateLimited("too many requests from this address; slow down", retry_after(wait))

    def check_agent(self, agent_id: str) -> None:
        wait = self.by_agent.hit(agent_id)
        if wait:
            raise RateLimited("too many requests from this agent; slow down", retry_after(wait))


class LoginLimits:
    """Failed token exchanges, counted per client address and per API-token prefix.

    ``check`` runs before the Argon2 verification and costs nothing; only a failure that was
    actually verified is ``record``ed. So a flood is refused cheaply once a few attempts have
    failed, and each refusal writes nothing (the audit trail holds the verified failures).
    """

    def __init__(self, per_address: int, per_prefix: int, *, clock: Clock = time.monotonic) -> None:
        self.by_address = KeyedLimiter(per_address, clock=clock)
        self.by_prefix = KeyedLimiter(per_prefix, clock=clock)

    def check(self, address: str, prefix: str | None) -> None:
        wait = self.by_address.wait_time(address)
        if prefix is not None:
            wait = max(wait, self.by_prefix.wait_time(prefix))
        if wait:
            raise RateLimited("too many failed logins; try again later", retry_after(wait))

    def record_failure(self, address: str, prefix: str | None) -> bool:
        """Count one failure; True when the address or prefix is now blocked."""
        self.by_address.charge(address)
        blocked = self.by_address.wait_time(address) > 0
        if prefix is not None:
            self.by_prefix.charge(prefix)
            blocked = blocked or self.by_prefix.wait_time(prefix) > 0
        return blocked
