"""Queries on messages."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from agenthub.domain import DEFAULT_MESSAGE_KIND
from agenthub.store.db import Row, Session, Statement
from agenthub.store.tables import agents, audit_events, mentions, messages, room_members, rooms

# What a message row is, as every query returns it: all columns but the search vector.
COLUMNS = [c for c in messages.c if c.key != "search"]


def _insert_next() -> Statement:
    """The post statement. Parameters: room_id, sender_id, body, client_msg_id, message_kind, data,
    reply_to, mention_names (the @names in the body), mentions_room (it says @room)."""
    room_id = sa.bindparam("room_id", type_=sa.Uuid)
    sender_id = sa.bindparam("sender_id", type_=sa.Uuid)
    reply_to = sa.bindparam("reply_to", type_=sa.BigInteger)
    mention_names = sa.bindparam("mention_names", type_=ARRAY(sa.Text))
    client_msg_id = sa.bindparam("client_msg_id", type_=sa.Text)
    is_member = sa.exists().where(
        room_members.c.room_id == room_id, room_members.c.agent_id == sender_id
    )
    # A retried clientMsgId must not bump the seq (that would leave a gap): it is not stored
    # here, and the caller's careful path returns the stored message.
    is_retry = sa.exists().where(
        messages.c.sender_id == sender_id,
        messages.c.client_msg_id == client_msg_id,
    )
    # The message replied to: its seq and its thread's root (its own seq when it is a root).
    parent = (
        sa.select(
            messages.c.seq.label("seq"),
            sa.func.coalesce(messages.c.thread_root, messages.c.seq).label("root"),
        )
        .where(messages.c.room_id == room_id, messages.c.seq == reply_to)
        .cte("parent")
    )
    replies_exist = sa.or_(reply_to.is_(None), sa.exists().select_from(parent))
    bump = (
        sa.update(rooms)
        .where(
            rooms.c.id == room_id,
            rooms.c.archived_at.is_(None),
            is_member,
            ~is_retry,
            replies_exist,
        )
        .values(last_seq=rooms.c.last_seq + 1)
        .returning(rooms.c.last_seq, rooms.c.slug)
        .cte("bump")
    )
    # The @names that are members of the room, as ids: resolved here, in the same round trip,
    # so mentions cost no query of their own (names unknown or not members stay plain text).
    mentioned = (
        sa.select(
            sa.func.coalesce(
                sa.func.array_agg(agents.c.id), sa.cast(sa.literal("{}"), ARRAY(sa.Uuid))
            ).label("ids")
        )
        .select_from(agents.join(room_members, room_members.c.agent_id == agents.c.id))
        .where(room_members.c.room_id == room_id, agents.c.name == sa.func.any(mention_names))
        .cte("mentioned")
    )
    stored = (
        sa.insert(messages)
        .from_select(
            [
                "room_id",
                "seq",
                "sender_id",
                "body",
                "client_msg_id",
                "kind",
                "data",
                "reply_to",
                "thread_root",
                "mentions",
                "mentions_room",
            ],
            sa.select(
                sa.cast(room_id, sa.Uuid),
                bump.c.last_seq,
                sa.cast(sender_id, sa.Uuid),
                sa.bindparam("body", type_=sa.Text),
                client_msg_id,
                # Not named "kind": an UPDATE of rooms (which has a kind) is in this statement,
                # and SQLAlchemy's engine would read such a name as a value to SET.
                sa.bindparam("message_kind", type_=sa.Text),
                sa.bindparam("data", type_=JSONB(none_as_null=True)),
                parent.c.seq,
                parent.c.root,
                mentioned.c.ids,
                sa.bindparam("mentions_room", type_=sa.Boolean),
            ).select_from(bump.join(mentioned, sa.true()).outerjoin(parent, sa.true())),
        )
        .returning(*COLUMNS)
        .cte("stored")
    )
    # One row per member to notify: those named, or every member for @room; never the sender.
    notified = (
        sa.insert(mentions)
        .from_select(
            ["agent_id", "room_id", "seq"],
            sa.select(room_members.c.agent_id, stored.c.room_id, stored.c.seq)
            .select_from(stored.join(room_members, room_members.c.room_id == stored.c.room_id))
            .where(
                room_members.c.agent_id != stored.c.sender_id,
                sa.or_(
                    stored.c.mentions_room,
                    room_members.c.agent_id == sa.func.any(stored.c.mentions),
                ),
            ),
        )
        .cte("notified")
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
    return Statement(
        sa.select(stored, bump.c.slug.label("room_slug"))
        .select_from(stored.join(bump, sa.true()))
        .add_cte(notified)
        .add_cte(audited)
    )


_INSERT_NEXT = _insert_next()


async def insert_next(
    s: Session,
    *,
    room_id: uuid.UUID,
    sender_id: uuid.UUID,
    body: str,
    client_msg_id: str | None,
    kind: str = DEFAULT_MESSAGE_KIND,
    data: dict[str, Any] | None = None,
    reply_to: int | None = None,
    mention_names: list[str] | None = None,
    mentions_room: bool = False,
) -> Row | None:
    """Bump the room's seq, store the message, its mention rows and its ``message-sent``
    audit row in ONE statement, so that on an autocommit session it is one round trip and its
    own transaction. The room's row lock is taken by the UPDATE and held until commit; doing
    all the writes at once keeps that window (and so the per-room throughput ceiling) as short
    as it can be.

    None, with nothing written, when the room does not exist or is archived, the sender is not
    a member, ``reply_to`` names no message of the room, or ``client_msg_id`` is one the sender
    already used: the caller finds out which."""
    return await s.one(
        _INSERT_NEXT,
        room_id=room_id,
        sender_id=sender_id,
        body=body,
        client_msg_id=client_msg_id,
        message_kind=kind,
        data=data,
        reply_to=reply_to,
        mention_names=mention_names or [],
        mentions_room=mentions_room,
    )


_BY_CLIENT_MSG_ID = Statement(
    sa.select(*COLUMNS).where(
        messages.c.sender_id == sa.bindparam("sender_id"),
        messages.c.client_msg_id == sa.bindparam("client_msg_id"),
    )
)


_EXISTS = Statement(
    sa.select(sa.literal(1)).where(
        messages.c.room_id == sa.bindparam("room_id"), messages.c.seq == sa.bindparam("seq")
    )
)


async def exists(s: Session, room_id: uuid.UUID, seq: int) -> bool:
    return await s.scalar(_EXISTS, room_id=room_id, seq=seq) is not None


async def by_client_msg_id(s: Session, sender_id: uuid.UUID, client_msg_id: str) -> Row | None:
    return await s.one(_BY_CLIENT_MSG_ID, sender_id=sender_id, client_msg_id=client_msg_id)


_LIMIT = sa.bindparam("limit", type_=sa.Integer)
_IN_ROOM = sa.select(*COLUMNS).where(messages.c.room_id == sa.bindparam("room_id"))
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
