"""PostgreSQL LISTEN/NOTIFY: how one process tells every server process that something changed.

``send`` queues a notification inside the caller's transaction; PostgreSQL delivers it when that
transaction commits, and never if it rolls back. ``NotificationListener`` keeps one connection
of its own (not from the pool: a pooled connection is handed to other work between
statements, and LISTEN belongs to a session) and hands each payload to a callback. When the
connection is lost it says so (``on_state(False)``), reconnects with backoff, and says so again
(``on_state(True)``) once LISTEN is in force: notifications sent while it was away are lost, so
the caller must treat what it learned before as stale. docs/adr/0005-auth-notifications.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiopg
import psycopg2
import sqlalchemy as sa

from agenthub.store.db import Session, Statement

log = logging.getLogger("agenthub.db")

# Changes to API tokens and agents that decide whether a session may go on.
AUTH_CHANNEL = "agenthub_auth"

# pg_stat_activity.application_name of the listener: "agenthub-listener-<server pid>", so
# ops (and tests) can tell which process's listener a backend is.
LISTENER_APPLICATION_NAME = "agenthub-listener"

# What a lost or refused connection raises; anything else is a bug, logged with its traceback
# (and the listener carries on all the same: it must not die silently).
_CONNECTION_LOST = (psycopg2.Error, OSError, TimeoutError)

OnNotify = Callable[[str], Awaitable[None]]
OnState = Callable[[bool], Awaitable[None]]


_NOTIFY = Statement(
    sa.select(
        sa.func.pg_notify(
            sa.bindparam("channel", type_=sa.Text), sa.bindparam("message", type_=sa.Text)
        )
    )
)

_PING = Statement(sa.select(sa.literal_column("1")))


async def send(s: Session, channel: str, payload: str) -> None:
    """Notify ``channel`` when ``s``'s transaction commits. PostgreSQL drops an identical
    notification sent twice in one transaction, and limits a payload to 8000 bytes."""
    await s.execute(_NOTIFY, channel=channel, message=payload)


class NotificationListener:
    """LISTEN on ``channel`` over a dedicated connection, for as long as it runs."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: OnNotify,
        on_state: OnState,
        *,
        connect_timeout: float = 5.0,
        retry_min: float = 0.5,
        retry_max: float = 5.0,
        ping_interval: float = 15.0,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        # LISTEN takes an identifier, not a bound value; the channel is ours, not a client's.
        self._listen = Statement(sa.text(f'LISTEN "{channel}"'))
        self._on_notify = on_notify
        self._on_state = on_state
        self._connect_timeout = connect_timeout
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._ping_interval = ping_interval
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        self.up = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._close()

    async def _run(self) -> None:
        delay = self._retry_min
        down_since: float | None = None  # when the current outage began; None: never up yet
        told = False  # the current outage (or failure to start) has been logged
        while True:
            try:
                await self._connect()
            except Exception as exc:
                self._close()
                _log_unexpected(exc)
                if not told:
                    # Once per outage: the database layer reports the outage itself.
                    log.warning(
                        "notification listener cannot connect (%s); retrying", _first_line(exc)
                    )
                    told = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)
                continue
            if down_since is None:
                log.info("notification listener: listening on %s", self._channel)
            else:
                log.info(
                    "notification listener: listening on %s again after %.1fs",
                    self._channel,
                    time.monotonic() - down_since,
                )
            delay, told = self._retry_min, False
            await self._set_state(True)
            reason = "closed"
            try:
                await self._receive()
            except Exception as exc:
                _log_unexpected(exc)
                reason = _first_line(exc)
            self._close()
            down_since, told = time.monotonic(), True
            log.warning(
                "notification listener lost its connection (%s); until it is back, every "
                "request re-checks its session in the database",
                reason,
            )
            await self._set_state(False)
            await asyncio.sleep(delay)

    async def _connect(self) -> None:
        self._conn = await aiopg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            enable_json=False,
            enable_hstore=False,
            enable_uuid=False,
            application_name=f"{LISTENER_APPLICATION_NAME}-{os.getpid()}",
            # A silently dead peer (no FIN, no RST) is noticed by the kernel too, not only by
            # the next ping.
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )
        async with self._conn.cursor() as cur:
            await Session(cur, None).execute(self._listen)

    async def _receive(self) -> None:
        """Hand notifications over until the connection fails (raises)."""
        while True:
            try:
                note = await asyncio.wait_for(self._conn.notifies.get(), self._ping_interval)
            except TimeoutError:
                # Quiet for a while: make sure the connection is still there.
                async with self._conn.cursor() as cur:
                    await Session(cur, None).scalar(_PING)
                continue
            try:
                await self._on_notify(note.payload)
            except Exception:
                log.exception("handling a notification on %s failed", self._channel)

    async def _set_state(self, up: bool) -> None:
        self.up = up
        try:
            await self._on_state(up)
        except Exception:
            log.exception("notification listener state callback failed")

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def _log_unexpected(exc: Exception) -> None:
    if not isinstance(exc, _CONNECTION_LOST):
        log.error("notification listener failed", exc_info=exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
