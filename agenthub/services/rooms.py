"""Rooms and membership."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable

from agenthub.actors import Actor, Principal
from agenthub.domain import MAX_TOPIC, ME, ROOM_KINDS, VISIBILITIES, one_of
from agenthub.errors import Conflict, Forbidden, NotFound, ValidationFailed
from agenthub.events import EventBus, MemberAdded, MemberRemoved, RoomUpdated
from agenthub.models import Member, Room
from agenthub.services.audit import record
from agenthub.services.directory import AgentRef, Directory, RoomRef
from agenthub.services.names import check_display_name, check_slug
from agenthub.store import agents as agent_store
from agenthub.store import rooms as room_store
from agenthub.store.db import Database, Row, Session, UniqueViolation

# Answers "is this agent online in this room?"; the socket layer provides it.
OnlineCheck = Callable[[uuid.UUID, uuid.UUID], bool]
# Several processes: which of these agents are online in this room on any of them.
OnlineLookup = Callable[[uuid.UUID, list[uuid.UUID]], Awaitable[set[uuid.UUID]]]


def _check_manager(actor: Actor, row: Row, verb: str) -> None:
    """Only a room's creator, or an admin, may change it."""
    if not actor.is_admin and not (row["created_by"] and actor.is_agent(row["created_by"])):
        raise Forbidden(f"only the room's creator or an admin may {verb} it")


def check_topic(topic: str) -> str:
    if len(topic) > MAX_TOPIC or "\x00" in topic:
        raise ValidationFailed(
            "invalid topic", {"topic": [f"at most {MAX_TOPIC} characters, no NUL"]}
        )
    return topic


# The viewer id of an actor with no agent identity (the operator): a member of nothing.
_NOBODY = uuid.UUID(int=0)


def _viewer(actor: Actor) -> uuid.UUID:
    return actor.agent_id if isinstance(actor, Principal) else _NOBODY


def dm_key(a: uuid.UUID, b: uuid.UUID) -> str:
    """What identifies the DM room of two agents, whichever of them asks: their ids, sorted."""
    return ":".join(sorted((str(a), str(b))))


def _dm_slug() -> str:
    """A fresh DM room slug. Random, not derived from the two ids (which anyone may read): a
    derived slug could be taken first by an ordinary room and block that DM. The prefix keeps it
    from ever being shaped like a UUID."""
    return f"dm-{secrets.token_hex(8)}"


# New slugs tried before a DM creation gives up; one clash in 2**64 is already unheard of.
_DM_SLUG_TRIES = 3


def _refuse_dm_membership(row: Row) -> None:
    """A DM room holds exactly its two agents, for good: nobody joins, leaves or is added."""
    if row["kind"] == "dm":
        raise Conflict(
            "the members of a direct-message room cannot change",
            {"id": ["a DM room: its two agents are its only members, for good"]},
        )


def _can_see(actor: Actor, row: Row) -> bool:
    return actor.is_admin or row["visibility"] == "public" or bool(row["is_member"])


async def load_visible_room(s: Session, actor: Actor, room_id: uuid.UUID) -> Row:
    """The room row, or NotFound when it is absent or private to someone else."""
    row = await room_store.by_id(s, room_id, _viewer(actor))
    if row is None or not _can_see(actor, row):
        raise NotFound("room not found")
    return row


class RoomService:
    def __init__(self, db: Database, bus: EventBus, directory: Directory) -> None:
        self._db = db
        self._directory = directory
        self._bus = bus
        self._online: OnlineCheck = lambda room_id, agent_id: False
        self._online_lookup: OnlineLookup | None = None

    def set_online_check(self, check: OnlineCheck) -> None:
        self._online = check

    def set_online_lookup(self, lookup: OnlineLookup) -> None:
        """Several processes: who is online anywhere (asked once per member listing)."""
        self._online_lookup = lookup

    async def create_room(
        self,
        actor: Actor,
        *,
        slug: str,
        name: str | None,
        visibility: str = "public",
        topic: str = "",
    ) -> Room:
        """An agent that creates a room is its creator and first member; a room the operator
        creates has neither (members are added explicitly)."""
        check_slug("slug", slug)
        display = check_display_name("name", name or slug)
        if visibility not in VISIBILITIES:
            raise ValidationFailed("invalid visibility", {"visibility": one_of(VISIBILITIES)})
        check_topic(topic)
        creator = actor.agent_id if isinstance(actor, Principal) else None
        try:
            async with self._db.transaction() as s:
                row = await room_store.insert(
                    s,
                    slug=slug,
                    name=display,
                    visibility=visibility,
                    created_by=creator,
                    topic=topic,
                )
                await record(
                    s,
                    "room-created",
                    actor.audit_agent_id,
                    roomId=str(row["id"]),
                    slug=slug,
                    visibility=visibility,
                )
                if creator is not None:
                    await room_store.add_member(s, row["id"], creator)
                    await record(
                        s,
                        "member-added",
                        creator,
                        roomId=str(row["id"]),
                        memberId=str(creator),
                    )
        except UniqueViolation:
            raise Conflict(
                "a room with this slug already exists", {"slug": [f"{slug!r} is taken"]}
            ) from None
        if creator is not None:
            await self._bus.publish(MemberAdded(room_id=row["id"], agent_id=creator))
        # The creator has read nothing of a room that holds nothing.
        return Room.from_row({**row, **room_store.NEW_MEMBER}, member=creator is not None)

    async def list_rooms(self, actor: Actor, kind: str | None = None) -> list[Room]:
        """The rooms the actor can see, by slug; only those of ``kind`` when given."""
        if kind is not None and kind not in ROOM_KINDS:
            raise ValidationFailed("invalid kind", {"kind": one_of(ROOM_KINDS)})
        async with self._db.session() as s:
            rows = await room_store.visible_to(
                s, _viewer(actor), include_private=actor.is_admin, kind=kind
            )
        return [Room.from_row(r, member=bool(r["is_member"])) for r in rows]

    async def get_room(self, actor: Actor, ref: RoomRef) -> Room:
        room_id = await self._directory.room_id(ref)
        async with self._db.session() as s:
            row = await load_visible_room(s, actor, room_id)
        return Room.from_row(row, member=bool(row["is_member"]))

    async def update_room(
        self, actor: Actor, ref: RoomRef, *, name: str | None, topic: str | None
    ) -> Room:
        """Change the name and/or the topic (creator or admin)."""
        if name is None and topic is None:
            raise ValidationFailed("nothing to change", {"body": ["give name, topic or both"]})
        display = None if name is None else check_display_name("name", name)
        if topic is not None:
            check_topic(topic)
        room_id = await self._directory.room_id(ref)
        async with self._db.transaction() as s:
            row = await load_visible_room(s, actor, room_id)
            _check_manager(actor, row, "change")
            updated = await room_store.update(s, room_id, name=display, topic=topic)
            changes = {k: v for k, v in (("name", display), ("topic", topic)) if v is not None}
            await record(s, "room-updated", actor.audit_agent_id, roomId=str(room_id), **changes)
        # The caller's read state as this transaction read it; the change leaves it as it was.
        room = Room.from_row({**row, **updated}, member=bool(row["is_member"]))
        await self._bus.publish(RoomUpdated(room.shared()))
        return room

    async def set_archived(self, actor: Actor, ref: RoomRef, archived: bool) -> Room:
        """Archive (no new posts; reading goes on) or unarchive (creator or admin). Asking for
        the state the room is already in changes nothing and writes no audit event."""
        room_id = await self._directory.room_id(ref)
        async with self._db.transaction() as s:
            row = await load_visible_room(s, actor, room_id)
            # Before the manager check: neither of a DM's two agents may archive it.
            if row["kind"] == "dm":
                raise Conflict("a direct-message room cannot be archived", {"id": ["a DM"]})
            _check_manager(actor, row, "archive" if archived else "unarchive")
            changed = (row["archived_at"] is None) == archived
            if changed:
                row = {**row, **await room_store.set_archived(s, room_id, archived)}
                await record(
                    s,
                    "room-archived" if archived else "room-unarchived",
                    actor.audit_agent_id,
                    roomId=str(room_id),
                )
        room = Room.from_row(row, member=bool(row["is_member"]))
        if changed:
            await self._bus.publish(RoomUpdated(room.shared()))
        return room

    async def get_room_by_slug(self, slug: str) -> Room:
        async with self._db.session() as s:
            row = await room_store.by_slug(s, slug, uuid.UUID(int=0))
        if row is None:
            raise NotFound(f"room {slug!r} not found")
        return Room.from_row(row, member=False)

    async def list_members(self, actor: Actor, ref: RoomRef) -> list[Member]:
        room_id = await self._directory.room_id(ref)
        async with self._db.session() as s:
            await load_visible_room(s, actor, room_id)
            rows = await room_store.members(s, room_id)
        online: set[uuid.UUID] | None = None
        if self._online_lookup is not None:
            online = await self._online_lookup(room_id, [r["agent_id"] for r in rows])
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
                    online=(
                        m.agent_id in online
                        if online is not None
                        else self._online(room_id, m.agent_id)
                    ),
                )
            )
        return out

    async def rooms_of(self, agent_id: uuid.UUID) -> list[Row]:
        """(id, slug, last_seq) of every room the agent is a member of."""
        async with self._db.session() as s:
            return await room_store.for_member(s, agent_id)

    async def add_member(
        self, actor: Actor, room: RoomRef, agent: AgentRef | None = None
    ) -> tuple[Member, bool]:
        """(member, created); ``agent`` None adds the caller. Public: anyone may join
        themselves, members add others. Private: only members and admins add anyone."""
        room_id = await self._directory.room_id(room)
        agent_id = await self._directory.agent_id(actor, ME if agent is None else agent)
        async with self._db.transaction() as s:
            row = await load_visible_room(s, actor, room_id)
            _refuse_dm_membership(row)
            if not actor.is_admin:
                adding_self = actor.is_agent(agent_id)
                if not row["is_member"] and not (adding_self and row["visibility"] == "public"):
                    raise Forbidden("only room members or admins may add members to this room")
            target = await agent_store.by_id(s, agent_id)
            if target is None:
                raise NotFound("agent not found")
            created = await room_store.add_member(s, room_id, agent_id)
            if created:
                await record(
                    s,
                    "member-added",
                    actor.audit_agent_id,
                    roomId=str(room_id),
                    memberId=str(agent_id),
                )
            rows = await room_store.members(s, room_id)
        member_row = next(r for r in rows if r["agent_id"] == agent_id)
        if created:
            await self._bus.publish(MemberAdded(room_id=room_id, agent_id=agent_id))
        return Member.from_row(member_row), created

    async def remove_member(self, actor: Actor, room: RoomRef, agent: AgentRef) -> None:
        room_id = await self._directory.room_id(room)
        agent_id = await self._directory.agent_id(actor, agent)
        async with self._db.transaction() as s:
            row = await load_visible_room(s, actor, room_id)
            _refuse_dm_membership(row)
            if not actor.is_admin and not actor.is_agent(agent_id):
                raise Forbidden("only the member itself or an admin may remove a member")
            removed = await room_store.remove_member(s, room_id, agent_id)
            if not removed:
                raise NotFound("agent is not a member of this room")
            await record(
                s,
                "member-removed",
                actor.audit_agent_id,
                roomId=str(room_id),
                memberId=str(agent_id),
            )
        await self._bus.publish(MemberRemoved(room_id=room_id, agent_id=agent_id))

    async def open_dm(self, principal: Principal, agent: AgentRef) -> tuple[Room, bool]:
        """(room, created): the direct-message room of the caller and ``agent``, created on
        first use. Either agent asking finds the same room. Opening a new DM with a disabled
        agent is refused (409); an existing one is still found, so its history stays at hand."""
        other_id = await self._directory.agent_id(principal, agent)
        if principal.is_agent(other_id):
            raise ValidationFailed(
                "a direct message needs another agent", {"agentId": ["names the caller"]}
            )
        key = dm_key(principal.agent_id, other_id)
        async with self._db.session() as s:
            row = await room_store.by_dm_key(s, key, principal.agent_id)
        if row is not None:
            return Room.from_row(row, member=bool(row["is_member"])), False
        for _ in range(_DM_SLUG_TRIES):
            try:
                return await self._create_dm(principal, other_id, key)
            except UniqueViolation as exc:
                if exc.constraint != "uq_rooms_slug":
                    raise
        raise Conflict("could not find a free slug for the DM room; try again")

    async def _create_dm(
        self, principal: Principal, other_id: uuid.UUID, key: str
    ) -> tuple[Room, bool]:
        async with self._db.transaction() as s:
            other = await agent_store.by_id(s, other_id)
            if other is None:
                raise NotFound("agent not found")
            if other["disabled_at"] is not None:
                raise Conflict(
                    "the agent is disabled: no new direct-message room with it",
                    {"agentId": ["a disabled agent"]},
                )
            row = await room_store.insert_dm(
                s,
                slug=_dm_slug(),
                name=", ".join(sorted((principal.name, other["name"]))),
                dm_key=key,
                created_by=principal.agent_id,
            )
            if row is None:
                # The other agent opened it at the same moment, and committed first.
                found = await room_store.by_dm_key(s, key, principal.agent_id)
                assert found is not None, "a DM room that conflicted is committed"
                return Room.from_row(found, member=bool(found["is_member"])), False
            for agent_id in (principal.agent_id, other_id):
                await room_store.add_member(s, row["id"], agent_id)
            await record(
                s,
                "dm-created",
                principal.agent_id,
                roomId=str(row["id"]),
                slug=row["slug"],
                memberIds=[str(principal.agent_id), str(other_id)],
            )
        # Both agents' live sockets enter the room, so its messages reach them at once.
        for agent_id in (principal.agent_id, other_id):
            await self._bus.publish(MemberAdded(room_id=row["id"], agent_id=agent_id))
        return Room.from_row({**row, **room_store.NEW_MEMBER}, member=True), True
