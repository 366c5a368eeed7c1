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
    row = await s.one(
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
    if row is not None:
        s.audit_written("message-sent")
    return row


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
_ROOM = sa.bindparam("room_id", type_=sa.Uuid)
_KIND = sa.bindparam("message_kind", type_=sa.Text)
_REPLIES = messages.alias("replies")

# The replies in the thread a message roots, counted on the index (room_id, thread_root, seq)
# in the listing's own round trip. A reply roots nothing (replies to replies share the root),
# so only messages that are no reply are counted for. Tombstones count: they stay in the thread.
REPLY_COUNT = sa.case(
    (
        messages.c.thread_root.is_(None),
        sa.select(sa.func.count())
        .where(_REPLIES.c.room_id == messages.c.room_id, _REPLIES.c.thread_root == messages.c.seq)
        .scalar_subquery(),
    ),
    else_=sa.literal_column("0"),
).label("reply_count")

# What a listing returns per message: its row and its reply count.
LISTED = [*COLUMNS, REPLY_COUNT]


def _page(*where: sa.ColumnElement[bool], newest_first: bool) -> Statement:
    order = messages.c.seq.desc() if newest_first else messages.c.seq.asc()
    return Statement(
        sa.select(*LISTED).where(messages.c.room_id == _ROOM, *where).order_by(order).limit(_LIMIT)
    )


def _pages(*where: sa.ColumnElement[bool]) -> dict[str, Statement]:
    return {
        "newest": _page(*where, newest_first=True),
        "before": _page(
            messages.c.seq < sa.bindparam("before_seq", type_=sa.BigInteger),
            *where,
            newest_first=True,
        ),
        "after": _page(
            messages.c.seq > sa.bindparam("after_seq", type_=sa.BigInteger),
            *where,
            newest_first=False,
        ),
    }


# By listing (newest first, newest before a seq, oldest after a seq), for the whole room or for
# one kind (served by the index (room_id, kind, seq)).
_PAGES = _pages()
_KIND_PAGES = _pages(messages.c.kind == _KIND)
_NEWEST = _PAGES["newest"]
_NEWEST_BEFORE = _PAGES["before"]
_AFTER = _PAGES["after"]


def _thread(*where: sa.ColumnElement[bool]) -> Statement:
    """A thread oldest first after a seq: its root (a plain lookup by seq), then its replies
    in seq order off the index (room_id, thread_root, seq), at most ``limit`` of them."""
    root = sa.bindparam("thread_root", type_=sa.BigInteger)
    after_seq = sa.bindparam("after_seq", type_=sa.BigInteger)
    head = sa.select(*LISTED).where(
        messages.c.room_id == _ROOM, messages.c.seq == root, messages.c.seq > after_seq, *where
    )
    replies = (
        sa.select(*LISTED)
        .where(
            messages.c.room_id == _ROOM,
            messages.c.thread_root == root,
            messages.c.seq > after_seq,
            *where,
        )
        .order_by(messages.c.seq)
        .limit(_LIMIT)
    )
    both = sa.union_all(head, replies).subquery("thread")
    return Statement(sa.select(*both.c).order_by(both.c.seq).limit(_LIMIT))


_THREAD = _thread()
_KIND_THREAD = _thread(messages.c.kind == _KIND)

# What the rules need to know of one message (its thread, its sender, whether redacted).
_SUMMARY = Statement(
    sa.select(
        messages.c.id,
        messages.c.seq,
        messages.c.thread_root,
        messages.c.sender_id,
        messages.c.redacted_at,
    ).where(messages.c.room_id == _ROOM, messages.c.seq == sa.bindparam("seq", type_=sa.BigInteger))
)
_ONE = Statement(
    sa.select(*LISTED).where(
        messages.c.room_id == _ROOM, messages.c.seq == sa.bindparam("seq", type_=sa.BigInteger)
    )
)


async def newest_first(
    s: Session,
    room_id: uuid.UUID,
    *,
    before_seq: int | None,
    limit: int,
    kind: str | None = None,
) -> list[Row]:
    """Newest first (before ``before_seq`` when given), of one ``kind`` when given."""
    pages, extra = (_PAGES, {}) if kind is None else (_KIND_PAGES, {"message_kind": kind})
    if before_seq is None:
        return await s.all(pages["newest"], room_id=room_id, limit=limit, **extra)
    return await s.all(
        pages["before"], room_id=room_id, before_seq=before_seq, limit=limit, **extra
    )


async def after(
    s: Session, room_id: uuid.UUID, *, after_seq: int, limit: int, kind: str | None = None
) -> list[Row]:
    """Oldest first after ``after_seq``, of one ``kind`` when given."""
    if kind is None:
        return await s.all(_AFTER, room_id=room_id, after_seq=after_seq, limit=limit)
    return await s.all(
        _KIND_PAGES["after"], room_id=room_id, after_seq=after_seq, limit=limit, message_kind=kind
    )


async def thread(
    s: Session,
    room_id: uuid.UUID,
    root: int,
    *,
    after_seq: int,
    limit: int,
    kind: str | None = None,
) -> list[Row]:
    """The thread rooted at ``root`` (the root, then its replies) oldest first after
    ``after_seq``, of one ``kind`` when given."""
    if kind is None:
        return await s.all(
            _THREAD, room_id=room_id, thread_root=root, after_seq=after_seq, limit=limit
        )
    return await s.all(
        _KIND_THREAD,
        room_id=room_id,
        thread_root=root,
        after_seq=after_seq,
        limit=limit,
        message_kind=kind,
    )


async def summary(s: Session, room_id: uuid.UUID, seq: int) -> Row | None:
    """``{id, seq, thread_root, sender_id, redacted_at}`` of the message, or None when the room
    has no such seq (``thread_root`` None: the message is no reply, so it may root a thread)."""
    return await s.one(_SUMMARY, room_id=room_id, seq=seq)


async def one(s: Session, room_id: uuid.UUID, seq: int) -> Row | None:
    """One message as listings show it (with its reply count)."""
    return await s.one(_ONE, room_id=room_id, seq=seq)


# Redaction. Not named like the columns the UPDATE sets or filters on (room_id, seq):
# SQLAlchemy's engine would read such names as values to SET.
_TARGET = (
    messages.c.room_id == sa.bindparam("target_room", type_=sa.Uuid),
    messages.c.seq == sa.bindparam("target_seq", type_=sa.BigInteger),
)
_REDACT = Statement(
    sa.update(messages)
    .where(*_TARGET, messages.c.redacted_at.is_(None))
    .values(
        body=sa.literal("", sa.Text),
        data=sa.null(),
        # The mentions were the body's; a tombstone names and notifies nobody.
        mentions=sa.text("'{}'::uuid[]"),
        mentions_room=sa.false(),
        redacted_at=sa.func.now(),
    )
)
_FORGET_MENTIONS = Statement(
    sa.delete(mentions).where(
        mentions.c.room_id == sa.bindparam("room_id", type_=sa.Uuid),
        mentions.c.seq == sa.bindparam("seq", type_=sa.BigInteger),
    )
)


async def redact(s: Session, room_id: uuid.UUID, seq: int) -> bool:
    """Make the message a tombstone (body "", data null, no mentions, redacted_at now) and
    drop its mention rows. False, with nothing changed, when it already is one. Concurrent
    redactions of one message: the second waits for the first's row lock, then finds it
    redacted (the WHERE is checked again), so exactly one of them returns True."""
    if await s.execute(_REDACT, target_room=room_id, target_seq=seq) == 0:
        return False
    await s.execute(_FORGET_MENTIONS, room_id=room_id, seq=seq)
    return True
