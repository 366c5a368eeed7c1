"""store.db.Statement: every statement is compiled once and bound per call. What a bound call
gives the driver must be exactly what a fresh compile of the same statement with the same values
gives, bind processors applied; what the bridge cannot do faithfully it refuses."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg2 as pg_dialect
from sqlalchemy.sql.compiler import SQLCompiler

from agenthub.store import audit, db, messages, tokens
from agenthub.store.db import Statement, StatementError
from agenthub.store.tables import agents, audit_events, rooms
from tests.store_samples import sample, store_statements, values_for

STATEMENTS = dict(store_statements())


def fresh(stmt: sa.ClauseElement, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """What SQLAlchemy gives for ``stmt`` compiled anew on a new dialect: the SQL and
    parameters of its ``construct_expanded_state(values)`` (IN lists rendered for these
    values), every value through its type's bind processor (per element for an IN list)."""
    dialect = pg_dialect.dialect()  # type: ignore[no-untyped-call]
    compiled = stmt.compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    state = compiled.construct_expanded_state(values)
    processors = dict(state.processors)
    for param, name in compiled.bind_names.items():
        process = param.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None and not param.expanding:
            processors[name] = process
    params = {k: processors[k](v) if k in processors else v for k, v in state.parameters.items()}
    return state.statement, params


def test_the_store_defines_its_statements_where_this_test_finds_them() -> None:
    assert len(STATEMENTS) >= 30
    assert "messages._INSERT_BATCH" in STATEMENTS


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_every_store_statement_binds_like_a_fresh_compile(name: str) -> None:
    statement = STATEMENTS[name]
    values = values_for(statement)
    statement.bind(values)  # a first call compiles
    assert statement.bind(values) == fresh(statement._stmt, values)


def test_a_statement_compiles_once_and_binds_new_values_each_call() -> None:
    statement = messages._NEWEST_BEFORE
    first_room, second_room = uuid.uuid4(), uuid.uuid4()
    sql_1, params_1 = statement.bind({"room_id": first_room, "before_seq": 10, "limit": 5})
    compiled = statement.compiled()
    sql_2, params_2 = statement.bind({"room_id": second_room, "before_seq": 99, "limit": 7})
    assert statement.compiled() is compiled
    assert sql_1 == sql_2
    assert params_1 == {"room_id": first_room, "before_seq": 10, "limit": 5}
    assert params_2 == {"room_id": second_room, "before_seq": 99, "limit": 7}


def test_the_post_statement_carries_its_constants() -> None:
    values = values_for(messages._INSERT_BATCH)
    sql, params = messages._INSERT_BATCH.bind(values)
    assert sql.startswith("WITH accepted AS")
    assert "message-sent" in params.values()
    assert (sql, params) == fresh(messages._INSERT_BATCH._stmt, values)


def test_a_jsonb_dict_goes_through_the_types_bind_processor() -> None:
    payload = sample("payload")
    _, params = audit._INSERT.bind({"type": "t", "agent_id": None, "payload": payload})
    # psycopg2 cannot adapt a dict: the JSONB type's processor turns it into JSON text.
    assert isinstance(params["payload"], str)
    assert json.loads(params["payload"]) == payload


@pytest.mark.parametrize("count", [0, 1, 3, 8])
def test_expanding_in_renders_one_placeholder_per_value(count: int) -> None:
    statement = tokens._STANDING_BY_PREFIXES
    # Bind another length first: the SQL must follow each call's list, not the first one's.
    statement.bind({"prefixes": ["w", "x"]})
    prefixes = [f"p{i}" for i in range(count)]
    sql, params = statement.bind({"prefixes": prefixes})
    assert (sql, params) == fresh(statement._stmt, {"prefixes": prefixes})
    assert sorted(v for v in params.values() if isinstance(v, str)) == prefixes
    assert len(re.findall(r"%\(prefixes_\d+\)s", sql)) == count


def test_an_expanding_in_of_jsonb_values_processes_each_element() -> None:
    statement = Statement(
        sa.select(audit_events.c.position).where(
            audit_events.c.payload.in_(sa.bindparam("payloads", expanding=True))
        )
    )
    payloads = [{"a": 1}, {"b": [2]}]
    _, params = statement.bind({"payloads": payloads})
    assert [json.loads(params[f"payloads_{i}"]) for i in (1, 2)] == payloads


def test_values_must_match_the_named_bindparams() -> None:
    statement = messages._BY_CLIENT_MSG_ID
    with pytest.raises(StatementError, match="client_msg_id"):
        statement.bind({"sender_id": uuid.uuid4()})
    with pytest.raises(StatementError, match="typo"):
        statement.bind({"sender_id": uuid.uuid4(), "client_msg_id": "c", "typo": 1})


def test_an_in_list_must_be_given_a_list() -> None:
    with pytest.raises(StatementError, match="give a list"):
        tokens._STANDING_BY_PREFIXES.bind({"prefixes": "abc"})


@pytest.mark.parametrize(
    "stmt, why",
    [
        (agents.c.name == sa.bindparam("name"), "not an executable statement"),
        (
            sa.select(agents).where(agents.c.name == sa.bindparam("name", unique=True)),
            "unique",
        ),
        (
            sa.select(agents).where(agents.c.name == sa.bindparam("name", callable_=lambda: "x")),
            "callable",
        ),
        (
            sa.select(agents).where(agents.c.name == sa.bindparam("n", literal_execute=True)),
            "literal_execute",
        ),
        (
            sa.select(sa.cast(agents.c.role, sa.Enum("admin", "agent", name="role"))),
            "needs result processing",
        ),
        (
            sa.select(sa.cast(rooms.c.id, sa.Uuid(as_uuid=False))),
            "needs result processing",
        ),
        (
            sa.select(agents).where(
                sa.tuple_(agents.c.name, agents.c.role)
                == sa.bindparam("pair", type_=sa.TupleType(sa.Text, sa.Text))
            ),
            "tuple",
        ),
    ],
)
def test_what_the_bridge_cannot_run_faithfully_is_refused(stmt: Any, why: str) -> None:
    with pytest.raises(StatementError, match=why):
        Statement(stmt).compiled()


def test_the_ping_is_a_statement_too() -> None:
    assert db._PING.bind({}) == ("SELECT 1", {})


def test_a_session_runs_statements_only() -> None:
    session = db.Session(cursor=None, observe=None)
    with pytest.raises(StatementError, match="not 'SELECT 1'"):
        asyncio.run(session.scalar("SELECT 1"))  # type: ignore[arg-type]
