"""HTTP transport: one persistent aiohttp session, JSON in and out, the error envelope raised
as exceptions, network failures as ``ConnectionFailed``; and the retry policy."""

from __future__ import annotations

import json
import os
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from agenthub import __version__
from agenthub.client.errors import (
    AgentHubError,
    ConnectionFailed,
    RateLimited,
    ServerError,
    Unavailable,
    from_envelope,
)

USER_AGENT = f"agenthub-client/{__version__}"


def segment(value: str | int) -> str:
    """One path segment (a room id or slug, an agent id or name, a seq), escaped."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry a request that may not have reached the server.

    ``attempts`` is the total number of tries (1 = no retry). The n-th retry waits a random
    time between half and all of ``min(max_delay, base_delay * 2**(n-1))`` (exponential
    backoff with jitter), or the server's ``Retry-After`` on a 429/503 when it gave one, if
    that is at most ``max_retry_after`` (a longer wait is raised to the caller instead).
    """

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    max_retry_after: float = 30.0

    def backoff(self, retry: int) -> float:
        cap = min(self.max_delay, self.base_delay * 2 ** max(0, retry - 1))
        return random.uniform(cap / 2, cap)

    def delay(self, retry: int, error: AgentHubError) -> float | None:
        """Seconds to wait before retry number ``retry`` (1-based) after ``error``, or None
        when ``error`` is not worth retrying or the attempts are spent."""
        if retry >= self.attempts:
            return None
        if isinstance(error, RateLimited | Unavailable):
            if error.retry_after is not None:
                if error.retry_after > self.max_retry_after:
                    return None
                return max(error.retry_after, 0.0) + random.uniform(0, self.base_delay)
            return self.backoff(retry)
        if isinstance(error, ConnectionFailed | ServerError):
            return self.backoff(retry)
        return None


NO_RETRY = RetryPolicy(attempts=1)


CA_FILE_VARIABLE = "AGENTHUB_CA_FILE"


def trusting_context(ca_file: str) -> ssl.SSLContext:
    """The system's trusted CAs plus those in ``ca_file`` (PEM)."""
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"{CA_FILE_VARIABLE}: cannot load CA certificates from {ca_file}: {exc}"
        ) from None
    return context


class HttpTransport:
    """JSON over one aiohttp session, created on first use inside the running loop (and
    closed by ``close``). Knows nothing about sessions: callers pass the bearer token."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, ca_file: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # A private CA (the one the Ansible role makes) trusted for AgentHub alone, on top of
        # the system's: SSL_CERT_FILE would replace the system's for the whole process, and an
        # agent usually talks to other HTTPS services too.
        self.ca_file = ca_file if ca_file is not None else os.environ.get(CA_FILE_VARIABLE, "")
        self._ssl = trusting_context(self.ca_file) if self.ca_file else None
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._ssl) if self._ssl is not None else None
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT}, connector=connector
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (aiohttp's, per request)
    ) -> Any:
        """The decoded JSON answer (``None`` for 204). Raises the envelope's exception for a
        status of 400 or more, ``ConnectionFailed`` when no answer came."""
        headers = {"Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data: bytes | None = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        url = self.base_url + path
        try:
            async with self.session().request(
                method,
                url,
                data=data,
                params=query,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
                allow_redirects=False,
            ) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # The message names the URL and the failure, never a header (the token).
            reason = str(exc) or type(exc).__name__
            raise ConnectionFailed(
                None, f"cannot reach {self.base_url}: {type(exc).__name__}: {reason}"
            ) from None
        decoded: Any = None
        if raw:
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = None
        if status >= 400:
            raise from_envelope(decoded, status, retry_after)
        if raw and decoded is None:
            raise ServerError(None, f"not a JSON answer (HTTP {status})", status)
        return decoded

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
