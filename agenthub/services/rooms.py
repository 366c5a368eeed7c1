"""Rooms and membership."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from agenthub.errors import Conflict, Forbidden, NotFound, ValidationFailed
from agenthub.events import EventBus, MemberAdded, MemberRemoved
from agenthub.models import Member, Principal, Room
from agenthub.services.audit import record
from agenthub.services.names import check_display_name, check_slug
from agenthub.store import agents as agent_store
from agenthub.store import rooms as room_store
from agenthub.store.db import Database, Row, Session, UniqueViolation

VISIBILITIES = ("public", "private")

# Answers "is this agent online in this room?"; the socket layer provides it.
OnlineCheck = Callable[[uuid.UUID, uuid.UUID], bool]


def _can_see(principal: Principal | None, row: Row) -> bool:
    return (
        principal is None
        or principal.is_admin
        or row["visibility"] == "public"
        or bool(row["is_member"])
    )


async def load_visible_room(s: Session, principal: Principal | None, room_id: uuid.UUID) -> Row:
    """The room row, or NotFound when it is absent or private to someone else."""
    viewer = principal.agent_id if principal is not None else uuid.UUID(int=0)
    row = await room_store.by_id(s, room_id, viewer)
    if row is None or not _can_see(principal, row):
        raise NotFound("room not found")
    return row


class RoomService:
    def __init__(self, db: Database, bus: EventBus) -> None:
        self._db = db
        self._bus = bus
        self._online: OnlineCheck = lambda room_id, agent_id: False

    def set_online_check(self, check: OnlineCheck) -> None:
        self._online = check

    async def last_seqs(self) -> dict[uuid.UUID, int]:
        """Where every room stands, for the socket layer's in-order broadcast. Internal: no
        principal, nothing of it reaches a client."""
        async with self._db.session() as s:
            return await room_store.last_seqs(s)

    async def create_room(
        self, principal: Principal, *, slug: str, name: str | None, visibility: str = "public"
    ) -> Room:
        check_slug("slug", slug)
        display = check_display_name("name", name or slug)
        if visibility not in VISIBILITIES:
            raise ValidationFailed("invalid visibility", {"visibility": "one of public, private"})
        try:
            async with self._db.transaction() as s:
                row = await room_store.insert(
                    s, slug=slug, name=display, visibility=visibility, created_by=principal.agent_id
                )
                await room_store.add_member(s, row["id"], principal.agent_id)
                await record(
                    s,
                    "room-created",
                    principal.agent_id,
                    roomId=str(row["id"]),
                    slug=slug,
                    visibility=visibility,
                )
                await record(
                    s,
                    "member-added",
                    principal.agent_id,
                    roomId=str(row["id"]),
                    memberId=str(principal.agent_id),
                )
        except UniqueViolation:
            raise Conflict("a room with this slug already exists", {"slug": slug}) from None
        await self._bus.publish(MemberAdded(room_id=row["id"], agent_id=principal.agent_id))
        return Room.from_row(row, member=True)

    async def list_rooms(self, principal: Principal) -> list[Room]:
        async with self._db.session() as s:
            rows = await room_store.visible_to(
                s, principal.agent_id, include_private=principal.is_admin
            )
        return [Room.from_row(r, member=bool(r["is_member"])) for r in rows]

    async def get_room(self, principal: Principal | None, room_id: uuid.UUID) -> Room:
        async with self._db.session() as s:
            row = await load_visible_room(s, principal, room_id)
        return Room.from_row(row, member=bool(row["is_member"]))

    async def get_room_by_slug(self, slug: str) -> Room:
        async with self._db.session() as s:
            row = await room_store.by_slug(s, slug, uuid.UUID(int=0))
        if row is None:
            raise NotFound(f"room {slug!r} not found")
        return Room.from_row(row, member=False)

    async def list_members(self, principal: Principal, room_id: uuid.UUID) -> list[Member]:
        async with self._db.session() as s:
            await load_visible_room(s, principal, room_id)
            rows = await room_store.members(s, room_id)
        out = []
        for r in rows:
            m = Member.from_row(r)
            out.append(
                Member(
                    agent_id=m.agent_id,
                    name=m.name,
                    display_name=m.display_name,
                    role=m.role,
                    joined_at=m.joined_at,
                    online=self._online(room_id, m.agent_id),
                )
            )
        return out

    async def rooms_of(self, agent_id: uuid.UUID) -> list[Row]:
        """(id, slug, last_seq) of every room the agent is a member of."""
        async with self._db.session() as s:
            return await room_store.for_member(s, agent_id)

    async def add_member(
        self, principal: Principal | None, room_id: uuid.UUID, agent_id: uuid.UUID
    ) -> tuple[Member, bool]:
        """(member, created). Public: anyone may join themselves, members add others.
        Private: only members and admins add anyone."""
        async with self._db.transaction() as s:
            room = await load_visible_room(s, principal, room_id)
            if principal is not None and not principal.is_admin:
                adding_self = principal.agent_id == agent_id
                if not room["is_member"] and not (adding_self and room["visibility"] == "public"):
                    raise Forbidden("only room members or admins may add members to this room")
            target = await agent_store.by_id(s, agent_id)
            if target is None:
                raise NotFound("agent not found")
            created = await room_store.add_member(s, room_id, agent_id)
            if created:
                await record(
                    s,
                    "member-added",
                    None if principal is None else principal.agent_id,
                    roomId=str(room_id),
                    memberId=str(agent_id),
                )
            rows = await room_store.members(s, room_id)
        member_row = next(r for r in rows if r["agent_id"] == agent_id)
        if created:
            await self._bus.publish(MemberAdded(room_id=room_id, agent_id=agent_id))
        return Member.from_row(member_row), created

    async def remove_member(
        self, principal: Principal | None, room_id: uuid.UUID, agent_id: uuid.UUID
    ) -> None:
        async with self._db.transaction() as s:
            await load_visible_room(s, principal, room_id)
            if principal is not None and not principal.is_admin and principal.agent_id != agent_id:
                raise Forbidden("only the member itself or an admin may remove a member")
            removed = await room_store.remove_member(s, room_id, agent_id)
            if not removed:
                raise NotFound("agent is not a member of this room")
            await record(
                s,
                "member-removed",
                None if principal is None else principal.agent_id,
                roomId=str(room_id),
                memberId=str(agent_id),
            )
        await self._bus.publish(MemberRemoved(room_id=room_id, agent_id=agent_id))
