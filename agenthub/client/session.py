"""The session: an API token exchanged for a JWT, refreshed before it expires.

The API token stays in this object only (never in a repr, a log line or an exception
message). The JWT's life is read from its own ``iat``/``exp`` claims (the server's clock), so a
skewed local clock does not matter; it is renewed once ``refresh_fraction`` of that life has
passed (80 % by default: a 15-minute JWT is renewed after 12 minutes).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from datetime import UTC, datetime

from agenthub.client.errors import AgentHubError, Unauthorized
from agenthub.client.http import HttpTransport
from agenthub.client.models import Session

log = logging.getLogger("agenthub.client")

SESSIONS_PATH = "/api/v1/sessions"


def jwt_lifetime(token: str) -> float | None:
    """Seconds between the JWT's ``iat`` and ``exp`` claims (unverified: only for timing)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"]) - float(claims["iat"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def jwt_times(token: str) -> tuple[float, float] | None:
    """The JWT's ``iat`` and ``exp`` claims, as Unix times (unverified: only for timing)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["iat"]), float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def session_problem(error: AgentHubError) -> bool:
    """A 401 that a new JWT may cure: the session expired, or the JWT is not accepted."""
    return isinstance(error, Unauthorized) and "session" in error.message.lower()


class SessionManager:
    def __init__(
        self, http: HttpTransport, api_token: str, *, refresh_fraction: float = 0.8
    ) -> None:
        if not 0 < refresh_fraction <= 1:
            raise ValueError("refresh_fraction must be in (0, 1]")
        self._http = http
        self._api_token = api_token
        self.refresh_fraction = refresh_fraction
        self.current: Session | None = None
        self._refresh_at = 0.0  # time.monotonic() after which the JWT is renewed
        self._lock: asyncio.Lock | None = None
        self.logins = 0  # sessions obtained so far (tests and benchmarks read it)

    def __repr__(self) -> str:
        agent = self.current.agent.name if self.current else None
        return f"SessionManager(agent={agent!r})"

    async def token(self) -> str:
        """A JWT that is not due for renewal; logs in when there is none or it is due."""
        current = self.current
        if current is not None and time.monotonic() < self._refresh_at:
            return current.token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            current = self.current
            if current is not None and time.monotonic() < self._refresh_at:
                return current.token
            return (await self._login()).token

    async def login(self) -> Session:
        """A new session now, whatever the current one's age."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            return await self._login()

    def adopt(self, session: Session) -> bool:
        """Use a session obtained earlier (``ah`` keeps one between invocations) until it is
        due for renewal, as if this manager had logged in at the JWT's ``iat``. False, and
        nothing changed, when it is already due (or its claims cannot be read)."""
        times = jwt_times(session.token)
        if times is None:
            return False
        issued, expires = times
        due_in = issued + (expires - issued) * self.refresh_fraction - time.time()
        if due_in <= 0:
            return False
        self.current = session
        self._refresh_at = time.monotonic() + due_in
        return True

    def invalidate(self, token: str | None = None) -> None:
        """Forget the JWT (only if it is still ``token``, when given): the next call logs in."""
        if self.current is not None and (token is None or self.current.token == token):
            self._refresh_at = 0.0

    def refresh_due_in(self) -> float:
        """Seconds until the current JWT is due for renewal (0 when there is none)."""
        return max(0.0, self._refresh_at - time.monotonic()) if self.current else 0.0

    async def _login(self) -> Session:
        started = time.monotonic()
        body = await self._http.request("POST", SESSIONS_PATH, token=self._api_token)
        session = Session.from_json(body)
        life = jwt_lifetime(session.token)
        if life is None:
            life = (session.expires_at - datetime.now(UTC)).total_seconds()
        self.current = session
        self._refresh_at = started + max(0.0, life) * self.refresh_fraction
        self.logins += 1
        log.debug(
            "session for %s, renewed in %.0f s", session.agent.name, life * self.refresh_fraction
        )
        return session
