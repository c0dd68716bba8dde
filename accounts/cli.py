"""`flask users create-admin EMAIL` and `flask users seed-demo`."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from accounts import services
from accounts.models import User
from core.database import utcnow
from core.errors import DomainError
from core.extensions import db

cli = AppGroup("users", help="Create admins and demo accounts.")


@cli.command("create-admin")
@click.argument("email")
@click.option("--name", help="Full name (asked for when creating a new account).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin(email: str, name: str | None, password_stdin: bool) -> None:
    """Create an admin account, or make an existing account an admin."""
    password = None
    if services.normalize_email(email) and not _exists(email):
        name = name or click.prompt("Full name")
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user, created = services.create_or_promote_admin(email=email, name=name, password=password, now=utcnow())
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    db.session.commit()
    click.echo(f"{'Created' if created else 'Promoted'} admin {user.email}.")


def _exists(email: str) -> bool:
    return db.session.scalar(select(User.id).where(User.email == services.normalize_email(email))) is not None


@cli.command("seed-demo")
def seed_demo() -> None:
    """Create demo learner, employer and admin accounts (development only); print passwords once."""
    if current_app.config["APP_ENV"] != "development":
        raise click.ClickException("Demo accounts are only created when APP_ENV=development.")
    now = utcnow()
    created = services.seed_demo_users(now=now)
    db.session.flush()
    extra = [
        line for _, lines in services.demo_seeded.send(current_app._get_current_object(), now=now) for line in lines
    ]
    db.session.commit()
    if not created:
        click.echo("Demo accounts already exist (their passwords were printed when they were created).")
    else:
        click.echo("Demo accounts (shown once; keep them somewhere safe):")
        for user, password in created:
            click.echo(f"  {user.role.value:<9} {user.email:<24} {password}")
    for line in extra:
        click.echo(line)
