"""API tokens: issue (shown once), list (never the hash), revoke."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from agenthub.actors import Actor
from agenthub.auth import api_tokens
from agenthub.auth.api_tokens import TokenHasher
from agenthub.domain import MAX_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME_YEARS
from agenthub.errors import Forbidden, NotFound, ValidationFailed
from agenthub.events import EventBus, TokenRevoked
from agenthub.models import IssuedToken, TokenInfo
from agenthub.services import auth_changes
from agenthub.services.audit import record
from agenthub.services.directory import AgentRef, Directory
from agenthub.store import agents as agent_store
from agenthub.store import tokens as token_store
from agenthub.store.db import Database, UniqueViolation


def check_expiry(expires_at: datetime, now: datetime | None = None) -> None:
    """An expiry must be aware, in the future, and at most ten years ahead."""
    if expires_at.tzinfo is None:
        raise ValidationFailed(
            "expiresAt needs a time zone", {"expiresAt": "ISO-8601 with offset or Z"}
        )
    now = now or datetime.now(UTC)
    latest = now + MAX_TOKEN_LIFETIME
    allowed = f"after {_iso(now)} and at most {_iso(latest)}"
    if expires_at <= now:
        raise ValidationFailed(
            f"expiresAt is in the past: it must be {allowed}", {"expiresAt": f"must be {allowed}"}
        )
    if expires_at > latest:
        raise ValidationFailed(
            f"expiresAt is more than {MAX_TOKEN_LIFETIME_YEARS} years ahead: it must be {allowed}",
            {"expiresAt": f"must be {allowed}"},
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Revocation(NamedTuple):
    token: TokenInfo
    revoked_now: bool  # False: it was revoked already, and nothing was written


class TokenService:
    def __init__(
        self, db: Database, hasher: TokenHasher, bus: EventBus, directory: Directory
    ) -> None:
        self._directory = directory
        self._db = db
        self._hasher = hasher
        self._bus = bus

    async def issue_token(
        self, actor: Actor, ref: AgentRef, expires_at: datetime | None
    ) -> IssuedToken:
        if not actor.is_admin:
            raise Forbidden("only admins may issue tokens")
        if expires_at is not None:
            check_expiry(expires_at)
        agent_id = await self._directory.agent_id(actor, ref)
        # Prefix collisions are astronomically rare, but a retry costs nothing.
        for _ in range(3):
            new = api_tokens.generate()
            secret_hash = await self._hasher.hash(new.secret)
            try:
                async with self._db.transaction() as s:
                    agent = await agent_store.by_id(s, agent_id)
                    if agent is None:
                        raise NotFound("agent not found")
                    row = await token_store.insert(
                        s,
                        agent_id=agent_id,
                        prefix=new.prefix,
                        secret_hash=secret_hash,
                        expires_at=expires_at,
                    )
                    await record(
                        s,
                        "token-issued",
                        actor.audit_agent_id,
                        prefix=new.prefix,
                        forAgentId=str(agent_id),
                        expiresAt=None if expires_at is None else expires_at.isoformat(),
                    )
            except UniqueViolation:
                continue
            return IssuedToken(
                token=new.token, prefix=new.prefix, agent_id=agent_id, expires_at=row["expires_at"]
            )
        raise RuntimeError("could not allocate a unique token prefix")

    async def list_tokens(self, actor: Actor, ref: AgentRef) -> list[TokenInfo]:
        agent_id = await self._directory.agent_id(actor, ref)
        if not actor.is_admin and not actor.is_agent(agent_id):
            raise Forbidden("you may list only your own tokens")
        async with self._db.session() as s:
            if await agent_store.by_id(s, agent_id) is None:
                raise NotFound("agent not found")
            rows = await token_store.for_agent(s, agent_id)
        return [TokenInfo.from_row(r) for r in rows]

    async def revoke_token(self, actor: Actor, prefix: str) -> Revocation:
        """Revoke a token. Idempotent: revoking a revoked token changes nothing and writes no
        second audit event."""
        if not api_tokens.is_prefix(prefix):
            raise NotFound("token not found")
        async with self._db.transaction() as s:
            current = await token_store.by_prefix(s, prefix)
            owner_ok = current is not None and (
                actor.is_admin or actor.is_agent(current["agent_id"])
            )
            if not owner_ok:
                # Same answer for "absent" and "not yours": prefixes are not enumerable.
                raise NotFound("token not found")
            row = await token_store.revoke(s, prefix)
            if row is None:  # revoked already, perhaps a moment ago by a concurrent call
                again = await token_store.by_prefix(s, prefix)
                assert again is not None
                return Revocation(TokenInfo.from_row(again), revoked_now=False)
            await record(
                s,
                "token-revoked",
                actor.audit_agent_id,
                prefix=prefix,
                forAgentId=str(row["agent_id"]),
            )
            # Every server process hears it when this commits (its sockets, its cache).
            await auth_changes.announce(s, auth_changes.TokenChanged(prefix, row["agent_id"]))
        info = TokenInfo.from_row(row)
        await self._bus.publish(TokenRevoked(agent_id=info.agent_id, prefix=prefix))
        return Revocation(info, revoked_now=True)
