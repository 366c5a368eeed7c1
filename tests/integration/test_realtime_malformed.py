"""Malformed packets from a client, sent raw: invalid or too deeply nested JSON, arguments that
are not an array, unknown packet types, frames that are not engine.io at all. Each is the
client's fault: an event that asked for an ack gets ``validation_failed``, the server logs one
WARNING line (no ERROR, no traceback), and the socket keeps working."""

from __future__ import annotations

import json

import pytest

from tests.realtime_support import RawSocket, error_code, ok, run

DEEP = "[" * 1000 + "]" * 1000

ACKED = [
    pytest.param('42/agents,7["message:send",{"roomId":', "invalid JSON", id="invalid-json"),
    pytest.param('42/agents,7{"roomId":"x"}', "JSON array", id="object-args"),
    pytest.param('42/agents,7"message:send"', "JSON array", id="string-args"),
    pytest.param("42/agents,7[]", "JSON array", id="empty-args"),
    pytest.param("42/agents,7", "JSON array", id="no-args"),
    pytest.param("42/agents,7" + DEEP, "nested too deeply", id="deep-nesting"),
    pytest.param('42/agents,7["message:send",' + DEEP + "]", "nested too deeply", id="deep-arg"),
]

UNACKED = [
    pytest.param("42/agents," + DEEP, id="deep-nesting-no-ack"),
    pytest.param('42/agents,{"a":', id="invalid-json-no-ack"),
    pytest.param('49/agents,["x"]', id="unknown-socketio-type"),
    pytest.param("44/agents,{}", id="connect-error-from-client"),
    pytest.param("4x", id="not-socketio"),
    pytest.param("x", id="not-engineio"),
    pytest.param("9", id="unknown-engineio-type"),
    pytest.param("", id="empty-frame"),
    pytest.param("4", id="empty-message"),
    pytest.param("4" + DEEP, id="deep-engineio-message"),
    pytest.param('4{"a":1}', id="engineio-json-message"),
]


def _new_log(server, since: int) -> str:
    return str(server.log_text())[since:]


def _check_log(text: str) -> None:
    """Exactly one WARNING line about the packet, and nothing worse."""
    lines = [line for line in text.splitlines() if " agenthub.access: " not in line]
    warnings = [line for line in lines if " WARNING " in line]
    assert len(warnings) == 1, lines
    assert "Traceback" not in text and " ERROR " not in text, text


async def _still_works(raw: RawSocket, room_id: str) -> None:
    await raw.send("42/agents,99" + json.dumps(["room:sync", {"roomId": room_id, "afterSeq": 0}]))
    ok(await raw.ack_of(99))


@pytest.mark.parametrize(("packet", "problem"), ACKED)
def test_a_malformed_event_with_an_ack_id_gets_validation_failed(
    server, make_agent, make_room, packet, problem
):
    alice = make_agent()
    room = make_room(alice)
    since = len(server.log_text())

    async def scenario() -> None:
        raw = await RawSocket.open(server.base_url)
        try:
            assert (await raw.join(alice.jwt)).startswith("40/agents,")
            await raw.send(packet)
            ack = await raw.ack_of(7)
            assert error_code(ack) == "validation_failed"
            assert any(problem in text for text in ack["error"]["details"]["packet"])
            await _still_works(raw, room["id"])
        finally:
            await raw.close()

    run(scenario())
    _check_log(_new_log(server, since))


@pytest.mark.parametrize("packet", UNACKED)
def test_a_malformed_packet_without_an_ack_id_is_one_warning(server, make_agent, make_room, packet):
    alice = make_agent()
    room = make_room(alice)
    since = len(server.log_text())

    async def scenario() -> None:
        raw = await RawSocket.open(server.base_url)
        try:
            assert (await raw.join(alice.jwt)).startswith("40/agents,")
            await raw.send(packet)
            # Events are handled in order per socket: once this one is answered, the
            # malformed packet before it has been dealt with.
            await _still_works(raw, room["id"])
        finally:
            await raw.close()

    run(scenario())
    _check_log(_new_log(server, since))


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param("40/agents,{", id="invalid-json"),
        pytest.param("40/agents," + DEEP, id="deep-nesting"),
    ],
)
def test_a_malformed_connect_is_refused_with_validation_failed(server, packet):
    since = len(server.log_text())

    async def scenario() -> None:
        raw = await RawSocket.open(server.base_url)
        try:
            await raw.send(packet)
            answer = await raw.recv_packet()
            assert answer.startswith("44/agents,"), answer
            refusal = json.loads(answer[len("44/agents,") :])
            assert refusal["code"] == "validation_failed"
            assert refusal["details"]["auth"]
        finally:
            await raw.close()

    run(scenario())
    _check_log(_new_log(server, since))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"x", id="not-engineio"),
        pytest.param(b"4" + DEEP.encode(), id="deep-message"),
        pytest.param(b"40/agents,{}\x1e9", id="bad-second-packet"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
    ],
)
def test_a_malformed_polling_post_is_refused_with_one_warning(server, make_agent, body):
    alice = make_agent()
    api = server.api()
    since = len(server.log_text())
    opened = api.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert opened.status == 200, opened.text
    sid = json.loads(opened.text[1:])["sid"]
    query = {"EIO": "4", "transport": "polling", "sid": sid}
    bad = api.request("POST", "/socket.io/", raw=body, params=query)
    assert bad.status == 400
    # The session is still usable: a well-formed handshake goes through.
    connect = "40/agents," + json.dumps({"token": alice.jwt})
    assert api.request("POST", "/socket.io/", raw=connect.encode(), params=query).status == 200
    answer = api.get("/socket.io/", params=query)
    assert "40/agents," in answer.text, answer.text
    _check_log(_new_log(server, since))
