"""The waiter registry (agenthub.waiters) without HTTP: what wakes a waiter, the bound, the
shutdown release, the register-before-query order of ``poll``, and the inbox-shaped wait."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from agenthub.errors import TooManyWaiters
from agenthub.events import EventBus, MemberAdded, MessagePosted
from agenthub.models import Message
from agenthub.waiters import Waiters, Wake, Watch

T = TypeVar("T")

ROOM, OTHER_ROOM = uuid.uuid4(), uuid.uuid4()
ME, YOU = uuid.uuid4(), uuid.uuid4()


def message(
    room: uuid.UUID = ROOM,
    seq: int = 1,
    sender: uuid.UUID = YOU,
    *,
    kind: str = "text",
    thread_root: int | None = None,
    mentions: tuple[uuid.UUID, ...] = (),
) -> Message:
    return Message(
        id=uuid.uuid4(),
        room_id=room,
        seq=seq,
        sender_id=sender,
        body="hello",
        client_msg_id=None,
        created_at=datetime.now(UTC),
        kind=kind,
        thread_root=thread_root,
        mentions=mentions,
    )


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_message_of_a_watched_room_wakes_the_waiter_and_others_do_not() -> None:
    async def scenario() -> None:
        waiters = Waiters(10)
        with waiters.watch(rooms=[ROOM]) as waiter:
            assert len(waiters) == 1
            waiters.offer(message(OTHER_ROOM))
            assert not waiter.woken
            first, second = message(seq=7), message(seq=8)
            waiters.offer(first)
            waiters.offer(second)
            assert await waiter.wait(5) is Wake.MESSAGE
            assert waiter.message is first  # the first one that woke it
        assert len(waiters) == 0

    run(scenario)


def test_the_waiter_times_out_when_nothing_comes() -> None:
    async def scenario() -> None:
        waiters = Waiters(10)
        loop = asyncio.get_running_loop()
        with waiters.watch(rooms=[ROOM]) as waiter:
            started = loop.time()
            assert await waiter.wait(0.2) is Wake.TIMEOUT
            assert 0.15 < loop.time() - started < 2
            assert waiter.message is None

    run(scenario)


def test_accept_filters_what_wakes() -> None:
    async def scenario() -> None:
        waiters = Waiters(10)
        with waiters.watch(rooms=[ROOM], accept=lambda m: m.kind == "task") as waiter:
            waiters.offer(message(kind="text"))
            assert not waiter.woken
            waiters.offer(message(kind="task", seq=2))
            assert await waiter.wait(1) is Wake.MESSAGE

    run(scenario)


def test_the_event_bus_feeds_the_registry() -> None:
    async def scenario() -> None:
        bus, waiters = EventBus(), Waiters(10)
        bus.subscribe(waiters.on_event)
        with waiters.watch(rooms=[ROOM]) as waiter:
            await bus.publish(MemberAdded(room_id=ROOM, agent_id=ME))  # not a message
            assert not waiter.woken
            await bus.publish(MessagePosted(message=message()))
            assert await waiter.wait(1) is Wake.MESSAGE

    run(scenario)


def test_past_the_limit_watch_refuses_with_503_too_many_waiters() -> None:
    async def scenario() -> None:
        waiters = Waiters(2)
        with waiters.watch(rooms=[ROOM]), waiters.watch(rooms=[ROOM]):
            with pytest.raises(TooManyWaiters) as refused:
                waiters.watch(rooms=[ROOM])
            assert refused.value.status == 503
            assert refused.value.code == "too_many_waiters"
            assert refused.value.retry_after == 1
            assert refused.value.details["limit"] == 2
            assert len(waiters) == 2
        with waiters.watch(rooms=[ROOM]):  # slots are given back
            assert len(waiters) == 1

    run(scenario)


def test_close_releases_every_waiter_at_once_and_later_ones_start_released() -> None:
    async def scenario() -> None:
        waiters = Waiters(10)
        loop = asyncio.get_running_loop()
        with waiters.watch(rooms=[ROOM]) as one, waiters.watch(rooms=[OTHER_ROOM]) as two:
            waits = asyncio.gather(one.wait(30), two.wait(30))
            await asyncio.sleep(0.01)
            started = loop.time()
            waiters.close()
            assert list(await waits) == [Wake.CLOSING, Wake.CLOSING]
            assert loop.time() - started < 1
        with waiters.watch(rooms=[ROOM]) as late:
            assert await late.wait(30) is Wake.CLOSING

    run(scenario)


def test_a_cancelled_wait_unregisters_its_waiter() -> None:
    """What the REST handler does when the client goes away: the task is cancelled."""

    async def scenario() -> None:
        waiters = Waiters(10)

        async def long_poll() -> None:
            with waiters.watch(rooms=[ROOM]) as waiter:
                await waiter.wait(30)

        task = asyncio.ensure_future(long_poll())
        await asyncio.sleep(0.01)
        assert len(waiters) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(waiters) == 0
        waiters.offer(message())  # nobody left to wake: no error

    run(scenario)


# --- poll: register, query, wait, query again -------------------------------------------


class Store:
    """A room's messages as a query sees them; ``poll``'s query reads from it."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.queries = 0

    def after(self, seq: int) -> list[Message]:
        return [m for m in self.messages if m.seq > seq]


def test_poll_answers_at_once_when_the_query_finds_something() -> None:
    async def scenario() -> None:
        waiters, store = Waiters(10), Store()
        store.messages.append(message(seq=1))

        async def query(watch: Watch) -> list[Message]:
            watch.watch_rooms([ROOM])
            store.queries += 1
            return store.after(0)

        found = await waiters.poll(query, found=bool, seconds=30)
        assert [m.seq for m in found] == [1] and store.queries == 1
        assert len(waiters) == 0  # the waiter is gone with the answer

    run(scenario)


def test_poll_without_seconds_queries_once_and_registers_nothing() -> None:
    async def scenario() -> None:
        waiters = Waiters(1)
        with waiters.watch(rooms=[ROOM]):  # every slot taken: a wait would be refused

            async def query(watch: Watch) -> list[Message]:
                watch.watch_rooms([ROOM])
                return []

            assert await waiters.poll(query, found=bool, seconds=0) == []

    run(scenario)


def test_poll_closes_the_race_a_message_stored_between_query_and_wait_wakes_it() -> None:
    """The message is committed (and published) after the query read nothing but before the
    request would begin waiting: the waiter, registered before the query, still sees it."""

    async def scenario() -> None:
        waiters, store = Waiters(10), Store()

        async def query(watch: Watch) -> list[Message]:
            watch.watch_rooms([ROOM])
            store.queries += 1
            result = store.after(0)
            if store.queries == 1:  # stored and published right after this read
                late = message(seq=1)
                store.messages.append(late)
                waiters.offer(late)
            return result

        loop = asyncio.get_running_loop()
        started = loop.time()
        found = await waiters.poll(query, found=bool, seconds=30)
        assert [m.seq for m in found] == [1]
        assert store.queries == 2
        assert loop.time() - started < 5

    run(scenario)


def test_poll_keeps_waiting_after_a_spurious_wake_until_the_deadline() -> None:
    """Woken by a message the query does not show (here: filtered out by the query only):
    query again, find nothing, wait again; at the deadline the last empty result."""

    async def scenario() -> None:
        waiters, store = Waiters(10), Store()

        async def query(watch: Watch) -> list[Message]:
            watch.watch_rooms([ROOM])
            store.queries += 1
            return [m for m in store.after(0) if m.kind == "task"]

        async def post_text() -> None:
            await asyncio.sleep(0.05)
            text = message(seq=1)
            store.messages.append(text)
            waiters.offer(text)

        loop = asyncio.get_running_loop()
        started = loop.time()
        poster = asyncio.ensure_future(post_text())
        found = await waiters.poll(query, found=bool, seconds=0.5)
        await poster
        assert found == []
        assert store.queries == 2
        assert 0.4 < loop.time() - started < 3
        assert len(waiters) == 0

    run(scenario)


def test_poll_answers_the_empty_result_at_once_on_shutdown() -> None:
    async def scenario() -> None:
        waiters = Waiters(10)

        async def query(watch: Watch) -> list[Message]:
            watch.watch_rooms([ROOM])
            return []

        loop = asyncio.get_running_loop()
        poll = asyncio.ensure_future(waiters.poll(query, found=bool, seconds=30))
        await asyncio.sleep(0.05)
        started = loop.time()
        waiters.close()
        assert await poll == []
        assert loop.time() - started < 1

    run(scenario)


def test_poll_refuses_past_the_limit_before_running_the_query() -> None:
    async def scenario() -> None:
        waiters = Waiters(1)
        queries: list[Any] = []

        async def query(watch: Watch) -> list[Message]:
            queries.append(watch)
            return []

        with waiters.watch(rooms=[ROOM]), pytest.raises(TooManyWaiters):
            await waiters.poll(query, found=bool, seconds=5)
        assert queries == []

    run(scenario)


# --- the inbox-shaped wait (how GET /inbox?wait= will use it) ---------------------------


def inbox_poll(waiters: Waiters, my_rooms: list[uuid.UUID], unread: list[Message]) -> Any:
    """GET /inbox?wait= as the waiters docstring describes it: the query learns the caller's
    rooms, watches them, then reads the inbox (here: the unread list)."""

    async def query(watch: Watch) -> list[Message]:
        watch.watch_rooms(my_rooms)
        return list(unread)

    return waiters.poll(
        query,
        found=bool,
        seconds=5,
        mentioning=ME,
        accept=lambda m: m.sender_id != ME,
    )


def test_inbox_wait_wakes_on_a_message_from_someone_else_in_any_of_my_rooms() -> None:
    async def scenario() -> None:
        waiters, unread = Waiters(10), list[Message]()
        poll = asyncio.ensure_future(inbox_poll(waiters, [ROOM, OTHER_ROOM], unread))
        await asyncio.sleep(0.05)
        waiters.offer(message(OTHER_ROOM, sender=ME))  # my own post: still waiting
        await asyncio.sleep(0.05)
        assert not poll.done()
        theirs = message(OTHER_ROOM, seq=2, sender=YOU)
        unread.append(theirs)
        waiters.offer(theirs)
        assert await poll == [theirs]

    run(scenario)


def test_inbox_wait_wakes_on_a_mention_in_a_room_it_did_not_watch() -> None:
    async def scenario() -> None:
        waiters, unread = Waiters(10), list[Message]()
        poll = asyncio.ensure_future(inbox_poll(waiters, [ROOM], unread))
        await asyncio.sleep(0.05)
        waiters.offer(message(OTHER_ROOM, sender=YOU))  # not my room, no mention
        await asyncio.sleep(0.05)
        assert not poll.done()
        mention = message(OTHER_ROOM, seq=2, sender=YOU, mentions=(ME,))
        unread.append(mention)
        waiters.offer(mention)
        assert await poll == [mention]
        assert len(waiters) == 0

    run(scenario)


def test_inbox_wait_returns_at_once_when_something_is_unread() -> None:
    async def scenario() -> None:
        waiters = Waiters(10)
        already = message(ROOM, sender=YOU)
        assert await inbox_poll(waiters, [ROOM], [already]) == [already]

    run(scenario)


def test_queries_after_a_wake_run_at_most_requeries_at_once() -> None:
    """One message wakes every waiter of its room; their second queries queue in memory."""

    async def scenario() -> None:
        waiters, store = Waiters(100, requeries=2), Store()
        running, most = 0, 0

        async def query(watch: Watch) -> list[Message]:
            nonlocal running, most
            watch.watch_rooms([ROOM])
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.01)
            running -= 1
            return store.after(0)

        polls = [
            asyncio.ensure_future(waiters.poll(query, found=bool, seconds=10)) for _ in range(8)
        ]
        await asyncio.sleep(0.1)
        assert most == 8  # the first queries are ordinary requests: not held back
        most = 0
        wake = message(seq=1)
        store.messages.append(wake)
        waiters.offer(wake)
        assert [len(found) for found in await asyncio.gather(*polls)] == [1] * 8
        assert most == 2

    run(scenario)
