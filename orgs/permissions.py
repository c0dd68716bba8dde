"""Pure predicates about organizations. Views load the membership first and pass it in (None = not a member)."""

from __future__ import annotations

from accounts.permissions import is_admin
from orgs.models import Membership, Organization, OrgRole

MANAGERS = (OrgRole.OWNER, OrgRole.MANAGER)


def can_manage_orgs(user) -> bool:
    """Site staff: approve or decline organizations and keep the auto-approved domains (/admin/organizations)."""
    return is_admin(user)


def can_resend_verification(membership: Membership | None) -> bool:
    """The owner asks for a new email-confirmation link (the organization may still be pending)."""
    return membership is not None and membership.role is OrgRole.OWNER


def can_see_org(membership: Membership | None) -> bool:
    """Any member sees the organization's own page (a pending one shows only its status)."""
    return membership is not None


def can_use_org(org: Organization, membership: Membership | None) -> bool:
    """Cohorts, dashboards and candidates: members of an approved organization only."""
    return membership is not None and membership.organization_id == org.id and org.is_approved


def can_manage_org(org: Organization, membership: Membership | None) -> bool:
    """Create cohorts, invite, remind, edit the candidate list: owners and managers of an approved organization."""
    return can_use_org(org, membership) and membership.role in MANAGERS


def can_manage_staff(org: Organization, membership: Membership | None) -> bool:
    return can_use_org(org, membership) and membership.role is OrgRole.OWNER


def can_bulk_verify(user, memberships: list[Membership]) -> bool:
    """Site admins, and members of any approved organization (``memberships`` are the user's own)."""
    return is_admin(user) or any(m.organization.is_approved for m in memberships)
