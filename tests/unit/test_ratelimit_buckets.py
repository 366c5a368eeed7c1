"""Token buckets with a fake clock: capacity, refill, Retry-After, memory bounds."""

from __future__ import annotations

import pytest

from agenthub.errors import RateLimited
from agenthub.ratelimit import KeyedLimiter, LoginLimits, RequestLimits, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_its_minute_then_refuses_until_refilled() -> None:
    clock = Clock()
    limiter = KeyedLimiter(60, clock=clock)  # one per second steady
    assert all(limiter.hit("a") == 0.0 for _ in range(60))
    wait = limiter.hit("a")
    assert wait == pytest.approx(1.0)
    assert limiter.hit("b") == 0.0  # keys are independent
    clock.now += 0.5
    assert limiter.hit("a") == pytest.approx(0.5)  # a refusal charges nothing
    clock.now += 0.5
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") > 0.0


def test_retry_after_is_whole_seconds_never_early() -> None:
    assert retry_after(0.01) == 1
    assert retry_after(1.0) == 1
    assert retry_after(1.2) == 2


def test_idle_buckets_are_dropped_and_keys_are_bounded() -> None:
    clock = Clock()
    limiter = KeyedLimiter(10, max_keys=100, clock=clock)
    for i in range(500):
        limiter.hit(f"k{i}")
    assert len(limiter) == 100  # least recently used evicted
    clock.now += 61  # a full refill period later every bucket is full: forgotten
    limiter.hit("fresh")
    assert len(limiter) == 1


def test_request_limits_raise_rate_limited_with_retry_after() -> None:
    clock = Clock()
    limits = RequestLimits(2, 3, clock=clock)
    limits.check_address("10.0.0.1")
    limits.check_address("10.0.0.1")
    with pytest.raises(RateLimited) as caught:
        limits.check_address("10.0.0.1")
    assert caught.value.retry_after == 30  # 2/min: one token every 30 s
    for _ in range(3):
        limits.check_agent("agent")
    with pytest.raises(RateLimited):
        limits.check_agent("agent")


def test_login_limits_count_only_recorded_failures() -> None:
    clock = Clock()
    logins = LoginLimits(per_address=2, per_prefix=5, clock=clock)
    for _ in range(10):
        logins.check("10.0.0.1", "abc")  # checking alone never blocks
    assert logins.record_failure("10.0.0.1", "abc") is False
    assert logins.record_failure("10.0.0.1", "abc") is True  # the block starts now
    with pytest.raises(RateLimited):
        logins.check("10.0.0.1", None)
    logins.check("10.0.0.2", "abc")  # prefix has 3 of 5 left
    clock.now += 30
    logins.check("10.0.0.1", None)  # one failure forgiven after 30 s (2 per minute)
