"""Server memory under clients that answer pings but never read.

Opens N raw websockets (default 10) that join the namespace, then never read again (a small
SO_RCVBUF; they keep sending engine.io pongs), and one python-socketio socket that reads.
Meanwhile it posts R messages/s (default 20) of B characters (default 16,000) into their room
over REST, for D seconds (default 60), and prints every 5 s: the server's RSS, the sockets cut
off as slow consumers (``agenthub_websocket_slow_consumer_disconnects_total``; absent before
that metric existed), messages posted, and messages the reading socket heard.

It builds its own world like bench/rest_post.py (fresh database, migrate, admin via the CLI,
a real ``agenthub serve`` on a free port, all torn down afterwards). The server is the
``agenthub`` next to the Python running this script, so another checkout's virtualenv
measures that checkout's code:

    set -a; . .agenthub-dev/env; set +a
    .venv/bin/python bench/slow_consumer.py
    /path/to/other/checkout/.venv/bin/python bench/slow_consumer.py --duration 60
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import http.client
import json
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rest_post import Client, expect, local_server, login, rss_mib

NAMESPACE = "/agents"
SLOW_METRIC = "agenthub_websocket_slow_consumer_disconnects_total"


class NeverReads:
    """A websocket that completes the engine.io and namespace handshakes, then only writes
    (pongs, so the server's heartbeat is satisfied) and never reads again."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def join(cls, base_url: str, jwt: str) -> NeverReads:
        url = urllib.parse.urlsplit(base_url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await reader.readuntil(b"\r\n\r\n")
        ws = cls(reader, writer)
        await ws.recv()  # engine.io OPEN
        await ws.send("40" + NAMESPACE + "," + json.dumps({"token": jwt}))
        while not (await ws.recv()).startswith("40" + NAMESPACE):
            pass
        return ws

    async def send(self, text: str) -> None:
        data, mask = text.encode(), os.urandom(4)
        if len(data) < 126:
            head = struct.pack("!BB", 0x81, 0x80 | len(data))
        else:  # up to 64 KiB: enough for a handshake
            head = struct.pack("!BBH", 0x81, 0x80 | 126, len(data))
        self.writer.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        await self.writer.drain()

    async def recv(self) -> str:
        _flags, second = await self.reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return (await self.reader.readexactly(length)).decode(errors="replace")

    async def pong_until(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(OSError):
            while not stop.is_set():
                await self.send("3")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)

    def close(self) -> None:
        self.writer.transport.abort()


def metric(base_url: str, name: str) -> float | None:
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def poster(
    base_url: str, jwt: str, room_id: str, rate: float, body: str, stop: threading.Event
) -> list[int]:
    """Post ``rate`` messages per second until ``stop``; counts in a one-item list."""
    posted = [0]

    def run() -> None:
        client = Client(base_url, jwt)
        start = time.monotonic()
        try:
            while not stop.is_set():
                due = start + posted[0] / rate
                delay = due - time.monotonic()
                if delay > 0:
                    stop.wait(delay)
                    continue
                status, resp = client.request(
                    "POST", f"/api/v1/rooms/{room_id}/messages", {"body": body}
                )
                expect(status, resp, 201, "post")
                posted[0] += 1
        finally:
            client.close()

    threading.Thread(target=run, daemon=True).start()
    return posted


async def measure(base_url: str, admin_token: str, pid: int, args: argparse.Namespace) -> None:
    jwt = login(base_url, admin_token)
    admin = Client(base_url, jwt)
    status, room = admin.request(
        "POST", "/api/v1/rooms", {"slug": f"slow-{uuid.uuid4().hex[:8]}", "visibility": "public"}
    )
    room_id = str(expect(status, room, 201, "create room")["id"])
    admin.close()

    heard = [0]
    reader = socketio.AsyncClient(reconnection=False)

    async def on_message(_message: Any) -> None:
        heard[0] += 1

    reader.on("message:new", on_message, namespace=NAMESPACE)
    await reader.connect(
        base_url, namespaces=[NAMESPACE], auth={"token": jwt}, transports=["websocket"]
    )
    try:
        await posting(base_url, jwt, room_id, pid, heard, args)
    finally:
        await reader.disconnect()


async def posting(
    base_url: str, jwt: str, room_id: str, pid: int, heard: list[int], args: argparse.Namespace
) -> None:
    slow = [await NeverReads.join(base_url, jwt) for _ in range(args.sockets)]
    stop_pongs = asyncio.Event()
    pongs = [asyncio.create_task(ws.pong_until(stop_pongs)) for ws in slow]

    print(
        f"{args.sockets} sockets that never read, 1 that does; posting {args.rate:g} msg/s of"
        f" {args.body} characters for {args.duration:g} s"
    )
    print(f"{'t (s)':>6} {'RSS (MiB)':>10} {'cut off':>8} {'posted':>7} {'heard':>6}")
    stop_posting = threading.Event()
    posted = poster(base_url, jwt, room_id, args.rate, "x" * args.body, stop_posting)
    started = time.monotonic()
    try:
        for tick in range(0, int(args.duration) + 1, 5):
            await asyncio.sleep(max(0.0, started + tick - time.monotonic()))
            rss = rss_mib(pid)
            cut = await asyncio.to_thread(metric, base_url, SLOW_METRIC)
            print(
                f"{tick:>6} {rss if rss is not None else float('nan'):>10.1f}"
                f" {'-' if cut is None else int(cut):>8} {posted[0]:>7} {heard[0]:>6}",
                flush=True,
            )
    finally:
        stop_posting.set()
        stop_pongs.set()
        await asyncio.gather(*pongs, return_exceptions=True)
        for ws in slow:
            ws.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sockets", type=int, default=10, help="sockets that never read")
    p.add_argument("--rate", type=float, default=20.0, help="messages posted per second")
    p.add_argument("--body", type=int, default=16_000, help="characters per message")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of posting")
    args = p.parse_args(argv)
    with local_server(None) as srv:
        asyncio.run(measure(srv.base_url, srv.admin_token, srv.pid, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
