"""agenthub.ordering.RoomOrder: posted messages are handed on in seq order per room, waiting
only for posts really in flight in this process, and never on the poster's path."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from agenthub.events import EventBus, MessagePosted
from agenthub.models import Message
from agenthub.ordering import RoomOrder

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
    """A delivery that suspends, as a real broadcast does, and records what went out."""

    def __init__(self) -> None:
        self.sent: list[tuple[uuid.UUID, int]] = []

    async def __call__(self, m: Message) -> None:
        await asyncio.sleep(0)
        self.sent.append((m.room_id, m.seq))

    def seqs(self, room: uuid.UUID) -> list[int]:
        return [seq for r, seq in self.sent if r == room]


Scenario = Callable[[RoomOrder, Recorder], Awaitable[None]]


def play(scenario: Scenario) -> None:
    """Run ``scenario`` against a fresh RoomOrder whose deliveries are recorded."""

    async def main() -> None:
        out = Recorder()
        await scenario(RoomOrder(out), out)

    asyncio.run(main())


async def post(order: RoomOrder, room: uuid.UUID, seq: int) -> None:
    """One post that is alone in flight: reserve, store, complete."""
    order.reserve(room).complete(message(room, seq))
    await order.settle()


def test_in_order_posts_go_straight_out() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        for n in (1, 2, 3):
            await post(order, ROOM_A, n)
        assert out.seqs(ROOM_A) == [1, 2, 3]

    play(scenario)


def test_a_message_waits_for_a_post_in_flight_before_it() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        first, second = order.reserve(ROOM_A), order.reserve(ROOM_A)
        second.complete(message(ROOM_A, 3))  # committed after `first` took seq 2
        await order.settle()
        assert out.seqs(ROOM_A) == [1]  # held: `first` may still bring seq 2
        first.complete(message(ROOM_A, 2))
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 2, 3]

    play(scenario)


def test_the_next_seq_does_not_wait_for_posts_in_flight() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        slow, quick = order.reserve(ROOM_A), order.reserve(ROOM_A)
        quick.complete(message(ROOM_A, 2))
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 2]  # 2 follows 1: nothing can come between
        slow.complete(message(ROOM_A, 3))
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 2, 3]

    play(scenario)


def test_a_gap_nobody_here_is_filling_does_not_hold_anything() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        await post(order, ROOM_A, 3)  # seq 2 came from elsewhere: nothing here is in flight
        assert out.seqs(ROOM_A) == [1, 3]

    play(scenario)


def test_a_failed_or_retried_post_releases_what_waited_for_it() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        failing, retried, ok = (order.reserve(ROOM_A) for _ in range(3))
        ok.complete(message(ROOM_A, 3))
        await order.settle()
        assert out.seqs(ROOM_A) == [1]
        with failing:
            pass  # leaving the block without completing: the post stored nothing
        await order.settle()
        assert out.seqs(ROOM_A) == [1]  # `retried` is still in flight
        retried.complete(None)
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 3]

    play(scenario)


def test_a_message_waits_only_for_posts_already_in_flight_when_it_completed() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        early = order.reserve(ROOM_A)
        held = order.reserve(ROOM_A)
        held.complete(message(ROOM_A, 3))
        # Reserved after seq 3 committed: its insert comes later and gets a higher seq, so
        # seq 3 does not wait for it, however long it takes.
        late = order.reserve(ROOM_A)
        early.complete(None)  # seq 2 was not this process's
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 3]
        late.complete(message(ROOM_A, 4))
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 3, 4]

    play(scenario)


def test_concurrent_posts_finishing_in_any_order_go_out_in_seq_order() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        slots = [order.reserve(ROOM_A) for _ in range(10)]
        finish_order = [5, 2, 9, 3, 8, 4, 7, 6, 10, 1]
        for slot, seq in zip(slots, finish_order, strict=True):
            slot.complete(message(ROOM_A, seq))
            await asyncio.sleep(0)  # deliveries run in between
        await order.settle()
        assert out.seqs(ROOM_A) == list(range(1, 11))

    play(scenario)


def test_the_first_posts_of_a_room_are_ordered_without_knowing_where_it_stands() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        first, second = order.reserve(ROOM_A), order.reserve(ROOM_A)
        second.complete(message(ROOM_A, 11))
        await order.settle()
        assert out.seqs(ROOM_A) == []  # `first` may bring 10
        first.complete(message(ROOM_A, 10))
        await order.settle()
        assert out.seqs(ROOM_A) == [10, 11]

    play(scenario)


def test_rooms_do_not_wait_for_each_other() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        stuck = order.reserve(ROOM_A)
        order.reserve(ROOM_A).complete(message(ROOM_A, 3))
        await post(order, ROOM_B, 7)
        await post(order, ROOM_B, 8)
        assert out.seqs(ROOM_B) == [7, 8]
        assert out.seqs(ROOM_A) == [1]
        stuck.complete(None)
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 3]

    play(scenario)


def test_a_failing_delivery_does_not_block_the_room() -> None:
    async def scenario() -> None:
        sent: list[int] = []

        async def flaky(m: Message) -> None:
            if m.seq == 2:
                raise RuntimeError("socket layer hiccup")
            sent.append(m.seq)

        order = RoomOrder(flaky)
        for n in (1, 2, 3):
            await post(order, ROOM_A, n)
        assert sent == [1, 3]

    asyncio.run(scenario())


def test_completing_does_not_wait_for_the_listeners() -> None:
    """The poster's reply goes out before the fan-out: complete() returns while a listener is
    still busy, and a second message of the room queues behind the first."""

    async def scenario() -> None:
        bus = EventBus()
        gate = asyncio.Event()
        heard: list[int] = []

        async def slow_listener(event: object) -> None:
            assert isinstance(event, MessagePosted)
            await gate.wait()
            heard.append(event.message.seq)

        bus.subscribe(slow_listener)
        for n in (1, 2):
            with bus.reserve(ROOM_A) as slot:
                slot.complete(message(ROOM_A, n))
        await asyncio.sleep(0.01)
        assert heard == []
        assert bus.posts_in_flight() == 0
        gate.set()
        await bus.settle()
        assert heard == [1, 2]

    asyncio.run(scenario())


def test_a_slot_completes_once() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        slot = order.reserve(ROOM_A)
        slot.complete(message(ROOM_A, 1))
        slot.complete(message(ROOM_A, 1))
        with slot:
            pass
        await order.settle()
        assert out.seqs(ROOM_A) == [1]
        assert order.in_flight() == 0

    play(scenario)
