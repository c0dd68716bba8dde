"""The factory refuses unsafe configuration; CLI commands for admins and demo accounts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from accounts import passwords
from accounts.models import Role, User
from core import create_app
from core.config import ConfigError
from core.extensions import db
from tests.factories import make_user

SAFE = {"MAIL_BACKEND": "smtp", "TRUSTED_HOSTS": ["localhost"]}  # what production needs besides a secret


@pytest.mark.parametrize("secret", [None, "", "dev", "short-secret"])
@pytest.mark.nodb
def test_production_refuses_to_start_without_a_real_secret(secret, monkeypatch, tmp_path):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"APP_ENV": "production", "SECRET_KEY": secret, "SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.nodb
def test_production_refuses_to_start_without_a_database_url(monkeypatch):
    monkeypatch.delenv("FLASK_SQLALCHEMY_DATABASE_URI", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ConfigError, match="database"):
        create_app({"APP_ENV": "production", "SECRET_KEY": "s" * 40, "SQLALCHEMY_DATABASE_URI": None, **SAFE})


@pytest.mark.nodb
def test_production_cookies_are_secure_and_config_comes_from_environment(monkeypatch):
    monkeypatch.setenv("FLASK_ISSUER_NAME", "Workforce Board of Example County")
    app = create_app({"APP_ENV": "production", "SECRET_KEY": "s" * 40, "SQLALCHEMY_DATABASE_URI": "sqlite://", **SAFE})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["ISSUER_NAME"] == "Workforce Board of Example County"
    html = app.test_client().get("/", base_url="https://localhost").get_data(as_text=True)
    assert "Workforce Board of Example County" in html


@pytest.mark.nodb
def test_a_host_outside_trusted_hosts_gets_a_400_not_a_500():
    app = create_app({"APP_ENV": "production", "SECRET_KEY": "s" * 40, "SQLALCHEMY_DATABASE_URI": "sqlite://", **SAFE})
    client = app.test_client()
    for path in ("/", "/help", "/courses", "/no-such-page"):
        page = client.get(path, base_url="https://attacker.example")
        assert page.status_code == 400, path
        assert page.mimetype == "text/plain" and page.get_data(as_text=True).startswith("Bad request: ")
    api = client.get("/api/v1/verify/x", base_url="https://attacker.example")
    assert api.status_code == 400 and api.json["error"] == "Bad request"
    assert client.get("/help", base_url="https://localhost").status_code == 200


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"TRUSTED_HOSTS": ["academy.example.org"]}, "MAIL_BACKEND is outbox"),
        ({"MAIL_BACKEND": "smtp"}, "TRUSTED_HOSTS is not set"),
        ({"MAIL_BACKEND": "smtp", "TRUSTED_HOSTS": []}, "TRUSTED_HOSTS is not set"),
    ],
)
@pytest.mark.nodb
def test_production_refuses_outbox_mail_and_any_host_unless_allowed(settings, message, monkeypatch):
    for name in ("FLASK_MAIL_BACKEND", "FLASK_TRUSTED_HOSTS", "FLASK_ALLOW_OUTBOX_MAIL", "FLASK_ALLOW_ANY_HOST"):
        monkeypatch.delenv(name, raising=False)
    base = {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    with pytest.raises(ConfigError, match=message):
        create_app({**base, **settings})
    # explicitly allowed (e.g. FLASK_ALLOW_OUTBOX_MAIL=true from the environment): it starts
    monkeypatch.setenv("FLASK_ALLOW_OUTBOX_MAIL", "true")
    monkeypatch.setenv("FLASK_ALLOW_ANY_HOST", "true")
    assert create_app({**base, **settings}).config["APP_ENV"] == "production"


@pytest.mark.nodb
def test_postgres_urls_use_psycopg3():
    app = create_app({"APP_ENV": "test", "SECRET_KEY": "s" * 40, "SQLALCHEMY_DATABASE_URI": "postgres://u@h/d"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/d"


def test_create_admin_creates_then_promotes(app, ctx):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["users", "create-admin", "Boss@Example.org", "--name", "Boss", "--password-stdin"],
        input="violet tractor umbrella 42\n",
    )
    assert result.exit_code == 0, result.output
    assert "Created admin boss@example.org" in result.output
    boss = db.session.scalar(select(User).where(User.email == "boss@example.org"))
    assert boss.role is Role.ADMIN and passwords.verify_password(boss.password_hash, "violet tractor umbrella 42")

    make_user(email="lee@example.org")
    result = runner.invoke(args=["users", "create-admin", "lee@example.org"])
    assert result.exit_code == 0 and "Promoted admin lee@example.org" in result.output
    assert db.session.scalar(select(User.role).where(User.email == "lee@example.org")) is Role.ADMIN


def test_create_admin_refuses_weak_password(app, ctx):
    result = app.test_cli_runner().invoke(
        args=["users", "create-admin", "boss@example.org", "--name", "Boss", "--password-stdin"], input="password\n"
    )
    assert result.exit_code != 0
    assert "at least 12 characters" in result.output
    assert db.session.scalar(select(User)) is None


def test_seed_demo_only_in_development_and_prints_passwords_once(app, ctx):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "seed-demo"])
    assert result.exit_code != 0 and "only created when APP_ENV=development" in result.output
    app.config["APP_ENV"] = "development"
    try:
        first = runner.invoke(args=["users", "seed-demo"])
        second = runner.invoke(args=["users", "seed-demo"])
    finally:
        app.config["APP_ENV"] = "test"
    assert first.exit_code == 0 and "admin@example.org" in first.output
    assert "already exist" in second.output and "admin@example.org" not in second.output
    roles = {u.email: u.role for u in db.session.scalars(select(User))}
    assert roles == {
        "learner@example.org": Role.LEARNER,
        "employer@example.org": Role.LEARNER,  # an employer is the owner of an approved organization
        "admin@example.org": Role.ADMIN,
    }
    from orgs.models import Membership, Organization

    org, owner = db.session.execute(select(Organization, Membership.user_id).join(Membership)).one()
    assert org.status.value == "approved" and db.session.get(User, owner).email == "employer@example.org"
    assert "employer@example.org" in first.output and org.name in first.output
    password = first.output.split("admin@example.org")[1].split()[0]
    assert passwords.verify_password(
        db.session.scalar(select(User.password_hash).where(User.role == Role.ADMIN)), password
    )


@pytest.mark.nodb
def test_the_app_starts_with_rate_limits_switched_off(tmp_path):
    # the limiter registers no before-request hook when disabled; create_app must not assume it did.
    # Flask-Limiter keeps `enabled` on the one shared extension object and later apps inherit it, so put it back
    # (every later test's rate limits would otherwise stop biting).
    from core.extensions import limiter

    was_enabled = limiter.enabled
    try:
        app = create_app(
            {
                "APP_ENV": "test",
                "SECRET_KEY": "test-secret-key-" + "x" * 32,
                "RATELIMIT_ENABLED": False,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}",
            }
        )
        assert app.config["RATELIMIT_ENABLED"] is False
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        limiter.enabled = was_enabled
