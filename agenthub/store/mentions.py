"""Queries on mentions: the messages that mention an agent, across the rooms it is in."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from agenthub.store.db import Row, Session, Statement
from agenthub.store.messages import LISTED
from agenthub.store.tables import mentions, messages, room_members, rooms

_LIMIT = sa.bindparam("limit", type_=sa.Integer)

# A mention row, with the message it points at and the room's slug, kept only while the agent
# is a member of the room (the join on room_members: a room left is a room no longer read).
_MENTIONS = (
    sa.select(*LISTED, rooms.c.slug.label("room_slug"), mentions.c.position)
    .select_from(
        mentions.join(
            room_members,
            sa.and_(
                room_members.c.room_id == mentions.c.room_id,
                room_members.c.agent_id == mentions.c.agent_id,
            ),
        )
        .join(
            messages,
            sa.and_(messages.c.room_id == mentions.c.room_id, messages.c.seq == mentions.c.seq),
        )
        .join(rooms, rooms.c.id == mentions.c.room_id)
    )
    .where(mentions.c.agent_id == sa.bindparam("agent_id", type_=sa.Uuid))
)
# After the agent's read marker in that room.
_UNREAD = mentions.c.seq > room_members.c.last_read_seq


def _pages(*where: sa.ColumnElement[bool]) -> dict[str, Statement]:
    """Newest first, newest before a position, oldest after a position: each walks the index
    (agent_id, position) in its direction and stops at ``limit`` rows."""
    base = _MENTIONS.where(*where)
    before = mentions.c.position < sa.bindparam("before_position", type_=sa.BigInteger)
    after = mentions.c.position > sa.bindparam("after_position", type_=sa.BigInteger)
    newest = mentions.c.position.desc()
    return {
        "newest": Statement(base.order_by(newest).limit(_LIMIT)),
        "before": Statement(base.where(before).order_by(newest).limit(_LIMIT)),
        "after": Statement(base.where(after).order_by(mentions.c.position.asc()).limit(_LIMIT)),
    }


_ALL = _pages()
_ONLY_UNREAD = _pages(_UNREAD)


async def page(
    s: Session,
    agent_id: uuid.UUID,
    *,
    unread: bool,
    limit: int,
    before_position: int | None = None,
    after_position: int | None = None,
) -> list[Row]:
    """Mentions of the agent newest first (before ``before_position`` when given), or oldest
    first after ``after_position``; each row is the message (as listings show it), its
    ``room_slug`` and the mention's ``position`` (for cursors)."""
    pages = _ONLY_UNREAD if unread else _ALL
    if after_position is not None:
        return await s.all(
            pages["after"], agent_id=agent_id, after_position=after_position, limit=limit
        )
    if before_position is not None:
        return await s.all(
            pages["before"], agent_id=agent_id, before_position=before_position, limit=limit
        )
    return await s.all(pages["newest"], agent_id=agent_id, limit=limit)
