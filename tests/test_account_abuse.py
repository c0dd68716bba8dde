"""Issue 12, item 6 (account enumeration) and item 10 (per-account throttling of failed logins).

6: /register answered a taken email differently, and /forgot-password took 34 ms for real accounts and
   10 ms for unknown ones. Now both answer the same and do the same work (timings: bench/account_timing.py).
10: login limits were per address only; guessing spread over many addresses was unbounded per account.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from accounts import throttle
from accounts.models import User
from core.extensions import db, limiter
from tests.factories import PASSWORD, make_user


def outbox(app) -> list:
    folder = Path(app.config["MAIL_OUTBOX_DIR"])
    return [
        message_from_bytes(p.read_bytes(), policy=email_policy) for p in sorted(folder.iterdir(), key=os.path.getmtime)
    ]


def body(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


@pytest.fixture
def lee(ctx):
    return make_user(email="lee@example.org", name="Lee Learner")


# ---- item 6: registration ---------------------------------------------------------------------------------


def register(client, email: str):
    data = {
        "name": "Ren",
        "email": email,
        "password": "violet tractor umbrella 42",
        "confirm": "violet tractor umbrella 42",
    }
    return client.submit("/register", data)


def test_registration_answers_the_same_for_new_and_taken_emails(app, client, other_client, lee):
    new = register(client, "ren@example.org")
    taken = register(other_client, "lee@example.org")
    assert new.status_code == taken.status_code == 303
    assert new.headers["Location"] == taken.headers["Location"] == "/login"
    new_page = client.get("/login").get_data(as_text=True).replace("ren@example.org", "EMAIL")
    taken_page = other_client.get("/login").get_data(as_text=True).replace("lee@example.org", "EMAIL")
    strip = re.compile(r'name="csrf_token"[^>]*>')
    assert strip.sub("", new_page) == strip.sub("", taken_page)
    assert "We have sent a message to EMAIL" in new_page
    # neither is logged in by the answer itself
    assert client.get("/dashboard").status_code == 302 and other_client.get("/dashboard").status_code == 302

    users = {u.email: u for u in db.session.scalars(select(User))}
    assert set(users) == {"lee@example.org", "ren@example.org"} and users["lee@example.org"].name == "Lee Learner"
    mails = {m["To"]: m for m in outbox(app)}
    assert "You already have an account" in mails["lee@example.org"]["Subject"]
    assert "nothing was changed" in body(mails["lee@example.org"])
    # the new account works with its password
    login = client.submit("/login", {"email": "ren@example.org", "password": "violet tractor umbrella 42"})
    assert login.status_code == 302 and client.get("/dashboard").status_code == 200


def test_a_weak_password_is_refused_the_same_way_for_new_and_taken_emails(client, lee):
    for email in ("ren@example.org", "lee@example.org"):
        data = {"name": "Ren", "email": email, "password": "password", "confirm": "password"}
        response = client.submit("/register", data)
        assert response.status_code == 422
        assert "We could not create an account" not in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(User)) == 1


# ---- item 6: password reset -------------------------------------------------------------------------------------


def test_password_reset_requests_do_the_same_work_for_known_and_unknown_emails(app, client, lee):
    known = client.submit("/forgot-password", {"email": "lee@example.org"})
    unknown = client.submit("/forgot-password", {"email": "nobody@example.org"})
    assert known.status_code == unknown.status_code == 302
    assert known.headers["Location"] == unknown.headers["Location"]
    mails = {m["To"]: m for m in outbox(app)}
    assert set(mails) == {"lee@example.org", "nobody@example.org"}  # one message each
    assert "/reset-password/" in body(mails["lee@example.org"])
    assert "no account uses it" in body(mails["nobody@example.org"])
    assert "/reset-password/" not in body(mails["nobody@example.org"])


# ---- item 10: per-account throttling ------------------------------------------------------------------------------


def attempt(client, email: str, password: str, address: str):
    """A login from its own source address (the per-address limit never triggers)."""
    token = client.csrf_token("/login")
    return client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def test_failed_logins_spread_over_many_addresses_lock_the_account_progressively(app, client, lee):
    for n in range(throttle.FREE_FAILURES):
        assert attempt(client, "lee@example.org", "wrong guess", f"10.0.0.{n}").status_code == 422
    # even the right password waits now: the lock does not depend on the guess
    locked = attempt(client, "lee@example.org", PASSWORD, "10.0.1.1")
    assert locked.status_code == 429 and "Too many failed logins for this account" in locked.get_data(as_text=True)
    assert 25 <= throttle.locked_for("lee@example.org") <= 30
    notices = [m for m in outbox(app) if "Failed logins" in m["Subject"]]
    assert len(notices) == 1 and notices[0]["To"] == "lee@example.org"

    # the lock lapses (as if 30 s passed); the next failure locks for twice as long
    limiter.storage.clear(throttle._keys("lee@example.org")[1])
    assert attempt(client, "lee@example.org", "another guess", "10.0.2.1").status_code == 422
    assert 55 <= throttle.locked_for("lee@example.org") <= 60
    assert len([m for m in outbox(app) if "Failed logins" in m["Subject"]]) == 1  # told once

    limiter.storage.clear(throttle._keys("lee@example.org")[1])
    assert attempt(client, "lee@example.org", PASSWORD, "10.0.3.1").status_code == 302
    assert limiter.storage.get(throttle._keys("lee@example.org")[0]) == 0  # success clears the count


def test_unknown_emails_are_throttled_alike_and_nobody_is_mailed(app, client, ctx):
    for n in range(throttle.FREE_FAILURES):
        attempt(client, "ghost@example.org", "guess", f"10.1.0.{n}")
    response = attempt(client, "ghost@example.org", "guess", "10.1.1.1")
    assert response.status_code == 429
    assert outbox(app) == []


@pytest.mark.nodb
def test_the_throttle_lives_in_redis_when_the_limits_do(monkeypatch, tmp_path):
    from limits.storage import storage_from_string

    from tests.servers.conftest import free_port, wait_for_port

    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (apt-get install redis-server)"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, "redis-server")
        url = f"redis://127.0.0.1:{port}/0"
        first = storage_from_string(url)
        monkeypatch.setattr(throttle, "limit_storage", lambda: first)
        for _ in range(throttle.FREE_FAILURES):
            throttle.record_failure("lee@example.org")
        # a second app server sees the same lock
        other = storage_from_string(url)
        monkeypatch.setattr(throttle, "limit_storage", lambda: other)
        assert 25 <= throttle.locked_for("lee@example.org") <= 30
        throttle.record_success("lee@example.org")
        assert throttle.locked_for("lee@example.org") == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
