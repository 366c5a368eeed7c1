"""Queries on agents."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from agenthub.store.db import Row, Session
from agenthub.store.tables import agents


async def insert(s: Session, *, name: str, display_name: str, role: str) -> Row:
    row = await s.one(
        sa.insert(agents)
        .values(name=name, display_name=display_name, role=role)
        .returning(*agents.c)
    )
    assert row is not None
    return row


async def by_id(s: Session, agent_id: uuid.UUID) -> Row | None:
    return await s.one(sa.select(agents).where(agents.c.id == agent_id))


async def by_name(s: Session, name: str) -> Row | None:
    return await s.one(sa.select(agents).where(agents.c.name == name))


async def list_all(s: Session) -> list[Row]:
    return await s.all(sa.select(agents).order_by(agents.c.name))


async def set_disabled(s: Session, agent_id: uuid.UUID, disabled: bool) -> Row | None:
    return await s.one(
        sa.update(agents)
        .where(agents.c.id == agent_id)
        .values(disabled_at=sa.func.now() if disabled else None)
        .returning(*agents.c)
    )
