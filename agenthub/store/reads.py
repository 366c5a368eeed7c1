"""Queries on read state: a member's read marker, and the inbox (its rooms with something
unread)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from agenthub.store.db import Row, Session, Statement
from agenthub.store.messages import LISTED
from agenthub.store.tables import mentions, messages, room_members, rooms

# Not named like the columns of room_members (room_id, agent_id, last_read_seq): the UPDATE
# below sets one of them, and SQLAlchemy's engine would read such a name as a value to SET.
_ROOM = sa.bindparam("target_room", type_=sa.Uuid)
_READER = sa.bindparam("reader", type_=sa.Uuid)
_MARK = sa.bindparam("mark", type_=sa.BigInteger)


def _mark() -> Statement:
    """Move the reader's marker forward to ``mark``, in one round trip, and say what the rules
    need to know when it did not move: one row (none when the room does not exist) with the
    room's visibility and ``last_seq``, the marker as this statement's snapshot saw it
    (``last_read_seq``, NULL for a non-member) and ``moved_to`` (the new marker, NULL when it
    did not move).

    The UPDATE only writes when ``mark`` is ahead of the stored marker and not beyond the
    room's ``last_seq``: a no-op (a lower or equal seq, which clients send all the time) writes
    no row version. The WHERE is re-checked on the newest row version when two marks race
    (READ COMMITTED), and GREATEST keeps the SET itself from ever moving the marker back."""
    moved = (
        sa.update(room_members)
        .where(
            room_members.c.room_id == _ROOM,
            room_members.c.agent_id == _READER,
            room_members.c.last_read_seq < _MARK,
            rooms.c.id == room_members.c.room_id,
            rooms.c.last_seq >= _MARK,
        )
        .values(last_read_seq=sa.func.greatest(room_members.c.last_read_seq, _MARK))
        .returning(room_members.c.last_read_seq.label("moved_to"))
        .cte("moved")
    )
    mine = room_members.alias("mine")
    target = (
        sa.select(
            rooms.c.visibility,
            rooms.c.last_seq,
            mine.c.last_read_seq,
        )
        .select_from(
            rooms.outerjoin(mine, sa.and_(mine.c.room_id == rooms.c.id, mine.c.agent_id == _READER))
        )
        .where(rooms.c.id == _ROOM)
        .subquery("target")
    )
    return Statement(
        sa.select(*target.c, moved.c.moved_to).select_from(target.outerjoin(moved, sa.true()))
    )


_MARK_READ = _mark()


async def mark(s: Session, room_id: uuid.UUID, agent_id: uuid.UUID, seq: int) -> Row | None:
    """See ``_mark``: ``{visibility, last_seq, last_read_seq, moved_to}``, or None when the
    room does not exist."""
    return await s.one(_MARK_READ, target_room=room_id, reader=agent_id, mark=seq)


# --- the inbox -----------------------------------------------------------------------------

_VIEWER = sa.bindparam("viewer", type_=sa.Uuid)
# Message columns in the inbox row carry this prefix (rooms and messages share column names).
MESSAGE_PREFIX = "m_"


def _inbox() -> Statement:
    """The viewer's rooms with something unread, most recent first, each with its read state
    and its newest message that is not a tombstone: ONE statement, whatever the number of rooms.

    It walks the viewer's memberships (index room_members.agent_id), keeps the rooms whose
    ``last_seq`` is past the marker (a room read to the end costs nothing more), and for those
    only counts, on index ranges, the unread messages (messages (room_id, seq)) and mentions
    (mentions (agent_id, room_id, seq)), and reads the newest message (messages (room_id, seq)
    backwards, to the first that is not a tombstone)."""
    mine = room_members
    unread = (
        sa.select(sa.func.count().label("n"))
        .where(
            messages.c.room_id == mine.c.room_id,
            messages.c.seq > mine.c.last_read_seq,
            messages.c.sender_id != _VIEWER,
            messages.c.redacted_at.is_(None),
        )
        .lateral("unread")
    )
    mentioned = (
        sa.select(sa.func.count().label("n"))
        .where(
            mentions.c.agent_id == _VIEWER,
            mentions.c.room_id == mine.c.room_id,
            mentions.c.seq > mine.c.last_read_seq,
        )
        .lateral("mentioned")
    )
    newest = (
        sa.select(*(c.label(MESSAGE_PREFIX + c.key) for c in LISTED))
        .where(messages.c.room_id == mine.c.room_id, messages.c.redacted_at.is_(None))
        .order_by(messages.c.seq.desc())
        .limit(1)
        .lateral("newest")
    )
    return Statement(
        sa.select(
            *rooms.c,
            sa.true().label("is_member"),
            mine.c.last_read_seq,
            unread.c.n.label("unread_count"),
            mentioned.c.n.label("unread_mentions"),
            *newest.c,
        )
        .select_from(
            mine.join(rooms, rooms.c.id == mine.c.room_id)
            .join(unread, sa.true())
            .join(mentioned, sa.true())
            .outerjoin(newest, sa.true())
        )
        .where(
            mine.c.agent_id == _VIEWER,
            rooms.c.last_seq > mine.c.last_read_seq,
            sa.or_(unread.c.n > 0, mentioned.c.n > 0),
        )
        .order_by(
            newest.c[MESSAGE_PREFIX + "created_at"].desc().nulls_last(),
            rooms.c.last_seq.desc(),
            rooms.c.id,
        )
    )


_INBOX = _inbox()


async def inbox(s: Session, agent_id: uuid.UUID) -> list[Row]:
    """Rows of room columns, ``is_member``, ``last_read_seq``, ``unread_count``,
    ``unread_mentions`` and the newest message's columns prefixed ``m_`` (all NULL when the
    room holds no message that is not a tombstone)."""
    return await s.all(_INBOX, viewer=agent_id)


def newest_message(row: Row) -> dict[str, Any] | None:
    """The inbox row's newest message, as a message row; None when it has none."""
    if row[MESSAGE_PREFIX + "id"] is None:
        return None
    n = len(MESSAGE_PREFIX)
    return {k[n:]: v for k, v in row.items() if k.startswith(MESSAGE_PREFIX)}
