"""Queries on API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from agenthub.store.db import Row, Session, Statement
from agenthub.store.tables import agents, api_tokens

_PUBLIC_COLUMNS = [
    api_tokens.c.prefix,
    api_tokens.c.agent_id,
    api_tokens.c.created_at,
    api_tokens.c.expires_at,
    api_tokens.c.revoked_at,
    api_tokens.c.last_used_at,
]
# Not named "prefix": in an UPDATE a bindparam may not take the name of a column it could SET.
_PREFIX_IS = api_tokens.c.prefix == sa.bindparam("token_prefix")

_INSERT = Statement(
    sa.insert(api_tokens)
    .values(
        agent_id=sa.bindparam("agent_id"),
        prefix=sa.bindparam("prefix"),
        secret_hash=sa.bindparam("secret_hash"),
        expires_at=sa.bindparam("expires_at"),
    )
    .returning(*_PUBLIC_COLUMNS)
)
_WITH_AGENT_BY_PREFIX = Statement(
    sa.select(
        api_tokens.c.prefix,
        api_tokens.c.secret_hash,
        api_tokens.c.expires_at,
        api_tokens.c.revoked_at,
        agents.c.id.label("agent_id"),
        agents.c.name,
        agents.c.role,
        agents.c.disabled_at,
        sa.func.now().label("now"),
    )
    .join(agents, agents.c.id == api_tokens.c.agent_id)
    .where(_PREFIX_IS)
)
_STANDING_BY_PREFIXES = Statement(
    sa.select(
        api_tokens.c.prefix,
        agents.c.id.label("agent_id"),
        agents.c.role,
        api_tokens.c.revoked_at.is_not(None).label("revoked"),
        sa.func.coalesce(api_tokens.c.expires_at <= sa.func.now(), False).label("expired"),
        agents.c.disabled_at.is_not(None).label("disabled"),
    )
    .join(agents, agents.c.id == api_tokens.c.agent_id)
    .where(api_tokens.c.prefix.in_(sa.bindparam("prefixes", expanding=True)))
)
_BY_PREFIX = Statement(sa.select(*_PUBLIC_COLUMNS).where(_PREFIX_IS))
_FOR_AGENT = Statement(
    sa.select(*_PUBLIC_COLUMNS)
    .where(api_tokens.c.agent_id == sa.bindparam("agent_id"))
    .order_by(api_tokens.c.created_at.desc())
)
_TOUCH = Statement(sa.update(api_tokens).where(_PREFIX_IS).values(last_used_at=sa.func.now()))
# Only a token not revoked yet: the first revocation time stays, and a second one is told apart.
_REVOKE = Statement(
    sa.update(api_tokens)
    .where(_PREFIX_IS, api_tokens.c.revoked_at.is_(None))
    .values(revoked_at=sa.func.now())
    .returning(*_PUBLIC_COLUMNS)
)


async def insert(
    s: Session, *, agent_id: uuid.UUID, prefix: str, secret_hash: str, expires_at: datetime | None
) -> Row:
    row = await s.one(
        _INSERT, agent_id=agent_id, prefix=prefix, secret_hash=secret_hash, expires_at=expires_at
    )
    assert row is not None
    return row


async def with_agent_by_prefix(s: Session, prefix: str) -> Row | None:
    """The token row joined with its agent; hash included, for verification only."""
    return await s.one(_WITH_AGENT_BY_PREFIX, token_prefix=prefix)


async def standing_by_prefixes(s: Session, prefixes: list[str]) -> list[Row]:
    """For each known prefix among ``prefixes``: its agent, the agent's current role, and
    whether the token is revoked or expired and the agent disabled. One statement for any
    number of prefixes: the socket layer re-checks all its live sessions with it. An unknown
    prefix has no row."""
    return await s.all(_STANDING_BY_PREFIXES, prefixes=prefixes)


async def by_prefix(s: Session, prefix: str) -> Row | None:
    return await s.one(_BY_PREFIX, token_prefix=prefix)


async def for_agent(s: Session, agent_id: uuid.UUID) -> list[Row]:
    return await s.all(_FOR_AGENT, agent_id=agent_id)


async def touch(s: Session, prefix: str) -> None:
    await s.execute(_TOUCH, token_prefix=prefix)


async def revoke(s: Session, prefix: str) -> Row | None:
    """Mark revoked; None when the prefix is unknown or the token is revoked already (a
    concurrent revocation waits for this row's lock, then finds it revoked: one wins)."""
    return await s.one(_REVOKE, token_prefix=prefix)
