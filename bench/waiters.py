"""Long-poll capacity: N requests waiting at once in GET /api/v1/rooms/{id}/messages?wait=.

Opens N connections, each sending one long poll on an empty room, waits until the gauge
``agenthub_waiting_requests`` shows all N, and prints the server's RSS before and with them
(MiB, and KiB per waiter), then posts one message and times until every waiting request has
its answer (the fan-out of one MessagePosted to N waiters, each querying once).

Builds its own server like bench/rest_post.py (a fresh database, MAX_WAITERS raised to N);
the file-descriptor limit of this process (inherited by the server) is raised to its hard
limit first: each waiter is one open connection on both sides.

    set -a; . .agenthub-dev/env; set +a
    .venv/bin/python bench/waiters.py --waiters 5000
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import sys
import time
import urllib.parse
from pathlib import Path

# Run as a script (python bench/waiters.py): make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rest_post import Client, expect, local_server, login, rss_mib


def gauge(base_url: str) -> float:
    parsed = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"/metrics answered {resp.status}")
    for line in text.splitlines():
        if line.startswith("agenthub_waiting_requests "):
            return float(line.split()[1])
    raise RuntimeError("no agenthub_waiting_requests in /metrics")


async def open_polls(
    base_url: str, jwt: str, room_id: str, n: int, wait: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    parsed = urllib.parse.urlsplit(base_url)
    request = (
        f"GET /api/v1/rooms/{room_id}/messages?after=0&wait={wait} HTTP/1.1\r\n"
        f"Host: bench\r\nAuthorization: Bearer {jwt}\r\nConnection: close\r\n\r\n"
    ).encode()
    polls = []
    for i in range(n):
        reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
        writer.write(request)
        polls.append((reader, writer))
        if i % 200 == 199:
            await asyncio.sleep(0.05)  # let the server accept and authenticate them
    return polls


async def answered(reader: asyncio.StreamReader) -> int:
    data = await reader.read()
    status_line = data.split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1]) if status_line else 0


async def measure(base_url: str, pid: int | None, admin_token: str, n: int) -> dict[str, float]:
    jwt = login(base_url, admin_token)
    client = Client(base_url, jwt)
    room = expect(*client.request("POST", "/api/v1/rooms", {"slug": "waiters"}), 201, "room")
    # Warm up the route (imports, caches, the pool): one short wait that times out.
    expect(
        *client.request("GET", f"/api/v1/rooms/{room['id']}/messages?after=0&wait=0.1"),
        200,
        "warm-up",
    )
    rss_before = rss_mib(pid) if pid is not None else None
    polls = await open_polls(base_url, jwt, room["id"], n, 60)
    deadline = time.monotonic() + 120
    while (seen := await asyncio.to_thread(gauge, base_url)) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {seen} of {n} requests are waiting")
        await asyncio.sleep(0.2)
    rss_with = rss_mib(pid) if pid is not None else None

    started = time.monotonic()
    expect(
        *client.request("POST", f"/api/v1/rooms/{room['id']}/messages", {"body": "wake"}),
        201,
        "post",
    )
    statuses = await asyncio.gather(*(answered(reader) for reader, _ in polls))
    fan_out = time.monotonic() - started
    for _, writer in polls:
        writer.close()
    client.close()
    if statuses.count(200) != n:
        raise RuntimeError(f"not every waiter got a 200: {sorted(set(statuses))}")
    result = {"waiters": n, "wakeAllSeconds": round(fan_out, 3)}
    if rss_before is not None and rss_with is not None:
        result["rssBeforeMiB"] = round(rss_before, 1)
        result["rssWithMiB"] = round(rss_with, 1)
        result["kibPerWaiter"] = round((rss_with - rss_before) * 1024 / n, 1)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiters", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * args.waiters + 200  # both ends of every connection live on this host
    if hard != resource.RLIM_INFINITY and hard < needed:
        print(f"the file-descriptor limit ({hard}) is below {needed}", file=sys.stderr)
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.environ["MAX_WAITERS"] = str(args.waiters)  # read by the private server's settings
    with local_server(None) as srv:
        result = asyncio.run(measure(srv.base_url, srv.pid, srv.admin_token, args.waiters))
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
