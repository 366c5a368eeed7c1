"""Queries on the audit trail."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from agenthub.store.db import Row, Session, Statement
from agenthub.store.tables import audit_events

_INSERT = Statement(
    sa.insert(audit_events).values(
        type=sa.bindparam("type"),
        agent_id=sa.bindparam("agent_id"),
        payload=sa.bindparam("payload"),
    )
)


async def insert(
    s: Session, *, type: str, agent_id: uuid.UUID | None, payload: dict[str, Any]
) -> None:
    await s.execute(_INSERT, type=type, agent_id=agent_id, payload=payload)


def _page(by_type: bool, by_agent: bool, before: bool) -> Statement:
    stmt = sa.select(audit_events)
    if by_type:
        stmt = stmt.where(audit_events.c.type == sa.bindparam("type"))
    if by_agent:
        # No index of its own: walks the position index newest first, keeping the agent's
        # events (docs/API.md, "Audit": what that costs).
        stmt = stmt.where(audit_events.c.agent_id == sa.bindparam("agent_id"))
    if before:
        stmt = stmt.where(audit_events.c.position < sa.bindparam("before_position"))
    limit = sa.bindparam("limit", type_=sa.Integer)
    return Statement(stmt.order_by(audit_events.c.position.desc()).limit(limit))


# By (filtered by type, filtered by agent, before a position).
_PAGES = {
    (t, a, b): _page(t, a, b) for t in (False, True) for a in (False, True) for b in (False, True)
}


async def page(
    s: Session,
    *,
    type: str | None,
    agent_id: uuid.UUID | None = None,
    before_position: int | None,
    limit: int,
) -> list[Row]:
    values: dict[str, Any] = {"limit": limit}
    if type is not None:
        values["type"] = type
    if agent_id is not None:
        values["agent_id"] = agent_id
    if before_position is not None:
        values["before_position"] = before_position
    statement = _PAGES[type is not None, agent_id is not None, before_position is not None]
    return await s.all(statement, **values)
