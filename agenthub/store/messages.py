"""Queries on messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg2
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from agenthub.domain import DEFAULT_MESSAGE_KIND
from agenthub.store.db import Row, Session, Statement
from agenthub.store.tables import agents, audit_events, mentions, messages, room_members, rooms

# What a message row is, as every query returns it: all columns but the search vector.
COLUMNS = [c for c in messages.c if c.key != "search"]


# The columns a post statement fills (the rest take their defaults).
_STORED_FIELDS = [
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
]


def _notified(stored: Any) -> Any:
    """The mentions rows of the posts ``stored`` inserted: one per member to notify, those
    named or every member for @room; never the sender."""
    return (
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


def _audited(stored: Any) -> Any:
    """One ``message-sent`` audit event per post ``stored`` inserted, in seq order (the audit
    trail's ids then follow the room's seqs within a batch)."""
    return (
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
            ).order_by(stored.c.seq),
        )
        .cte("audited")
    )


def _insert_next() -> Statement:
    """The post statement for one post (``insert_batch`` of one, the careful path).
    Parameters: room_id, sender_id, body, client_msg_id, message_kind, data, reply_to,
    mention_names (the @names in the body), mentions_room (it says @room)."""
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
            _STORED_FIELDS,
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
    notified = _notified(stored)
    audited = _audited(stored)
    # PostgreSQL runs a data-modifying CTE even when the outer query does not read it.
    return Statement(
        sa.select(stored, bump.c.slug.label("room_slug"))
        .select_from(stored.join(bump, sa.true()))
        .add_cte(notified)
        .add_cte(audited)
    )


_INSERT_NEXT = _insert_next()


def _insert_batch() -> Statement:
    """The post statement for a batch of posts into one room (a batch of one takes
    ``_INSERT_NEXT``). Parameters: room_id, and one
    array per field, element i being post i's: sender_ids, bodies, client_msg_ids,
    message_kinds, data_values, reply_seqs, room_mentions (it says @room); the @names as two
    flat arrays, mention_posts (the post's ordinal, from 1) and mention_names."""
    room_id = sa.bindparam("room_id", type_=sa.Uuid)
    posted = (
        sa.func.unnest(
            sa.bindparam("sender_ids", type_=ARRAY(sa.Uuid)),
            sa.bindparam("bodies", type_=ARRAY(sa.Text)),
            sa.bindparam("client_msg_ids", type_=ARRAY(sa.Text)),
            # Not named "kind(s)" or "data": an UPDATE of rooms (which has a kind) is in this
            # statement, and SQLAlchemy's engine would read such a name as a value to SET.
            sa.bindparam("message_kinds", type_=ARRAY(sa.Text)),
            sa.bindparam("data_values", type_=ARRAY(JSONB(none_as_null=True))),
            sa.bindparam("reply_seqs", type_=ARRAY(sa.BigInteger)),
            sa.bindparam("room_mentions", type_=ARRAY(sa.Boolean)),
        )
        .table_valued(
            sa.column("sender_id", sa.Uuid),
            sa.column("body", sa.Text),
            sa.column("client_msg_id", sa.Text),
            sa.column("kind", sa.Text),
            sa.column("data", JSONB),
            sa.column("reply_to", sa.BigInteger),
            sa.column("mentions_room", sa.Boolean),
            with_ordinality="ord",
        )
        .render_derived(name="posted")
    )
    is_member = sa.exists().where(
        room_members.c.room_id == room_id, room_members.c.agent_id == posted.c.sender_id
    )
    # A retried clientMsgId must not take a seq (that would leave a gap): it is not stored
    # here, and the caller's careful path returns the stored message. (Two posts of one batch
    # with the same clientMsgId never both reach this statement: the caller sends the first.)
    is_retry = sa.exists().where(
        messages.c.sender_id == posted.c.sender_id,
        messages.c.client_msg_id == posted.c.client_msg_id,
    )
    # The message replied to: its seq and its thread's root (its own seq when it is a root).
    # Only messages committed before this statement count: a reply to a message of the same
    # batch is not stored here; the careful path stores it after this batch commits.
    parent = messages.alias("parent")
    # The posts this statement stores, numbered 1..n in the order they came: the n seqs after
    # the room's last one go to them in that order.
    accepted = (
        sa.select(
            posted.c.ord,
            posted.c.sender_id,
            posted.c.body,
            posted.c.client_msg_id,
            posted.c.kind,
            posted.c.data,
            posted.c.mentions_room,
            parent.c.seq.label("reply_to"),
            sa.func.coalesce(parent.c.thread_root, parent.c.seq).label("thread_root"),
            sa.func.row_number().over(order_by=posted.c.ord).label("rank"),
        )
        .select_from(
            posted.outerjoin(
                parent, sa.and_(parent.c.room_id == room_id, parent.c.seq == posted.c.reply_to)
            )
        )
        .where(
            is_member,
            ~is_retry,
            sa.or_(posted.c.reply_to.is_(None), parent.c.seq.is_not(None)),
        )
        .cte("accepted")
    )
    total = sa.select(sa.func.count()).select_from(accepted).scalar_subquery()
    # One UPDATE per batch: the room's row lock is taken once and held until the commit, so
    # the seqs of a batch are dense, follow the room's last one, and commit together.
    bump = (
        sa.update(rooms)
        .where(
            rooms.c.id == room_id,
            rooms.c.archived_at.is_(None),
            sa.exists().select_from(accepted),
        )
        .values(last_seq=rooms.c.last_seq + total)
        .returning(
            (rooms.c.last_seq - total).label("base_seq"),
            rooms.c.slug,
        )
        .cte("bump")
    )
    # The @names that are members of the room, as ids per post: resolved here, in the same
    # round trip (names unknown or not members stay plain text).
    named = (
        sa.func.unnest(
            sa.bindparam("mention_posts", type_=ARRAY(sa.BigInteger)),
            sa.bindparam("mention_names", type_=ARRAY(sa.Text)),
        )
        .table_valued(sa.column("ord", sa.BigInteger), sa.column("name", sa.Text))
        .render_derived(name="named")
    )
    mentioned = (
        sa.select(named.c.ord, sa.func.array_agg(agents.c.id).label("ids"))
        .select_from(
            named.join(agents, agents.c.name == named.c.name).join(
                room_members,
                sa.and_(room_members.c.agent_id == agents.c.id, room_members.c.room_id == room_id),
            )
        )
        .group_by(named.c.ord)
        .cte("mentioned")
    )
    stored = (
        sa.insert(messages)
        .from_select(
            _STORED_FIELDS,
            sa.select(
                sa.cast(room_id, sa.Uuid),
                bump.c.base_seq + accepted.c.rank,
                accepted.c.sender_id,
                accepted.c.body,
                accepted.c.client_msg_id,
                accepted.c.kind,
                accepted.c.data,
                accepted.c.reply_to,
                accepted.c.thread_root,
                sa.func.coalesce(mentioned.c.ids, sa.cast(sa.literal("{}"), ARRAY(sa.Uuid))),
                accepted.c.mentions_room,
            )
            .select_from(
                accepted.join(bump, sa.true()).outerjoin(
                    mentioned, mentioned.c.ord == accepted.c.ord
                )
            )
            .order_by(accepted.c.rank),
        )
        .returning(*COLUMNS)
        .cte("stored")
    )
    notified = _notified(stored)
    audited = _audited(stored)
    # PostgreSQL runs a data-modifying CTE even when the outer query does not read it. Each
    # stored row comes back with the ordinal of the post it stores.
    return Statement(
        sa.select(stored, bump.c.slug.label("room_slug"), accepted.c.ord.label("post_ord"))
        .select_from(
            stored.join(bump, sa.true()).join(
                accepted, stored.c.seq == bump.c.base_seq + accepted.c.rank
            )
        )
        .order_by(stored.c.seq)
        .add_cte(notified)
        .add_cte(audited)
    )


_INSERT_BATCH = _insert_batch()


class BatchRefused(Exception):
    """The database refused a batch for a value of one of its posts (a constraint, a value
    it cannot store): nothing of the batch was written; post by post, only that one fails."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """One post's values for ``insert_batch``."""

    sender_id: uuid.UUID
    body: str
    client_msg_id: str | None
    kind: str = DEFAULT_MESSAGE_KIND
    data: dict[str, Any] | None = None
    reply_to: int | None = None
    mention_names: Sequence[str] = ()
    mentions_room: bool = False


async def insert_batch(
    s: Session, room_id: uuid.UUID, posts: Sequence[NewMessage]
) -> list[Row | None]:
    """Store ``posts`` (in that order) into the room in ONE statement: bump the room's seq
    once by the number stored, insert the messages with the seqs that follow in the order
    given, their mention rows and one ``message-sent`` audit row each. On an autocommit
    session that is one round trip and one transaction (one WAL flush) for the whole batch.
    The room's row lock is taken by the UPDATE and held until commit, so a batch's seqs are
    dense and commit together, after any earlier batch's.

    The result holds, for each post, its stored row or None when it was not stored; a post
    is skipped alone (the others are stored) when its sender is not a member, ``reply_to``
    names no message the room had before this statement, or ``client_msg_id`` is one the
    sender already used; every post is None when the room does not exist or is archived.
    The caller finds out which. Two posts of one batch must not share a sender and
    ``client_msg_id`` (the unique constraint would fail the whole statement)."""
    if len(posts) == 1:
        # Alone (the first post after an idle spell): the one-post statement, which
        # PostgreSQL plans and runs faster (about 0.25 ms here) than the batch one.
        return [await insert_next(s, room_id, posts[0])]
    mention_posts: list[int] = []
    mention_names: list[str] = []
    for ordinal, post in enumerate(posts, start=1):
        mention_posts.extend([ordinal] * len(post.mention_names))
        mention_names.extend(post.mention_names)
    try:
        rows = await s.all(
            _INSERT_BATCH,
            room_id=room_id,
            sender_ids=[p.sender_id for p in posts],
            bodies=[p.body for p in posts],
            client_msg_ids=[p.client_msg_id for p in posts],
            message_kinds=[p.kind for p in posts],
            data_values=[p.data for p in posts],
            reply_seqs=[p.reply_to for p in posts],
            room_mentions=[p.mentions_room for p in posts],
            mention_posts=mention_posts,
            mention_names=mention_names,
        )
    except (psycopg2.IntegrityError, psycopg2.DataError) as exc:
        raise BatchRefused(str(exc).strip()) from exc
    result: list[Row | None] = [None] * len(posts)
    for row in rows:
        result[int(row.pop("post_ord")) - 1] = row
        s.audit_written("message-sent")
    return result


async def insert_next(s: Session, room_id: uuid.UUID, post: NewMessage) -> Row | None:
    """Store one post (what ``insert_batch`` does for a batch of one): bump the room's seq,
    insert the message, its mention rows and its ``message-sent`` audit row in ONE statement.
    Its stored row, or None with nothing written (the same rules as ``insert_batch``)."""
    row = await s.one(
        _INSERT_NEXT,
        room_id=room_id,
        sender_id=post.sender_id,
        body=post.body,
        client_msg_id=post.client_msg_id,
        message_kind=post.kind,
        data=post.data,
        reply_to=post.reply_to,
        mention_names=list(post.mention_names),
        mentions_room=post.mentions_room,
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
