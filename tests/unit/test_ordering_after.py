"""RoomOrder.after / EventBus.publish_after: news about a stored message (a redaction) is handed
on after that message, and after whatever may still come before it, in the room's order; it
does not wait for anything else."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from agenthub.events import Event, EventBus, MessagePosted, MessageRedacted
from agenthub.ordering import RoomOrder
from tests.unit.test_room_sequencer import ROOM_A, ROOM_B, Recorder, message, play, post


def news(out: Recorder, room: uuid.UUID, seq: int) -> Callable[[], Awaitable[None]]:
    """An action that records itself as (room, -seq) among the deliveries."""

    async def action() -> None:
        await asyncio.sleep(0)
        out.sent.append((room, -seq))

    return action


def test_news_of_a_message_already_handed_on_goes_at_once() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        order.after(ROOM_A, 1, news(out, ROOM_A, 1))
        await order.settle()
        assert out.seqs(ROOM_A) == [1, -1]

    play(scenario)


def test_news_of_a_room_this_process_never_posted_to_goes_at_once() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        order.after(ROOM_B, 5, news(out, ROOM_B, 5))
        await order.settle()
        assert out.seqs(ROOM_B) == [-5]

    play(scenario)


def test_news_waits_for_its_message_when_that_is_held() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        first, second = order.reserve(ROOM_A), order.reserve(ROOM_A)
        second.complete(message(ROOM_A, 3))  # held: `first` may bring seq 2
        order.after(ROOM_A, 3, news(out, ROOM_A, 3))
        await order.settle()
        assert out.seqs(ROOM_A) == [1]
        first.complete(message(ROOM_A, 2))
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 2, 3, -3]

    play(scenario)


def test_news_waits_for_posts_in_flight_when_it_was_asked_for() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        in_flight = order.reserve(ROOM_A)  # its seq (2) is committed, the post not finished
        order.after(ROOM_A, 2, news(out, ROOM_A, 2))
        late = order.reserve(ROOM_A)  # reserved after: cannot come before seq 2
        await order.settle()
        assert out.seqs(ROOM_A) == [1]
        in_flight.complete(message(ROOM_A, 2))
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 2, -2]
        late.complete(message(ROOM_A, 3))
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 2, -2, 3]

    play(scenario)


def test_news_does_not_wait_for_later_messages_or_other_rooms() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        first, second = order.reserve(ROOM_A), order.reserve(ROOM_A)
        first.complete(message(ROOM_A, 2))
        second_done = message(ROOM_A, 4)  # 3 is elsewhere's, and `second` still in flight
        order.after(ROOM_B, 9, news(out, ROOM_B, 9))
        await order.settle()
        assert out.seqs(ROOM_B) == [-9]
        second.complete(second_done)
        order.after(ROOM_A, 1, news(out, ROOM_A, 1))
        await order.settle()
        assert out.seqs(ROOM_A) == [1, 2, 4, -1]

    play(scenario)


def test_news_asked_for_in_order_goes_in_that_order() -> None:
    async def scenario(order: RoomOrder, out: Recorder) -> None:
        await post(order, ROOM_A, 1)
        stuck = order.reserve(ROOM_A)
        order.after(ROOM_A, 1, news(out, ROOM_A, 1))  # waits for `stuck` (may be seq 2)
        order.after(ROOM_A, 1, news(out, ROOM_A, 10))
        stuck.complete(None)
        await order.settle()
        assert out.seqs(ROOM_A) == [1, -1, -10]

    play(scenario)


def test_the_bus_publishes_a_redaction_after_the_message() -> None:
    async def main() -> None:
        bus = EventBus()
        heard: list[Event] = []

        async def listener(event: Event) -> None:
            await asyncio.sleep(0)
            heard.append(event)

        bus.subscribe(listener)
        slot = bus.reserve(ROOM_A)
        posted = message(ROOM_A, 1)
        # The redaction is asked for while the post's fan-out has not run yet.
        bus.publish_after(ROOM_A, 1, MessageRedacted(room_id=ROOM_A, seq=1))
        slot.complete(posted)
        await bus.settle()
        assert heard == [MessagePosted(message=posted), MessageRedacted(room_id=ROOM_A, seq=1)]

    asyncio.run(main())
