"""Group commit: posts that arrive while a write is in flight are written together next.

Under concurrency each post into a room would otherwise wait for its own round trip and its
own WAL flush, one after the other (the room's row lock, held until commit, serialises them
anyway). ``GroupCommit`` keeps at most one write in flight per key (a room): the first item
goes at once, alone (no added latency when idle); the items that arrive during its round trip
queue up and form the next write, at most ``max_batch`` of them. Each submitter gets its own
item's result once the write that carried it has returned (committed), or that write's
exception. This is how PostgreSQL itself amortises commits, done one level up.

The write runs in a task of its own: a submitter that is cancelled does not cancel the write
that carries its item (whose outcome the others wait for).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[K, Sequence[T]], Awaitable[Sequence[R]]]


class GroupCommit(Generic[K, T, R]):
    def __init__(self, write: Write[K, T, R], *, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._queues: dict[K, deque[tuple[T, asyncio.Future[R]]]] = {}
        self._writers: dict[K, asyncio.Task[None]] = {}

    async def submit(self, key: K, item: T) -> R:
        """Write ``item`` with the others of ``key`` that are waiting; its result."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        queue.append((item, future))
        if key not in self._writers:
            self._writers[key] = asyncio.get_running_loop().create_task(self._drain(key, queue))
        return await future

    async def _drain(self, key: K, queue: deque[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            while queue:
                batch = [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
                try:
                    results = await self._write(key, [item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException as exc:  # cancelled (shutdown): tell the waiters too
                    for _, future in [*batch, *queue]:
                        if not future.done():
                            future.set_exception(exc)
                    queue.clear()
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            del self._writers[key]
            del self._queues[key]

    def pending(self) -> int:
        """Items submitted and not yet written or being written, for all keys."""
        return sum(len(queue) for queue in self._queues.values())
