"""Live sockets re-checked against the database on a timer.

A socket authenticates once, at the handshake. Revocations made in this process reach its
sockets at once through the event bus; ones made by another process (``agenthub token
revoke``, ``agenthub agent disable``) do not, so every ``interval`` seconds one query re-checks
the API tokens behind all live sockets: sockets whose token or agent is no longer valid are
ended, and a changed role is applied to the live connection.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable

from agenthub.realtime.connections import Connections, SocketState
from agenthub.realtime.periodic import Periodic
from agenthub.services.sessions import SessionStanding

log = logging.getLogger("agenthub.realtime")

StandingCheck = Callable[[Iterable[str]], Awaitable[dict[str, SessionStanding]]]
EndSession = Callable[[SocketState, SessionStanding], Awaitable[None]]


class SessionRevalidator(Periodic):
    def __init__(
        self,
        connections: Connections,
        check: StandingCheck,
        end: EndSession,
        interval: float,
    ) -> None:
        # While the database is away a pass raises Unavailable and sockets keep running (new
        # handshakes and REST calls fail meanwhile, so nothing is granted).
        super().__init__(interval, "socket session revalidation")
        self._connections = connections
        self._check = check
        self._end = end

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

    async def _pass(self) -> None:
        await self.revalidate_once()
