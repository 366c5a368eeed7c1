"""HTTP/1.1 over a bare socket, for tests that http.client cannot express: several requests on
one kept-alive connection, oversized heads, bodies that are still being sent when the answer
comes."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any

TIMEOUT = 30.0  # generous: a slow CI box, never a timing assertion


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error_code(self) -> str:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return str(self.json()["error"]["code"])

    @property
    def closes(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


def request_head(
    method: str, path: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def request_bytes(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    """A whole request with a Content-Length body (none for an empty GET/DELETE)."""
    all_headers = dict(headers or {})
    if body or method in ("POST", "PUT", "PATCH"):
        all_headers["Content-Length"] = str(len(body))
    return request_head(method, path, all_headers) + body


class RawConnection:
    """One TCP connection; responses are read one at a time, in order."""

    def __init__(self, host: str, port: int, source: str | None = None) -> None:
        """``source``: a local address to speak from (any 127.x.y.z on Linux)."""
        address = None if source is None else (source, 0)
        self.sock = socket.create_connection((host, port), TIMEOUT, address)
        self._buffer = b""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            if not self._fill():
                raise ConnectionError(f"connection closed before {marker!r}: {self._buffer!r}")
        data, _, self._buffer = self._buffer.partition(marker)
        return data

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise ConnectionError("connection closed in the middle of a body")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_response(self) -> RawResponse:
        head = self._read_until(b"\r\n\r\n").decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = self._read_exactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    self._read_until(b"\r\n")
                    break
                body += self._read_exactly(size)
                self._read_exactly(2)
        else:
            body = b""  # 204/304 and friends
        return RawResponse(status, headers, body)

    def exchange(self, data: bytes) -> RawResponse:
        self.send(data)
        return self.read_response()

    def peer_closed(self) -> bool:
        """True once the server has closed its side (EOF or reset) with nothing more to read."""
        try:
            return not self._buffer and not self._fill()
        except ConnectionResetError:
            return True
