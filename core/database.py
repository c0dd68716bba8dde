"""Declarative base with a constraint naming convention, and the UTC datetime type."""

from __future__ import annotations

import enum
import sqlite3
from contextlib import suppress
from datetime import UTC, datetime
from time import monotonic

from sqlalchemy import DateTime, Enum, MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import DeclarativeBase, registry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    SQLite has no time zones, so values are stored as naive UTC there and made
    aware again on the way out; naive values are refused on the way in so a
    local-time mistake can never be written silently.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def str_enum(cls: type[enum.Enum], name: str, length: int = 24) -> Enum:
    """An enum stored as its string values in a VARCHAR (no database enum type to migrate)."""
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e], length=length, native_enum=False)


def utcnow() -> datetime:
    """The current time, timezone-aware, for column defaults and services."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection, connection_record) -> None:
    # SQLite ignores FOREIGN KEY clauses unless asked per connection.
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Test a pooled connection with a ping when it is checked out after sitting idle ``idle_seconds`` or longer.

    What ``pool_pre_ping`` does, without its cost on the connections a busy server hands from one request to the
    next: that ping was a round trip to the database on every checkout (~0.25 ms of the worker's CPU and ~0.07 ms of
    the database's per request, `make load`). Connections die while idle (a database restart, a firewall's idle
    timeout), so one that was used a moment ago is taken as it is; if the database restarted within that moment,
    the request that meets the dead connection gets the calm 503 (core/errors.py) and SQLAlchemy replaces every
    connection of the pool, as a failed ping would have. A connection the ping finds dead is replaced before the
    request uses it (the pool's documented "pessimistic" recipe: DisconnectionError in a checkout listener)."""

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection, record) -> None:
        if dbapi_connection is not None:
            record.info["awa_idle_since"] = (id(dbapi_connection), monotonic())

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
        noted = record.info.get("awa_idle_since")
        if noted is None or noted[0] != id(dbapi_connection):
            return  # connected for this checkout: nothing to test
        if monotonic() - noted[1] < idle_seconds:
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as error:
            if dialect.is_disconnect(error, dbapi_connection, None):
                # most likely a restart, which killed the pool's other connections too: they are replaced as well
                raise InvalidatePoolError("the pooled connection died while idle") from error
            raise


def read_outside_transaction(connection, statement, params):
    """The first row of ``statement``, read on ``connection`` (the request's session's, which the view then uses)
    but, on PostgreSQL when no transaction is open on it yet, as a statement of its own (the driver's autocommit)
    rather than as the first of the request's transaction. The session's user is read so
    (accounts.services.load_session_user), on every signed-in request that reaches Flask.

    psycopg opens a transaction with a BEGIN round trip before the first statement, and the request's teardown
    ends it with a ROLLBACK round trip: a request whose only statement was the user's (an error page, a form sent
    back with its errors, a page built from the user alone, a POST that changes nothing) paid three round trips
    for one read. Now it pays one; a request that goes on to other statements pays what it did, its BEGIN sent
    before its second statement instead of its first (its COMMIT or ROLLBACK as before). The read sees the same
    rows either way: at READ COMMITTED, the isolation every connection uses here, each statement of a transaction
    reads the rows committed when it started, as a statement of its own does. The statement runs through
    SQLAlchemy as before (its events, and so the tests' statement counts, see it). SQLite's driver opens no
    transaction for a SELECT anyway: nothing changes there. The connection leaves autocommit right after the
    read; one the read broke is invalidated, never given back to the pool in autocommit."""
    driver = connection.connection.driver_connection
    if connection.dialect.driver != "psycopg" or driver.autocommit or driver.info.transaction_status != _IDLE:
        return connection.execute(statement, params).first()
    driver.autocommit = True
    try:
        return connection.execute(statement, params).first()
    finally:
        if driver.info.transaction_status == _IDLE:
            driver.autocommit = False
        elif not connection.invalidated:
            # the read broke the connection (the error on its way up says how): it is never given back to the
            # pool, where it would still be in autocommit and the next request's transaction no transaction at all
            connection.invalidate()


try:
    from psycopg.pq import TransactionStatus

    _IDLE = TransactionStatus.IDLE
except ImportError:  # pragma: no cover  (SQLite only, without psycopg installed)
    _IDLE = None


_WROTE = "awa_wrote"  # in a connection's info: a statement other than a SELECT ran in its current transaction


def commit_read_only_transactions(engine: Engine) -> None:
    """On PostgreSQL (psycopg), end a transaction that ran nothing but SELECTs with COMMIT instead of ROLLBACK.

    For a transaction that wrote nothing the two are the same to the database (locks released, nothing kept), but
    not to psycopg: a ROLLBACK makes it forget every statement it had counted or prepared on the connection and
    deallocate the server's prepared statements (one more round trip when there were any), since a rolled-back
    transaction may have dropped what they refer to. Every read-only request (every GET that reaches Flask and
    the request's teardown rolls back) did that, so the statements a page repeats were never prepared: the server
    parsed and planned each of them on every request. With COMMIT they are prepared after psycopg's threshold
    (5 executions on a connection) and kept. Any statement other than a SELECT (an INSERT, UPDATE, DELETE, a
    SAVEPOINT, a SET, a WITH that might write) marks the transaction, and it is rolled back as before.

    Installed as engine events: ``begin`` forgets the mark, ``before_cursor_execute`` sets it, ``rollback`` (which
    SQLAlchemy sends just before the driver's rollback) commits first when nothing was marked and the transaction
    is open and healthy; the driver's rollback then finds no transaction and sends nothing."""
    if engine.dialect.driver != "psycopg":
        return
    from psycopg.pq import TransactionStatus

    open_and_healthy = TransactionStatus.INTRANS

    @event.listens_for(engine, "begin")
    def _nothing_written_yet(conn) -> None:
        conn.info.pop(_WROTE, None)

    @event.listens_for(engine, "before_cursor_execute")
    def _note_writes(conn, _cursor, statement, _parameters, _context, _executemany) -> None:
        # a SELECT that can write is marked too: SELECT … INTO makes a table, and several statements in one
        # string could hide a write after the first (a false mark only costs the old ROLLBACK)
        if statement.lstrip()[:6].upper() != "SELECT" or ";" in statement or " INTO " in statement.upper():
            conn.info[_WROTE] = True

    @event.listens_for(engine, "rollback")
    def _commit_what_only_read(conn) -> None:
        if conn.info.pop(_WROTE, False) or conn.invalidated or conn.closed:
            return
        driver = conn.connection.driver_connection
        if driver.info.transaction_status == open_and_healthy and not driver.autocommit:
            # a failed COMMIT (a connection that just broke) is left to the rollback that follows, which meets the
            # same trouble and handles it as it always did
            with suppress(Exception):
                driver.commit()
