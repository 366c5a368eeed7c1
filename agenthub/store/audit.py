"""Queries on the audit trail."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from psycopg2.extras import Json

from agenthub.store.db import Row, Session
from agenthub.store.tables import audit_events


async def insert(
    s: Session, *, type: str, agent_id: uuid.UUID | None, payload: dict[str, Any]
) -> None:
    await s.execute(
        sa.insert(audit_events).values(type=type, agent_id=agent_id, payload=Json(payload))
    )


async def page(
    s: Session, *, type: str | None, before_position: int | None, limit: int
) -> list[Row]:
    stmt = sa.select(audit_events)
    if type is not None:
        stmt = stmt.where(audit_events.c.type == type)
    if before_position is not None:
        stmt = stmt.where(audit_events.c.position < before_position)
    return await s.all(stmt.order_by(audit_events.c.position.desc()).limit(limit))
