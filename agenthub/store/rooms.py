"""Queries on rooms and their members."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from agenthub.domain import ROOM_KINDS
from agenthub.store.db import Row, Session, Statement
from agenthub.store.tables import agents, mentions, messages, room_members, rooms

_INSERT = Statement(
    sa.insert(rooms)
    .values(
        slug=sa.bindparam("slug"),
        name=sa.bindparam("name"),
        visibility=sa.bindparam("visibility"),
        created_by=sa.bindparam("created_by"),
        topic=sa.bindparam("topic"),
    )
    .returning(*rooms.c)
)

_VIEWER = sa.bindparam("viewer", type_=sa.Uuid)
# The viewer's membership row, when it is a member (outer-joined: NULL otherwise).
_MINE = room_members.alias("mine")
_IS_MEMBER_COLUMN = _MINE.c.agent_id.is_not(None)
# Messages after the viewer's read marker, not its own, tombstones left out: a range of the
# index (room_id, seq), so it costs what is unread.
UNREAD_MESSAGES = (
    sa.select(sa.func.count())
    .where(
        messages.c.room_id == rooms.c.id,
        messages.c.seq > _MINE.c.last_read_seq,
        messages.c.sender_id != _VIEWER,
        messages.c.redacted_at.is_(None),
    )
    .scalar_subquery()
)
# Mentions of the viewer after its read marker: a range of the key (agent_id, room_id, seq).
UNREAD_MENTIONS = (
    sa.select(sa.func.count())
    .where(
        mentions.c.agent_id == _VIEWER,
        mentions.c.room_id == rooms.c.id,
        mentions.c.seq > _MINE.c.last_read_seq,
    )
    .scalar_subquery()
)
# Every room column, whether the viewer is a member and, for a member only (NULL otherwise),
# its read state: its marker and what is unread after it. One statement for any number of
# rooms; the counts are only computed for the rooms the viewer is in.
_WITH_MEMBERSHIP = sa.select(
    *rooms.c,
    _IS_MEMBER_COLUMN.label("is_member"),
    _MINE.c.last_read_seq.label("last_read_seq"),
    sa.case((_IS_MEMBER_COLUMN, UNREAD_MESSAGES)).label("unread_count"),
    sa.case((_IS_MEMBER_COLUMN, UNREAD_MENTIONS)).label("unread_mentions"),
).select_from(
    rooms.outerjoin(_MINE, sa.and_(_MINE.c.room_id == rooms.c.id, _MINE.c.agent_id == _VIEWER))
)
# What a member that has just joined (or created) a room has read: nothing (0 at join).
NEW_MEMBER = {"last_read_seq": 0, "unread_count": 0, "unread_mentions": 0}
_BY_ID = Statement(_WITH_MEMBERSHIP.where(rooms.c.id == sa.bindparam("room_id")))
_BY_SLUG = Statement(_WITH_MEMBERSHIP.where(rooms.c.slug == sa.bindparam("slug")))
_UPDATE = Statement(
    sa.update(rooms)
    .where(rooms.c.id == sa.bindparam("room_id"))
    .values(
        # NULL keeps the current value: one statement serves every PATCH.
        # Not named like the columns: SQLAlchemy's engine would read those as values to SET.
        name=sa.func.coalesce(sa.bindparam("new_name", type_=sa.Text), rooms.c.name),
        topic=sa.func.coalesce(sa.bindparam("new_topic", type_=sa.Text), rooms.c.topic),
    )
    .returning(*rooms.c)
)
_ARCHIVE = Statement(
    sa.update(rooms)
    .where(rooms.c.id == sa.bindparam("room_id"))
    .values(archived_at=sa.func.coalesce(rooms.c.archived_at, sa.func.now()))
    .returning(*rooms.c)
)
_UNARCHIVE = Statement(
    sa.update(rooms)
    .where(rooms.c.id == sa.bindparam("room_id"))
    .values(archived_at=None)
    .returning(*rooms.c)
)
# A direct-message room: ON CONFLICT on dm_key makes two agents opening the same DM at once
# safe (the second insert waits for the first to commit, then inserts nothing).
_INSERT_DM = Statement(
    pg_insert(rooms)
    .values(
        slug=sa.bindparam("slug"),
        name=sa.bindparam("name"),
        visibility="private",
        kind="dm",
        dm_key=sa.bindparam("dm_key"),
        created_by=sa.bindparam("created_by"),
    )
    .on_conflict_do_nothing(index_elements=["dm_key"])
    .returning(*rooms.c)
)
_BY_DM_KEY = Statement(_WITH_MEMBERSHIP.where(rooms.c.dm_key == sa.bindparam("dm_key")))
_ID_BY_SLUG = Statement(sa.select(rooms.c.id).where(rooms.c.slug == sa.bindparam("slug")))


def _listing(include_private: bool, kind: str | None) -> Statement:
    """Rooms by slug: every room (admins) or the public ones and the viewer's; of one kind or
    of any (None)."""
    query = _WITH_MEMBERSHIP
    if not include_private:
        query = query.where(sa.or_(rooms.c.visibility == "public", _IS_MEMBER_COLUMN))
    if kind is not None:
        query = query.where(rooms.c.kind == kind)
    return Statement(query.order_by(rooms.c.slug))


_LISTINGS = {
    (include_private, kind): _listing(include_private, kind)
    for include_private in (True, False)
    for kind in (None, *ROOM_KINDS)
}
_FOR_MEMBER = Statement(
    sa.select(rooms.c.id, rooms.c.slug, rooms.c.last_seq)
    .join(room_members, room_members.c.room_id == rooms.c.id)
    .where(room_members.c.agent_id == sa.bindparam("agent_id"))
    .order_by(rooms.c.slug)
)
_MEMBERS = Statement(
    sa.select(
        room_members.c.agent_id,
        room_members.c.joined_at,
        agents.c.name,
        agents.c.display_name,
        agents.c.role,
    )
    .join(agents, agents.c.id == room_members.c.agent_id)
    .where(room_members.c.room_id == sa.bindparam("room_id"))
    .order_by(agents.c.name)
)
_MEMBERSHIP = (
    room_members.c.room_id == sa.bindparam("room_id"),
    room_members.c.agent_id == sa.bindparam("agent_id"),
)
_IS_MEMBER = Statement(sa.select(sa.literal(1)).where(*_MEMBERSHIP))
_ADD_MEMBER = Statement(
    pg_insert(room_members)
    .values(room_id=sa.bindparam("room_id"), agent_id=sa.bindparam("agent_id"))
    .on_conflict_do_nothing(index_elements=["room_id", "agent_id"])
)
_REMOVE_MEMBER = Statement(sa.delete(room_members).where(*_MEMBERSHIP))


async def insert(
    s: Session,
    *,
    slug: str,
    name: str,
    visibility: str,
    created_by: uuid.UUID | None,
    topic: str = "",
) -> Row:
    row = await s.one(
        _INSERT,
        slug=slug,
        name=name,
        visibility=visibility,
        created_by=created_by,
        topic=topic,
    )
    assert row is not None
    return row


async def insert_dm(
    s: Session, *, slug: str, name: str, dm_key: str, created_by: uuid.UUID
) -> Row | None:
    """The new DM room, or None when a room with this ``dm_key`` exists (it may have been
    committed by another transaction while this one waited)."""
    return await s.one(_INSERT_DM, slug=slug, name=name, dm_key=dm_key, created_by=created_by)


async def by_dm_key(s: Session, dm_key: str, viewer: uuid.UUID) -> Row | None:
    return await s.one(_BY_DM_KEY, dm_key=dm_key, viewer=viewer)


async def by_id(s: Session, room_id: uuid.UUID, viewer: uuid.UUID) -> Row | None:
    return await s.one(_BY_ID, room_id=room_id, viewer=viewer)


async def by_slug(s: Session, slug: str, viewer: uuid.UUID) -> Row | None:
    return await s.one(_BY_SLUG, slug=slug, viewer=viewer)


async def visible_to(
    s: Session, viewer: uuid.UUID, include_private: bool, kind: str | None = None
) -> list[Row]:
    """``kind`` None lists rooms of every kind; otherwise one of ``ROOM_KINDS``."""
    return await s.all(_LISTINGS[include_private, kind], viewer=viewer)


async def for_member(s: Session, agent_id: uuid.UUID) -> list[Row]:
    return await s.all(_FOR_MEMBER, agent_id=agent_id)


async def update(s: Session, room_id: uuid.UUID, *, name: str | None, topic: str | None) -> Row:
    """Set the name and/or topic (None keeps it); the room must exist."""
    row = await s.one(_UPDATE, room_id=room_id, new_name=name, new_topic=topic)
    assert row is not None
    return row


async def set_archived(s: Session, room_id: uuid.UUID, archived: bool) -> Row:
    row = await s.one(_ARCHIVE if archived else _UNARCHIVE, room_id=room_id)
    assert row is not None
    return row


async def id_by_slug(s: Session, slug: str) -> uuid.UUID | None:
    found: uuid.UUID | None = await s.scalar(_ID_BY_SLUG, slug=slug)
    return found


async def members(s: Session, room_id: uuid.UUID) -> list[Row]:
    return await s.all(_MEMBERS, room_id=room_id)


async def is_member(s: Session, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    found = await s.scalar(_IS_MEMBER, room_id=room_id, agent_id=agent_id)
    return found is not None


async def add_member(s: Session, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    """True when the agent was added, False when it already was a member."""
    inserted = await s.execute(_ADD_MEMBER, room_id=room_id, agent_id=agent_id)
    return inserted == 1


async def remove_member(s: Session, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    removed = await s.execute(_REMOVE_MEMBER, room_id=room_id, agent_id=agent_id)
    return removed == 1
