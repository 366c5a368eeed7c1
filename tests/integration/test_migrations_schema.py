"""migrations/ and agenthub/store/tables.py describe the same schema: a database migrated by
alembic to head has exactly what ``tables.metadata`` declares. A change to one without the other
fails here, with alembic's own list of differences."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.migration import MigrationContext

from agenthub.config import load_settings
from agenthub.store.tables import metadata


@pytest.fixture(scope="module")
def migrated(database: Any) -> Iterator[sa.Connection]:
    """A connection to the session's database, which ``agenthub migrate`` brought to head."""
    engine = sa.create_engine(load_settings(database.env).sqlalchemy_url(), poolclass=sa.NullPool)
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def test_the_migrated_schema_is_what_tables_py_declares(migrated: sa.Connection) -> None:
    context = MigrationContext.configure(
        migrated, opts={"compare_type": True, "compare_server_default": True}
    )
    needed = produce_migrations(context, metadata).upgrade_ops
    assert needed is not None
    # The message is the migration alembic would write to bring the database to tables.py.
    assert needed.is_empty(), "migrations/ and tables.py differ; alembic would migrate:\n" + (
        render_python_code(needed)
    )


def _checks(constraints: list[Any]) -> set[tuple[str, str]]:
    return {(str(c["name"]), " ".join(str(c["sqltext"]).split())) for c in constraints}


def test_the_migrated_check_constraints_are_what_tables_py_declares(
    migrated: sa.Connection,
) -> None:
    """alembic's comparison does not cover CHECK constraints: compare names and the rules as
    PostgreSQL normalises them (so tables.py's text is compiled the same way)."""
    inspector = sa.inspect(migrated)
    for table in metadata.sorted_tables:
        declared = {c for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        in_database = _checks(inspector.get_check_constraints(table.name))
        assert {name for name, _ in in_database} == {str(c.name) for c in declared}, table.name
        # PostgreSQL rewrites "role IN ('admin', 'agent')" as "role = ANY (ARRAY[...])": ask it
        # to normalise the declared text the same way, in a throwaway CHECK on a temp table.
        for check in declared:
            sqltext = str(check.sqltext.compile(dialect=migrated.dialect))
            migrated.execute(sa.text(f"CREATE TEMP TABLE _ck (LIKE {table.name})"))
            try:
                migrated.execute(sa.text(f"ALTER TABLE _ck ADD CONSTRAINT ck CHECK ({sqltext})"))
                normalised = _checks(sa.inspect(migrated).get_check_constraints("_ck"))
            finally:
                migrated.rollback()
            expected = {(str(check.name), text) for _, text in normalised}
            assert expected <= in_database, f"{table.name}: {expected} not in {in_database}"
