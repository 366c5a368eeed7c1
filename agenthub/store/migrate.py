"""Run alembic from inside the package, wherever it is installed.

Upgrading goes to the newest revision the code knows. Rolling back goes one revision at a time
(or to a named one) and never below the first revision: that one's downgrade drops every table,
which is not a rollback but the end of the database.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from agenthub.config import Settings


class MigrationRefused(Exception):
    """A move the schema cannot or must not make; the message says why, for the operator."""


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


def known_revisions(settings: Settings) -> list[str]:
    """The revisions this code carries, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(settings))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def current_revision(settings: Settings) -> str | None:
    engine = create_engine(settings.sqlalchemy_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _check_known(current: str | None, known: list[str]) -> None:
    if current is not None and current not in known:
        raise MigrationRefused(
            f"the database is at revision {current}, which this release does not know (a "
            f"newer release migrated it; this one knows {', '.join(known)}): roll the schema "
            f"back with the newer release first (agenthub migrate --to {known[-1]}), or "
            "install the newer release again"
        )


def upgrade(settings: Settings, revision: str = "head") -> None:
    _check_known(current_revision(settings), known_revisions(settings))
    command.upgrade(alembic_config(settings), revision)


def migrate_to(settings: Settings, target: str) -> None:
    """Bring the schema to ``target``, down or up, one revision at a time."""
    known = known_revisions(settings)
    if target not in known:
        raise MigrationRefused(
            f"unknown revision {target!r}: this release knows {', '.join(known)}"
        )
    current = current_revision(settings)
    _check_known(current, known)
    cfg = alembic_config(settings)
    if current is not None and known.index(target) < known.index(current):
        command.downgrade(cfg, target)
    elif current != target:
        command.upgrade(cfg, target)


def step_down(settings: Settings) -> str:
    """Roll the newest applied revision back; returns the revision the schema is at now."""
    known = known_revisions(settings)
    current = current_revision(settings)
    _check_known(current, known)
    if current is None:
        raise MigrationRefused("the database has no migration applied: nothing to roll back")
    at = known.index(current)
    if at == 0:
        raise MigrationRefused(
            f"{current} is the first revision: rolling it back would drop every table"
        )
    migrate_to(settings, known[at - 1])
    return known[at - 1]


def pending(settings: Settings) -> tuple[str | None, str | None]:
    """(current revision in the database, head revision of the code)."""
    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
    return current_revision(settings), head
