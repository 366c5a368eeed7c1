"""socket.io benchmark on /agents: acked sends, fan-out latency, memory of idle sockets.

Prints:
  1. acked ``message:send`` per second for 1 sender and for 20 concurrent senders (one room,
     each sender waits for its ack before the next send);
  2. fan-out: p50/p99 from send to ``message:new`` at each of 50 receivers in one room while
     200 messages/s are sent;
  3. the server's RSS with 1,000 idle connected sockets (and before them).

Like bench/rest_post.py it builds its own world by default (fresh database, migrate, admin
via the CLI, a real ``agenthub serve`` on a free port, all torn down afterwards), with the
per-socket flood limit raised so it measures the server, not the limiter. Loopback only;
every loop is bounded by a duration or a count.

    set -a; . .agenthub-dev/env; set +a
    .venv/bin/python bench/socket_bench.py
    .venv/bin/python bench/socket_bench.py --duration 10 --idle 1000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rest_post import Client, expect, local_server, login, percentile, rss_mib

NAMESPACE = "/agents"


@dataclass
class World:
    base_url: str
    admin: Client
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    agents: int = 0

    def room(self, name: str) -> str:
        status, body = self.admin.request(
            "POST", "/api/v1/rooms", {"slug": f"sb-{self.tag}-{name}", "visibility": "public"}
        )
        return str(expect(status, body, 201, "create room")["id"])

    def agent_in(self, room_ids: list[str]) -> str:
        """A new agent, member of ``room_ids``; returns its JWT."""
        self.agents += 1
        status, agent = self.admin.request(
            "POST", "/api/v1/agents", {"name": f"sb-{self.tag}-{self.agents}"}
        )
        agent_id = expect(status, agent, 201, "create agent")["id"]
        status, issued = self.admin.request("POST", f"/api/v1/agents/{agent_id}/tokens", {})
        jwt = login(self.base_url, expect(status, issued, 201, "issue token")["token"])
        for room_id in room_ids:
            status, body = self.admin.request(
                "POST", f"/api/v1/rooms/{room_id}/members", {"agentId": agent_id}
            )
            expect(status, body, 201, "add member")
        return jwt


async def open_socket(base_url: str, jwt: str) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        base_url,
        namespaces=[NAMESPACE],
        auth={"token": jwt},
        transports=["websocket"],
        wait_timeout=30,
    )
    return client


async def close_all(clients: list[socketio.AsyncClient]) -> None:
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


def cpu_seconds(pid: int | None) -> float | None:
    """User+system CPU seconds used so far by process ``pid`` (Linux /proc)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- 1. acked sends ---------------------------------------------------------------------------


async def acked_sends(
    base_url: str, jwts: list[str], room_id: str, duration: float, pid: int | None = None
) -> dict[str, Any]:
    clients = [await open_socket(base_url, jwt) for jwt in jwts]
    latencies: list[float] = []
    errors: dict[str, int] = {}
    start = asyncio.Event()

    async def sender(client: socketio.AsyncClient) -> None:
        await start.wait()
        deadline = time.perf_counter() + duration
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            ack = await client.call(
                "message:send", {"roomId": room_id, "body": "x" * 200}, namespace=NAMESPACE
            )
            if isinstance(ack, dict) and ack.get("ok"):
                latencies.append(time.perf_counter() - t0)
            else:
                code = str(ack.get("error", {}).get("code")) if isinstance(ack, dict) else "?"
                errors[code] = errors.get(code, 0) + 1

    tasks = [asyncio.create_task(sender(c)) for c in clients]
    server_cpu0, own_cpu0 = cpu_seconds(pid), time.process_time()
    began = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - began
    server_cpu1, own_cpu1 = cpu_seconds(pid), time.process_time()
    await close_all(clients)
    ms = sorted(1000 * v for v in latencies)
    server_cpu = None
    if server_cpu0 is not None and server_cpu1 is not None:
        server_cpu = server_cpu1 - server_cpu0
    return {
        "senders": len(jwts),
        "acked": len(latencies),
        "seconds": round(wall, 2),
        "ackedPerSecond": round(len(latencies) / wall, 1),
        "ackP50Ms": round(percentile(ms, 50), 2),
        "ackP99Ms": round(percentile(ms, 99), 2),
        "errors": errors,
        "serverCpuSecondsPer1000": (
            round(1000 * server_cpu / len(latencies), 3)
            if server_cpu is not None and latencies
            else None
        ),
        "serverCores": None if server_cpu is None else round(server_cpu / wall, 2),
        "clientCores": round((own_cpu1 - own_cpu0) / wall, 2),
    }


# --- 2. fan-out -------------------------------------------------------------------------------


async def raw_socket(
    http: aiohttp.ClientSession, base_url: str, jwt: str
) -> aiohttp.ClientWebSocketResponse:
    """A websocket speaking engine.io 4 by hand, connected to /agents: far cheaper for this
    process than python-socketio's client (no task per event, no packet objects), so the
    bench measures the server rather than its own receivers."""
    url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    ws = await http.ws_connect(url, max_msg_size=0)
    await ws.receive_str()  # engine.io OPEN
    await ws.send_str("40" + NAMESPACE + "," + json.dumps({"token": jwt}))
    while True:
        frame = await ws.receive_str()
        if frame.startswith("40" + NAMESPACE + ","):
            return ws
        if frame.startswith("44" + NAMESPACE):
            raise RuntimeError(frame)


_EVENT_PREFIX = "42" + NAMESPACE + ","


async def fan_out(
    base_url: str,
    sender_jwts: list[str],
    receiver_jwts: list[str],
    room_id: str,
    rate: float,
    duration: float,
    pid: int | None,
    light: bool = False,
) -> dict[str, Any]:
    """``rate`` messages/s sent into the room for ``duration`` s (on a schedule, spread over
    the senders), heard by every receiver. ``light``: the receivers are raw websockets
    (``raw_socket``) instead of python-socketio clients."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    per_receiver: list[int] = []
    last_seq: list[int] = []
    out_of_order = 0  # message:new with a seq below one the same receiver already heard
    receivers: list[socketio.AsyncClient] = []
    raw: list[aiohttp.ClientWebSocketResponse] = []
    readers: list[asyncio.Task[None]] = []
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) if light else None

    def heard(i: int, message: dict[str, Any]) -> None:
        nonlocal out_of_order
        if message["seq"] < last_seq[i]:
            out_of_order += 1
        last_seq[i] = max(last_seq[i], message["seq"])
        t0 = sent_at.get(message["body"])
        if t0 is not None:
            latencies.append(time.perf_counter() - t0)
            per_receiver[i] += 1

    async def read(i: int, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            data = msg.data
            if data == "2":
                await ws.send_str("3")
            elif data.startswith(_EVENT_PREFIX):
                event = json.loads(data[len(_EVENT_PREFIX) :])
                if event[0] == "message:new":
                    heard(i, event[1])

    for jwt in receiver_jwts:
        index = len(per_receiver)
        per_receiver.append(0)
        last_seq.append(0)
        if http is not None:
            ws = await raw_socket(http, base_url, jwt)
            raw.append(ws)
            readers.append(asyncio.create_task(read(index, ws)))
            continue
        client = socketio.AsyncClient(reconnection=False)

        def make_handler(i: int) -> Any:
            async def on_new(message: dict[str, Any]) -> None:
                heard(i, message)

            return on_new

        client.on("message:new", make_handler(index), namespace=NAMESPACE)
        await client.connect(
            base_url,
            namespaces=[NAMESPACE],
            auth={"token": jwt},
            transports=["websocket"],
            wait_timeout=30,
        )
        receivers.append(client)
    senders = [await open_socket(base_url, jwt) for jwt in sender_jwts]
    total = int(rate * duration)
    acked = 0
    failed = 0

    async def send(client: socketio.AsyncClient, body: str) -> None:
        nonlocal acked, failed
        sent_at[body] = time.perf_counter()
        ack = await client.call(
            "message:send", {"roomId": room_id, "body": body}, namespace=NAMESPACE
        )
        if isinstance(ack, dict) and ack.get("ok"):
            acked += 1
        else:
            failed += 1

    # Sends go out on a fixed schedule (not "after the previous ack"), spread over several
    # sockets: a socket handles one event at a time, as the server promises.
    pending: list[asyncio.Task[None]] = []
    server_cpu0, own_cpu0 = cpu_seconds(pid), time.process_time()
    began = time.perf_counter()
    for i in range(total):
        due = began + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(send(senders[i % len(senders)], f"fan-{i}")))
    send_wall = time.perf_counter() - began
    await asyncio.gather(*pending)
    expected = acked * len(receiver_jwts)
    deadline = time.perf_counter() + 30
    while len(latencies) < expected and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - began
    server_cpu1, own_cpu1 = cpu_seconds(pid), time.process_time()
    await close_all(receivers + senders)
    for ws in raw:
        await ws.close()
    await asyncio.gather(*readers, return_exceptions=True)
    if http is not None:
        await http.close()
    ms = sorted(1000 * v for v in latencies)
    server_cpu = None
    if server_cpu0 is not None and server_cpu1 is not None:
        server_cpu = server_cpu1 - server_cpu0
    return {
        "receivers": len(receiver_jwts),
        "lightReceivers": light,
        "senders": len(senders),
        "targetPerSecond": rate,
        "sentPerSecond": round(total / send_wall, 1),
        "acked": acked,
        "failed": failed,
        "deliveries": len(latencies),
        "expectedDeliveries": expected,
        # Over the whole phase, sending and draining: equal to rate x receivers when the
        # server keeps up; the drain is how long the last deliveries came after the last send.
        "deliveriesPerSecond": round(len(latencies) / wall, 1),
        "drainSeconds": round(wall - send_wall, 2),
        "outOfOrder": out_of_order,
        "p50Ms": round(percentile(ms, 50), 2),
        "p99Ms": round(percentile(ms, 99), 2),
        "maxMs": round(ms[-1], 2) if ms else None,
        "minPerReceiver": min(per_receiver) if per_receiver else 0,
        # CPU cores busy on average while sending and draining: the server process, and this
        # process (the 50 receiving clients), which share the same machine.
        "serverCores": None if server_cpu is None else round(server_cpu / wall, 2),
        "serverCpuSecondsPer10000Deliveries": (
            round(10000 * server_cpu / len(latencies), 3)
            if server_cpu is not None and latencies
            else None
        ),
        "clientCores": round((own_cpu1 - own_cpu0) / wall, 2),
    }


# --- 3. idle sockets --------------------------------------------------------------------------


async def idle_sockets(
    base_url: str,
    jwt: str,
    count: int,
    pid: int | None,
    hold: Callable[[], Awaitable[Any]] | None = None,
) -> dict[str, Any]:
    """``count`` sockets that connect to /agents and then only answer engine.io pings: a
    minimal EIO4 client over aiohttp, so the bench process stays small. ``hold``: awaited
    while they are connected (after the RSS reading); its result is returned as ``held``."""
    before = rss_mib(pid) if pid is not None else None
    url = base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    connector = aiohttp.TCPConnector(limit=0)
    stop = asyncio.Event()
    ready = 0
    failures = 0

    async with aiohttp.ClientSession(connector=connector) as http:

        async def one() -> None:
            nonlocal ready, failures
            try:
                async with http.ws_connect(url, max_msg_size=0) as ws:
                    await ws.receive_str()  # engine.io OPEN
                    await ws.send_str("40" + NAMESPACE + "," + json.dumps({"token": jwt}))
                    while True:
                        frame = await ws.receive_str()
                        if frame.startswith("40" + NAMESPACE + ","):
                            ready += 1
                            break
                        if frame.startswith("44" + NAMESPACE):
                            raise RuntimeError(frame)
                    while not stop.is_set():
                        receive = asyncio.ensure_future(ws.receive())
                        stopped = asyncio.ensure_future(stop.wait())
                        done, _ = await asyncio.wait(
                            {receive, stopped}, return_when=asyncio.FIRST_COMPLETED
                        )
                        if stopped in done:
                            receive.cancel()
                            break
                        stopped.cancel()
                        msg = receive.result()
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        if msg.data == "2":
                            await ws.send_str("3")
            except Exception:
                failures += 1

        tasks = []
        for i in range(count):
            tasks.append(asyncio.create_task(one()))
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # a gentle connect ramp
        deadline = time.perf_counter() + 120
        while ready + failures < count and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # let the server settle before reading its RSS
        after = rss_mib(pid) if pid is not None else None
        held = await hold() if hold is not None else None
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    per_socket = None
    if before is not None and after is not None and ready:
        per_socket = round((after - before) * 1024 / ready, 1)
    return {
        "sockets": count,
        "connected": ready,
        "failures": failures,
        "rssBeforeMiB": None if before is None else round(before, 1),
        "rssWithSocketsMiB": None if after is None else round(after, 1),
        "kibPerSocket": per_socket,
        **({"held": held} if hold is not None else {}),
    }


# --- main -------------------------------------------------------------------------------------


async def run(
    args: argparse.Namespace, base_url: str, admin_token: str, pid: int | None
) -> dict[str, Any]:
    admin = Client(base_url, login(base_url, admin_token))
    world = World(base_url, admin)
    try:
        send_room = world.room("send")
        sender_jwts = [world.agent_in([send_room]) for _ in range(20)]
        fan_room = world.room("fan")
        receiver_jwts = [world.agent_in([fan_room]) for _ in range(args.receivers)]
        fan_senders = [world.agent_in([fan_room]) for _ in range(4)]
        idle_room = world.room("idle")
        idle_jwt = world.agent_in([idle_room])
    finally:
        admin.close()
    # Warm-up: connections, JIT-free but caches and pools.
    await acked_sends(base_url, sender_jwts[:1], send_room, 1.0)
    one = await acked_sends(base_url, sender_jwts[:1], send_room, args.duration, pid)
    twenty = await acked_sends(base_url, sender_jwts, send_room, args.duration, pid)
    fans = [
        await fan_out(base_url, fan_senders, receiver_jwts, fan_room, rate, args.duration, pid)
        for rate in args.rate
    ]
    idle = await idle_sockets(base_url, idle_jwt, args.idle, pid)
    return {"ackedSends1": one, "ackedSends20": twenty, "fanOut": fans, "idle": idle}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase")
    p.add_argument(
        "--rate",
        type=float,
        action="append",
        help="messages/s in a fan-out phase (repeatable; default 200, then 50 for reference)",
    )
    p.add_argument("--receivers", type=int, default=50)
    p.add_argument("--idle", type=int, default=1000, help="idle sockets for the memory figure")
    p.add_argument("--url", help="a running server (needs --token; RSS is then not measured)")
    p.add_argument("--token", help="an admin's API token for --url")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if bool(args.url) != bool(args.token):
        p.error("--url and --token go together")
    args.rate = args.rate or [200.0, 50.0]

    # The private server must not throttle the bench itself.
    os.environ.update(
        {
            "SOCKET_EVENTS_PER_SECOND": "100000",
            "SOCKET_BURST": "100000",
            "RATE_LIMIT_ANONYMOUS_PER_MINUTE": "10000000",
            "RATE_LIMIT_AGENT_PER_MINUTE": "10000000",
            "RATE_LIMIT_LOGIN_FAILURES_PER_ADDRESS": "10000000",
            "RATE_LIMIT_LOGIN_FAILURES_PER_PREFIX": "10000000",
        }
    )

    @contextmanager
    def target() -> Iterator[tuple[str, str, int | None]]:
        if args.url:
            yield args.url.rstrip("/"), args.token, None
        else:
            with local_server(None) as srv:
                yield srv.base_url, srv.admin_token, srv.pid

    with target() as (base_url, admin_token, pid):
        result = asyncio.run(run(args, base_url, admin_token, pid))

    if args.json:
        print(json.dumps(result))
        return 0
    one, twenty, idle = result["ackedSends1"], result["ackedSends20"], result["idle"]
    print("socket.io /agents, loopback")
    for r in (one, twenty):
        print(
            f"  acked sends, {r['senders']:>2} sender(s): {r['ackedPerSecond']} /s "
            f"(ack p50 {r['ackP50Ms']} ms, p99 {r['ackP99Ms']} ms, errors {r['errors'] or 'none'};"
            f" server CPU {r['serverCpuSecondsPer1000']} s per 1,000 acked)"
        )
    for fan in result["fanOut"]:
        print(
            f"  fan-out to {fan['receivers']} receivers at {fan['sentPerSecond']} msg/s sent: "
            f"send -> message:new p50 {fan['p50Ms']} ms, p99 {fan['p99Ms']} ms,"
            f" max {fan['maxMs']} ms"
            f" ({fan['deliveries']}/{fan['expectedDeliveries']} deliveries,"
            f" {fan['outOfOrder']} out of seq order,"
            f" {fan['failed']} failed sends; cores busy: server {fan['serverCores']},"
            f" clients {fan['clientCores']})"
        )
    print(
        f"  {idle['connected']}/{idle['sockets']} idle sockets: server RSS "
        f"{idle['rssBeforeMiB']} MiB -> {idle['rssWithSocketsMiB']} MiB "
        f"({idle['kibPerSocket']} KiB per socket)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
