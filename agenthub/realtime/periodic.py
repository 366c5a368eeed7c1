"""A pass run every ``interval`` seconds on the event loop, for the socket layer's timers."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from agenthub.errors import Unavailable

log = logging.getLogger("agenthub.realtime")


class Periodic:
    """Subclasses say what one pass does (``_pass``). A failed pass is logged and the timer
    goes on: one bad pass must not silently stop the revocation checks."""

    def __init__(self, interval: float, name: str) -> None:
        self._interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None

    async def _pass(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._pass()
            except Unavailable:
                # The database layer already logs the outage; the next pass tries again.
                pass
            except Exception:
                log.exception("%s failed", self._name)
