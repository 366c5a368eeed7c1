"""Per-socket state (who, until when, its flood guard) and the agent -> sockets index the
event listeners use to reach an agent's live sockets."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from agenthub.actors import Principal
from agenthub.realtime.rate_limit import FloodGuard


@dataclass
class SocketState:
    sid: str
    principal: Principal
    expires_at: datetime
    guard: FloodGuard
    # One event at a time per socket: acks (and seqs) follow the order events were sent,
    # and one socket can hold at most one database connection.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    expiry: asyncio.TimerHandle | None = None
    closing: bool = False

    @property
    def agent_id(self) -> uuid.UUID:
        return self.principal.agent_id


class Connections:
    def __init__(self) -> None:
        self._by_sid: dict[str, SocketState] = {}
        self._by_agent: dict[uuid.UUID, set[str]] = {}

    def add(self, state: SocketState) -> None:
        self._by_sid[state.sid] = state
        self._by_agent.setdefault(state.agent_id, set()).add(state.sid)

    def get(self, sid: str) -> SocketState | None:
        return self._by_sid.get(sid)

    def remove(self, sid: str) -> SocketState | None:
        state = self._by_sid.pop(sid, None)
        if state is not None:
            sids = self._by_agent.get(state.agent_id)
            if sids is not None:
                sids.discard(sid)
                if not sids:
                    del self._by_agent[state.agent_id]
            if state.expiry is not None:
                state.expiry.cancel()
        return state

    def of_agent(self, agent_id: uuid.UUID) -> list[SocketState]:
        return [self._by_sid[sid] for sid in sorted(self._by_agent.get(agent_id, ()))]

    def agent_count(self) -> int:
        """Distinct agents with at least one socket."""
        return len(self._by_agent)

    def all(self) -> list[SocketState]:
        return list(self._by_sid.values())

    def __len__(self) -> int:
        return len(self._by_sid)
