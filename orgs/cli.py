"""`flask orgs create NAME --kind employer --owner EMAIL` and `flask orgs list`; the demo organization."""

from __future__ import annotations

import click
from sqlalchemy import func, select

from accounts.models import User
from accounts.services import normalize_email
from core.database import utcnow
from core.errors import DomainError
from core.extensions import db
from orgs import services
from orgs.models import Cohort, CohortMember, Membership, Organization, OrgKind, OrgStatus
from orgs.views import bp


@bp.cli.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice([k.value for k in OrgKind]), default="employer", show_default=True)
@click.option("--owner", "owner_email", required=True, help="Email of an existing account that will own it.")
@click.option("--website", default="", help="The organization's website.")
def create_command(name: str, kind: str, owner_email: str, website: str) -> None:
    """Create an approved organization owned by an existing account (for scripts and demos)."""
    owner = db.session.scalar(select(User).where(User.email == normalize_email(owner_email)))
    if owner is None:
        raise click.ClickException(f"No account has the email {owner_email}. Create it first (e.g. by signing up).")
    try:
        org = services.create_organization(
            owner,
            name=name,
            kind=OrgKind(kind),
            website=website,
            contact_email=owner.email,
            now=utcnow(),
            status=OrgStatus.APPROVED,
        )
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    db.session.commit()
    click.echo(f"Created approved organization {org.name} ({org.slug}), owner {owner.email}.")


@bp.cli.command("list")
def list_command() -> None:
    """Every organization: slug, status, kind, staff and cohorts."""
    staff = select(func.count()).where(Membership.organization_id == Organization.id).scalar_subquery()
    cohorts = select(func.count()).where(Cohort.organization_id == Organization.id).scalar_subquery()
    learners = (
        select(func.count(func.distinct(CohortMember.user_id)))
        .join(Cohort, Cohort.id == CohortMember.cohort_id)
        .where(Cohort.organization_id == Organization.id, CohortMember.left_at.is_(None))
        .scalar_subquery()
    )
    rows = db.session.execute(select(Organization, staff, cohorts, learners).order_by(Organization.slug)).all()
    if not rows:
        click.echo("No organizations yet.")
        return
    click.echo(f"{'slug':<32} {'status':<9} {'kind':<24} staff cohorts learners  name")
    for org, n_staff, n_cohorts, n_learners in rows:
        click.echo(
            f"{org.slug:<32} {org.status.value:<9} {org.kind.value:<24} {n_staff:>5} {n_cohorts:>7} {n_learners:>8}  "
            f"{org.name}"
        )
