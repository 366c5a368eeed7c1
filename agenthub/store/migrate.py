"""Run alembic from inside the package, wherever it is installed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from agenthub.config import Settings


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    packaged = here / "migrations"  # the wheel carries them inside the package
    if (packaged / "env.py").exists():
        return packaged
    return here.parent / "migrations"  # a source checkout / editable install


def alembic_config(settings: Settings) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", settings.sqlalchemy_url().replace("%", "%%"))
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def pending(settings: Settings) -> tuple[str | None, str | None]:
    """(current revision in the database, head revision of the code)."""
    cfg = alembic_config(settings)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    engine = create_engine(settings.sqlalchemy_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    return current, head
