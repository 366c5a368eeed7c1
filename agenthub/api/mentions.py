"""The caller's mentions, across its rooms."""

from __future__ import annotations

from agenthub import wire
from agenthub.api.base import BaseHandler
from agenthub.errors import ValidationFailed

_BOOLEANS = {"true": True, "false": False}


class MentionsHandler(BaseHandler):
    route = "/api/v1/mentions"

    async def get(self) -> None:
        page = await self.services.mentions.list_mentions(
            self.current(),
            limit=self.query_int("limit"),
            cursor=self.query_str("cursor"),
            after=self.query_str("after"),
            unread=self._query_flag("unread"),
        )
        self.reply(200, wire.MENTION_PAGE.serialize(page))

    def _query_flag(self, name: str) -> bool:
        raw = self.query_str(name)
        if raw is None:
            return False
        if raw not in _BOOLEANS:
            raise ValidationFailed(f"invalid {name}", {name: ["true or false"]})
        return _BOOLEANS[raw]
