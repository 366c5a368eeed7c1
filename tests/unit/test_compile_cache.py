"""store.db.compile_statement caches SQL by statement shape: what it returns for a cached shape
must be exactly what a fresh compile gives for the same values."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from agenthub.store import db
from agenthub.store.tables import api_tokens, messages, rooms


def _page(room_id: uuid.UUID, before: int, limit: int) -> sa.Select[Any]:
    return (
        sa.select(messages)
        .where(messages.c.room_id == room_id, messages.c.seq < before)
        .order_by(messages.c.seq.desc())
        .limit(limit)
    )


def _rename_and_recent(room_id: uuid.UUID, name: str) -> sa.Select[Any]:
    """A data-modifying CTE beside a reading one, each with its own bound values."""
    renamed = (
        sa.update(rooms).where(rooms.c.id == room_id).values(name=name).returning(rooms.c.id)
    ).cte("renamed")
    recent = sa.select(messages.c.seq).where(messages.c.room_id == room_id).limit(3).cte("recent")
    return sa.select(renamed.c.id, recent.c.seq).select_from(renamed.join(recent, sa.true()))


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    db._compiled_cache.clear()


def test_same_shape_other_values_binds_the_new_values() -> None:
    first = _page(uuid.uuid4(), 10, 5)
    second_room = uuid.uuid4()
    second = _page(second_room, 99, 7)
    db.compile_statement(first)
    sql, params = db.compile_statement(second)
    assert (sql, params) == db._compile_fresh(second)
    assert second_room in params.values() and 99 in params.values() and 7 in params.values()
    assert len(db._compiled_cache) == 1


def test_cte_statement_from_cache_matches_a_fresh_compile() -> None:
    db.compile_statement(_rename_and_recent(uuid.uuid4(), "first"))
    later = _rename_and_recent(uuid.uuid4(), "second; DROP TABLE rooms --")
    assert db.compile_statement(later) == db._compile_fresh(later)
    assert len(db._compiled_cache) == 1


def test_different_shapes_get_their_own_entries() -> None:
    room = uuid.uuid4()
    page_sql, _ = db.compile_statement(_page(room, 10, 5))
    other = sa.select(messages).where(messages.c.room_id == room)
    other_sql, _ = db.compile_statement(other)
    assert page_sql != other_sql
    assert len(db._compiled_cache) == 2


@pytest.mark.parametrize("count", [1, 3, 8])
def test_expanding_in_renders_one_placeholder_per_value(count: int) -> None:
    # Warm the shape with another length first: a cached IN would keep that length.
    db.compile_statement(sa.select(api_tokens).where(api_tokens.c.prefix.in_(["w", "x"])))
    prefixes = [f"p{i}" for i in range(count)]
    stmt = sa.select(api_tokens).where(api_tokens.c.prefix.in_(prefixes))
    sql, params = db.compile_statement(stmt)
    assert (sql, params) == db._compile_fresh(stmt)
    assert sorted(v for v in params.values() if isinstance(v, str)) == sorted(prefixes)
