"""Queries on messages."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from agenthub.store.db import Row, Session
from agenthub.store.tables import audit_events, messages, rooms


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


async def insert_next(
    s: Session,
    *,
    room_id: uuid.UUID,
    sender_id: uuid.UUID,
    body: str,
    client_msg_id: str | None,
) -> Row | None:
    """Bump the room's seq, store the message and its ``message-sent`` audit row in ONE
    statement. The room's row lock is taken by the UPDATE and held until commit; doing all
    three writes in a single round trip keeps that window (and so the per-room throughput
    ceiling) as short as it can be. None when the room does not exist."""
    bump = (
        sa.update(rooms)
        .where(rooms.c.id == room_id)
        .values(last_seq=rooms.c.last_seq + 1)
        .returning(rooms.c.last_seq)
        .cte("bump")
    )
    stored = (
        sa.insert(messages)
        .from_select(
            ["room_id", "seq", "sender_id", "body", "client_msg_id"],
            sa.select(
                sa.cast(sa.literal(room_id, sa.Uuid), sa.Uuid),
                bump.c.last_seq,
                sa.cast(sa.literal(sender_id, sa.Uuid), sa.Uuid),
                sa.cast(sa.literal(body, sa.Text), sa.Text),
                sa.cast(sa.literal(client_msg_id, sa.Text), sa.Text),
            ),
        )
        .returning(*messages.c)
        .cte("stored")
    )
    audited = (
        sa.insert(audit_events)
        .from_select(
            ["type", "agent_id", "payload"],
            sa.select(
                sa.literal("message-sent", sa.Text),
                stored.c.sender_id,
                sa.func.jsonb_build_object(
                    "roomId",
                    sa.cast(stored.c.room_id, sa.Text),
                    "messageId",
                    sa.cast(stored.c.id, sa.Text),
                    "seq",
                    stored.c.seq,
                ),
            ),
        )
        .cte("audited")
    )
    # PostgreSQL runs a data-modifying CTE even when the outer query does not read it.
    return await s.one(sa.select(stored).add_cte(audited))


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
