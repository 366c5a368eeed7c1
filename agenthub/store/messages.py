"""Queries on messages."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from agenthub.store.db import Row, Session
from agenthub.store.tables import messages


async def insert(
    s: Session,
    *,
    room_id: uuid.UUID,
    seq: int,
    sender_id: uuid.UUID,
    body: str,
    client_msg_id: str | None,
) -> Row:
    row = await s.one(
        sa.insert(messages)
        .values(
            room_id=room_id, seq=seq, sender_id=sender_id, body=body, client_msg_id=client_msg_id
        )
        .returning(*messages.c)
    )
    assert row is not None
    return row


async def by_client_msg_id(s: Session, sender_id: uuid.UUID, client_msg_id: str) -> Row | None:
    return await s.one(
        sa.select(messages).where(
            messages.c.sender_id == sender_id, messages.c.client_msg_id == client_msg_id
        )
    )


async def newest_first(
    s: Session, room_id: uuid.UUID, *, before_seq: int | None, limit: int
) -> list[Row]:
    stmt = sa.select(messages).where(messages.c.room_id == room_id)
    if before_seq is not None:
        stmt = stmt.where(messages.c.seq < before_seq)
    return await s.all(stmt.order_by(messages.c.seq.desc()).limit(limit))


async def after(s: Session, room_id: uuid.UUID, *, after_seq: int, limit: int) -> list[Row]:
    return await s.all(
        sa.select(messages)
        .where(messages.c.room_id == room_id, messages.c.seq > after_seq)
        .order_by(messages.c.seq.asc())
        .limit(limit)
    )
