"""Full-text search over messages: one statement per page, on the GIN index ix_messages_search.

The text is matched in the ``simple`` configuration (no stemming, no stop words) as the
generated column ``messages.search`` holds it (``store.tables.SEARCH_TEXT``). A query is
PostgreSQL's ``websearch_to_tsquery`` syntax: words (all must match), ``"a phrase"``, ``or``,
``-word``. The query is a bound value rendered as a literal by the driver, so PostgreSQL folds
``websearch_to_tsquery('simple', …)`` to a constant at plan time and the index condition is a
plain ``search @@ '<tsquery>'``; the optional filters (``NULL IS NULL OR …``) and the
admin's "every room" fold away the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import REAL

from agenthub.store.db import Row, Session, Statement
from agenthub.store.messages import COLUMNS
from agenthub.store.tables import messages, room_members, rooms

_SIMPLE: sa.ColumnClause[str] = sa.literal_column("'simple'::regconfig", sa.Text)
_Q = sa.bindparam("q", type_=sa.Text)
# The query's text is read as the bodies are (SEARCH_TEXT), so "<div>" is the word div, not a
# tag the parser would drop.
_QUERY = sa.func.websearch_to_tsquery(_SIMPLE, sa.func.replace(_Q, "<", "< "))

# A query PostgreSQL can answer from the index: at least one word a result must contain. An
# empty query (only punctuation or operators) has no node; one made of negations only
# ("-word", "a or -b") reduces to 'T', "everything", which would read every row.
_SEARCHABLE = sa.and_(sa.func.numnode(_QUERY) > 0, sa.func.querytree(_QUERY) != "T")

# Untyped: psycopg2 gives the real as a float, and a typed Float would ask for result processing.
_RANK = sa.func.ts_rank(messages.c.search, _QUERY)

# Marks are « and »; ts_headline's default <b> would be HTML. A short body comes back whole
# (every match marked), a longer one as up to three excerpts around the best matches.
WHOLE_BODY_CHARS = 300
_WHOLE = "StartSel=«, StopSel=», HighlightAll=true"
_EXCERPTS = (
    'StartSel=«, StopSel=», MaxFragments=3, MaxWords=15, MinWords=5, FragmentDelimiter=" … "'
)


@dataclass(frozen=True)
class After:
    """Where the previous page ended, in the listing's order (rank, then newest first)."""

    rank: str  # as PostgreSQL writes a real: the shortest text that reads back exactly
    created_at: datetime
    id: uuid.UUID


def _search() -> Statement:
    """Parameters: q, viewer, all_rooms (an admin: every room), room_id, sender_id,
    message_kind (None: any), after_rank/after_created_at/after_id (None: the first page),
    limit."""
    room_id = sa.bindparam("room_id", type_=sa.Uuid)
    sender_id = sa.bindparam("sender_id", type_=sa.Uuid)
    kind = sa.bindparam("message_kind", type_=sa.Text)
    after_id = sa.bindparam("after_id", type_=sa.Uuid)
    member_rooms = sa.select(room_members.c.room_id).where(
        room_members.c.agent_id == sa.bindparam("viewer", type_=sa.Uuid)
    )
    order = (_RANK.desc(), messages.c.created_at.desc(), messages.c.id.desc())
    page = (
        sa.select(*COLUMNS, _RANK.label("rank"))
        .where(
            messages.c.search.bool_op("@@")(_QUERY),
            _SEARCHABLE,
            # A tombstone's body is "" (so nothing in it matches); said here all the same.
            messages.c.redacted_at.is_(None),
            sa.or_(
                sa.bindparam("all_rooms", type_=sa.Boolean), messages.c.room_id.in_(member_rooms)
            ),
            sa.or_(room_id.is_(None), messages.c.room_id == room_id),
            sa.or_(sender_id.is_(None), messages.c.sender_id == sender_id),
            sa.or_(kind.is_(None), messages.c.kind == kind),
            # Keyset paging: strictly after the previous page's last row in the same order.
            sa.or_(
                after_id.is_(None),
                sa.tuple_(_RANK, messages.c.created_at, messages.c.id)
                < sa.tuple_(
                    sa.cast(sa.bindparam("after_rank", type_=sa.Text), REAL),
                    sa.bindparam("after_created_at", type_=sa.DateTime(timezone=True)),
                    after_id,
                ),
            ),
        )
        .order_by(*order)
        .limit(sa.bindparam("limit", type_=sa.Integer))
        .subquery("page")
    )
    # Per page row only (never per match): the room's slug, the reply count of a thread's root
    # (tombstones count: they stay in the thread) and the highlight.
    replies = messages.alias("replies")
    reply_count = sa.case(
        (
            page.c.thread_root.is_(None),
            sa.select(sa.func.count())
            .where(replies.c.room_id == page.c.room_id, replies.c.thread_root == page.c.seq)
            .scalar_subquery(),
        ),
        else_=0,
    )
    # The highlight is computed on the text as it was indexed (SEARCH_TEXT: a space after each
    # "<", so the parser never takes "<b>" for markup and drops it); the service removes those
    # spaces again.
    indexed = sa.func.replace(page.c.body, "<", "< ")
    highlight = sa.case(
        (
            sa.func.char_length(page.c.body) <= WHOLE_BODY_CHARS,
            sa.func.ts_headline(_SIMPLE, indexed, _QUERY, _WHOLE, type_=sa.Text),
        ),
        else_=sa.func.ts_headline(_SIMPLE, indexed, _QUERY, _EXCERPTS, type_=sa.Text),
    )
    # The rank as text: a real read into a Python float (a double) and written back may not
    # be the same real, and the next page's bound must be exact.
    listed = [c for c in page.c if c.key != "rank"]
    return Statement(
        sa.select(
            *listed,
            sa.cast(page.c.rank, sa.Text).label("rank"),
            rooms.c.slug.label("room_slug"),
            reply_count.label("reply_count"),
            highlight.label("highlight"),
        )
        .select_from(page.join(rooms, rooms.c.id == page.c.room_id))
        .order_by(page.c.rank.desc(), page.c.created_at.desc(), page.c.id.desc())
    )


_SEARCH = _search()
_IS_SEARCHABLE = Statement(sa.select(_SEARCHABLE))


async def search(
    s: Session,
    q: str,
    *,
    viewer: uuid.UUID,
    all_rooms: bool,
    room_id: uuid.UUID | None,
    sender_id: uuid.UUID | None,
    kind: str | None,
    after: After | None,
    limit: int,
) -> list[Row]:
    """Messages matching ``q`` in the viewer's rooms (every room with ``all_rooms``), best
    rank first, then newest; each row is a message with ``room_slug``, ``reply_count``,
    ``rank`` and ``highlight``. Nothing when ``q`` is not searchable (see ``searchable``)."""
    return await s.all(
        _SEARCH,
        q=q,
        viewer=viewer,
        all_rooms=all_rooms,
        room_id=room_id,
        sender_id=sender_id,
        message_kind=kind,
        after_rank=None if after is None else after.rank,
        after_created_at=None if after is None else after.created_at,
        after_id=None if after is None else after.id,
        limit=limit,
    )


async def searchable(s: Session, q: str) -> bool:
    """Whether ``q`` names at least one word a result must contain."""
    return bool(await s.scalar(_IS_SEARCHABLE, q=q))
