"""The session cache (agenthub/services/session_cache.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agenthub.actors import Principal
from agenthub.services.session_cache import GoodStanding, SessionCache


def standing(agent_id: uuid.UUID | None = None, expires_at: datetime | None = None) -> GoodStanding:
    principal = Principal(
        agent_id=agent_id or uuid.uuid4(), name="alice", role="agent", token_prefix="p"
    )
    return GoodStanding(principal, expires_at)


def live_cache(capacity: int = 100) -> SessionCache:
    cache = SessionCache(capacity)
    cache.go_live()
    return cache


def test_a_stored_standing_is_served_from_memory() -> None:
    cache = live_cache()
    entry = standing()
    assert cache.get("p") is None
    assert cache.put("p", entry, cache.ticket())
    assert cache.get("p") is entry


def test_nothing_is_served_or_stored_until_the_listener_is_up() -> None:
    cache = SessionCache()
    assert not cache.put("p", standing(), cache.ticket())
    assert cache.get("p") is None
    cache.go_live()
    assert cache.put("p", standing(), cache.ticket())
    assert cache.get("p") is not None


def test_losing_the_listener_forgets_everything_and_stops_serving() -> None:
    cache = live_cache()
    cache.put("p", standing(), cache.ticket())
    cache.go_dark()
    assert cache.get("p") is None
    assert len(cache) == 0
    assert not cache.put("p", standing(), cache.ticket())


def test_the_listener_coming_back_starts_afresh() -> None:
    cache = live_cache()
    ticket = cache.ticket()  # a load that started before the outage...
    cache.go_dark()
    cache.go_live()
    assert not cache.put("p", standing(), ticket)  # ...must not be stored after it
    assert cache.get("p") is None


def test_a_load_that_overlaps_an_invalidation_is_not_stored() -> None:
    cache = live_cache()
    ticket = cache.ticket()  # read the database...
    cache.forget_token("other")  # ...while some revocation arrives...
    assert not cache.put("p", standing(), ticket)  # ...then what was read may predate it
    assert cache.get("p") is None
    assert cache.put("p", standing(), cache.ticket())


def test_forgetting_a_token_or_an_agent() -> None:
    cache = live_cache()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    for prefix, agent in (("a1", alice), ("a2", alice), ("b1", bob)):
        cache.put(prefix, standing(agent), cache.ticket())
    cache.forget_token("b1")
    assert cache.get("b1") is None and cache.get("a1") is not None
    cache.forget_agent(alice)
    assert cache.get("a1") is None and cache.get("a2") is None
    cache.put("b1", standing(bob), cache.ticket())
    cache.clear()
    assert len(cache) == 0


def test_memory_is_bounded_least_recently_used_first() -> None:
    cache = live_cache(capacity=3)
    for prefix in ("a", "b", "c"):
        cache.put(prefix, standing(), cache.ticket())
    assert cache.get("a") is not None  # now the most recently used
    cache.put("d", standing(), cache.ticket())
    assert len(cache) == 3
    assert cache.get("b") is None
    assert all(cache.get(p) is not None for p in ("a", "c", "d"))


def test_expiry_is_compared_with_the_clock_at_each_use() -> None:
    now = datetime.now(UTC)
    assert standing(expires_at=None).current(now)
    assert standing(expires_at=now + timedelta(seconds=1)).current(now)
    assert not standing(expires_at=now).current(now)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SessionCache(0)
