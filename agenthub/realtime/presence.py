"""Who is online where, in memory (one process): an agent is online in a room while at least
one of its sockets is in that room. A socket that stops answering heartbeats is closed by
engine.io (its ping timeout), and its disconnect takes it out of here."""

from __future__ import annotations

import uuid


class Presence:
    def __init__(self) -> None:
        self._agent_of: dict[str, uuid.UUID] = {}
        self._rooms_of: dict[str, set[uuid.UUID]] = {}
        # room -> agent -> that agent's sockets in the room
        self._online: dict[uuid.UUID, dict[uuid.UUID, set[str]]] = {}

    def add_socket(self, sid: str, agent_id: uuid.UUID) -> None:
        self._agent_of[sid] = agent_id
        self._rooms_of.setdefault(sid, set())

    def join(self, sid: str, room_id: uuid.UUID) -> bool:
        """Put the socket in the room; True when its agent just came online there."""
        agent_id = self._agent_of.get(sid)
        if agent_id is None:
            return False
        self._rooms_of[sid].add(room_id)
        agents = self._online.setdefault(room_id, {})
        sockets = agents.setdefault(agent_id, set())
        first = not sockets
        sockets.add(sid)
        return first

    def leave(self, sid: str, room_id: uuid.UUID) -> bool:
        """Take the socket out of the room; True when its agent just went offline there."""
        agent_id = self._agent_of.get(sid)
        if agent_id is None or room_id not in self._rooms_of.get(sid, ()):
            return False
        self._rooms_of[sid].discard(room_id)
        agents = self._online.get(room_id, {})
        sockets = agents.get(agent_id, set())
        sockets.discard(sid)
        if sockets:
            return False
        agents.pop(agent_id, None)
        if not agents:
            self._online.pop(room_id, None)
        return True

    def remove_socket(self, sid: str) -> list[uuid.UUID]:
        """Forget the socket; the rooms where its agent went offline because of it."""
        offline = [room for room in list(self._rooms_of.get(sid, ())) if self.leave(sid, room)]
        self._agent_of.pop(sid, None)
        self._rooms_of.pop(sid, None)
        return offline

    def is_online(self, room_id: uuid.UUID, agent_id: uuid.UUID) -> bool:
        return bool(self._online.get(room_id, {}).get(agent_id))

    def in_room(self, sid: str, room_id: uuid.UUID) -> bool:
        return room_id in self._rooms_of.get(sid, ())

    def entries(self) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """Every (room, agent) online here."""
        return [(room, agent) for room, agents in self._online.items() for agent in agents]

    def room_count(self) -> int:
        """Rooms where at least one agent is online."""
        return len(self._online)
