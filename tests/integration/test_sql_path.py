"""The one SQL path against the real database: what it sends psycopg2 is what SQLAlchemy's own
Engine sends for the same statement and values, and values that need a bind processor (a JSONB
dict) make the round trip."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from agenthub.config import load_settings
from agenthub.store import audit
from agenthub.store.db import Database, Statement
from agenthub.store.tables import audit_events
from tests.store_samples import store_statements, values_for


class _Sent(Exception):
    """Stops the Engine right before the driver runs the statement."""


@pytest.fixture(scope="module")
def engine(database: Any) -> Iterator[sa.Engine]:
    eng = sa.create_engine(load_settings(database.env).sqlalchemy_url(), poolclass=sa.NullPool)
    yield eng
    eng.dispose()


def engine_sends(engine: sa.Engine, stmt: Any, values: dict[str, Any]) -> tuple[str, Any]:
    """The SQL and parameters SQLAlchemy's Engine hands psycopg2 for ``stmt`` and ``values``
    (bind processors and IN expansion included); nothing is executed."""
    sent: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        sent.append((sql, params))
        raise _Sent

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with engine.connect() as conn, pytest.raises(_Sent):
            conn.execute(stmt, values)
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert len(sent) == 1
    return sent[0]


STATEMENTS = dict(store_statements())


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_every_store_statement_sends_what_the_engine_sends(engine: sa.Engine, name: str) -> None:
    statement = STATEMENTS[name]
    for list_length in (1, 4):
        values = values_for(statement, list_length)
        assert statement.bind(values) == engine_sends(engine, statement._stmt, values)


def run_on(database: Any, work: Any) -> Any:
    async def main() -> Any:
        db = Database(load_settings(database.env).dsn())
        await db.start()
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(main())


def test_a_plain_dict_makes_the_jsonb_round_trip(database: Any) -> None:
    kind = f"sql-path-{uuid.uuid4().hex[:8]}"
    payload = {"text": 'é \u2028 "quoted" \\ back', "n": [1, 2.5, None, True], "o": {"k": {}}}

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.transaction() as s:
            await audit.insert(s, type=kind, agent_id=None, payload=payload)
        async with db.session() as s:
            return await audit.page(s, type=kind, before_position=None, limit=5)

    rows = run_on(database, work)
    assert [row["payload"] for row in rows] == [payload]


def test_a_jsonb_dict_compares_in_a_where_clause(database: Any) -> None:
    kind = f"sql-path-{uuid.uuid4().hex[:8]}"
    contains = Statement(
        sa.select(audit_events.c.payload).where(
            audit_events.c.type == sa.bindparam("type"),
            audit_events.c.payload.contains(
                sa.bindparam("fragment", type_=audit_events.c.payload.type)
            ),
        )
    )

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.session() as s:
            await audit.insert(s, type=kind, agent_id=None, payload={"a": 1, "b": 2})
            await audit.insert(s, type=kind, agent_id=None, payload={"a": 2})
            return await s.all(contains, type=kind, fragment={"a": 1})

    assert [row["payload"] for row in run_on(database, work)] == [{"a": 1, "b": 2}]


@pytest.mark.parametrize("count", [0, 1, 5])
def test_in_lists_of_any_length_select_the_right_rows(database: Any, count: int) -> None:
    kinds = [f"sql-path-in-{uuid.uuid4().hex[:8]}" for _ in range(6)]
    by_types = Statement(
        sa.select(audit_events.c.type)
        .where(audit_events.c.type.in_(sa.bindparam("types", expanding=True)))
        .order_by(audit_events.c.type)
    )

    async def work(db: Database) -> list[list[str]]:
        found = []
        async with db.session() as s:
            for kind in kinds:
                await audit.insert(s, type=kind, agent_id=None, payload={})
            # The same statement with two lengths in a row: each gets its own placeholders.
            for types in (kinds[:count], kinds[:2]):
                found.append([row["type"] for row in await s.all(by_types, types=types)])
        return found

    assert run_on(database, work) == [sorted(kinds[:count]), sorted(kinds[:2])]


def test_the_pools_connections_run_without_jit(database: Any) -> None:
    # Every statement is short; a JIT compile would cost more than it runs (store/db.py).
    show_jit = Statement(sa.text("SHOW jit"))

    async def work(db: Database) -> Any:
        async with db.session() as s:
            return await s.scalar(show_jit)

    assert run_on(database, work) == "off"
