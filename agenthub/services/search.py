"""Search: messages matching a full-text query in the rooms the caller belongs to (an admin:
every room), best match first, then newest.

Paging is by keyset, not offset: the cursor holds the last result's (rank, createdAt, id) and
the next page is what comes strictly after it in that order. A message that arrives between two
pages therefore never shifts a page (no result is shown twice and none that was there is
skipped); one that sorts before the cursor is not shown on later pages, as if it had arrived
after the search. The cursor is bound to the query and its filters: it is refused with
another ``q``, ``room``, ``sender`` or ``kind``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agenthub.actors import Principal
from agenthub.domain import MESSAGE_KIND_PATTERN, MESSAGE_KIND_RE, PageBounds
from agenthub.errors import Forbidden, ValidationFailed
from agenthub.models import Message
from agenthub.services.directory import AgentRef, Directory, RoomRef
from agenthub.services.rooms import load_visible_room
from agenthub.store import rooms as room_store
from agenthub.store import search as search_store
from agenthub.store.db import Database, Row

# Longest accepted query, in characters: plenty for words, phrases and operators.
MAX_QUERY_CHARS = 500

_NO_WORD = "name at least one word results must contain (not only -word or punctuation)"


@dataclass(frozen=True)
class RoomKey:
    """A room as a search result names it."""

    id: uuid.UUID
    slug: str


@dataclass(frozen=True)
class SearchResult:
    message: Message
    room: RoomKey
    highlight: str  # the body (or excerpts of it) with each match between « and »


@dataclass(frozen=True)
class SearchPage:
    results: list[SearchResult]
    next_cursor: str | None


def check_query(q: str | None) -> str:
    """What can be told of ``q`` without the database: present, not too long, no NUL."""
    if q is None or not q.strip():
        raise ValidationFailed("q is empty", {"q": [_NO_WORD]})
    if len(q) > MAX_QUERY_CHARS:
        raise ValidationFailed("q is too long", {"q": [f"at most {MAX_QUERY_CHARS} characters"]})
    if "\x00" in q:
        raise ValidationFailed("q contains NUL", {"q": ["NUL is not allowed"]})
    return q


class SearchService:
    def __init__(self, db: Database, directory: Directory, *, pages: PageBounds) -> None:
        self._db = db
        self._directory = directory
        self._pages = pages

    async def search(
        self,
        principal: Principal,
        q: str | None,
        *,
        room: RoomRef | None = None,
        sender: AgentRef | None = None,
        kind: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SearchPage:
        q = check_query(q)
        limit = self._pages.limit(limit)
        if kind is not None and not MESSAGE_KIND_RE.match(kind):
            raise ValidationFailed("invalid kind", {"kind": [f"must match {MESSAGE_KIND_PATTERN}"]})
        room_id = None if room is None else await self._directory.room_id(room)
        sender_id = None if sender is None else await self._directory.agent_id(principal, sender)
        scope = _scope(q, room_id, sender_id, kind)
        after = None if cursor is None else decode_cursor(cursor, scope)
        async with self._db.session() as s:
            if room_id is not None:
                # The member rules of every room read: a private room is 404, a public one 403.
                await load_visible_room(s, principal, room_id)
                if not principal.is_admin and not await room_store.is_member(
                    s, room_id, principal.agent_id
                ):
                    raise Forbidden("only room members may search this room's messages")
            rows = await search_store.search(
                s,
                q,
                viewer=principal.agent_id,
                all_rooms=principal.is_admin,
                room_id=room_id,
                sender_id=sender_id,
                kind=kind,
                after=after,
                limit=limit + 1,
            )
            # Asked only when nothing matched: an unsearchable query matches nothing.
            if not rows and not await search_store.searchable(s, q):
                raise ValidationFailed("q has no word to search for", {"q": [_NO_WORD]})
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = encode_cursor(
                scope, search_store.After(last["rank"], last["created_at"], last["id"])
            )
        return SearchPage([_result(row) for row in rows], next_cursor)


def _result(row: Row) -> SearchResult:
    # The highlight was made from the body with a space after each "<" (as it is indexed,
    # store.tables.SEARCH_TEXT); every "< " in it is one of those.
    highlight = str(row["highlight"]).replace("< ", "<")
    return SearchResult(Message.from_row(row), RoomKey(row["room_id"], row["room_slug"]), highlight)


# --- cursors -----------------------------------------------------------------------------

_CURSOR_KIND = "search"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _scope(q: str, room_id: uuid.UUID | None, sender_id: uuid.UUID | None, kind: str | None) -> str:
    """What a cursor is valid for: this query with these filters."""
    key = json.dumps([q, str(room_id), str(sender_id), kind], ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _microseconds(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# How PostgreSQL writes a non-negative real ("0.06079271", "1e-20").
_RANK_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:e[-+][0-9]+)?\Z")
_SMALLEST_REAL = 1.2e-38  # about the smallest normal float32: below it PostgreSQL may refuse


def _fits_real(value: float) -> bool:
    """Whether PostgreSQL reads ``value`` as a real without an out-of-range error."""
    if not math.isfinite(value):
        return False
    try:
        struct.pack("f", value)
    except OverflowError:
        return False
    return value == 0 or value >= _SMALLEST_REAL


def encode_cursor(scope: str, after: search_store.After) -> str:
    """Opaque to clients: base64url of the position (rank exactly as PostgreSQL's real gave it,
    the time in microseconds, the id) and the scope it belongs to."""
    position = [after.rank, _microseconds(after.created_at), str(after.id)]
    raw = json.dumps({"k": _CURSOR_KIND, "s": scope, "p": position}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> search_store.After:
    """The position in ``cursor``; ValidationFailed unless it is a search cursor for ``scope``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if data.get("k") != _CURSOR_KIND or data.get("s") != scope:
            raise ValueError("another listing's cursor")
        rank, micros, message_id = data["p"]
        if not isinstance(rank, str) or not _RANK_TEXT.match(rank) or not _fits_real(float(rank)):
            raise ValueError("rank")
        if isinstance(micros, bool) or not isinstance(micros, int):
            raise ValueError("time")
        created_at = _EPOCH + timedelta(microseconds=micros)
        return search_store.After(rank, created_at, uuid.UUID(message_id))
    except (ValueError, binascii.Error, KeyError, TypeError, AttributeError, OverflowError):
        raise ValidationFailed(
            "invalid cursor", {"cursor": ["not a cursor for this search"]}
        ) from None
