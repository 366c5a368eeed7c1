"""The one bridge between SQLAlchemy Core and aiopg.

aiopg's own ``aiopg.sa`` pins SQLAlchemy < 1.5, so statements are built with SQLAlchemy 2
Core, compiled for the psycopg2 dialect here, and executed on a plain aiopg pool
(docs/adr/0001-sqlalchemy-core-on-aiopg.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import aiopg
import psycopg2
import psycopg2.errors
import psycopg2.extras
from sqlalchemy.dialects.postgresql import psycopg2 as pg_dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement
from sqlalchemy.util import LRUCache

from agenthub.errors import Unavailable

psycopg2.extras.register_uuid()

log = logging.getLogger("agenthub.db")

Row = dict[str, Any]
QueryObserver = Callable[[str, float], None]

_DIALECT = pg_dialect.dialect()  # type: ignore[no-untyped-call]

# Errors meaning "the database is not there", as opposed to a bad statement.
_UNAVAILABLE = (psycopg2.OperationalError, psycopg2.InterfaceError, OSError, TimeoutError)


class UniqueViolation(Exception):
    """An insert or update hit a unique constraint; ``constraint`` names it."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


# Compiled SQL by statement shape. Compiling is the costliest CPU step of a request (a third of
# the server's time on the message-post path before this cache), and every request builds the
# same few shapes. SQLAlchemy's cache key is the one its Engine uses: equal for statements that
# differ only in bound values, which it also extracts so they can be bound to the cached SQL.
_compiled_cache: LRUCache[Any, SQLCompiler | None] = LRUCache(500)


def _compile_fresh(stmt: ClauseElement) -> tuple[str, dict[str, Any]]:
    compiled = stmt.compile(dialect=_DIALECT, compile_kwargs={"render_postcompile": True})
    return str(compiled), dict(compiled.params)


@dataclass(frozen=True)
class Prepared:
    """A statement compiled once; its named ``bindparam`` s are given at each execution, its
    constants (literals the statement carries) are bound from here."""

    sql: str
    constants: dict[str, Any]

    def bind(self, **values: Any) -> dict[str, Any]:
        return {**self.constants, **values}


def prepare(stmt: ClauseElement) -> Prepared:
    compiled = cast(SQLCompiler, stmt.compile(dialect=_DIALECT))
    named = {param.key: None for param in compiled.binds.values() if param.required}
    resolved = compiled.construct_params(params=named)
    constants = {name: value for name, value in resolved.items() if name not in named}
    return Prepared(compiled.string, constants)


def compile_statement(stmt: ClauseElement) -> tuple[str, dict[str, Any]]:
    """SQL text (psycopg2 ``%(name)s`` style) and its parameters for ``stmt``."""
    key = stmt._generate_cache_key()
    if key is None:  # an element that cannot be cached: compile every time
        return _compile_fresh(stmt)
    try:
        compiled = _compiled_cache[key.key]
    except KeyError:
        compiled = cast(SQLCompiler, stmt.compile(dialect=_DIALECT, cache_key=key))
        # An expanding IN renders one placeholder per value: its SQL depends on the values,
        # so such shapes are marked (None) and compiled each time.
        if compiled.post_compile_params or compiled.literal_execute_params:
            compiled = None
        _compiled_cache[key.key] = compiled
    if compiled is None:
        return _compile_fresh(stmt)
    return compiled.string, dict(compiled.construct_params(extracted_parameters=key.bindparams))


class Session:
    """Statements on one connection (inside a transaction when opened by ``transaction``)."""

    def __init__(self, cursor: Any, observe: QueryObserver | None) -> None:
        self._cursor = cursor
        self._observe = observe

    async def _run(self, stmt: ClauseElement | str, params: dict[str, Any] | None) -> None:
        if isinstance(stmt, str):
            sql, bound = stmt, params or {}
        else:
            sql, bound = compile_statement(stmt)
        started = time.perf_counter()
        try:
            await self._cursor.execute(sql, bound)
        except psycopg2.errors.UniqueViolation as exc:
            raise UniqueViolation(exc.diag.constraint_name or "") from None
        finally:
            if self._observe is not None:
                self._observe(sql.split(None, 1)[0].lower(), time.perf_counter() - started)

    def _rows(self, raw: list[tuple[Any, ...]]) -> list[Row]:
        names = [col[0] for col in self._cursor.description]
        return [dict(zip(names, values, strict=True)) for values in raw]

    async def all(
        self, stmt: ClauseElement | str, params: dict[str, Any] | None = None
    ) -> list[Row]:
        await self._run(stmt, params)
        return self._rows(await self._cursor.fetchall())

    async def one(
        self, stmt: ClauseElement | str, params: dict[str, Any] | None = None
    ) -> Row | None:
        await self._run(stmt, params)
        raw = await self._cursor.fetchone()
        return None if raw is None else self._rows([raw])[0]

    async def scalar(self, stmt: ClauseElement | str, params: dict[str, Any] | None = None) -> Any:
        await self._run(stmt, params)
        raw = await self._cursor.fetchone()
        return None if raw is None else raw[0]

    async def execute(self, stmt: ClauseElement | str, params: dict[str, Any] | None = None) -> int:
        await self._run(stmt, params)
        return int(self._cursor.rowcount)


class Database:
    """An aiopg pool that connects lazily, so the service starts while PostgreSQL is away."""

    def __init__(
        self,
        dsn: str,
        *,
        maxsize: int = 10,
        acquire_timeout: float = 5.0,
        statement_timeout: float = 30.0,
        observe: QueryObserver | None = None,
    ) -> None:
        self._dsn = dsn
        self._maxsize = maxsize
        self._acquire_timeout = acquire_timeout
        self._statement_timeout = statement_timeout
        self._pool: Any = None
        self._observe = observe

    async def start(self) -> None:
        # minsize=0: creating the pool must not need a live server.
        self._pool = await aiopg.create_pool(
            self._dsn, minsize=0, maxsize=self._maxsize, timeout=self._statement_timeout
        )

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self._pool is None:
            raise Unavailable("database pool is not started")
        try:
            async with asyncio.timeout(self._acquire_timeout):
                conn = await self._pool.acquire()
        except _UNAVAILABLE as exc:
            log.warning("database unavailable: %s", str(exc).strip().splitlines()[0:1])
            raise Unavailable("database unavailable") from None
        try:
            yield conn
        finally:
            await self._pool.release(conn)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """Autocommit statements: for reads that need no snapshot across statements."""
        async with self._connection() as conn:
            try:
                cur = await conn.cursor()
                try:
                    yield Session(cur, self._observe)
                finally:
                    cur.close()
            except _UNAVAILABLE:
                conn.close()
                raise Unavailable("database unavailable") from None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """BEGIN … COMMIT on one connection; any exception rolls back."""
        async with self._connection() as conn:
            try:
                cur = await conn.cursor()
            except _UNAVAILABLE:
                conn.close()
                raise Unavailable("database unavailable") from None
            try:
                await cur.execute("BEGIN")
                yield Session(cur, self._observe)
                # Timed too: the commit's WAL flush is often the slowest step of a write.
                started = time.perf_counter()
                await cur.execute("COMMIT")
                if self._observe is not None:
                    self._observe("commit", time.perf_counter() - started)
            except BaseException as exc:
                try:
                    if not conn.closed:
                        await cur.execute("ROLLBACK")
                except _UNAVAILABLE:
                    conn.close()
                if isinstance(exc, _UNAVAILABLE):
                    conn.close()
                    raise Unavailable("database unavailable") from None
                raise
            finally:
                cur.close()

    async def ping(self) -> bool:
        try:
            async with self.session() as s:
                return bool(await s.scalar("SELECT 1"))
        except Unavailable:
            return False
