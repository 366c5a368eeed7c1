"""Read state: each member's read marker in a room, and the inbox built on it.

A read mark is not audited: clients send one for every batch of messages they show, so it would
outnumber every other audit event; ``agenthub_read_marks_total`` counts them instead.
"""

from __future__ import annotations

from agenthub.actors import Principal
from agenthub.errors import Forbidden, NotFound, ValidationFailed
from agenthub.events import EventBus, ReadMarked
from agenthub.models import Inbox, InboxEntry, Message, ReadMark, Room
from agenthub.services.directory import Directory, RoomRef
from agenthub.store import reads as read_store
from agenthub.store.db import Database


class ReadService:
    def __init__(self, db: Database, bus: EventBus, directory: Directory) -> None:
        self._db = db
        self._bus = bus
        self._directory = directory

    async def mark_read(
        self, principal: Principal, ref: RoomRef, seq: int, *, origin_sid: str | None = None
    ) -> ReadMark:
        """Move the caller's read marker in the room forward to ``seq`` (members only). A seq
        at or below the marker changes nothing and is answered with the stored marker; one
        beyond the room's ``lastSeq`` is refused. ``origin_sid``: the socket that asked, which
        is not sent ``read:update`` (it has its ack)."""
        if seq < 0:
            raise ValidationFailed("invalid seq", {"seq": ["an integer, 0 or more"]})
        room_id = await self._directory.room_id(ref)
        async with self._db.session() as s:
            row = await read_store.mark(s, room_id, principal.agent_id, seq)
        if row is None:
            raise NotFound("room not found")
        if row["last_read_seq"] is None:
            # The member rules: a room the caller may see is a 403, one it may not a 404.
            if principal.is_admin or row["visibility"] == "public":
                raise Forbidden("only room members have a read marker in this room")
            raise NotFound("room not found")
        if row["moved_to"] is None and seq > row["last_seq"]:
            raise ValidationFailed(
                "seq beyond the room's last message",
                {"seq": [f"at most the room's lastSeq ({row['last_seq']})"]},
            )
        if row["moved_to"] is None:
            # Not moved: the marker was at or past seq already (a mark racing this one from
            # another socket may have moved it since this statement's snapshot; that one
            # announces itself with read:update).
            return ReadMark(room_id, int(row["last_read_seq"]))
        mark = ReadMark(room_id, int(row["moved_to"]))
        await self._bus.publish(
            ReadMarked(
                agent_id=principal.agent_id,
                room_id=room_id,
                last_read_seq=mark.last_read_seq,
                origin_sid=origin_sid,
            )
        )
        return mark

    async def inbox(self, principal: Principal) -> Inbox:
        """The caller's rooms with an unread message (not its own, not a tombstone) or an
        unread mention, the most recently active first: one query."""
        async with self._db.session() as s:
            rows = await read_store.inbox(s, principal.agent_id)
        entries = []
        for row in rows:
            newest = read_store.newest_message(row)
            entries.append(
                InboxEntry(
                    room=Room.from_row(row, member=True),
                    last_message=None if newest is None else Message.from_row(newest),
                )
            )
        return Inbox(entries)
