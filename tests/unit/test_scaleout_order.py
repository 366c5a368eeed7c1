"""agenthub.scaleout without Redis: the per-room seq order of messages heard from several
processes, and the events' wire format. (Gap filling from PostgreSQL and Redis itself are
exercised by tests/integration/test_scaleout.py.)"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from agenthub.events import (
    Event,
    MemberAdded,
    MemberRemoved,
    MessagePosted,
    MessageRedacted,
    ReadMarked,
)
from agenthub.models import Message
from agenthub.scaleout import SeqOrder, decode_event, encode_event

ROOM = uuid.uuid4()
OTHER = uuid.uuid4()


def _posted(seq: int, room: uuid.UUID = ROOM, **extra: object) -> MessagePosted:
    message = Message(
        id=uuid.uuid4(),
        room_id=room,
        seq=seq,
        sender_id=uuid.uuid4(),
        body=f"m{seq}",
        client_msg_id=None,
        created_at=datetime.now(UTC),
        **extra,  # type: ignore[arg-type]
    )
    return MessagePosted(message=message)


def _seqs(events: list[Event], room: uuid.UUID = ROOM) -> list[int]:
    return [
        e.message.seq for e in events if isinstance(e, MessagePosted) and e.message.room_id == room
    ]


def test_messages_heard_out_of_order_are_handed_on_in_seq_order():
    async def scenario() -> None:
        out: list[Event] = []
        order = SeqOrder(out.append, None, gap_wait=5.0)
        order.offer(_posted(1))
        order.offer(_posted(3))  # 2 comes from a slower process
        order.offer(_posted(4))
        assert _seqs(out) == [1]
        order.offer(_posted(2))
        assert _seqs(out) == [1, 2, 3, 4]
        order.offer(_posted(3))  # heard again (filled earlier): not twice
        assert _seqs(out) == [1, 2, 3, 4]
        order.close()

    asyncio.run(scenario())


def test_rooms_are_ordered_independently():
    async def scenario() -> None:
        out: list[Event] = []
        order = SeqOrder(out.append, None, gap_wait=5.0)
        order.offer(_posted(1))
        order.offer(_posted(3))
        order.offer(_posted(1, OTHER))
        order.offer(_posted(2, OTHER))
        assert _seqs(out) == [1] and _seqs(out, OTHER) == [1, 2]
        order.close()

    asyncio.run(scenario())


def test_a_room_first_heard_mid_stream_starts_at_the_smallest_seq_of_a_short_window():
    async def scenario() -> None:
        out: list[Event] = []
        order = SeqOrder(out.append, None, gap_wait=0.05)
        order.offer(_posted(8))
        order.offer(_posted(7))
        assert out == []
        await asyncio.sleep(0.2)
        assert _seqs(out) == [7, 8]
        order.offer(_posted(9))
        assert _seqs(out) == [7, 8, 9]
        order.close()

    asyncio.run(scenario())


def test_a_gap_nothing_fills_is_skipped_after_the_wait():
    async def scenario() -> None:
        out: list[Event] = []
        order = SeqOrder(out.append, None, gap_wait=0.05)  # no database to fill from
        order.offer(_posted(1))
        order.offer(_posted(3))
        await asyncio.sleep(0.3)
        assert _seqs(out) == [1, 3]
        assert order.skipped == 1
        order.offer(_posted(2))  # too late: never after a later seq
        assert _seqs(out) == [1, 3]
        order.close()

    asyncio.run(scenario())


def test_events_survive_the_wire_unchanged():
    agent, sid = uuid.uuid4(), "abc123"
    posted = _posted(
        5,
        kind="status",
        data={"k": [1, 2]},
        reply_to=3,
        thread_root=3,
        mentions=(agent,),
        mentions_room=True,
        edited_at=datetime.now(UTC),
        reply_count=2,
        room_slug="general",
    )
    events: list[Event] = [
        posted,
        MessageRedacted(room_id=ROOM, seq=5),
        ReadMarked(agent_id=agent, room_id=ROOM, last_read_seq=5, origin_sid=sid),
        ReadMarked(agent_id=agent, room_id=ROOM, last_read_seq=6),
        MemberAdded(room_id=ROOM, agent_id=agent),
        MemberRemoved(room_id=ROOM, agent_id=agent),
    ]
    for event in events:
        assert decode_event(encode_event(event)) == event


def test_a_redaction_heard_before_its_message_waits_for_it():
    async def scenario() -> None:
        out: list[Event] = []
        order = SeqOrder(out.append, None, gap_wait=5.0)
        order.offer(_posted(1))
        redacted = MessageRedacted(room_id=ROOM, seq=2)
        order.offer_after(ROOM, 2, redacted)  # from a process faster than the poster's
        assert redacted not in out
        order.offer(_posted(2))
        assert out[-1] == redacted and _seqs(out) == [1, 2]
        late = MessageRedacted(room_id=ROOM, seq=1)
        order.offer_after(ROOM, 1, late)  # its message was handed on: at once
        assert out[-1] == late
        order.close()

    asyncio.run(scenario())
