"""Two workers (`agenthub serve --workers 2`) behind HAProxy configured as docs/DEPLOYMENT.md
says: sticky by the cookie AH_SRV (insert, indirect, nocache) with `balance source` for clients
that keep no cookies, health checks on /readyz, websockets tunnelled. Socket.io clients that
start with long-polling (the default python-socketio client, the Node client) and
websocket-only ones connect, send with an ack and hear their message through it. Long-polling
needs the stickiness: the same Engine.IO session asked of the other worker is `Invalid
session`."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import socketio

from tests.helpers import free_port
from tests.integration.test_realtime_node import pytestmark as node_mark
from tests.integration.test_realtime_node import run_node
from tests.realtime_support import run
from tests.servers import AgentCtx, ScratchDatabase
from tests.tls_support import Pki, make_pki
from tests.workers_support import Workers, start_workers

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
)
if HAPROXY is None and os.environ.get("AGENTHUB_REQUIRE_HAPROXY") == "1":
    raise RuntimeError("haproxy missing, and CI requires it (apt-get install haproxy)")
pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed")

CONFIG = """\
global
    stats socket {stats} mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client  75s
    timeout server  75s
    timeout tunnel  1h
frontend agenthub
    bind 127.0.0.1:{port}
    default_backend workers
frontend agenthub_tls
    bind 127.0.0.1:{tls_port} ssl crt {pem}
    http-response set-header Strict-Transport-Security "max-age=31536000"
    default_backend workers
backend workers
    balance source
    hash-type consistent
    cookie AH_SRV insert indirect nocache
    option forwardfor
    option httpchk GET /readyz
    http-check expect status 200
    default-server check inter 1s fall 2 rise 1
{servers}
"""


@dataclass
class Balancer:
    port: int
    tls_port: int
    pki: Pki
    stats: Path
    process: subprocess.Popen[bytes]
    workers: Workers

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    def server_states(self) -> dict[str, str]:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.stats))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {row["svname"]: row["status"] for row in rows if row["svname"].startswith("w")}


@pytest.fixture(scope="module")
def balancer(
    database: ScratchDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Balancer]:
    assert HAPROXY is not None
    directory = tmp_path_factory.mktemp("haproxy")
    # The workers believe X-Forwarded-For from the balancer (on 127.0.0.1) only.
    env = dict(database.env, TRUSTED_PROXIES="127.0.0.1")
    workers = start_workers(env, 2, directory / "workers.log")
    port, tls_port = free_port(), free_port()
    pki = make_pki(directory)
    pem = directory / "haproxy.pem"  # HAProxy's crt: the certificate, then its key
    pem.write_bytes(pki.cert_file.read_bytes() + pki.key_file.read_bytes())
    servers = "\n".join(
        f"    server w{i} 127.0.0.1:{p} cookie w{i}" for i, p in enumerate(workers.ports)
    )
    config = directory / "haproxy.cfg"
    stats = directory / "stats.sock"
    config.write_text(
        CONFIG.format(stats=stats, port=port, tls_port=tls_port, pem=pem, servers=servers)
    )
    check = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    log = (directory / "haproxy.log").open("wb")
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(config)], stdout=log, stderr=log)
    lb = Balancer(port, tls_port, pki, stats, proc, workers)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError((directory / "haproxy.log").read_text())
            try:
                if lb.server_states() == {"w0": "UP", "w1": "UP"}:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"backends not UP: {lb.server_states()}")
        yield lb
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert workers.stop() == 0, workers.log_text()[-3000:]


def _request(
    lb: Balancer, method: str, path: str, body: bytes | None = None, cookie: str | None = None
) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection("127.0.0.1", lb.port, timeout=30)
    headers = {"Cookie": f"AH_SRV={cookie}"} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "text/plain;charset=UTF-8"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode()
    out = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, out, text


def test_the_cookie_pins_a_polling_session_to_its_worker(
    balancer: Balancer, make_agent: Callable[..., AgentCtx]
) -> None:
    agent = make_agent()
    status, headers, text = _request(balancer, "GET", "/socket.io/?EIO=4&transport=polling")
    assert status == 200, text
    cookie = headers["set-cookie"].split(";")[0]
    name, server = cookie.split("=")
    assert name == "AH_SRV" and server in {"w0", "w1"}
    other = "w1" if server == "w0" else "w0"
    sid = json.loads(text[1:])["sid"]
    path = f"/socket.io/?EIO=4&transport=polling&sid={sid}"
    connect = ("40/agents," + json.dumps({"token": agent.jwt})).encode()
    # Sent to the worker that holds the session: accepted, and the namespace connects.
    status, headers, text = _request(balancer, "POST", path, connect, cookie=server)
    assert (status, text) == (200, "OK")
    assert "set-cookie" not in headers  # known client: nothing new to pin
    status, _, text = _request(balancer, "GET", path, cookie=server)
    assert status == 200 and text.startswith("40/agents,"), text
    # The same session asked of the other worker (what a balancer without stickiness does):
    # unknown there.
    status, _, text = _request(balancer, "POST", path, b"3", cookie=other)
    assert status == 400 and "Invalid session" in text, text


def _python_roundtrip(
    balancer: Balancer,
    agent: AgentCtx,
    room_id: str,
    transports: list[str] | None,
    *,
    tls: bool = False,
) -> tuple[dict[str, object], str]:
    body = f"through haproxy {uuid.uuid4().hex}"

    async def scenario() -> tuple[dict[str, object], str]:
        if tls:
            trust = ssl.create_default_context(cafile=str(balancer.pki.ca_file))
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http:
                return await talk(socketio.AsyncClient(reconnection=False, http_session=http))
        return await talk(socketio.AsyncClient(reconnection=False))

    async def talk(sio: socketio.AsyncClient) -> tuple[dict[str, object], str]:
        heard: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()

        async def on_message(message: dict[str, object]) -> None:
            if message.get("body") == body and not heard.done():
                heard.set_result(message)

        sio.on("message:new", on_message, namespace="/agents")
        await sio.connect(
            balancer.tls_url if tls else balancer.url,
            namespaces=["/agents"],
            transports=transports,
            auth={"token": agent.jwt},
            wait_timeout=10,
        )
        try:
            join = await sio.call("room:join", {"roomId": room_id}, namespace="/agents")
            assert join.get("ok"), join
            ack = await sio.call(
                "message:send",
                {"roomId": room_id, "body": body, "clientMsgId": str(uuid.uuid4())},
                namespace="/agents",
            )
            assert ack.get("ok"), ack
            message = await asyncio.wait_for(heard, 10)
            # The default client upgrades from polling to websocket, through the balancer too.
            for _ in range(100):
                if sio.transport() == "websocket":
                    break
                await asyncio.sleep(0.1)
            return message, sio.transport()
        finally:
            await sio.disconnect()

    message, transport = run(scenario())
    assert message["body"] == body
    return message, transport


@pytest.mark.parametrize("transports", [["websocket"], None], ids=["websocket", "default"])
def test_python_client_sends_and_hears_through_the_balancer(
    balancer: Balancer,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, object]],
    transports: list[str] | None,
) -> None:
    agent = make_agent()
    room = make_room(agent)
    _, transport = _python_roundtrip(balancer, agent, str(room["id"]), transports)
    assert transport == "websocket"


@node_mark
@pytest.mark.parametrize(
    "transports", [["websocket"], ["polling", "websocket"]], ids=["websocket", "polling"]
)
def test_node_client_sends_and_hears_through_the_balancer(
    balancer: Balancer,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, object]],
    transports: list[str],
) -> None:
    owner, agent = make_agent(), make_agent()
    room = make_room(owner)
    result = run_node(
        "roundtrip",
        url=balancer.url,
        token=agent.jwt,
        via="auth",
        transports=transports,
        roomId=room["id"],
        body="node through haproxy",
        clientMsgId=str(uuid.uuid4()),
    )
    assert result["connected"]["agentId"] == agent.id
    send = result["send"]
    assert send["ok"] is True and result["live"] == send["message"]


def test_haproxy_terminates_tls_and_sends_hsts(
    balancer: Balancer,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, object]],
) -> None:
    agent = make_agent()
    room = make_room(agent)
    # The default client (polling, then the upgrade to wss) through the https frontend.
    _, transport = _python_roundtrip(balancer, agent, str(room["id"]), None, tls=True)
    assert transport == "websocket"
    trust = ssl.create_default_context(cafile=str(balancer.pki.ca_file))
    conn = http.client.HTTPSConnection("127.0.0.1", balancer.tls_port, context=trust, timeout=10)
    conn.request("GET", "/healthz")
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 200
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
    # Plain http (the workers speak it, without HSTS=1) carries none.
    _, headers, _ = _request(balancer, "GET", "/healthz")
    assert "strict-transport-security" not in headers


def _post_from(source: str, port: int, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    conn.request("POST", "/api/v1/sessions", headers=headers)
    status = conn.getresponse().status
    conn.close()
    return status


def test_workers_see_the_client_address_through_the_balancer_only(
    balancer: Balancer, sql: Callable[..., list[tuple[object, ...]]]
) -> None:
    def failed_logins(address: str) -> int:
        rows = sql(
            "SELECT count(*) FROM audit_events WHERE type = 'login-failed' "
            "AND payload->>'address' = %s",
            address,
        )
        return int(str(rows[0][0]))

    bad = {"Authorization": "Bearer agt_not-a-token"}
    # Through HAProxy (option forwardfor): charged and audited to the real client.
    assert _post_from("127.0.0.91", balancer.port, bad) == 401
    assert failed_logins("127.0.0.91") == 1
    # Straight to a worker from an address that is no trusted proxy: its X-Forwarded-For is
    # anyone's word, ignored.
    spoofed = dict(bad, **{"X-Forwarded-For": "10.9.9.9"})
    assert _post_from("127.0.0.92", balancer.workers.ports[0], spoofed) == 401
    assert failed_logins("127.0.0.92") == 1
    assert failed_logins("10.9.9.9") == 0


def test_a_worker_down_is_taken_out_and_back_by_health_checks(balancer: Balancer) -> None:
    before = balancer.workers.pids()
    os.kill(before[0], 9)
    deadline = time.monotonic() + 30
    while balancer.server_states().get("w0") == "UP" and time.monotonic() < deadline:
        time.sleep(0.2)
    # Meanwhile every request, even one pinned to the dead worker, is served by the other.
    status, _, _ = _request(balancer, "GET", "/healthz", cookie="w0")
    assert status == 200
    while balancer.server_states().get("w0") != "UP" and time.monotonic() < deadline + 60:
        time.sleep(0.2)
    assert balancer.server_states() == {"w0": "UP", "w1": "UP"}
    assert balancer.workers.pids()[0] != before[0]
