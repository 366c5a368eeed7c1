"""Flood control per socket: a token bucket, and a strike count that ends a socket which
keeps sending after being told to slow down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one token per event."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def take(self) -> float:
        """0.0 when a token was taken; otherwise the seconds until one is available."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float = 0.0
    disconnect: bool = False


class FloodGuard:
    """Each refused event is a strike; strikes are forgiven at one per second. A socket that
    collects ``disconnect_after`` strikes is flooding on purpose (or broken) and is cut off."""

    def __init__(
        self, rate: float, burst: int, disconnect_after: int, clock: Clock = time.monotonic
    ) -> None:
        self._bucket = TokenBucket(rate, burst, clock)
        self._clock = clock
        self._limit = float(disconnect_after)
        self._strikes = 0.0
        self._strikes_at = clock()

    def check(self) -> Verdict:
        wait = self._bucket.take()
        if wait == 0.0:
            return Verdict(allowed=True)
        now = self._clock()
        self._strikes = max(0.0, self._strikes - (now - self._strikes_at)) + 1.0
        self._strikes_at = now
        return Verdict(allowed=False, retry_after=wait, disconnect=self._strikes >= self._limit)
