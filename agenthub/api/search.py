"""Search across the caller's rooms."""

from __future__ import annotations

from agenthub import wire
from agenthub.api.base import BaseHandler
from agenthub.errors import ValidationFailed
from agenthub.services.search import MAX_QUERY_CHARS


class SearchHandler(BaseHandler):
    route = "/api/v1/search"

    async def get(self) -> None:
        # A filter given empty ("limit=") is refused rather than taken as absent: the OpenAPI
        # document describes each as a non-empty value when present.
        for name in ("limit", "room", "sender", "kind"):
            if self.get_query_argument(name, None) == "":
                raise ValidationFailed(f"invalid {name}", {name: ["empty: leave it out instead"]})
        room = self.query_str("room")
        sender = self.query_str("sender")
        page = await self.services.search.search(
            self.current(),
            self.query_str("q", MAX_QUERY_CHARS),
            room=None if room is None else self.path_ref(room, "room"),
            sender=None if sender is None else self.path_ref(sender, "sender"),
            kind=self.query_str("kind", 64),
            limit=self.query_int("limit"),
            cursor=self.query_str("cursor"),
        )
        self.reply(200, wire.SEARCH_PAGE.serialize(page))
