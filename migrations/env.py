"""Alembic environment: the schema comes from agenthub.store.tables, the URL from settings."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine, pool, text

from agenthub.config import load_settings
from agenthub.store.tables import metadata

# A fixed key so two `agenthub migrate` runs at once serialise instead of racing.
_MIGRATION_LOCK_KEY = 0x4147454E54485542  # "AGENTHUB"


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url")
    if url:
        return url
    return load_settings(os.environ).sqlalchemy_url()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            context.configure(connection=connection, target_metadata=metadata)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK_KEY})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
