"""Queries on messages."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from agenthub.store.db import Row, Session, Statement
from agenthub.store.tables import audit_events, messages, room_members, rooms


def _insert_next() -> Statement:
    """The post statement. Parameters: room_id, sender_id, body, client_msg_id."""
    room_id = sa.bindparam("room_id", type_=sa.Uuid)
    sender_id = sa.bindparam("sender_id", type_=sa.Uuid)
    body = sa.bindparam("body", type_=sa.Text)
    client_msg_id = sa.bindparam("client_msg_id", type_=sa.Text)
    is_member = sa.exists().where(
        room_members.c.room_id == room_id, room_members.c.agent_id == sender_id
    )
    # A retried clientMsgId must not bump the seq (that would leave a gap): it is not stored
    # here, and the caller's careful path returns the stored message.
    is_retry = sa.exists().where(
        messages.c.sender_id == sender_id, messages.c.client_msg_id == client_msg_id
    )
    bump = (
        sa.update(rooms)
        .where(rooms.c.id == room_id, is_member, ~is_retry)
        .values(last_seq=rooms.c.last_seq + 1)
        .returning(rooms.c.last_seq)
        .cte("bump")
    )
    stored = (
        sa.insert(messages)
        .from_select(
            ["room_id", "seq", "sender_id", "body", "client_msg_id"],
            sa.select(
                sa.cast(room_id, sa.Uuid),
                bump.c.last_seq,
                sa.cast(sender_id, sa.Uuid),
                sa.cast(body, sa.Text),
                sa.cast(client_msg_id, sa.Text),
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
    return Statement(sa.select(stored).add_cte(audited))


_INSERT_NEXT = _insert_next()


async def insert_next(
    s: Session,
    *,
    room_id: uuid.UUID,
    sender_id: uuid.UUID,
    body: str,
    client_msg_id: str | None,
) -> Row | None:
    """Bump the room's seq, store the message and its ``message-sent`` audit row in ONE
    statement, so that on an autocommit session it is one round trip and its own transaction.
    The room's row lock is taken by the UPDATE and held until commit; doing all three writes
    at once keeps that window (and so the per-room throughput ceiling) as short as it can be.

    None, with nothing written, when the room does not exist, the sender is not a member, or
    ``client_msg_id`` is one the sender already used: the caller finds out which."""
    return await s.one(
        _INSERT_NEXT,
        room_id=room_id,
        sender_id=sender_id,
        body=body,
        client_msg_id=client_msg_id,
    )


_BY_CLIENT_MSG_ID = Statement(
    sa.select(messages).where(
        messages.c.sender_id == sa.bindparam("sender_id"),
        messages.c.client_msg_id == sa.bindparam("client_msg_id"),
    )
)


async def by_client_msg_id(s: Session, sender_id: uuid.UUID, client_msg_id: str) -> Row | None:
    return await s.one(_BY_CLIENT_MSG_ID, sender_id=sender_id, client_msg_id=client_msg_id)


_LIMIT = sa.bindparam("limit", type_=sa.Integer)
_IN_ROOM = sa.select(messages).where(messages.c.room_id == sa.bindparam("room_id"))
_NEWEST = Statement(_IN_ROOM.order_by(messages.c.seq.desc()).limit(_LIMIT))
_NEWEST_BEFORE = Statement(
    _IN_ROOM.where(messages.c.seq < sa.bindparam("before_seq"))
    .order_by(messages.c.seq.desc())
    .limit(_LIMIT)
)
_AFTER = Statement(
    _IN_ROOM.where(messages.c.seq > sa.bindparam("after_seq"))
    .order_by(messages.c.seq.asc())
    .limit(_LIMIT)
)


async def newest_first(
    s: Session, room_id: uuid.UUID, *, before_seq: int | None, limit: int
) -> list[Row]:
    if before_seq is None:
        return await s.all(_NEWEST, room_id=room_id, limit=limit)
    return await s.all(_NEWEST_BEFORE, room_id=room_id, before_seq=before_seq, limit=limit)


async def after(s: Session, room_id: uuid.UUID, *, after_seq: int, limit: int) -> list[Row]:
    return await s.all(_AFTER, room_id=room_id, after_seq=after_seq, limit=limit)
