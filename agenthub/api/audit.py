"""GET /api/v1/audit (admins)."""

from __future__ import annotations

from agenthub.api.base import BaseHandler


class AuditHandler(BaseHandler):
    route = "/api/v1/audit"

    async def get(self) -> None:
        events, next_cursor = await self.services.audit.list_events(
            self.current(),
            event_type=self.query_str("type", 64),
            limit=self.query_int("limit"),
            cursor=self.query_str("cursor"),
        )
        self.reply(200, {"events": [e.to_dict() for e in events], "nextCursor": next_cursor})
