"""Live sockets re-checked against the database when notifications may have been missed.

A socket authenticates once, at the handshake. Revocations reach it through the event bus at
once, whichever process made them: this process publishes them itself, and PostgreSQL
notifications bring those of other processes (``agenthub token revoke``, another server). A
notification sent while this process's listener was disconnected is lost, though, and an
operator who edits the tables by hand announces it with an empty notification; either way
(``SessionsStale``) one query re-checks the API tokens behind all live sockets: sockets whose
token or agent is no longer valid are ended, and a changed role is applied to the live
connection. docs/adr/0005-auth-notifications.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable

from agenthub.errors import Unavailable
from agenthub.realtime.connections import Connections, SocketState
from agenthub.services.sessions import SessionStanding

log = logging.getLogger("agenthub.realtime")

StandingCheck = Callable[[Iterable[str]], Awaitable[dict[str, SessionStanding]]]
EndSession = Callable[[SocketState, SessionStanding], Awaitable[None]]

_RETRY_MAX = 5.0


class SessionRevalidator:
    def __init__(self, connections: Connections, check: StandingCheck, end: EndSession) -> None:
        self._connections = connections
        self._check = check
        self._end = end
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def request(self) -> None:
        """Re-check every live socket soon. Requests made while a pass runs coalesce into one
        more pass after it, which sees every socket as it is then."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        delay = 0.5
        while True:
            self._again = False
            try:
                await self.revalidate_once()
            except Unavailable:
                # The database went away again: this pass must still happen, or a socket
                # whose revocation was missed would live on.
                log.warning("could not re-check live sockets; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                self._again = True
            except Exception:
                log.exception("re-checking live sockets failed")
            if not self._again:
                return

    async def revalidate_once(self) -> int:
        """Check every live socket once; the number of sockets ended."""
        # Remember which token each socket had when asked: a socket that switches to another
        # token (session:refresh) while the query runs was just checked by that refresh.
        checked = [(s, s.principal.token_prefix) for s in self._connections.all() if not s.closing]
        if not checked:
            return 0
        standing = await self._check(prefix for _state, prefix in checked)
        ended = 0
        for state, prefix in checked:
            if (
                self._connections.get(state.sid) is not state
                or state.closing
                or state.principal.token_prefix != prefix
            ):
                continue  # gone, going, or re-authenticated in the meantime
            now = standing.get(prefix)
            if now is None:
                continue  # not asked about (cannot happen); the next pass will
            if not now.valid or now.agent_id != state.agent_id:
                await self._end(state, now)
                ended += 1
            elif now.role is not None and now.role != state.principal.role:
                log.info(
                    "socket %s of agent %s: role %s -> %s",
                    state.sid,
                    state.principal.name,
                    state.principal.role,
                    now.role,
                )
                state.principal = dataclasses.replace(state.principal, role=now.role)
        return ended
