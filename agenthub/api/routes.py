"""The URL table. Each handler's ``route`` attribute is the pattern used in logs and metrics."""

from __future__ import annotations

from typing import Any

from agenthub.api import agents, audit, health, rooms, sessions
from agenthub.api.base import BaseHandler

_SEGMENT = r"([^/]+)"

HANDLERS: list[type[BaseHandler]] = [
    health.HealthHandler,
    health.ReadyHandler,
    sessions.SessionsHandler,
    agents.AgentsHandler,
    agents.MeHandler,  # before AgentHandler: "me" is not an id
    agents.AgentHandler,
    agents.AgentTokensHandler,
    agents.TokenHandler,
    rooms.RoomsHandler,
    rooms.RoomHandler,
    rooms.MembersHandler,
    rooms.MemberHandler,
    rooms.MessagesHandler,
    audit.AuditHandler,
]


def _regex(route: str) -> str:
    parts = []
    for part in route.split("/"):
        parts.append(_SEGMENT if part.startswith("{") else part)
    return "/".join(parts) + "/?$" if route != "/" else "/$"


def url_specs(services: Any) -> list[tuple[str, type[BaseHandler], dict[str, Any]]]:
    return [(_regex(h.route), h, {"services": services}) for h in HANDLERS]
