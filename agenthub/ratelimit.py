"""In-memory request limits for the HTTP API: token buckets keyed by client address, agent,
or API-token prefix.

A bucket holds ``per_minute`` tokens and refills at ``per_minute / 60`` per second, so a client
may burst up to its whole minute's allowance and then proceeds at the steady rate. State is per
process (one AgentHub process per host, docs/ARCHITECTURE.md §1); a restart forgets it.
Memory is bounded: idle buckets (full again) are dropped, and past ``max_keys`` the least
recently used key is evicted.

With ``REDIS_URL`` the request limits are shared by every process instead
(``SharedRequestLimits``: the ``limits`` library's moving window, kept in Redis), so N workers
or app hosts do not grant N times the budget.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from agenthub.errors import RateLimited

if TYPE_CHECKING:
    from limits import RateLimitItem

Clock = Callable[[], float]
log = logging.getLogger("agenthub.ratelimit")

ADDRESS_REFUSED = "too many requests from this address; slow down"
AGENT_REFUSED = "too many requests from this agent; slow down"


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
            raise RateLimited(ADDRESS_REFUSED, retry_after(wait))

    def check_agent(self, agent_id: str) -> None:
        wait = self.by_agent.hit(agent_id)
        if wait:
            raise RateLimited(AGENT_REFUSED, retry_after(wait))

    async def admit_address(self, address: str) -> None:
        self.check_address(address)

    async def admit_agent(self, agent_id: str) -> None:
        self.check_agent(agent_id)


# After Redis failed, requests are limited per process for this long before Redis is tried
# again: a dead Redis must not add a connect timeout to every request.
STORE_RETRY_SECONDS = 5.0
# A request waits at most this long for Redis; past it the per-process limits decide.
STORE_TIMEOUT_SECONDS = 0.5


def limits_storage_uri(redis_url: str) -> str:
    """REDIS_URL in the ``limits`` library's async scheme (``async+redis://``, ``async+rediss://``,
    ``async+redis+unix://``)."""
    if redis_url.startswith("unix://"):
        return "async+redis+" + redis_url
    return "async+" + redis_url


class SharedRequestLimits:
    """The request limits of every process sharing REDIS_URL: the ``limits`` library's moving
    window (at most ``per_minute`` requests in any 60 s) in Redis, through redis-py.

    Redis unreachable: requests are still served, limited by this process alone (the in-memory
    buckets) until Redis answers again; each outage is logged once and counted."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        anonymous_per_minute: int,
        agent_per_minute: int,
        on_unavailable: Callable[[], None] | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        from limits import RateLimitItemPerMinute
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import MovingWindowRateLimiter

        self.storage = RedisStorage(
            limits_storage_uri(redis_url),
            implementation="redispy",
            key_prefix=f"{prefix}:ratelimit",
            wrap_exceptions=True,
            socket_connect_timeout=STORE_TIMEOUT_SECONDS,
            socket_timeout=STORE_TIMEOUT_SECONDS,
        )
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.by_address: RateLimitItem = RateLimitItemPerMinute(anonymous_per_minute)
        self.by_agent: RateLimitItem = RateLimitItemPerMinute(agent_per_minute)
        self.local = RequestLimits(anonymous_per_minute, agent_per_minute, clock=clock)
        self._on_unavailable = on_unavailable
        self._clock = clock
        self._down = False
        self._retry_at = 0.0

    async def admit_address(self, address: str) -> None:
        if not await self._admit(self.by_address, "address", address, ADDRESS_REFUSED):
            self.local.check_address(address)

    async def admit_agent(self, agent_id: str) -> None:
        if not await self._admit(self.by_agent, "agent", agent_id, AGENT_REFUSED):
            self.local.check_agent(agent_id)

    async def _admit(self, item: RateLimitItem, kind: str, key: str, refused: str) -> bool:
        """True when Redis decided (allowed, or RateLimited raised); False when it could not."""
        from limits.errors import StorageError

        if self._down and self._clock() < self._retry_at:
            return False
        try:
            if await self.limiter.hit(item, kind, key):
                self._up()
                return True
            stats = await self.limiter.get_window_stats(item, kind, key)
        except (StorageError, OSError, TimeoutError) as exc:
            self._unavailable(exc)
            return False
        self._up()
        # reset_time: when the oldest request of the window leaves it (wall clock).
        raise RateLimited(refused, retry_after(stats.reset_time - time.time()))

    def _up(self) -> None:
        if self._down:
            self._down = False
            log.warning("rate-limit store (Redis) reachable again; limits are shared again")

    def _unavailable(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + STORE_RETRY_SECONDS
        if self._down:
            return
        self._down = True
        log.error(
            "rate-limit store (Redis) unreachable (%s); each process limits on its own until "
            "it answers",
            exc,
        )
        if self._on_unavailable is not None:
            self._on_unavailable()


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
