"""Mentions: the messages that mention an agent (by @name, or @room), across its rooms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agenthub import cursors
from agenthub.actors import Principal
from agenthub.domain import PageBounds
from agenthub.errors import ValidationFailed
from agenthub.models import Message
from agenthub.store import mentions as mention_store
from agenthub.store.db import Database

# ``after=0``: from the agent's first mention (every other ``after`` is a cursor).
FROM_THE_START = "0"


@dataclass(frozen=True)
class Mention:
    message: Message

    @property
    def room(self) -> dict[str, Any]:
        return {"id": self.message.room_id, "slug": self.message.room_slug}


@dataclass(frozen=True)
class MentionPage:
    mentions: list[Mention]
    # Newest first: the next (older) page, None after the last. Oldest first (``after``):
    # where to go on from, always given (the ``after`` asked for when nothing came).
    next_cursor: str | None


class MentionService:
    def __init__(self, db: Database, *, pages: PageBounds) -> None:
        self._db = db
        self._pages = pages

    async def list_mentions(
        self,
        principal: Principal,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        after: str | None = None,
        unread: bool = False,
    ) -> MentionPage:
        """The messages that mention the caller, in the rooms it is still a member of: newest
        first (paged with ``cursor``), or oldest first after the cursor ``after`` (``"0"``:
        from the start). ``unread`` keeps those after the caller's read marker in their
        room. Redacted messages are never here (redaction drops their mention rows)."""
        limit = self._pages.limit(limit)
        if cursor is not None and after is not None:
            raise ValidationFailed(
                "cursor and after cannot be combined", {"after": ["use either cursor or after"]}
            )
        # A cursor belongs to its listing: this agent's mentions, all or unread only.
        scope = f"{principal.agent_id}/{'unread' if unread else 'all'}"
        before = cursors.decode(cursor, "mentions", scope) if cursor is not None else None
        since = None
        if after is not None:
            since = 0 if after == FROM_THE_START else _decode_after(after, scope)
        async with self._db.session() as s:
            rows = await mention_store.page(
                s,
                principal.agent_id,
                unread=unread,
                limit=limit + 1,
                before_position=before,
                after_position=since,
            )
        has_more = len(rows) > limit
        rows = rows[:limit]
        found = [Mention(Message.from_row(r)) for r in rows]
        if since is not None:
            last = int(rows[-1]["position"]) if rows else since
            return MentionPage(found, cursors.encode("mentions", scope, last))
        next_cursor = None
        if has_more and rows:
            next_cursor = cursors.encode("mentions", scope, int(rows[-1]["position"]))
        return MentionPage(found, next_cursor)


def _decode_after(after: str, scope: str) -> int:
    try:
        return cursors.decode(after, "mentions", scope)
    except ValidationFailed:
        raise ValidationFailed(
            "invalid after", {"after": ["a nextCursor of this listing, or 0"]}
        ) from None
