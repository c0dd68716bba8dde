"""Registration, login, logout, password reset, profile and password change."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from accounts import passwords
from accounts.models import PasswordResetToken, Role, User
from core.database import utcnow
from core.extensions import db
from tests.factories import PASSWORD, login, make_user

NEW_PASSWORD = "violet tractor umbrella 42"


def count_users() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def register(client, **overrides):
    data = {"name": "Maria José Núñez", "email": "maria@example.org", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    data.update(overrides)
    return client.submit("/register", data)


def test_register_creates_a_learner_who_then_logs_in(client, ctx):
    response = register(client)
    # not logged in by the answer itself: a taken email gets the very same answer (issue 12, item 6)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    user = db.session.scalar(select(User))
    assert user.email == "maria@example.org"
    assert user.role is Role.LEARNER
    assert user.legal_name == "Maria José Núñez"
    assert user.password_hash.startswith("$argon2id$")
    page = client.get("/login").get_data(as_text=True)
    assert "We have sent a message to maria@example.org" in page
    assert client.submit("/login", {"email": "maria@example.org", "password": NEW_PASSWORD}).status_code == 302
    assert "Welcome back, Maria José Núñez" in client.get("/").get_data(as_text=True)


def test_register_duplicate_email_differing_in_case_changes_nothing(client, ctx):
    make_user(email="maria@example.org")
    response = register(client, email="MARIA@Example.ORG")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert count_users() == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"password": "short", "confirm": "short"}, "Use between 12 and 256 characters"),
        ({"password": "password1234", "confirm": "password1234"}, "too common"),
        ({"password": "aaaaaaaaaaaaaaaa", "confirm": "aaaaaaaaaaaaaaaa"}, "too common"),
        ({"confirm": "something else entirely"}, "do not match"),
        ({"email": "not-an-email"}, "valid email"),
        ({"email": ""}, "Enter your email"),
        ({"name": "x" * 121}, "at most 120"),
        ({"name": "Bad\nName"}, "invisible characters"),
        ({"email": "a" * 250 + "@example.org"}, "valid email"),
    ],
)
def test_register_bad_input_gets_message_and_writes_nothing(client, ctx, overrides, message):
    response = register(client, **overrides)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count_users() == 0


@pytest.mark.nodb
def test_common_passwords_of_allowed_length_are_refused():
    common = sorted(p for p in passwords.common_passwords() if len(p) >= 12)
    assert len(passwords.common_passwords()) >= 10000 and len(common) >= 50
    for candidate in common[:50]:
        assert passwords.password_problem(candidate) is not None, candidate
        assert passwords.password_problem(candidate.upper()) is not None, candidate
    assert passwords.password_problem(NEW_PASSWORD) is None


def test_login_and_logout(client, ctx):
    user = make_user(email="dana@example.org")
    response = login(client, "DANA@example.org ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/account").status_code == 200
    db.session.refresh(user)
    assert user.last_login_at is not None
    response = client.submit("/logout", page="/account")
    assert response.status_code == 302
    assert client.get("/account").status_code == 302


def test_login_failure_is_generic(client, ctx):
    make_user(email="dana@example.org")
    wrong = login(client, "dana@example.org", "wrong password here")
    unknown = login(client, "nobody@example.org", "wrong password here")
    for response in (wrong, unknown):
        assert response.status_code == 422
        assert "do not match an active account" in response.get_data(as_text=True)


def test_deactivated_user_cannot_log_in(client, ctx):
    make_user(email="gone@example.org", active=False)
    response = login(client, "gone@example.org")
    assert response.status_code == 422
    assert client.get("/account").status_code == 302


def test_login_follows_safe_next_and_ignores_hostile_next(client, ctx):
    make_user(email="dana@example.org")
    response = client.submit(
        "/login?next=/account", {"email": "dana@example.org", "password": PASSWORD, "next": "/account"}
    )
    assert response.headers["Location"] == "/account"
    client.submit("/logout", page="/account")
    response = client.submit(
        "/login", {"email": "dana@example.org", "password": PASSWORD, "next": "//evil.example/steal"}
    )
    assert response.headers["Location"] == "/"


def test_remember_me_cookie_is_http_only_lax_and_at_most_14_days(client, ctx):
    make_user(email="dana@example.org")
    response = login(client, "dana@example.org", remember="y")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token="))
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    expires = client.get_cookie("remember_token").expires
    assert expires is not None and expires - utcnow() <= timedelta(days=14, minutes=1)


def test_rehash_on_login_when_parameters_change(client, ctx, monkeypatch):
    from argon2 import PasswordHasher

    user = make_user(email="dana@example.org")
    old_hash = user.password_hash
    monkeypatch.setattr(passwords, "hasher", PasswordHasher(time_cost=4, memory_cost=65536 // 2))
    login(client, "dana@example.org")
    db.session.refresh(user)
    assert user.password_hash != old_hash
    assert "t=4" in user.password_hash


def _outbox(app) -> list[str]:
    folder = app.config["MAIL_OUTBOX_DIR"]
    return [Path(folder, name).read_text(encoding="utf-8") for name in sorted(os.listdir(folder))]


def _reset_link(app) -> str:
    import re

    (mail,) = _outbox(app)
    return re.search(r"http://127.0.0.1:5000(/reset-password/\S+)", mail).group(1)


def test_reset_request_says_the_same_for_known_and_unknown_emails(client, app, ctx):
    make_user(email="dana@example.org")
    known = client.submit("/forgot-password", {"email": "dana@example.org"}, follow_redirects=True)
    unknown = client.submit("/forgot-password", {"email": "nobody@example.org"}, follow_redirects=True)
    assert known.status_code == unknown.status_code == 200
    message = "If an account uses that email, we have sent it a link"
    assert message in known.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)
    # one message each (the same work either way, issue 12 item 6); only the account holder's has a link
    mails = _outbox(app)
    assert len(mails) == 2 and sum("/reset-password/" in m for m in mails) == 1
    assert db.session.scalar(select(func.count()).select_from(PasswordResetToken)) == 1


def test_reset_link_works_once(client, app, ctx):
    user = make_user(email="dana@example.org")
    client.submit("/forgot-password", {"email": "dana@example.org"})
    link = _reset_link(app)
    response = client.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    db.session.refresh(user)
    assert passwords.verify_password(user.password_hash, NEW_PASSWORD)
    again = client.get(link)
    assert again.status_code == 400
    assert "already used" in again.get_data(as_text=True)
    assert login(client, "dana@example.org", NEW_PASSWORD).status_code == 302


def test_reset_link_expires(client, app, ctx):
    make_user(email="dana@example.org")
    client.submit("/forgot-password", {"email": "dana@example.org"})
    link = _reset_link(app)
    token = db.session.scalar(select(PasswordResetToken))
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    response = client.submit(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, page="/forgot-password")
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)


def test_tampered_reset_token_is_refused(client, ctx):
    response = client.get("/reset-password/not-a-real-token")
    assert response.status_code == 400
    assert "invalid" in response.get_data(as_text=True)


def test_profile_edit_sets_legal_name(client, ctx):
    user = make_user(email="dana@example.org", name="Dana")
    login(client, "dana@example.org")
    response = client.submit("/account", {"name": "Dana", "legal_name": "Dana Ngọc Trần"})
    assert response.status_code == 302
    db.session.refresh(user)
    assert user.legal_name == "Dana Ngọc Trần"
    bad = client.submit("/account", {"name": "Dana", "legal_name": ""})
    assert bad.status_code == 422
    assert "Enter your legal name" in bad.get_data(as_text=True)
    db.session.refresh(user)
    assert user.legal_name == "Dana Ngọc Trần"


def test_password_change_keeps_this_session_and_ends_others(client, other_client, ctx):
    user = make_user(email="dana@example.org")
    login(client, "dana@example.org")
    login(other_client, "dana@example.org")
    response = client.submit(
        "/account/password",
        {"pw-current_password": PASSWORD, "pw-password": NEW_PASSWORD, "pw-confirm": NEW_PASSWORD},
        page="/account",
    )
    assert response.status_code == 302
    assert client.get("/account").status_code == 200
    assert other_client.get("/account").status_code == 302
    db.session.refresh(user)
    assert passwords.verify_password(user.password_hash, NEW_PASSWORD)


def test_password_change_with_wrong_current_password(client, ctx):
    make_user(email="dana@example.org")
    login(client, "dana@example.org")
    response = client.submit(
        "/account/password",
        {"pw-current_password": "not my password", "pw-password": NEW_PASSWORD, "pw-confirm": NEW_PASSWORD},
        page="/account",
    )
    assert response.status_code == 422
    assert "current password is not correct" in response.get_data(as_text=True)


def test_logout_everywhere(client, other_client, ctx):
    make_user(email="dana@example.org")
    login(client, "dana@example.org")
    login(other_client, "dana@example.org", remember="y")
    client.submit("/account/logout-everywhere", page="/account")
    assert client.get("/account").status_code == 302
    assert other_client.get("/account").status_code == 302  # remember-me cookie is dead too


def test_reset_link_ignores_a_forged_host_header(client, app, ctx):
    make_user(email="dana@example.org")
    evil = "http://evil.example"
    html = client.get("/forgot-password", base_url=evil).get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post("/forgot-password", data={"csrf_token": token, "email": "dana@example.org"}, base_url=evil)
    assert response.status_code == 302
    (mail,) = _outbox(app)
    assert "evil.example" not in mail
    assert app.config["ISSUER_URL"] + "/reset-password/" in mail


def test_logout_forgets_the_remember_me_cookie(client, ctx):
    make_user(email="dana@example.org")
    login(client, "dana@example.org", remember="y")
    response = client.submit("/logout", page="/account")
    assert any(c.startswith("remember_token=;") for c in response.headers.getlist("Set-Cookie"))
    client.delete_cookie("session")  # the browser was closed: only a remember cookie could log us in
    assert client.get("/account").status_code == 302
