"""GET /api/v1/audit (admins)."""

from __future__ import annotations

from agenthub.api.base import BaseHandler
from agenthub.errors import ValidationFailed


class AuditHandler(BaseHandler):
    route = "/api/v1/audit"

    async def get(self) -> None:
        if self.get_query_argument("agent", None) == "":
            # Refused, not taken as absent: the document describes it as a name or an id.
            raise ValidationFailed("invalid agent", {"agent": ["empty: leave it out instead"]})
        agent = self.query_str("agent")
        events, next_cursor = await self.services.audit.list_events(
            self.current(),
            event_type=self.query_str("type", 64),
            limit=self.query_int("limit"),
            cursor=self.query_str("cursor"),
            agent=None if agent is None else self.path_ref(agent, "agent"),
        )
        self.reply(200, {"events": [e.to_dict() for e in events], "nextCursor": next_cursor})
