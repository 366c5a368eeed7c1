"""Helpers for the socket.io tests: a python-socketio AsyncClient that records what it hears,
and the documented catch-up recipe (docs/API.md, "Real time") as a small client class."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
import urllib.parse
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import socketio

from tests.servers import ScratchDatabase, Server, start_server, stop_server

NAMESPACE = "/agents"
WAIT = 15.0  # generous bound for "eventually": a slow CI box, never a timing assertion

T = TypeVar("T")


@contextlib.contextmanager
def custom_server(database: ScratchDatabase, log_path: Path, **env: str) -> Iterator[Server]:
    """A server of our own on the shared test database, with changed settings."""
    srv = start_server(dict(database.env, **env), log_path)
    try:
        yield srv
    finally:
        code = stop_server(srv)
        assert code == 0, f"server exited with {code}:\n{srv.log_text()[-3000:]}"


def run(coro: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
    """Run one async test scenario with a hard upper bound, so a hang fails instead of
    stalling the suite."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a blocking helper (the REST client) without freezing the sockets' event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


class Socket:
    """One client socket on ``/agents``. Every server event is appended to ``events[name]``
    and wakes waiters; ``call`` sends an event and returns its ack."""

    def __init__(self, base_url: str, *, reconnection: bool = False) -> None:
        self.base_url = base_url
        self.client = socketio.AsyncClient(reconnection=reconnection, logger=False)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.connect_errors: list[Any] = []
        self.disconnects: list[Any] = []
        self._changed = asyncio.Condition()
        for name in (
            "connected",
            "message:new",
            "presence:update",
            "session:expired",
            "session:revoked",
            "session:ended",
        ):
            self.client.on(name, self._recorder(name), namespace=NAMESPACE)
        self.client.on("connect_error", self._on_connect_error, namespace=NAMESPACE)
        self.client.on("disconnect", self._on_disconnect, namespace=NAMESPACE)

    def _recorder(self, name: str) -> Callable[..., Awaitable[None]]:
        async def record(*args: Any) -> None:
            await self._note(self.events[name], args[0] if len(args) == 1 else list(args))

        return record

    async def _note(self, bucket: list[Any], item: Any) -> None:
        bucket.append(item)
        await self.notify()

    async def notify(self) -> None:
        """Wake ``wait_until`` callers after a state change made outside ``events``."""
        async with self._changed:
            self._changed.notify_all()

    async def _on_connect_error(self, data: Any = None) -> None:
        await self._note(self.connect_errors, data)

    async def _on_disconnect(self, reason: Any = None) -> None:
        await self._note(self.disconnects, reason)

    async def connect(
        self,
        token: str | None = None,
        *,
        via: str = "auth",
        transports: list[str] | None = None,
        headers: dict[str, str] | None = None,
        expect_connected: bool = True,
    ) -> None:
        url = self.base_url
        auth = None
        if token is not None and via == "auth":
            auth = {"token": token}
        elif token is not None and via == "query":
            url = f"{url}?token={token}"
        await self.client.connect(
            url,
            namespaces=[NAMESPACE],
            auth=auth,
            transports=transports or ["websocket"],
            headers=headers or {},
            wait_timeout=WAIT,
        )
        if expect_connected:
            await self.wait_for("connected")

    async def call(self, event: str, *payload: Any, within: float = WAIT) -> Any:
        data: Any = payload[0] if len(payload) == 1 else (tuple(payload) if payload else None)
        return await self.client.call(event, data, namespace=NAMESPACE, timeout=within)

    async def emit_raw(self, event: str, data: Any) -> Any:
        """``data`` as a tuple sends several arguments; None sends none."""
        return await self.client.call(event, data, namespace=NAMESPACE, timeout=WAIT)

    async def wait_until(self, predicate: Callable[[], bool], within: float = WAIT) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), within)

    async def wait_for(
        self,
        name: str,
        predicate: Callable[[Any], bool] = lambda _: True,
        within: float = WAIT,
    ) -> Any:
        """The first recorded ``name`` event matching ``predicate`` (waiting if needed)."""

        def found() -> bool:
            return any(predicate(item) for item in self.events[name])

        await self.wait_until(found, within)
        return next(item for item in self.events[name] if predicate(item))

    async def wait_disconnected(self, within: float = WAIT) -> Any:
        await self.wait_until(lambda: bool(self.disconnects), within)
        return self.disconnects[-1]

    def bodies(self, room_id: str) -> list[str]:
        return [m["body"] for m in self.events["message:new"] if m["roomId"] == room_id]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.disconnect()
        # Let aiohttp close its session before the loop goes away.
        with contextlib.suppress(Exception):
            await self.client.wait()


def ok(ack: Any) -> dict[str, Any]:
    assert isinstance(ack, dict) and ack.get("ok") is True, ack
    return ack


def error_code(ack: Any) -> str:
    assert isinstance(ack, dict) and ack.get("ok") is False, ack
    assert set(ack["error"]) <= {"code", "message", "details"}, ack
    assert isinstance(ack["error"]["message"], str) and ack["error"]["message"], ack
    return str(ack["error"]["code"])


class CatchUpClient:
    """The client recipe from docs/API.md, "Real time": remember the last seq delivered per room,
    deliver ``message:new`` only when it is the next seq, hold anything after a gap, and fill
    gaps (and the time spent disconnected) with ``room:sync``. Delivers each seq exactly once,
    in order."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.last: dict[str, int] = {}
        self.delivered: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._held: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        self._ready = False
        self.socket: Socket | None = None
        self.syncs = 0

    async def connect(self, token: str) -> None:
        self.socket = Socket(self.base_url)
        self._ready = False
        client = self.socket.client
        client.on("message:new", self._on_message, namespace=NAMESPACE)
        client.on("connected", self._on_connected, namespace=NAMESPACE)
        await self.socket.connect(token, expect_connected=False)
        await self.socket.wait_until(lambda: self._ready)

    async def _on_message(self, message: dict[str, Any]) -> None:
        room = message["roomId"]
        if room not in self.last and self._ready:
            self.last[room] = 0  # a room joined after `connected`: its history counts too
        if room not in self.last:
            self._held[room][message["seq"]] = message  # until `connected` says where we are
            assert self.socket is not None
            await self.socket.notify()
            return
        self._offer(message)
        if self._held[room] and self._ready:
            await self._sync(room)
        assert self.socket is not None
        await self.socket.notify()

    async def _on_connected(self, info: dict[str, Any]) -> None:
        assert self.socket is not None
        self.socket.events["connected"].append(info)
        for room in info["rooms"]:
            self.last.setdefault(room["id"], room["lastSeq"])
        for room in info["rooms"]:
            if room["lastSeq"] > self.last[room["id"]] or self._held[room["id"]]:
                await self._sync(room["id"])
        self._ready = True
        assert self.socket is not None
        await self.socket.notify()

    def _offer(self, message: dict[str, Any]) -> None:
        room, seq = message["roomId"], message["seq"]
        if seq <= self.last[room]:
            return  # already delivered: the duplicate of a sync or a resend
        self._held[room][seq] = message
        while self.last[room] + 1 in self._held[room]:
            nxt = self._held[room].pop(self.last[room] + 1)
            self.delivered[room].append(nxt)
            self.last[room] = nxt["seq"]
        for stale in [s for s in self._held[room] if s <= self.last[room]]:
            del self._held[room][stale]

    async def _sync(self, room: str) -> None:
        assert self.socket is not None
        while True:
            self.syncs += 1
            request = {"roomId": room, "afterSeq": self.last[room]}
            ack = ok(await self.socket.call("room:sync", request))
            for message in ack["messages"]:
                self._offer(message)
            if not ack["hasMore"]:
                return

    async def wait_delivered(self, room: str, count: int, within: float = WAIT) -> None:
        assert self.socket is not None
        await self.socket.wait_until(lambda: len(self.delivered[room]) >= count, within)

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


class RawSocket:
    """An engine.io v4 websocket spoken by hand, for clients that misbehave on purpose: raw
    socket.io packets, a client that never reads, one that leaves mid-handshake. Frames are
    read only when asked for (``recv``), so a client that stops calling it stops reading."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.opened: dict[str, Any] = {}

    @classmethod
    async def open(cls, base_url: str, *, receive_buffer: int | None = None) -> RawSocket:
        """Connect and read engine.io's OPEN packet. ``receive_buffer`` shrinks SO_RCVBUF
        (set before connecting, so the TCP window is small from the start)."""
        url = urllib.parse.urlsplit(base_url)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
        # A small stream buffer too: once it is full, asyncio stops reading the socket.
        reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        raw = cls(reader, writer)
        opened = await raw.recv()
        assert opened.startswith("0"), opened
        raw.opened = json.loads(opened[1:])
        return raw

    async def send(self, text: str) -> None:
        """One masked text frame (a client must mask)."""
        data = text.encode()
        mask = os.urandom(4)
        if len(data) < 126:
            head = struct.pack("!BB", 0x81, 0x80 | len(data))
        elif len(data) < 65536:
            head = struct.pack("!BBH", 0x81, 0x80 | 126, len(data))
        else:
            head = struct.pack("!BBQ", 0x81, 0x80 | 127, len(data))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.writer.write(head + mask + masked)
        await self.writer.drain()

    async def recv(self) -> str:
        """The next text frame; EOFError when the server closed the connection."""
        while True:
            try:
                first, second = await self.reader.readexactly(2)
                length = second & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
                payload = await self.reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                raise EOFError("connection closed") from exc
            opcode = first & 0x0F
            if opcode == 0x8:
                raise EOFError("close frame")
            if opcode == 0x1:
                return payload.decode()

    async def recv_packet(self) -> str:
        """The next engine.io packet that is not a ping (pings are answered)."""
        while True:
            packet = await self.recv()
            if packet == "2":
                await self.send("3")
                continue
            return packet

    async def join(self, token: str) -> str:
        """socket.io CONNECT to /agents; the answer packet (``40/agents,…`` or ``44…``)."""
        await self.send("40" + NAMESPACE + "," + json.dumps({"token": token}))
        while True:
            packet = await self.recv_packet()
            if packet.startswith(("40" + NAMESPACE, "44" + NAMESPACE)):
                return packet

    async def ack_of(self, ack_id: int, within: float = WAIT) -> Any:
        """Read until the ack ``ack_id`` arrives; its argument."""
        prefix = f"43{NAMESPACE},{ack_id}"

        async def wait() -> Any:
            while True:
                packet = await self.recv_packet()
                if packet.startswith(prefix):
                    return json.loads(packet[len(prefix) :])[0]

        return await asyncio.wait_for(wait(), within)

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake."""
        self.writer.transport.abort()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
