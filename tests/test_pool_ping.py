"""Pooled connections are pinged only after sitting idle (core.database.ping_when_idle), on either database.

A connection dies while the pool holds it (here: its DBAPI connection is closed behind the pool's back, which is
what a database restart leaves the pool holding). Used again after an idle spell, it is pinged and replaced before
the request sees it; used again a moment later, nothing is spent on a ping, and the one statement that meets the
dead connection fails as a disconnect, after which the pool serves a fresh connection.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.exc import DBAPIError

import core.database
from core.database import ping_when_idle

IDLE = 60.0


@pytest.fixture
def pool(database_url, monkeypatch):
    """(engine, pings, clock): an engine of one pooled connection on the suite's database with the idle ping,
    the connections each ping tested, and a clock to move on."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, IDLE)
    pings: list = []
    real_ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection):
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
    now = [1000.0]
    monkeypatch.setattr(core.database, "monotonic", lambda: now[0])
    yield engine, pings, now
    engine.dispose()


def checkout_and_read(engine):
    """The DBAPI connection a checkout handed out, after reading one row through it."""
    with engine.connect() as connection:
        assert connection.execute(select(1)).scalar() == 1
        return connection.connection.dbapi_connection


def test_a_connection_used_a_moment_ago_is_handed_out_without_a_ping(pool):
    engine, pings, now = pool
    first = checkout_and_read(engine)
    for _ in range(3):
        now[0] += IDLE / 2
        assert checkout_and_read(engine) is first  # the same connection, reused
    assert pings == []


def test_a_connection_idle_long_enough_is_pinged_and_kept_when_alive(pool):
    engine, pings, now = pool
    first = checkout_and_read(engine)
    now[0] += IDLE
    assert checkout_and_read(engine) is first
    assert pings == [first]


def test_a_connection_that_died_while_idle_is_replaced_before_use(pool):
    engine, pings, now = pool
    first = checkout_and_read(engine)
    first.close()  # the database went away and came back while the pool held this connection
    now[0] += IDLE
    fresh = checkout_and_read(engine)  # no error reaches the caller
    assert fresh is not first and pings == [first]


def test_a_connection_that_died_a_moment_ago_fails_once_then_the_pool_recovers(pool):
    engine, pings, now = pool
    first = checkout_and_read(engine)
    first.close()
    now[0] += 1
    with pytest.raises(DBAPIError) as failed, engine.connect() as connection:
        connection.execute(select(1))
    assert failed.value.connection_invalidated  # SQLAlchemy saw a disconnect and drops the connection
    assert checkout_and_read(engine) is not first
    assert pings == []


def test_the_app_pings_idle_connections_unless_told_otherwise(app):
    from core.extensions import db

    with app.app_context():
        engine = db.engine
    listening = [fn.__name__ for fn in engine.pool.dispatch.checkout]
    assert "_ping_if_idle" in listening
    assert not engine.pool._pre_ping  # the idle ping replaces SQLAlchemy's ping on every checkout
