"""The pure parts of the socket layer: flood control, presence bookkeeping, origins, how
the handshake finds the JWT, packet decoding, and which failures log as errors."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from socketio import packet

from agenthub.actors import Principal
from agenthub.config import ConfigError, load_settings
from agenthub.origins import OriginPolicy, cors_setting
from agenthub.realtime.connections import SocketState
from agenthub.realtime.namespace import AgentsNamespace, token_from_handshake
from agenthub.realtime.packets import AgentsPacket, Malformed
from agenthub.realtime.presence import Presence
from agenthub.realtime.rate_limit import FloodGuard, TokenBucket
from agenthub.realtime.server import _library_log


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


@pytest.mark.parametrize(
    ("encoded", "problem", "ack_id"),
    [
        ("2/agents,1[", "invalid JSON", 1),
        ('2/agents,2{"a":1}', "an event is a JSON array", 2),
        ("2/agents,3" + "[" * 1000, "nested too deeply", 3),
        ("2/agents,4[]", "an event is a JSON array", 4),
        ("2/agents,5null", "an event is a JSON array", 5),
        ('9/agents,6["x"]', "unexpected packet type 9", None),  # only events get acks
        ("4/agents,{}", "unexpected packet type 4", None),
        ("x", "not a socket.io packet", None),
    ],
)
def test_a_malformed_packet_decodes_to_an_event_the_namespace_answers(encoded, problem, ack_id):
    decoded = AgentsPacket(encoded_packet=encoded)
    assert decoded.packet_type == packet.EVENT
    assert decoded.id == ack_id
    [stand_in] = decoded.data
    assert isinstance(stand_in, Malformed) and problem in stand_in.problem


def test_a_malformed_connect_keeps_its_type_and_carries_the_problem_as_auth():
    decoded = AgentsPacket(encoded_packet="0/agents,{bad")
    assert decoded.packet_type == packet.CONNECT and decoded.namespace == "/agents"
    assert isinstance(decoded.data, Malformed)


@pytest.mark.parametrize(
    "encoded",
    [
        '2/agents,7["message:send",{"roomId":"r","body":"b"}]',
        '0/agents,{"token":"t"}',
        "1/agents,",
        '3/agents,4["ok"]',
        '51-/agents,8["a",{"_placeholder":true,"num":0}]',
    ],
)
def test_well_formed_packets_decode_as_python_socketio_decodes_them(encoded):
    ours, theirs = AgentsPacket(encoded_packet=encoded), packet.Packet(encoded_packet=encoded)
    assert vars(ours) == vars(theirs)


def test_a_server_bug_in_an_event_still_logs_an_error_with_its_traceback(caplog):
    """Only the client's mistakes became warnings: an exception in a handler is a bug."""

    class Hub:
        accepting = True

        def __init__(self) -> None:
            self.socket = SocketState("s1", _principal(), _in_an_hour(), FloodGuard(10, 10, 10))

        def state(self, sid):
            return self.socket

    async def broken(state, payload):
        raise RuntimeError("a bug")

    namespace = AgentsNamespace(services=None, hub=Hub())  # type: ignore[arg-type]
    namespace._events["room:sync"] = broken
    with caplog.at_level(logging.WARNING, logger="agenthub.realtime"):
        ack = asyncio.run(namespace.dispatch("s1", "room:sync", ({},)))
    assert ack == {"ok": False, "error": {"code": "internal", "message": "internal error"}}
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_the_libraries_log_keeps_their_exceptions_as_errors(caplog):
    """python-socketio/engine.io report a client's mistake with error() (made a warning) and
    a failure in their own code with exception() (kept an error, with the traceback)."""
    library = _library_log("agenthub.test-library")
    with caplog.at_level(logging.WARNING, logger="agenthub.test-library"):
        library.error("not an accepted origin")
        try:
            raise ValueError("a bug")
        except ValueError:
            library.exception("handler error")
    assert [(r.levelno, r.exc_info is not None) for r in caplog.records] == [
        (logging.WARNING, False),
        (logging.ERROR, True),
    ]


def _principal() -> Principal:
    return Principal(agent_id=uuid.uuid4(), name="alice", role="agent", token_prefix="p")


def _in_an_hour() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


def test_the_socket_buffer_cap_defaults_to_4_mib_and_refuses_tiny_values():
    secret = {"JWT_SECRET": "s" * 40}
    assert load_settings(secret).socket_max_buffer_bytes == 4 * 1_048_576
    assert load_settings({**secret, "SOCKET_MAX_BUFFER_BYTES": "65536"}).socket_max_buffer_bytes
    with pytest.raises(ConfigError, match="SOCKET_MAX_BUFFER_BYTES"):
        load_settings({**secret, "SOCKET_MAX_BUFFER_BYTES": "1000"})
