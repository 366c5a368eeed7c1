"""Queries on agents."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from agenthub.store.db import Row, Session, Statement
from agenthub.store.tables import agents

_INSERT = Statement(
    sa.insert(agents)
    .values(
        name=sa.bindparam("name"),
        display_name=sa.bindparam("display_name"),
        role=sa.bindparam("role"),
    )
    .returning(*agents.c)
)
_BY_ID = Statement(sa.select(agents).where(agents.c.id == sa.bindparam("agent_id")))
_BY_NAME = Statement(sa.select(agents).where(agents.c.name == sa.bindparam("name")))
_ID_BY_NAME = Statement(sa.select(agents.c.id).where(agents.c.name == sa.bindparam("name")))
_LIST_ALL = Statement(sa.select(agents).order_by(agents.c.name))


def _set_disabled_at(value: sa.ColumnElement[Any] | None) -> Statement:
    return Statement(
        sa.update(agents)
        .where(agents.c.id == sa.bindparam("agent_id"))
        .values(disabled_at=value)
        .returning(*agents.c)
    )


_DISABLE = _set_disabled_at(sa.func.now())
_ENABLE = _set_disabled_at(None)


async def insert(s: Session, *, name: str, display_name: str, role: str) -> Row:
    row = await s.one(_INSERT, name=name, display_name=display_name, role=role)
    assert row is not None
    return row


async def by_id(s: Session, agent_id: uuid.UUID) -> Row | None:
    return await s.one(_BY_ID, agent_id=agent_id)


async def by_name(s: Session, name: str) -> Row | None:
    return await s.one(_BY_NAME, name=name)


async def id_by_name(s: Session, name: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await s.scalar(_ID_BY_NAME, name=name)
    return found


async def list_all(s: Session) -> list[Row]:
    return await s.all(_LIST_ALL)


async def set_disabled(s: Session, agent_id: uuid.UUID, disabled: bool) -> Row | None:
    return await s.one(_DISABLE if disabled else _ENABLE, agent_id=agent_id)
