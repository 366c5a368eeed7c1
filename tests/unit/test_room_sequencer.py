"""realtime.ordering.RoomSequencer: message:new leaves in seq order per room."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from agenthub.models import Message
from agenthub.realtime.ordering import RoomSequencer

ROOM_A = uuid.uuid4()
ROOM_B = uuid.uuid4()


def message(room: uuid.UUID, seq: int) -> Message:
    return Message(
        id=uuid.uuid4(),
        room_id=room,
        seq=seq,
        sender_id=uuid.uuid4(),
        body=f"m{seq}",
        client_msg_id=None,
        created_at=datetime.now(UTC),
    )


class Recorder:
    """An emit that suspends, as a real broadcast may, and records what went out."""

    def __init__(self) -> None:
        self.sent: list[tuple[uuid.UUID, int]] = []

    async def __call__(self, m: Message) -> None:
        await asyncio.sleep(0)
        self.sent.append((m.room_id, m.seq))

    def seqs(self, room: uuid.UUID) -> list[int]:
        return [seq for r, seq in self.sent if r == room]


Scenario = Callable[[RoomSequencer, Recorder], Awaitable[None]]


def play(scenario: Scenario, *, hold_seconds: float = 5.0) -> None:
    """Run ``scenario`` against a fresh sequencer whose emits are recorded."""

    async def main() -> None:
        out = Recorder()
        sequencer = RoomSequencer(out, hold_seconds=hold_seconds)
        try:
            await scenario(sequencer, out)
        finally:
            sequencer.close()

    asyncio.run(main())


def test_in_order_messages_go_straight_out() -> None:
    async def scenario(seq: RoomSequencer, out: Recorder) -> None:
        for n in (1, 2, 3):
            await seq.offer(message(ROOM_A, n))
        assert out.seqs(ROOM_A) == [1, 2, 3]

    play(scenario)


def test_a_message_waits_for_its_predecessor() -> None:
    async def scenario(seq: RoomSequencer, out: Recorder) -> None:
        await seq.offer(message(ROOM_A, 1))
        await seq.offer(message(ROOM_A, 3))
        await seq.offer(message(ROOM_A, 4))
        assert out.seqs(ROOM_A) == [1]  # 3 and 4 held: 2 is not out yet
        await seq.offer(message(ROOM_A, 2))
        assert out.seqs(ROOM_A) == [1, 2, 3, 4]

    play(scenario)


def test_concurrent_offers_keep_the_wire_order() -> None:
    async def scenario(seq: RoomSequencer, out: Recorder) -> None:
        await seq.offer(message(ROOM_A, 1))
        # Offered all at once, in a shuffled order, while emits suspend.
        order = [5, 2, 9, 3, 8, 4, 7, 6, 10]
        await asyncio.gather(*(seq.offer(message(ROOM_A, n)) for n in order))
        assert out.seqs(ROOM_A) == list(range(1, 11))

    play(scenario)


def test_rooms_do_not_wait_for_each_other() -> None:
    async def scenario(seq: RoomSequencer, out: Recorder) -> None:
        await seq.offer(message(ROOM_A, 1))
        await seq.offer(message(ROOM_A, 3))  # held: room A waits for its 2
        await seq.offer(message(ROOM_B, 7))
        await seq.offer(message(ROOM_B, 8))
        assert out.seqs(ROOM_B) == [7, 8]
        assert out.seqs(ROOM_A) == [1]

    play(scenario)


def test_a_gap_is_given_up_after_the_hold_and_a_late_message_still_goes_out() -> None:
    async def scenario(seq: RoomSequencer, out: Recorder) -> None:
        await seq.offer(message(ROOM_A, 1))
        await seq.offer(message(ROOM_A, 4))
        await seq.offer(message(ROOM_A, 3))
        assert out.seqs(ROOM_A) == [1]
        for _ in range(100):
            if len(out.sent) == 3:
                break
            await asyncio.sleep(0.02)
        assert out.seqs(ROOM_A) == [1, 3, 4]  # held ones in seq order, without 2
        await seq.offer(message(ROOM_A, 5))  # the room goes on from there
        await seq.offer(message(ROOM_A, 2))  # late: still delivered, clients dedupe by seq
        assert out.seqs(ROOM_A) == [1, 3, 4, 5, 2]

    play(scenario, hold_seconds=0.05)


def test_a_failing_emit_does_not_block_the_room() -> None:
    async def scenario() -> None:
        sent: list[int] = []

        async def flaky(m: Message) -> None:
            if m.seq == 2:
                raise RuntimeError("socket layer hiccup")
            sent.append(m.seq)

        seq = RoomSequencer(flaky, hold_seconds=5)
        for n in (1, 2, 3):
            await seq.offer(message(ROOM_A, n))
        assert sent == [1, 3]

    asyncio.run(scenario())


def test_after_a_seed_the_first_posts_of_a_room_are_ordered_too() -> None:
    async def scenario(seq: RoomSequencer, out: Recorder) -> None:
        seq.seed({ROOM_A: 10})
        await seq.offer(message(ROOM_A, 12))
        assert out.seqs(ROOM_A) == []  # 11 has not gone out
        await seq.offer(message(ROOM_A, 11))
        # A room created after the seed starts at 1.
        await seq.offer(message(ROOM_B, 2))
        await seq.offer(message(ROOM_B, 1))
        assert out.seqs(ROOM_A) == [11, 12]
        assert out.seqs(ROOM_B) == [1, 2]

    play(scenario)


def test_a_seed_does_not_rewind_a_room_already_broadcast() -> None:
    async def scenario(seq: RoomSequencer, out: Recorder) -> None:
        await seq.offer(message(ROOM_A, 5))  # before the seed: sets where the room stands
        seq.seed({ROOM_A: 3})  # read a moment earlier: older than what the broadcast taught
        await seq.offer(message(ROOM_A, 6))
        assert out.seqs(ROOM_A) == [5, 6]

    play(scenario)
