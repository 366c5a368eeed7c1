"""The URL table. Each handler's ``route`` attribute is the pattern used in logs and metrics."""

from __future__ import annotations

from typing import Any

from agenthub.api import (
    agents,
    audit,
    console,
    dms,
    health,
    mentions,
    metrics_handler,
    openapi,
    rooms,
    search,
    sessions,
)
from agenthub.api.base import BaseHandler
from agenthub.api.security import HttpGuards
from agenthub.console import ConsoleAssets

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
    rooms.RoomArchiveHandler,
    rooms.RoomUnarchiveHandler,
    rooms.RoomReadHandler,
    rooms.InboxHandler,
    rooms.MembersHandler,
    rooms.MemberHandler,
    rooms.MessagesHandler,
    rooms.MessageHandler,
    mentions.MentionsHandler,
    dms.DmsHandler,
    search.SearchHandler,
    audit.AuditHandler,
    metrics_handler.MetricsHandler,
    openapi.OpenApiHandler,
    console.ConsoleIndexHandler,
    console.ConsoleAssetHandler,
]


def _regex(route: str) -> str:
    parts = []
    for part in route.split("/"):
        parts.append(_SEGMENT if part.startswith("{") else part)
    return "/".join(parts) + "/?$" if route != "/" else "/$"


def url_specs(
    services: Any, guards: HttpGuards
) -> list[tuple[str, type[BaseHandler], dict[str, Any]]]:
    """The table for tornado. The OpenAPI document is built here, once, from this table: a
    route without a documented operation stops the server from starting."""
    args = {"services": services, "guards": guards}
    document = openapi.build_document(services.settings, HANDLERS)
    assets = ConsoleAssets()  # read and hashed once; a broken reference stops the start

    def extra(h: type[BaseHandler]) -> dict[str, Any]:
        if h is openapi.OpenApiHandler:
            return {"document": document}
        if issubclass(h, console.ConsoleIndexHandler | console.ConsoleAssetHandler):
            return {"assets": assets}
        return {}

    return [(_regex(h.route), h, {**args, **extra(h)}) for h in HANDLERS]
