"""The pure parts of the socket layer: flood control, presence bookkeeping, origins, and how
the handshake finds the JWT."""

from __future__ import annotations

import uuid

import pytest

from agenthub.realtime.namespace import token_from_handshake
from agenthub.realtime.origins import OriginPolicy, cors_setting
from agenthub.realtime.presence import Presence
from agenthub.realtime.rate_limit import FloodGuard, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_refills_at_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock)
    assert [bucket.take() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take() == pytest.approx(0.1)
    clock.now += 0.1
    assert bucket.take() == 0.0
    assert bucket.take() > 0
    clock.now += 60  # saving up stops at the burst
    assert [bucket.take() for _ in range(4)].count(0.0) == 3


def test_flood_guard_disconnects_only_a_socket_that_keeps_going():
    clock = FakeClock()
    guard = FloodGuard(rate=1, burst=1, disconnect_after=3, clock=clock)
    assert guard.check().allowed
    first, second = guard.check(), guard.check()
    assert not first.allowed and not first.disconnect and first.retry_after > 0
    assert not second.disconnect
    clock.now += 2.5  # two strikes forgiven, one token back
    assert guard.check().allowed
    verdicts = [guard.check() for _ in range(3)]
    assert [v.disconnect for v in verdicts] == [False, False, True]


def test_presence_counts_sockets_per_agent_and_room():
    presence = Presence()
    room, other = uuid.uuid4(), uuid.uuid4()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    presence.add_socket("a1", alice)
    presence.add_socket("a2", alice)
    presence.add_socket("b1", bob)
    assert presence.join("a1", room) is True
    assert presence.join("a2", room) is False  # already online there
    assert presence.join("a1", other) is True
    assert presence.join("b1", room) is True
    assert presence.is_online(room, alice) and presence.is_online(room, bob)
    assert presence.remove_socket("a1") == [other]  # a2 keeps alice online in `room`
    assert presence.is_online(room, alice) and not presence.is_online(other, alice)
    assert presence.leave("a2", room) is True
    assert presence.leave("a2", room) is False
    assert not presence.is_online(room, alice)
    assert presence.remove_socket("b1") == [room]
    assert presence.remove_socket("b1") == []
    assert presence.join("gone", room) is False
    assert presence.join("a2", other) is True  # a2 is still known; b1 and "gone" are not
    assert presence.join("b1", other) is False


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("", True),
        ("http://127.0.0.1:3000", True),
        ("HTTP://127.0.0.1:3000/", True),
        ("http://127.0.0.1:3001", False),
        ("http://192.168.1.77:8080", True),
        ("https://192.168.1.1", True),
        ("http://192.168.2.1", False),
        ("http://[fd00::5]:80", True),
        ("http://192.168.1.77.evil.example", False),
        ("ftp://192.168.1.5", False),
        ("null", False),
    ],
)
def test_origin_policy(origin, allowed):
    policy = OriginPolicy(["http://127.0.0.1:3000", "192.168.1.0/24", "fd00::/8"])
    assert policy.allows(origin) is allowed
    assert policy(origin, {}) is allowed
    if origin is not None:
        assert (origin in policy) is allowed


def test_wildcard_origin_is_passed_through():
    assert cors_setting(("*",)) == "*"
    assert isinstance(cors_setting(("http://a.lan",)), OriginPolicy)


@pytest.mark.parametrize(
    ("auth", "query", "token"),
    [
        ({"token": "abc"}, "", "abc"),
        ({"token": "Bearer abc"}, "", "abc"),
        ({"token": "abc"}, "token=zzz", "abc"),  # the auth payload wins
        (None, "EIO=4&token=q.r.s&transport=websocket", "q.r.s"),
        ({}, "token=q", "q"),
        ({"token": 5}, "", None),
        ("a string", "", None),
        (None, "", None),
        ({"token": "   "}, "", None),
    ],
)
def test_token_from_handshake(auth, query, token):
    assert token_from_handshake(auth, {"QUERY_STRING": query}) == token
