"""Issue 12, item 5: logging out ends that login on the server, tested with cookies copied before logout."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from accounts.models import LoginSession, User
from core.extensions import db
from tests.factories import PASSWORD, login, make_user


@pytest.fixture
def lee(ctx):
    return make_user(email="lee@example.org", name="Lee Learner")


def cookie(client, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found else None


def test_a_session_cookie_copied_before_logout_no_longer_opens_the_dashboard(app, client, other_client, lee):
    assert login(client, "lee@example.org").status_code == 302
    stolen = cookie(client, "session")
    assert client.get("/dashboard").status_code == 200
    assert client.submit("/logout", page="/dashboard").status_code == 302

    other_client.set_cookie("session", stolen)
    response = other_client.get("/dashboard")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    ended = db.session.scalar(select(LoginSession))
    db.session.refresh(ended)
    assert ended.ended_at is not None


def test_a_remember_me_cookie_copied_before_logout_no_longer_logs_in(app, client, other_client, lee):
    assert login(client, "lee@example.org", remember="y").status_code == 302
    remembered = cookie(client, "remember_token")
    assert remembered
    # the copied cookie works while the login lasts (from another client, with no session)...
    probe = app.test_client()
    probe.set_cookie("remember_token", remembered)
    assert probe.get("/dashboard").status_code == 200
    assert client.submit("/logout", page="/dashboard").status_code == 302
    # ...and not after it ended
    other_client.set_cookie("remember_token", remembered)
    response = other_client.get("/dashboard")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_logging_out_one_device_keeps_the_others(client, other_client, lee):
    assert login(client, "lee@example.org").status_code == 302
    assert login(other_client, "lee@example.org").status_code == 302
    assert client.submit("/logout", page="/dashboard").status_code == 302
    assert other_client.get("/dashboard").status_code == 200
    assert client.get("/dashboard").status_code == 302


def test_a_session_from_before_login_tokens_is_refused(app, client, lee):
    """An old two-part id ("<id>:<version>") is not enough any more: it names no login."""
    with client.session_transaction() as session:
        session["_user_id"] = f"{lee.id}:{lee.session_version}"
        session["_fresh"] = True
    response = client.get("/dashboard")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_daily_prune_deletes_ended_logins_and_spent_reset_links_a_day_later(app, client, other_client, lee):
    from datetime import timedelta

    from accounts import services
    from accounts.models import PasswordResetToken
    from core import queue
    from core.database import utcnow

    assert login(client, "lee@example.org").status_code == 302
    assert login(other_client, "lee@example.org").status_code == 302
    assert client.submit("/logout", page="/dashboard").status_code == 302
    now = utcnow()
    spent = [(now - timedelta(days=3), now + timedelta(hours=1)), (None, now - timedelta(days=2))]  # used; expired
    for n, (used, expires) in enumerate(spent):
        db.session.add(PasswordResetToken(user_id=lee.id, token_hash=f"{n:064x}", expires_at=expires, used_at=used))
    fresh = services.request_password_reset(email="lee@example.org", now=now, secret_key="k", max_age=3600)
    db.session.commit()
    assert fresh is not None
    # an ended login stays a day (nothing reads it, but a clock skew between nodes must not matter)
    assert services.prune_ended(now=now) == (0, 2)
    db.session.commit()
    # through the queue, as the worker runs it each day
    ended = db.session.scalar(select(LoginSession).where(LoginSession.ended_at.is_not(None)))
    ended.ended_at = now - timedelta(days=2)
    queue.enqueue("accounts.prune", key="accounts.prune:test", day=now.date().isoformat())
    db.session.commit()
    db.session.expire_all()
    rows = db.session.scalars(select(LoginSession)).all()
    assert len(rows) == 1 and rows[0].ended_at is None
    assert db.session.scalars(select(PasswordResetToken)).all() != []  # the fresh reset link stays
    assert other_client.get("/dashboard").status_code == 200  # the login still open is untouched
    assert "accounts.prune" in queue.DAILY


def test_changing_the_password_ends_the_other_logins_rows_too(client, other_client, lee):
    assert login(client, "lee@example.org").status_code == 302
    assert login(other_client, "lee@example.org").status_code == 302
    response = client.submit(
        "/account/password",
        page="/account",
        data={
            "pw-current_password": PASSWORD,
            "pw-password": "a new one, long enough 42",
            "pw-confirm": "a new one, long enough 42",
        },
    )
    assert response.status_code == 302
    assert other_client.get("/dashboard").status_code == 302  # logged out there
    assert client.get("/dashboard").status_code == 200  # this one continues, on a new login
    rows = db.session.scalars(select(LoginSession).order_by(LoginSession.id)).all()
    assert [row.ended_at is None for row in rows] == [False, False, True]


# ---- the user's read: a statement of its own on PostgreSQL (core.database.read_outside_transaction) --------


def _driver_state(driver) -> tuple[bool, bool]:
    """(a transaction is open, autocommit is on) on a psycopg or sqlite3 connection."""
    if hasattr(driver, "info"):  # psycopg
        from psycopg.pq import TransactionStatus

        return driver.info.transaction_status != TransactionStatus.IDLE, driver.autocommit
    return driver.in_transaction, driver.isolation_level is None


@pytest.fixture
def connection_states(app):
    """What the requests left on their connections: ``ended`` as each transaction was rolled back at the end of
    a request (before the driver's ROLLBACK), ``returned`` as each connection went back to the pool."""
    states = {"ended": [], "returned": []}
    with app.app_context():
        engine = db.engine

    def ended(conn) -> None:
        states["ended"].append(_driver_state(conn.connection.driver_connection))

    def returned(dbapi_connection, _record) -> None:
        if dbapi_connection is not None:
            states["returned"].append(_driver_state(dbapi_connection)[1])

    event.listen(engine, "rollback", ended)
    event.listen(engine, "checkin", returned)
    yield states
    event.remove(engine, "rollback", ended)
    event.remove(engine, "checkin", returned)


def test_a_page_built_from_the_user_alone_leaves_no_transaction_to_roll_back(client, lee, connection_states):
    """The signed-in 404 page reads only the user: on PostgreSQL that read was a BEGIN, the SELECT and, at the
    request's end, a ROLLBACK (three round trips); now it is the SELECT alone, so nothing is open at the end.
    SQLite's driver never opened a transaction for a read."""
    assert login(client, "lee@example.org").status_code == 302
    assert client.get("/help").status_code == 200  # the welcome message is shown (the session changes)
    connection_states["ended"].clear()
    connection_states["returned"].clear()
    response = client.get("/no-such-page")
    assert response.status_code == 404 and "Lee Learner" in response.get_data(as_text=True)
    assert connection_states["ended"] == [(False, False)]
    assert connection_states["returned"] == [False]


def test_the_connection_goes_back_to_the_pool_as_it_came_and_writes_still_commit(client, lee, connection_states):
    """After the user's read the connection is back out of autocommit: a request that writes writes in a
    transaction (the language switch commits the user's locale), and no connection is ever handed back to the
    pool in autocommit, where the next request's transaction would be none."""
    assert login(client, "lee@example.org").status_code == 302
    for path in ("/help", "/account", "/no-such-page", "/dashboard"):
        assert client.get(path).status_code in (200, 404)
    response = client.submit("/language/es", {"next": "/help"}, page="/help")
    assert response.status_code in (302, 303)
    db.session.expire_all()
    assert db.session.get(User, lee.id).locale == "es"
    assert connection_states["returned"] and not any(connection_states["returned"])


def test_a_transaction_that_only_read_ends_by_commit_one_that_wrote_by_rollback(app, lee):
    """core.database.commit_read_only_transactions: on PostgreSQL a transaction of SELECTs alone is ended with
    COMMIT (the same to the database), so psycopg keeps the statements it prepared on the connection; one that
    wrote is rolled back as before and its write is gone. On SQLite both are rolled back, with the same result."""
    from sqlalchemy import text

    engine = db.engine
    postgres = engine.dialect.name == "postgresql"
    read = text("SELECT name FROM users WHERE id = :id")
    with engine.connect() as conn:
        for _ in range(7):  # psycopg prepares a statement at its 5th execution on a connection
            assert conn.execute(read, {"id": lee.id}).scalar() == "Lee Learner"
            conn.rollback()
        if postgres:
            prepared = conn.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar()
            conn.rollback()
            assert prepared >= 1  # a ROLLBACK would have deallocated them all and reset psycopg's counts
        if postgres:  # a SELECT that writes (SELECT … INTO makes a table) is rolled back like any write
            conn.exec_driver_sql("SELECT id INTO selected_into FROM users")
            conn.rollback()
            assert conn.exec_driver_sql("SELECT to_regclass('selected_into') IS NULL").scalar() is True
            conn.rollback()
        conn.execute(text("UPDATE users SET name = 'Changed' WHERE id = :id"), {"id": lee.id})
        assert conn.execute(read, {"id": lee.id}).scalar() == "Changed"
        conn.rollback()
        assert conn.execute(read, {"id": lee.id}).scalar() == "Lee Learner"
        conn.rollback()
    db.session.expire_all()
    assert db.session.get(User, lee.id).name == "Lee Learner"
