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
from agenthub.store import rooms as room_store
from agenthub.store.db import Database, Row
from agenthub.waiters import Waiters, Watch


class ReadService:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        directory: Directory,
        *,
        waiters: Waiters,
        max_wait_seconds: float,
    ) -> None:
        self._db = db
        self._bus = bus
        self._directory = directory
        self._waiters = waiters
        self._max_wait = max_wait_seconds

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

    async def inbox(self, principal: Principal, *, wait: float = 0.0) -> Inbox:
        """The caller's rooms with an unread message (not its own, not a tombstone) or an
        unread mention, the most recently active first: one query.

        ``wait`` (seconds): when nothing is unread, wait up to that long, holding no database
        connection, for a message by another agent in one of the caller's rooms or one that
        mentions it, then answer the inbox as it then is (empty on timeout or shutdown)."""
        if not 0 <= wait <= self._max_wait:
            raise ValidationFailed(
                "invalid wait", {"wait": [f"seconds to wait, 0 to {self._max_wait:g}"]}
            )
        agent_id = principal.agent_id

        async def read(watch: Watch) -> Inbox:
            async with self._db.session() as s:
                if wait > 0:
                    # Watched before the inbox is read: a message committed after the read
                    # wakes the wait (agenthub.waiters).
                    watch.watch_rooms(r["id"] for r in await room_store.for_member(s, agent_id))
                rows = await read_store.inbox(s, agent_id)
            return _inbox(rows)

        return await self._waiters.poll(
            read,
            found=lambda inbox: bool(inbox.rooms),
            seconds=wait,
            mentioning=agent_id,
            accept=lambda message: message.sender_id != agent_id,
        )


def _inbox(rows: list[Row]) -> Inbox:
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
