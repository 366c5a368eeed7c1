"""Helpers for the client library's tests: a TCP proxy that can lose answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class LossyProxy:
    """An HTTP/1.1 proxy in front of ``upstream`` (``host``, ``port``) that forwards each
    request on a new upstream connection and, for the requests ``drop`` picks (by method and
    path), reads the whole answer from the server (so the server did the work) and then closes
    the client's connection without sending it, or answers a bare 502 (``mode="502"``)."""

    def __init__(
        self,
        upstream: tuple[str, int],
        drop: Callable[[str, str], bool],
        mode: str = "close",
    ) -> None:
        self.upstream = upstream
        self.drop = drop
        self.mode = mode
        self.dropped = 0
        self.forwarded = 0
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = 0
                kept = [lines[0]]
                for line in lines[1:]:
                    if not line:
                        continue
                    name = line.split(":", 1)[0].strip().lower()
                    if name == "content-length":
                        length = int(line.split(":", 1)[1])
                    if name != "connection":
                        kept.append(line)
                body = await reader.readexactly(length) if length else b""
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
                up_writer.write(("\r\n".join([*kept, "Connection: close"]) + "\r\n\r\n").encode())
                up_writer.write(body)
                await up_writer.drain()
                answer = await up_reader.read()  # until the server closes: the whole answer
                up_writer.close()
                self.forwarded += 1
                if self.drop(method, path):
                    self.dropped += 1
                    if self.mode == "502":
                        writer.write(
                            b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\n"
                            b"Connection: close\r\n\r\nbad gateway"
                        )
                        await writer.drain()
                    return  # closes the client's connection: the answer is lost
                writer.write(answer)
                await writer.drain()
                return  # the answer said Connection: close
        finally:
            writer.close()
