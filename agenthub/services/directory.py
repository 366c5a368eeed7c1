"""Rooms by slug and agents by name: every path and payload that names a room or an agent may
use its id or its human name (``general``, ``alice``, ``me``).

A UUID-shaped value is always an id (``domain.parse_ref``, applied here to any string); slugs
and names shaped like one are refused at creation, so the two never meet. Slugs and names never
change once created (no operation renames them), so what was looked up once stays true and is
kept in memory, bounded; a lookup that finds nothing is not kept.
"""

from __future__ import annotations

import uuid

from agenthub.actors import Actor, Principal
from agenthub.domain import ME, parse_ref
from agenthub.errors import NotFound
from agenthub.store import agents as agent_store
from agenthub.store import rooms as room_store
from agenthub.store.db import Database

RoomRef = uuid.UUID | str  # an id, or a slug
AgentRef = uuid.UUID | str  # an id, a name, or "me"

_MAX_KEPT = 10_000


class Directory:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._rooms: dict[str, uuid.UUID] = {}
        self._agents: dict[str, uuid.UUID] = {}

    async def room_id(self, ref: RoomRef) -> uuid.UUID:
        """The id of the room ``ref`` names; NotFound when no room has that slug. Whether the
        caller may see the room is the caller's check (a private room answers 404 there)."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        if isinstance(ref, uuid.UUID):
            return ref
        found = self._rooms.get(ref)
        if found is None:
            async with self._db.session() as s:
                found = await room_store.id_by_slug(s, ref)
            if found is None:
                raise NotFound("room not found")
            _keep(self._rooms, ref, found)
        return found

    async def agent_id(self, actor: Actor, ref: AgentRef) -> uuid.UUID:
        """The id of the agent ``ref`` names (``me``: the caller); NotFound when none."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        if isinstance(ref, uuid.UUID):
            return ref
        if ref == ME:
            if isinstance(actor, Principal):
                return actor.agent_id
            raise NotFound("'me' names the calling agent; the host operator is not one")
        found = self._agents.get(ref)
        if found is None:
            async with self._db.session() as s:
                found = await agent_store.id_by_name(s, ref)
            if found is None:
                raise NotFound("agent not found")
            _keep(self._agents, ref, found)
        return found


def _keep(cache: dict[str, uuid.UUID], key: str, value: uuid.UUID) -> None:
    if len(cache) >= _MAX_KEPT:
        cache.clear()  # rare, and cheap to refill: names are looked up one query each
    cache[key] = value
