"""Queries on rooms and their members."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from agenthub.store.db import Row, Session
from agenthub.store.tables import agents, room_members, rooms


async def insert(
    s: Session, *, slug: str, name: str, visibility: str, created_by: uuid.UUID | None
) -> Row:
    row = await s.one(
        sa.insert(rooms)
        .values(slug=slug, name=name, visibility=visibility, created_by=created_by)
        .returning(*rooms.c)
    )
    assert row is not None
    return row


def _with_membership(agent_id: uuid.UUID) -> sa.Select[tuple[object, ...]]:
    is_member = (
        sa.select(sa.literal(True))
        .where(room_members.c.room_id == rooms.c.id, room_members.c.agent_id == agent_id)
        .exists()
        .label("is_member")
    )
    return sa.select(*rooms.c, is_member)


async def by_id(s: Session, room_id: uuid.UUID, viewer: uuid.UUID) -> Row | None:
    return await s.one(_with_membership(viewer).where(rooms.c.id == room_id))


async def by_slug(s: Session, slug: str, viewer: uuid.UUID) -> Row | None:
    return await s.one(_with_membership(viewer).where(rooms.c.slug == slug))


async def visible_to(s: Session, viewer: uuid.UUID, include_private: bool) -> list[Row]:
    stmt = _with_membership(viewer).order_by(rooms.c.slug)
    if not include_private:
        member_rooms = sa.select(room_members.c.room_id).where(room_members.c.agent_id == viewer)
        stmt = stmt.where(sa.or_(rooms.c.visibility == "public", rooms.c.id.in_(member_rooms)))
    return await s.all(stmt)


async def for_member(s: Session, agent_id: uuid.UUID) -> list[Row]:
    return await s.all(
        sa.select(rooms.c.id, rooms.c.slug, rooms.c.last_seq)
        .join(room_members, room_members.c.room_id == rooms.c.id)
        .where(room_members.c.agent_id == agent_id)
        .order_by(rooms.c.slug)
    )


async def members(s: Session, room_id: uuid.UUID) -> list[Row]:
    return await s.all(
        sa.select(
            room_members.c.agent_id,
            room_members.c.joined_at,
            agents.c.name,
            agents.c.display_name,
            agents.c.role,
        )
        .join(agents, agents.c.id == room_members.c.agent_id)
        .where(room_members.c.room_id == room_id)
        .order_by(agents.c.name)
    )


async def last_seqs(s: Session) -> dict[uuid.UUID, int]:
    """Every room's latest seq (a primary-key scan: one small row per room)."""
    rows = await s.all(sa.select(rooms.c.id, rooms.c.last_seq))
    return {row["id"]: int(row["last_seq"]) for row in rows}


async def is_member(s: Session, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    found = await s.scalar(
        sa.select(sa.literal(1)).where(
            room_members.c.room_id == room_id, room_members.c.agent_id == agent_id
        )
    )
    return found is not None


async def add_member(s: Session, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    """True when the agent was added, False when it already was a member."""
    inserted = await s.execute(
        pg_insert(room_members)
        .values(room_id=room_id, agent_id=agent_id)
        .on_conflict_do_nothing(index_elements=["room_id", "agent_id"])
    )
    return inserted == 1


async def remove_member(s: Session, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
    removed = await s.execute(
        sa.delete(room_members).where(
            room_members.c.room_id == room_id, room_members.c.agent_id == agent_id
        )
    )
    return removed == 1
