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
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg2 as pg_dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.types import TupleType

from agenthub.errors import Unavailable

psycopg2.extras.register_uuid()

log = logging.getLogger("agenthub.db")

Row = dict[str, Any]
QueryObserver = Callable[[str, float], None]
# Told the type of each audit event once the transaction that wrote it has committed.
AuditObserver = Callable[[str], None]

_DIALECT = pg_dialect.dialect()  # type: ignore[no-untyped-call]

# Errors meaning "the database is not there", as opposed to a bad statement.
_UNAVAILABLE = (psycopg2.OperationalError, psycopg2.InterfaceError, OSError, TimeoutError)


class UniqueViolation(Exception):
    """An insert or update hit a unique constraint; ``constraint`` names it."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


Processor = Callable[[Any], Any]


class StatementError(Exception):
    """A statement this bridge cannot run faithfully, or values that do not fit it: a bug in
    the calling code, raised on the statement's first use (tests/unit/test_sql_path.py compiles
    every statement the store defines)."""


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    operation: str  # the first SQL keyword, for the query observer
    names: frozenset[str]  # the named bindparams every call must give, no more, no less
    constants: dict[str, Any]  # bound values the statement carries, already processed
    processors: tuple[tuple[str, Processor], ...]  # for the named values
    # Set when the SQL text depends on the values (an expanding IN renders one placeholder per
    # element): SQLAlchemy's public construct_expanded_state() then renders it from this
    # compiled form, as its Engine does; nothing is compiled again.
    expander: SQLCompiler | None
    expanding: frozenset[str]
    all_processors: dict[str, Processor]  # for every bound name (the expanding path)


class Statement:
    """A statement built once, with a named ``bindparam`` for each value that varies per call,
    and compiled once, on first use; each call gives those values by name.

    This is the only way the store runs SQL. Compiling is the costliest CPU step of a request
    (a third of the server's time on the message-post path when it was done per call) and
    building a statement costs about as much again, so neither happens per call. What the
    Engine would do per call and this bridge must not skip, it does with SQLAlchemy's public
    API: each type's ``bind_processor`` (a JSONB dict becomes JSON text) and the expansion of
    ``IN`` lists. What it cannot do faithfully it refuses with ``StatementError``."""

    __slots__ = ("_compiled", "_stmt")

    def __init__(self, stmt: ClauseElement) -> None:
        if not isinstance(stmt, Executable):
            raise StatementError(f"not an executable statement: {stmt!r}")
        self._stmt = stmt
        self._compiled: _Compiled | None = None

    def __repr__(self) -> str:
        first_line = str(self.compiled().sql).split("\n", 1)[0]
        return f"Statement({first_line[:80]!r})"

    @property
    def operation(self) -> str:
        return self.compiled().operation

    def compiled(self) -> _Compiled:
        if self._compiled is None:
            self._compiled = _compile(self._stmt)
        return self._compiled

    def bind(self, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """SQL text (psycopg2 ``%(name)s`` style) and its parameters, bind processors
        applied."""
        c = self._compiled or self.compiled()
        if values.keys() != c.names:
            raise StatementError(
                f"{self!r} takes values for {sorted(c.names)}, was given {sorted(values)}"
            )
        if c.expander is None:
            params = {**c.constants, **values}
            for name, process in c.processors:
                params[name] = process(params[name])
            return c.sql, params
        for name in c.expanding:
            if not isinstance(values[name], list | tuple | set | frozenset):
                raise StatementError(f"{self!r}: {name!r} expands an IN list: give a list")
        state = c.expander.construct_expanded_state(values)
        params = dict(state.parameters)
        for processors in (c.all_processors, state.processors):
            for name, process in processors.items():
                if name in params:
                    params[name] = process(params[name])
        return state.statement, params


def _needs_result_processing(type_: sa.types.TypeEngine[Any]) -> bool:
    """Whether SQLAlchemy would convert this type's values on the way out of psycopg2."""
    if isinstance(type_, sa.ARRAY):
        # SQLAlchemy's ARRAY always wraps a processor that walks the list, but psycopg2 already
        # returns a list of its element's Python values (uuid[] included: register_uuid() covers
        # arrays): only an element that needs processing makes the result differ.
        return _needs_result_processing(type_.item_type)
    try:
        processor = type_.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
    except Exception:  # a processor that depends on the driver's column type: same verdict
        return True
    return processor is not None


def _compile(stmt: ClauseElement) -> _Compiled:
    compiled = cast(SQLCompiler, stmt.compile(dialect=_DIALECT))
    sql = compiled.string

    def refuse(why: str) -> StatementError:
        return StatementError(f"{why}, in: {sql}")

    if compiled.literal_execute_params:
        raise refuse("literal_execute parameters are not supported")
    for column in getattr(stmt, "exported_columns", ()):
        if _needs_result_processing(column.type):
            # Rows come straight from psycopg2; a type that SQLAlchemy would convert on the
            # way out would come back unconverted.
            raise refuse(f"column {column.key!r} of type {column.type!r} needs result processing")
    names: set[str] = set()
    expanding: set[str] = set()
    processors: dict[str, Processor] = {}
    for param, name in compiled.bind_names.items():
        if param.callable is not None:
            raise refuse(f"bindparam {param.key!r}: callable values are not supported")
        if isinstance(param.type, TupleType):
            raise refuse(f"bindparam {param.key!r}: tuple values are not supported")
        is_expanding = param in compiled.post_compile_params
        if not is_expanding and f"%({name})s" not in sql:
            raise refuse(f"bindparam {param.key!r} renders under an escaped name")
        if param.required:
            if name != param.key:
                raise refuse(f"bindparam {param.key!r} is unique: name it once, unique=False")
            names.add(name)
            if is_expanding:
                expanding.add(name)
        process = param.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
        if process is not None:
            processors[name] = process
    needs_expansion = bool(compiled.post_compile_params)
    # Values the statement carries (literals, constants in .values()): bound and processed
    # once. (With an expanding IN, construct_expanded_state gives them at each call.)
    constants = {}
    if not needs_expansion:
        for name, value in compiled.construct_params(dict.fromkeys(names)).items():
            if name not in names:
                constants[name] = processors[name](value) if name in processors else value
    return _Compiled(
        sql=sql,
        operation=sql.split(None, 1)[0].lower(),
        names=frozenset(names),
        constants=constants,
        processors=tuple((n, p) for n, p in processors.items() if n in names),
        expander=compiled if needs_expansion else None,
        expanding=frozenset(expanding),
        all_processors=processors,
    )


class Session:
    """Statements on one connection (inside a transaction when opened by ``transaction``)."""

    def __init__(
        self,
        cursor: Any,
        observe: QueryObserver | None,
        audited: AuditObserver | None = None,
        *,
        in_transaction: bool = False,
    ) -> None:
        self._cursor = cursor
        self._observe = observe
        self._audited = audited
        self._in_transaction = in_transaction
        self._pending_audit: list[str] = []

    def audit_written(self, event_type: str) -> None:
        """An audit event was written on this session: it is counted once it is committed
        (at once on an autocommit session; after COMMIT in a transaction, never on ROLLBACK)."""
        if self._audited is None:
            return
        if self._in_transaction:
            self._pending_audit.append(event_type)
        else:
            self._audited(event_type)

    def committed(self) -> None:
        if self._audited is not None:
            for event_type in self._pending_audit:
                self._audited(event_type)
        self._pending_audit.clear()

    async def _run(self, statement: Statement, values: dict[str, Any]) -> None:
        if not isinstance(statement, Statement):  # e.g. a raw SQL string: mypy says so too
            raise StatementError(f"Session runs a store.db.Statement, not {statement!r}")
        sql, params = statement.bind(values)
        started = time.perf_counter()
        try:
            await self._cursor.execute(sql, params)
        except psycopg2.errors.UniqueViolation as exc:
            raise UniqueViolation(exc.diag.constraint_name or "") from None
        finally:
            if self._observe is not None:
                self._observe(statement.operation, time.perf_counter() - started)

    def _rows(self, raw: list[tuple[Any, ...]]) -> list[Row]:
        names = [col[0] for col in self._cursor.description]
        return [dict(zip(names, values, strict=True)) for values in raw]

    async def all(self, statement: Statement, /, **values: Any) -> list[Row]:
        await self._run(statement, values)
        return self._rows(await self._cursor.fetchall())

    async def one(self, statement: Statement, /, **values: Any) -> Row | None:
        await self._run(statement, values)
        raw = await self._cursor.fetchone()
        return None if raw is None else self._rows([raw])[0]

    async def scalar(self, statement: Statement, /, **values: Any) -> Any:
        await self._run(statement, values)
        raw = await self._cursor.fetchone()
        return None if raw is None else raw[0]

    async def execute(self, statement: Statement, /, **values: Any) -> int:
        """The number of rows the statement changed."""
        await self._run(statement, values)
        return int(self._cursor.rowcount)


_PING = Statement(sa.select(sa.literal_column("1")))


# Set on every pooled connection (libpq "options": sent with the startup packet, no extra round
# trip; a PgBouncer in front needs "options" in its ignore_startup_parameters). jit=off:
# PostgreSQL compiles a statement to machine code once its estimated cost passes
# jit_above_cost (100,000), and the compile is paid on every run (nothing is cached). Every
# statement AgentHub runs takes milliseconds; the ones whose estimate grows with the data are the
# unread counts (Room.unreadCount, GET /api/v1/inbox), estimated per room as a generic share of
# the room's messages. bench/inbox.py (an agent in 200 rooms, 200,000 messages): the inbox's
# estimate is 1,781 on migration 0003's index but was 40,000 without it, so a hub a few times
# larger crosses the threshold; with JIT forced on, the 4 ms statement took 29 ms (25 ms of JIT).
SESSION_OPTIONS = "-c jit=off"


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
        audited: AuditObserver | None = None,
    ) -> None:
        self._dsn = dsn
        self._maxsize = maxsize
        self._acquire_timeout = acquire_timeout
        self._statement_timeout = statement_timeout
        self._pool: Any = None
        self._observe = observe
        self._audited = audited

    async def start(self) -> None:
        # minsize=0: creating the pool must not need a live server.
        self._pool = await aiopg.create_pool(
            self._dsn,
            minsize=0,
            maxsize=self._maxsize,
            timeout=self._statement_timeout,
            options=SESSION_OPTIONS,
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
                    yield Session(cur, self._observe, self._audited)
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
                session = Session(cur, self._observe, self._audited, in_transaction=True)
                yield session
                # Timed too: the commit's WAL flush is often the slowest step of a write.
                started = time.perf_counter()
                await cur.execute("COMMIT")
                if self._observe is not None:
                    self._observe("commit", time.perf_counter() - started)
                session.committed()
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
                return bool(await s.scalar(_PING))
        except Unavailable:
            return False
