"""Sessions: exchange an API token for a JWT, and authenticate a JWT on every call."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from agenthub.actors import Principal
from agenthub.auth import api_tokens, jwt_tokens
from agenthub.auth.api_tokens import TokenHasher
from agenthub.errors import Unauthorized
from agenthub.events import AgentDisabled, Event, EventBus, SessionsStale, TokenRevoked
from agenthub.models import Agent, SessionToken
from agenthub.ratelimit import LoginLimits
from agenthub.services import auth_changes
from agenthub.services.audit import record
from agenthub.services.session_cache import GoodStanding, SessionCache
from agenthub.store import agents as agent_store
from agenthub.store import tokens as token_store
from agenthub.store.db import Database

log = logging.getLogger("agenthub.sessions")

_REJECTED = "invalid, expired or revoked API token"
_NO_LONGER_VALID = "session is no longer valid"
# A credential of the other kind: say which one the route wanted.
_WRONG_KIND_FOR_EXCHANGE = (
    "this is a session JWT; POST /api/v1/sessions takes an API token (agt_...)"
)
_WRONG_KIND_FOR_CALLS = (
    "this is an API token (agt_...); exchange it at POST /api/v1/sessions for a session JWT"
    " and send that"
)


@dataclass(frozen=True)
class SessionStanding:
    """What the database says now about the API token behind a live session."""

    agent_id: uuid.UUID | None
    role: str | None
    # None while the session may go on; else why not: "revoked", "expired" (the API token),
    # "agent-disabled", or "unknown" (the token is gone).
    problem: str | None

    @property
    def valid(self) -> bool:
        return self.problem is None


class SessionService:
    def __init__(
        self,
        db: Database,
        hasher: TokenHasher,
        bus: EventBus,
        *,
        jwt_secret: str,
        ttl_seconds: int,
        login_limits: LoginLimits,
        cache: SessionCache | None = None,
    ) -> None:
        self._db = db
        self._hasher = hasher
        self._bus = bus
        self._secret = jwt_secret
        self._verifier = jwt_tokens.Verifier(jwt_secret)
        self._ttl = ttl_seconds
        self._logins = login_limits
        self._cache = cache if cache is not None else SessionCache()
        # Revocations made in this process reach the cache before the revoking call returns.
        bus.subscribe(self._on_event)

    # --- API token -> JWT --------------------------------------------------------------------

    async def exchange_token(self, api_token: str, *, address: str) -> SessionToken:
        """A JWT for a valid API token. Once ``address`` or the token's prefix has failed too
        often, refused (429) before Argon2 is spent, and such a refusal writes nothing
        (docs/SECURITY.md)."""
        parsed = api_tokens.parse(api_token)
        prefix = None if parsed is None else parsed.prefix
        self._logins.check(address, prefix)
        try:
            return await self._exchange(api_token, parsed, address)
        except Unauthorized:
            if self._logins.record_failure(address, prefix):
                log.warning("failed logins throttled: address=%s prefix=%s", address, prefix or "-")
            raise

    async def _exchange(
        self, api_token: str, parsed: api_tokens.ParsedToken | None, address: str
    ) -> SessionToken:
        row = None
        if parsed is not None:
            async with self._db.session() as s:
                row = await token_store.with_agent_by_prefix(s, parsed.prefix)
        secret = parsed.secret if parsed is not None else ""
        # Verify even for an unknown prefix: failure must not be faster than success.
        ok = await self._hasher.verify(None if row is None else row["secret_hash"], secret)
        problem = None
        if parsed is None:
            problem = "session-jwt" if jwt_tokens.looks_like_jwt(api_token) else "malformed"
        elif row is None:
            problem = "unknown-prefix"
        elif not ok:
            problem = "bad-secret"
        elif row["revoked_at"] is not None:
            problem = "revoked"
        elif row["expires_at"] is not None and row["expires_at"] <= row["now"]:
            problem = "expired"
        elif row["disabled_at"] is not None:
            problem = "agent-disabled"
        if problem is not None:
            async with self._db.transaction() as s:
                await record(
                    s,
                    "login-failed",
                    None if row is None else row["agent_id"],
                    reason=problem,
                    prefix=None if parsed is None else parsed.prefix,
                    address=address,
                )
            raise Unauthorized(_WRONG_KIND_FOR_EXCHANGE if problem == "session-jwt" else _REJECTED)
        assert row is not None and parsed is not None
        async with self._db.transaction() as s:
            await token_store.touch(s, parsed.prefix)
            agent_row = await agent_store.by_id(s, row["agent_id"])
            await record(s, "login", row["agent_id"], prefix=parsed.prefix, address=address)
        assert agent_row is not None
        agent = Agent.from_row(agent_row)
        token, expires_at = jwt_tokens.issue(
            self._secret,
            agent_id=agent.id,
            role=agent.role,
            token_prefix=parsed.prefix,
            ttl_seconds=self._ttl,
            # A session never outlives its API token: a live socket then ends on time, with
            # nobody re-checking the token.
            not_after=row["expires_at"],
        )
        return SessionToken(token=token, expires_at=expires_at, agent=agent)

    # --- JWT -> caller ---------------------------------------------------------------------

    def verify(self, session_jwt: str) -> jwt_tokens.Claims:
        """The claims of a session JWT whose signature, algorithm and expiry are good. Only
        that: whether the session may go on is ``principal_for``'s question."""
        if session_jwt.startswith(f"{api_tokens.TOKEN_SCHEME}_"):
            raise Unauthorized(_WRONG_KIND_FOR_CALLS)
        try:
            return self._verifier.claims(session_jwt)
        except jwt_tokens.InvalidSession as exc:
            raise Unauthorized(str(exc)) from None

    async def principal_for(self, claims: jwt_tokens.Claims) -> Principal:
        """The caller behind verified ``claims``, if its session may go on: the API token
        exists, belongs to the JWT's agent, is neither revoked nor expired, and the agent is
        not disabled. The role is the database's, not the JWT's. Answered from memory while
        the notification listener is up (revocations reach the cache at once), else from the
        database."""
        standing = self._cache.get(claims.token_prefix)
        if standing is None:
            standing = await self._load(claims.token_prefix)
        if (
            standing is None
            or standing.principal.agent_id != claims.agent_id
            or not standing.current(datetime.now(UTC))
        ):
            raise Unauthorized(_NO_LONGER_VALID)
        return standing.principal

    async def authenticate(self, session_jwt: str) -> tuple[Principal, jwt_tokens.Claims]:
        """``verify`` then ``principal_for``: for callers that hold only the JWT (sockets)."""
        claims = self.verify(session_jwt)
        return await self.principal_for(claims), claims

    async def _load(self, prefix: str) -> GoodStanding | None:
        ticket = self._cache.ticket()
        async with self._db.session() as s:
            row = await token_store.with_agent_by_prefix(s, prefix)
        if (
            row is None
            or row["revoked_at"] is not None
            or (row["expires_at"] is not None and row["expires_at"] <= row["now"])
            or row["disabled_at"] is not None
        ):
            return None
        standing = GoodStanding(
            Principal(
                agent_id=row["agent_id"], name=row["name"], role=row["role"], token_prefix=prefix
            ),
            row["expires_at"],
        )
        self._cache.put(prefix, standing, ticket)
        return standing

    # --- changes made here and elsewhere ---------------------------------------------------

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, TokenRevoked):
            self._cache.forget_token(event.prefix)
        elif isinstance(event, AgentDisabled):
            self._cache.forget_agent(event.agent_id)

    async def on_notification(self, payload: str) -> None:
        """An ``agenthub_auth`` notification (from any process, this one included): forget
        what it names and tell the socket layer, as a change made here would."""
        change = auth_changes.decode(payload)
        if isinstance(change, auth_changes.TokenChanged):
            await self._bus.publish(TokenRevoked(agent_id=change.agent_id, prefix=change.prefix))
        elif isinstance(change, auth_changes.AgentChanged):
            if change.disabled:
                await self._bus.publish(AgentDisabled(agent_id=change.agent_id))
            else:
                self._cache.forget_agent(change.agent_id)
        else:
            if not change.readable:
                log.warning("unreadable auth notification; re-checking every session")
            self._cache.clear()
            await self._bus.publish(SessionsStale())

    async def on_listener(self, up: bool) -> None:
        """The notification listener connected (True) or lost its connection (False)."""
        if up:
            self._cache.go_live()
            # Revocations made while it was away were not heard: re-check the live sockets.
            await self._bus.publish(SessionsStale())
        else:
            self._cache.go_dark()

    async def standing(self, prefixes: Iterable[str]) -> dict[str, SessionStanding]:
        """Re-check many live sessions at once by their API token prefixes: the same rules as
        ``principal_for``, in one query, never from the cache. The socket layer calls it when
        notifications may have been missed."""
        wanted = sorted(set(prefixes))
        if not wanted:
            return {}
        async with self._db.session() as s:
            rows = await token_store.standing_by_prefixes(s, wanted)
        found = {row["prefix"]: row for row in rows}
        out: dict[str, SessionStanding] = {}
        for prefix in wanted:
            row = found.get(prefix)
            if row is None:
                out[prefix] = SessionStanding(None, None, "unknown")
                continue
            problem = None
            if row["revoked"]:
                problem = "revoked"
            elif row["expired"]:
                problem = "expired"
            elif row["disabled"]:
                problem = "agent-disabled"
            out[prefix] = SessionStanding(row["agent_id"], row["role"], problem)
        return out
