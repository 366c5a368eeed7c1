"""TLS served by AgentHub itself (TLS_CERT_FILE/TLS_KEY_FILE): REST over https and socket.io
over wss, for clients that trust a throwaway CA made here; Strict-Transport-Security on every
response with TLS (or with HSTS=1), never without; clear refusals at start for unusable files;
the client library and `ah` trusting a private CA through AGENTHUB_CA_FILE, the Node client
through NODE_EXTRA_CA_CERTS."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import socketio

from agenthub.client import AsyncAgentHub, ConnectionFailed
from tests.helpers import free_port
from tests.integration.test_realtime_node import NODE, NODE_DIR
from tests.integration.test_realtime_node import pytestmark as node_mark
from tests.realtime_support import run
from tests.servers import AGENTHUB, AgentCtx, ScratchDatabase
from tests.tls_support import Pki, make_pki

AH = str(Path(AGENTHUB).with_name("ah"))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _client_context(pki: Pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_file))


def _get(port: int, path: str, context: ssl.SSLContext | None) -> http.client.HTTPResponse:
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def _start(
    env: dict[str, str], log: Path, context: ssl.SSLContext | None
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [AGENTHUB, "serve"],
        env=dict(env, PORT=str(port), HOST="127.0.0.1"),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if _get(port, "/readyz", context).status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server not ready:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    return proc.wait(timeout=30)


@pytest.fixture(scope="module")
def tls_server(
    database: ScratchDatabase, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    env = dict(database.env, TLS_CERT_FILE=str(pki.cert_file), TLS_KEY_FILE=str(pki.key_file))
    proc, port = _start(env, tmp_path_factory.mktemp("tls") / "server.log", _client_context(pki))
    yield port
    assert _stop(proc) == 0


def test_rest_over_https_carries_hsts(tls_server: int, pki: Pki) -> None:
    resp = _get(tls_server, "/healthz", _client_context(pki))
    assert resp.status == 200
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
    # Error answers carry it too.
    missing = _get(tls_server, "/api/v1/nowhere", _client_context(pki))
    assert missing.status == 404
    assert missing.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_server: int) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        _get(tls_server, "/healthz", ssl.create_default_context())


def test_no_hsts_without_tls_and_hsts_behind_a_balancer(
    database: ScratchDatabase, tmp_path: Path
) -> None:
    proc, port = _start(database.env, tmp_path / "plain.log", None)
    try:
        assert "Strict-Transport-Security" not in _get(port, "/healthz", None).headers
    finally:
        assert _stop(proc) == 0
    proc, port = _start(dict(database.env, HSTS="1"), tmp_path / "hsts.log", None)
    try:
        assert _get(port, "/healthz", None).headers["Strict-Transport-Security"] == (
            "max-age=31536000"
        )
    finally:
        assert _stop(proc) == 0


def test_socketio_over_wss_sends_with_ack_and_receives(
    tls_server: int,
    pki: Pki,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, object]],
) -> None:
    alice = make_agent()
    room = make_room(alice)
    body = f"over wss {uuid.uuid4().hex}"

    async def scenario() -> dict[str, object]:
        connector = aiohttp.TCPConnector(ssl=_client_context(pki))
        async with aiohttp.ClientSession(connector=connector) as http_session:
            sio = socketio.AsyncClient(reconnection=False, http_session=http_session)
            heard: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

            async def on_message(message: dict[str, object]) -> None:
                if message.get("body") == body and not heard.done():
                    heard.set_result(message)

            sio.on("message:new", on_message, namespace="/agents")
            await sio.connect(
                f"https://127.0.0.1:{tls_server}",
                namespaces=["/agents"],
                transports=["websocket"],
                auth={"token": alice.jwt},
                wait_timeout=10,
            )
            assert sio.transport() == "websocket"
            join = await sio.call("room:join", {"roomId": room["id"]}, namespace="/agents")
            assert join.get("ok"), join
            ack = await sio.call(
                "message:send",
                {"roomId": room["id"], "body": body, "clientMsgId": str(uuid.uuid4())},
                namespace="/agents",
            )
            assert ack.get("ok"), ack
            message = await asyncio.wait_for(heard, 10)
            await sio.disconnect()
            return message

    message = run(scenario())
    assert message["body"] == body


def test_the_client_library_trusts_a_private_ca(
    tls_server: int,
    pki: Pki,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, object]],
) -> None:
    alice = make_agent()
    room = str(make_room(alice)["id"])
    url = f"https://127.0.0.1:{tls_server}"

    async def scenario() -> None:
        async with AsyncAgentHub(url, alice.api_token, ca_file=str(pki.ca_file)) as hub:
            sub = hub.subscribe([room])
            await sub.wait_connected(20)  # over wss, through the same trusted session
            sent = await hub.send(room, "through the private CA")
            async for event in sub:
                if event.name == "message:new":
                    assert event.message is not None and event.message.seq == sent.seq
                    break
            await sub.aclose()
        async with AsyncAgentHub(url, alice.api_token) as untrusting:
            with pytest.raises(ConnectionFailed):
                await untrusting.me()

    run(scenario())


def test_ah_trusts_the_ca_named_by_agenthub_ca_file(
    tls_server: int, pki: Pki, make_agent: Callable[..., AgentCtx], tmp_path: Path
) -> None:
    alice = make_agent()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTHUB_", "SSL_CERT"))}
    env.update(
        AGENTHUB_URL=f"https://127.0.0.1:{tls_server}",
        AGENTHUB_TOKEN=alice.api_token,
        XDG_RUNTIME_DIR=str(tmp_path),
    )

    def ah(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AH, "--json", *args],
            env=dict(env, **extra),
            capture_output=True,
            text=True,
            timeout=60,
        )

    trusted = ah("whoami", AGENTHUB_CA_FILE=str(pki.ca_file))
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["name"] == alice.name
    refused = ah("whoami")
    assert refused.returncode == 3
    assert "certificate" in refused.stderr.lower()
    bad = ah("whoami", AGENTHUB_CA_FILE=str(tmp_path / "missing.pem"))
    assert bad.returncode == 2
    assert "AGENTHUB_CA_FILE: cannot load CA certificates from" in bad.stderr


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"TLS_CERT_FILE": "CERT"}, "TLS_KEY_FILE: must be set too when TLS_CERT_FILE is"),
        (
            {"TLS_CERT_FILE": "/nonexistent/cert.pem", "TLS_KEY_FILE": "KEY"},
            "TLS_CERT_FILE: cannot read /nonexistent/cert.pem: no such file or directory",
        ),
        (
            {"TLS_CERT_FILE": "CERT", "TLS_KEY_FILE": "CA"},
            "TLS_CERT_FILE/TLS_KEY_FILE: cannot load",
        ),
    ],
)
def test_unusable_tls_settings_stop_the_start_with_one_clear_line(
    database: ScratchDatabase, pki: Pki, settings: dict[str, str], expected: str
) -> None:
    files = {"CERT": str(pki.cert_file), "KEY": str(pki.key_file), "CA": str(pki.ca_file)}
    env = dict(database.env, PORT=str(free_port()))
    env.update({name: files.get(value, value) for name, value in settings.items()})
    done = subprocess.run([AGENTHUB, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 78
    assert expected in done.stderr, done.stderr


@node_mark
def test_node_client_over_wss_trusts_the_ca_through_node_extra_ca_certs(
    tls_server: int,
    pki: Pki,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, object]],
) -> None:
    owner, agent = make_agent(), make_agent()
    room = make_room(owner)
    config = {
        "url": f"https://127.0.0.1:{tls_server}",
        "token": agent.jwt,
        "via": "auth",
        "transports": ["polling", "websocket"],
        "roomId": room["id"],
        "body": "node over wss",
        "clientMsgId": str(uuid.uuid4()),
    }
    assert NODE is not None
    env = {"AGENTHUB_NODE_TEST": json.dumps(config), "PATH": "/usr/bin:/bin"}

    def node(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [NODE, str(NODE_DIR / "client.mjs"), "roundtrip"],
            env=dict(env, **extra),
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = node(NODE_EXTRA_CA_CERTS=str(pki.ca_file))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["send"]["ok"] is True and result["live"] == result["send"]["message"]
