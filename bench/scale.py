"""Scale-out benchmark: 1, 2 and 4 ``agenthub serve`` processes sharing Redis (REDIS_URL) and
one throwaway database, clients spread over the processes' ports directly (no balancer).

Prints, per configuration (and for one process without REDIS_URL, the reference):
  - acked ``message:send`` per second, 20 socket senders spread over the processes;
  - fan-out: 50 receivers spread over the processes, 200 messages/s sent (spread too):
    send -> ``message:new`` p50/p99 and deliveries/s;
  - cross-process latency (two processes or more): post on process A, hear on B, p50/p99.

    set -a; . .agenthub-dev/env; set +a
    .venv/bin/python bench/scale.py --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rest_post import AGENTHUB, Client, local_server, login, percentile
from bench.socket_bench import NAMESPACE, World, acked_sends, close_all, open_socket
from tests.helpers import free_port

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def processes(count: int, redis: bool) -> Iterator[tuple[list[str], str]]:
    """``count`` servers on one throwaway database; yields their base URLs and an admin token."""
    extra = (
        {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": f"bench-{uuid.uuid4().hex[:8]}"} if redis else {}
    )
    with local_server(None, extra_env=extra) as first:
        procs: list[subprocess.Popen[bytes]] = []
        urls = [first.base_url]
        try:
            for _ in range(count - 1):
                port = free_port()
                env = dict(first.env, PORT=str(port))
                log = tempfile.TemporaryFile()  # noqa: SIM115
                procs.append(subprocess.Popen([AGENTHUB, "serve"], env=env, stdout=log, stderr=log))
                url = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 30
                while True:
                    try:
                        if Client(url).request("GET", "/readyz")[0] == 200:
                            break
                    except OSError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit("bench: an extra server did not start")
                    time.sleep(0.1)
                urls.append(url)
            yield urls, first.admin_token
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def spread_sends(urls: list[str], jwts: list[str], room: str, duration: float) -> float:
    parts = [jwts[i :: len(urls)] for i in range(len(urls))]
    pairs = [(url, part) for url, part in zip(urls, parts, strict=True) if part]
    runs = [acked_sends(url, part, room, duration) for url, part in pairs]
    results = await asyncio.gather(*runs)
    return float(sum(r["ackedPerSecond"] for r in results))


async def fan_out(
    send_urls: list[str],
    sender_jwts: list[str],
    hear_urls: list[str],
    receiver_jwts: list[str],
    room: str,
    rate: float,
    duration: float,
) -> dict[str, Any]:
    """``rate`` msg/s sent from senders on ``send_urls`` (round robin), heard by receivers on
    ``hear_urls`` (round robin): send -> message:new latencies."""
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    receivers: list[socketio.AsyncClient] = []
    for i, jwt in enumerate(receiver_jwts):
        client = socketio.AsyncClient(reconnection=False)

        async def on_new(message: dict[str, Any]) -> None:
            t0 = sent_at.get(message["body"])
            if t0 is not None:
                latencies.append(time.perf_counter() - t0)

        client.on("message:new", on_new, namespace=NAMESPACE)
        await client.connect(
            hear_urls[i % len(hear_urls)],
            namespaces=[NAMESPACE],
            auth={"token": jwt},
            transports=["websocket"],
            wait_timeout=30,
        )
        receivers.append(client)
    senders = [
        await open_socket(send_urls[i % len(send_urls)], jwt) for i, jwt in enumerate(sender_jwts)
    ]
    count = int(rate * duration)
    began = time.perf_counter()
    pending = []
    for n in range(count):
        due = began + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = f"m{n}-{uuid.uuid4().hex[:6]}"
        sent_at[body] = time.perf_counter()
        sender = senders[n % len(senders)]
        pending.append(
            asyncio.ensure_future(
                sender.call("message:send", {"roomId": room, "body": body}, namespace=NAMESPACE)
            )
        )
    acks = await asyncio.gather(*pending, return_exceptions=True)
    failed = sum(1 for ack in acks if not (isinstance(ack, dict) and ack.get("ok")))
    expected = (count - failed) * len(receivers)
    deadline = time.perf_counter() + 10
    while len(latencies) < expected and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    wall = time.perf_counter() - began
    await close_all(receivers + senders)
    ms = sorted(1000 * v for v in latencies)
    return {
        "deliveries": len(latencies),
        "expected": expected,
        "failedSends": failed,
        "deliveriesPerSecond": round(len(latencies) / wall, 1),
        "p50Ms": round(percentile(ms, 50), 2) if ms else None,
        "p99Ms": round(percentile(ms, 99), 2) if ms else None,
    }


async def measure(urls: list[str], admin_token: str, duration: float) -> dict[str, Any]:
    admin = Client(urls[0], login(urls[0], admin_token))
    world = World(urls[0], admin)
    try:
        send_room, fan_room, cross_room = world.room("send"), world.room("fan"), world.room("x")
        senders = [world.agent_in([send_room]) for _ in range(20)]
        receivers = [world.agent_in([fan_room]) for _ in range(50)]
        fan_senders = [world.agent_in([fan_room]) for _ in range(4)]
        cross = [world.agent_in([cross_room]) for _ in range(2)]
    finally:
        admin.close()
    await spread_sends(urls, senders[:2], send_room, 1.0)  # warm-up
    sends = await spread_sends(urls, senders, send_room, duration)
    fan = await fan_out(urls, fan_senders, urls, receivers, fan_room, 200.0, duration)
    result: dict[str, Any] = {"processes": len(urls), "ackedPerSecond": round(sends, 1), "fan": fan}
    if len(urls) > 1:
        result["cross"] = await fan_out(
            urls[:1], cross[:1], urls[1:2], cross[1:], cross_room, 20.0, duration
        )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase")
    p.add_argument("--processes", type=int, action="append", help="default: 1, 2, 4")
    args = p.parse_args(argv)
    os.environ.update(
        {
            "SOCKET_EVENTS_PER_SECOND": "100000",
            "SOCKET_BURST": "100000",
            "RATE_LIMIT_ANONYMOUS_PER_MINUTE": "10000000",
            "RATE_LIMIT_AGENT_PER_MINUTE": "10000000",
            "RATE_LIMIT_LOGIN_FAILURES_PER_ADDRESS": "10000000",
            "RATE_LIMIT_LOGIN_FAILURES_PER_PREFIX": "10000000",
            "LOG_LEVEL": "warning",
            "JWT_SECRET": os.environ.get("JWT_SECRET") or secrets.token_hex(32),
        }
    )
    configs = [(1, False)] + [(n, True) for n in (args.processes or [1, 2, 4])]
    print(f"scale-out, loopback, {os.cpu_count()} cores, {args.duration:g} s per phase")
    for count, redis in configs:
        with processes(count, redis) as (urls, token):
            r = asyncio.run(measure(urls, token, args.duration))
        fan = r["fan"]
        line = (
            f"  {count} process(es){' + Redis' if redis else ', no Redis'}: "
            f"acked sends (20 senders) {r['ackedPerSecond']} /s; "
            f"fan-out 50 receivers @200 msg/s p50 {fan['p50Ms']} ms p99 {fan['p99Ms']} ms, "
            f"{fan['deliveriesPerSecond']} deliveries/s ({fan['deliveries']}/{fan['expected']},"
            f" {fan['failedSends']} failed sends)"
        )
        if "cross" in r:
            x = r["cross"]
            line += f"; cross-process A->B p50 {x['p50Ms']} ms p99 {x['p99Ms']} ms"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
