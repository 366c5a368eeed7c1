"""A small blocking HTTP client for tests: real sockets, JSON in and out."""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.parse
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    text: str
    body: Any = field(default=None)

    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code = self.body["error"].get("code")
            return str(code) if code is not None else None
        return None


class Api:
    """Talks to one server; ``token`` (a JWT or API token) is sent as a Bearer credential."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.base_url = base_url
        self.token = token
        self.timeout = timeout

    def with_token(self, token: str | None) -> Api:
        return Api(self.base_url, token, self.timeout)

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Response:
        hdrs = {"Accept": "application/json"}
        if self.token is not None:
            hdrs["Authorization"] = f"Bearer {self.token}"
        body = raw
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            headers_out = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        parsed: Any = None
        if text:
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return Response(resp.status, headers_out, text, parsed)

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json_body: Any = None, **kw: Any) -> Response:
        return self.request("POST", path, json_body, **kw)

    def patch(self, path: str, json_body: Any = None, **kw: Any) -> Response:
        return self.request("PATCH", path, json_body, **kw)

    def put(self, path: str, json_body: Any = None, **kw: Any) -> Response:
        return self.request("PUT", path, json_body, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)


def pg_params(dbname: str) -> dict[str, str]:
    """psycopg2 connection keywords from POSTGRES_* (as scripts/test exports them)."""
    params = {
        "host": os.environ.get("POSTGRES_HOST", "127.0.0.1"),
        "port": os.environ.get("POSTGRES_PORT", "5432"),
        "user": os.environ.get("POSTGRES_USER", "agenthub"),
        "dbname": dbname,
    }
    if os.environ.get("POSTGRES_PASSWORD"):
        params["password"] = os.environ["POSTGRES_PASSWORD"]
    return params


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
