"""The rules of organizations, cohorts, invitations and consent. Flush only: the caller (a view or CLI) commits.

Every function takes the acting user and ``now`` explicitly and raises ``DomainError`` with a message safe to show.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from datetime import date, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from accounts.models import User
from accounts.services import SESSION_USER_FACTS, normalize_email
from core.errors import DomainError
from core.extensions import db
from courses.models import Course, CourseStatus, Program
from credentials.models import Certificate
from credentials.services import expiring_soon
from orgs.models import (
    AutoApproveDomain,
    Cohort,
    CohortMember,
    Invitation,
    InvitationKind,
    Membership,
    Organization,
    OrgKind,
    OrgRole,
    OrgStatus,
    SavedCandidate,
)

EMAIL_VERIFY_MAX_AGE = 3 * 24 * 3600  # seconds a "verify your work email" link works
EMAIL_INVITATION_DAYS = 14
LINK_DAYS = 30
CODE_DAYS = 14
# 8 Crockford base32 characters (40 bits): short enough to read out in a classroom; guessing is held off by
# login, a per-user and per-client rate limit and expiry, and a code only opens the consent page of one cohort
CODE_LENGTH = 8
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EMAIL_RE = re.compile(r"^[^@\s,;<>\"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


# ---- memberships ----------------------------------------------------------------------------------------------


# loaded with the session's user (accounts.services.load_session_user): most learners belong to no organization,
# and the navigation asks on every page
SESSION_USER_FACTS["has_memberships"] = exists().where(Membership.user_id == User.id)


def memberships_of(user) -> list[Membership]:
    """The user's staff memberships with their organizations, one query. Anonymous → []."""
    if not getattr(user, "is_authenticated", False):
        return []
    return list(
        db.session.scalars(
            select(Membership)
            .where(Membership.user_id == user.id)
            .options(selectinload(Membership.organization))
            .order_by(Membership.id)
        )
    )


def membership(user, org: Organization) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return db.session.scalar(
        select(Membership).where(Membership.organization_id == org.id, Membership.user_id == user.id)
    )


# ---- creating and approving organizations ---------------------------------------------------------------------


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:60] or "organization"


def _unique_slug(name: str) -> str:
    base = slugify(name)
    taken = set(db.session.scalars(select(Organization.slug).where(Organization.slug.like(f"{base}%"))))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()


def create_organization(
    actor: User,
    *,
    name: str,
    kind: OrgKind,
    website: str,
    contact_email: str,
    now: datetime,
    status: OrgStatus = OrgStatus.PENDING,
) -> Organization:
    """A new organization with ``actor`` as its owner; pending until its email is verified and an admin approves.

    Raises DomainError for a malformed email. Caller commits, then sends ``email_verification_link``.
    """
    email = normalize_email(contact_email)
    if not EMAIL_RE.match(email):
        raise DomainError(_("Enter a work email address such as hr@yourcompany.com."), field="contact_email")
    name = " ".join(name.split())
    if not name:
        raise DomainError(_("Enter the organization's name."), field="name")
    org = Organization(
        slug=_unique_slug(name),
        name=name[:200],
        kind=kind,
        status=status,
        website=website.strip()[:300],
        contact_email=email,
        created_by_id=actor.id,
        created_at=now,
    )
    if status is OrgStatus.APPROVED:
        org.email_verified_at = now
        org.decided_at = now
    db.session.add(org)
    db.session.flush()
    db.session.add(Membership(organization_id=org.id, user_id=actor.id, role=OrgRole.OWNER, created_at=now))
    db.session.flush()
    return org


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="org-email-verification")


def email_verification_token(org: Organization) -> str:
    """A signed, expiring token naming the organization and the address it was sent to."""
    return _serializer().dumps({"o": org.id, "e": org.contact_email})


def verify_email(token: str, *, now: datetime) -> Organization:
    """Mark the organization's work email verified; auto-approve a listed domain.

    Raises DomainError when the link is expired, tampered with, or the address has changed since. A second use of
    the same link changes nothing. Caller commits.
    """
    try:
        data = _serializer().loads(token, max_age=EMAIL_VERIFY_MAX_AGE)
    except SignatureExpired:
        raise DomainError(
            _("This verification link has expired. Ask for a new one from your organization page.")
        ) from None
    except BadSignature:
        raise DomainError(_("This verification link is not valid. Copy the whole link from the email.")) from None
    org = db.session.get(Organization, data.get("o")) if isinstance(data, dict) else None
    if org is None or org.contact_email != data.get("e"):
        raise DomainError(_("This verification link is not valid any more."))
    if org.email_verified_at is None:
        org.email_verified_at = now
        listed = db.session.scalar(
            select(AutoApproveDomain.id).where(AutoApproveDomain.domain == email_domain(org.contact_email))
        )
        if listed is not None and org.status is OrgStatus.PENDING:
            org.status = OrgStatus.APPROVED
            org.decided_at = now
            org.decision_note = _("Approved automatically: verified email on a listed domain.")
    db.session.flush()
    return org


def decide(admin: User, org: Organization, *, approve: bool, note: str, now: datetime) -> None:
    """An admin approves or declines. Raises DomainError before the email is verified. Caller commits."""
    if org.email_verified_at is None and approve:
        raise DomainError(_("This organization has not verified its email address yet."))
    org.status = OrgStatus.APPROVED if approve else OrgStatus.DECLINED
    org.decided_at = now
    org.decided_by_id = admin.id
    org.decision_note = note.strip()[:2000]
    db.session.flush()


def add_auto_domain(admin: User, domain: str, *, now: datetime) -> AutoApproveDomain:
    """List a domain whose verified organizations are approved at once. Raises DomainError. Caller commits."""
    domain = domain.strip().lower().lstrip("@")
    if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain) or len(domain) > 253:
        raise DomainError(_("Enter a domain such as example.gov."), field="domain")
    existing = db.session.scalar(select(AutoApproveDomain).where(AutoApproveDomain.domain == domain))
    if existing is not None:
        return existing
    row = AutoApproveDomain(domain=domain, added_by_id=admin.id, added_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return db.session.scalar(select(AutoApproveDomain).where(AutoApproveDomain.domain == domain))
    return row


# ---- staff ----------------------------------------------------------------------------------------------------


def add_staff(actor: User, org: Organization, *, email: str, role: OrgRole, now: datetime) -> Membership:
    """Give an existing account a role in the organization (or change it). Raises DomainError. Caller commits."""
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise DomainError(
            _("No account has that email address. Ask them to sign up first, then add them."), field="email"
        )
    membership = db.session.scalar(
        select(Membership).where(Membership.organization_id == org.id, Membership.user_id == user.id)
    )
    if membership is None:
        membership = Membership(organization_id=org.id, user_id=user.id, role=role, created_at=now)
        try:
            with db.session.begin_nested():
                db.session.add(membership)
        except IntegrityError:
            raise DomainError(_("%(email)s was just added by someone else.", email=user.email)) from None
        return membership
    if membership.role is OrgRole.OWNER and role is not OrgRole.OWNER:
        _keep_an_owner(org, membership)
    membership.role = role
    db.session.flush()
    return membership


def remove_staff(actor: User, org: Organization, membership_id: int) -> None:
    """Raises DomainError for someone not on this organization's staff, or its last owner. Caller commits."""
    membership = db.session.get(Membership, membership_id)
    if membership is None or membership.organization_id != org.id:
        raise DomainError(_("That person is not on the staff."))
    if membership.role is OrgRole.OWNER:
        _keep_an_owner(org, membership)
    db.session.delete(membership)
    db.session.flush()


def _keep_an_owner(org: Organization, leaving: Membership) -> None:
    others = db.session.scalar(
        select(func.count()).where(
            Membership.organization_id == org.id, Membership.role == OrgRole.OWNER, Membership.id != leaving.id
        )
    )
    if not others:
        raise DomainError(_("An organization needs at least one owner. Make someone else an owner first."))


# ---- cohorts --------------------------------------------------------------------------------------------------


def assignable_courses() -> list[Course]:
    return list(
        db.session.scalars(select(Course).where(Course.status == CourseStatus.PUBLISHED).order_by(Course.title))
    )


def create_cohort(
    actor: User,
    org: Organization,
    *,
    name: str,
    starts_on: date,
    ends_on: date | None,
    due_on: date | None,
    course_ids: list[int],
    now: datetime,
    program_id: int | None = None,
) -> Cohort:
    """Raises DomainError for dates out of order, courses that are not published, or a program that is not
    published. With a program, the cohort's courses are the program's (``course_ids`` is ignored). Caller commits."""
    if ends_on is not None and ends_on < starts_on:
        raise DomainError(_("The end date is before the start date."), field="ends_on")
    if due_on is not None and due_on < starts_on:
        raise DomainError(_("The due date is before the start date."), field="due_on")
    program = _assignable_program(program_id)
    if program is not None:
        courses = list(program.courses)
    else:
        courses = list(
            db.session.scalars(select(Course).where(Course.id.in_(course_ids), Course.status == CourseStatus.PUBLISHED))
        )
        if not courses or len(courses) != len(set(course_ids)):
            raise DomainError(_("Choose at least one published course, or a program."), field="course_ids")
    cohort = Cohort(
        program=program,
        organization_id=org.id,
        name=" ".join(name.split())[:120],
        starts_on=starts_on,
        ends_on=ends_on,
        due_on=due_on,
        created_by_id=actor.id,
        created_at=now,
        courses=courses,
    )
    db.session.add(cohort)
    db.session.flush()
    return cohort


def update_cohort(
    actor: User,
    cohort: Cohort,
    *,
    name: str,
    starts_on: date,
    ends_on: date | None,
    due_on: date | None,
    course_ids: list[int],
    now: datetime,
    program_id: int | None = None,
) -> Cohort:
    """Change a cohort's name, dates and assigned courses or program (the same rules as creating one). Raises
    DomainError for dates out of order, courses or a program that are not published; nothing is changed then.
    Flushes; the caller commits.

    Members keep their progress: it belongs to their enrollments, not to the cohort. A course taken off the cohort
    drops out of its dashboard (the report counts every course its members study either way). The program the
    cohort already follows may stay even if it was archived since (its members can still finish it)."""
    if ends_on is not None and ends_on < starts_on:
        raise DomainError(_("The end date is before the start date."), field="ends_on")
    if due_on is not None and due_on < starts_on:
        raise DomainError(_("The due date is before the start date."), field="due_on")
    if program_id is not None and program_id == cohort.program_id:
        program = cohort.program
    else:
        program = _assignable_program(program_id)
    if program is not None:
        courses, kept = list(program.courses), []
    else:
        courses = list(
            db.session.scalars(select(Course).where(Course.id.in_(course_ids), Course.status == CourseStatus.PUBLISHED))
        )
        # a course archived since it was assigned may stay assigned (its members can still finish it)
        kept = [c for c in cohort.courses if c.id in set(course_ids) and c not in courses]
        if not (courses or kept) or len(courses) + len(kept) != len(set(course_ids)):
            raise DomainError(_("Choose at least one published course, or a program."), field="course_ids")
    cohort.name = " ".join(name.split())[:120]
    cohort.starts_on, cohort.ends_on, cohort.due_on = starts_on, ends_on, due_on
    cohort.program = program
    cohort.courses = sorted(courses + kept, key=lambda c: c.title)
    db.session.flush()
    return cohort


def assignable_programs() -> list[Program]:
    return list(
        db.session.scalars(select(Program).where(Program.status == CourseStatus.PUBLISHED).order_by(Program.title))
    )


def _assignable_program(program_id: int | None) -> Program | None:
    if program_id is None:
        return None
    program = db.session.get(Program, program_id)
    if program is None or program.status is not CourseStatus.PUBLISHED:
        raise DomainError(_("Choose a published program."), field="program_id")
    return program


def archive_cohort(actor: User, cohort: Cohort, *, now: datetime) -> bool:
    """Archive the cohort: off the organization's default list, no new members (every invitation, link and code
    of it stops working), its members, progress and place in reports kept. Returns False if it already was (a
    double submit changes nothing). Flushes; the caller commits."""
    archived = db.session.execute(
        update(Cohort).where(Cohort.id == cohort.id, Cohort.archived_at.is_(None)).values(archived_at=now)
    ).rowcount
    db.session.refresh(cohort, ["archived_at"])
    return archived == 1


def unarchive_cohort(actor: User, cohort: Cohort) -> bool:
    """Back on the list and open to invitations again (those not expired or withdrawn meanwhile). Returns False if
    it was not archived. Flushes; the caller commits."""
    restored = db.session.execute(
        update(Cohort).where(Cohort.id == cohort.id, Cohort.archived_at.is_not(None)).values(archived_at=None)
    ).rowcount
    db.session.refresh(cohort, ["archived_at"])
    return restored == 1


def _open_for_members(cohort: Cohort) -> None:
    if cohort.archived_at is not None:
        raise DomainError(
            _("The cohort “%(cohort)s” is archived: unarchive it before inviting people.", cohort=cohort.name)
        )


# ---- invitations ----------------------------------------------------------------------------------------------


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalize_code(raw: str) -> str:
    """Codes are forgiving like certificate IDs: case, spaces, dashes and O/I/L typos."""
    text = re.sub(r"[\s-]", "", raw or "").upper().translate(str.maketrans("OIL", "011"))
    return text if len(text) == CODE_LENGTH and all(c in CROCKFORD for c in text) else ""


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def _new_invitation(
    actor: User, cohort: Cohort, kind: InvitationKind, secret: str, now: datetime, **extra
) -> Invitation:
    days = {InvitationKind.EMAIL: EMAIL_INVITATION_DAYS, InvitationKind.LINK: LINK_DAYS, InvitationKind.CODE: CODE_DAYS}
    invitation = Invitation(
        cohort_id=cohort.id,
        kind=kind,
        token_hash=token_hash(secret),
        created_by_id=actor.id,
        created_at=now,
        expires_at=now + timedelta(days=days[kind]),
        **extra,
    )
    db.session.add(invitation)
    db.session.flush()
    return invitation


def invite_email(actor: User, cohort: Cohort, *, email: str, name: str, now: datetime) -> tuple[Invitation, str]:
    """An email invitation (single use, 14 days). Returns (invitation, secret); only the hash is stored.

    An earlier open invitation for the same address and cohort is withdrawn, so only the newest link works.
    Raises DomainError for an archived cohort, a malformed address or someone already in the cohort. Caller
    commits, then mails.
    """
    _open_for_members(cohort)
    email = normalize_email(email)
    if not EMAIL_RE.match(email):
        raise DomainError(_("That is not an email address."), field="email")
    if _active_member_by_email(cohort, email):
        raise DomainError(_("%(email)s is already in this cohort.", email=email), field="email")
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.cohort_id == cohort.id,
            Invitation.email == email,
            Invitation.used_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    secret = secrets.token_urlsafe(32)  # 256 bits
    invitation = _new_invitation(
        actor, cohort, InvitationKind.EMAIL, secret, now, email=email, name=" ".join(name.split())[:120]
    )
    return invitation, secret


def _active_member_by_email(cohort: Cohort, email: str) -> bool:
    return (
        db.session.scalar(
            select(CohortMember.id)
            .join(User, User.id == CohortMember.user_id)
            .where(CohortMember.cohort_id == cohort.id, CohortMember.left_at.is_(None), User.email == email)
        )
        is not None
    )


def open_link(actor: User, cohort: Cohort, kind: InvitationKind, *, now: datetime) -> tuple[Invitation, str]:
    """A new join link (256-bit) or short code for the cohort; the previous one of that kind stops working.

    Returns (invitation, secret): the secret is shown once. Raises DomainError for an archived cohort. Caller
    commits.
    """
    if kind is InvitationKind.EMAIL:
        raise ValueError("email invitations are made with invite_email")
    _open_for_members(cohort)
    close_links(cohort, kind, now=now)
    for _attempt in range(5):
        secret = (
            secrets.token_urlsafe(32)
            if kind is InvitationKind.LINK
            else "".join(secrets.choice(CROCKFORD) for _position in range(CODE_LENGTH))
        )
        try:
            with db.session.begin_nested():
                invitation = _new_invitation(actor, cohort, kind, secret, now)
        except IntegrityError:  # a code collided with another cohort's: draw again
            continue
        return invitation, secret
    raise DomainError(_("Could not make a new code; please try again."))


def close_links(cohort: Cohort, kind: InvitationKind, *, now: datetime) -> int:
    return db.session.execute(
        update(Invitation)
        .where(Invitation.cohort_id == cohort.id, Invitation.kind == kind, Invitation.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount


def find_invitation(secret: str, *, now: datetime, code: bool = False) -> Invitation:
    """The invitation a secret (or a short code) opens. Raises DomainError for unknown, withdrawn, used or expired."""
    if code:
        secret = normalize_code(secret)
        if not secret:
            raise DomainError(_("A join code has 8 letters and digits, like K7QM-2XWD."))
    invitation = db.session.scalar(
        select(Invitation)
        .where(Invitation.token_hash == token_hash(secret or ""))
        .options(selectinload(Invitation.cohort).selectinload(Cohort.organization))
    )
    if invitation is None:
        raise DomainError(_("This invitation is not valid. Check the link or code, or ask for a new one."))
    if invitation.revoked_at is not None:
        raise DomainError(_("This invitation was withdrawn. Ask the organization for a new one."))
    if invitation.kind is InvitationKind.EMAIL and invitation.used_at is not None:
        raise DomainError(_("This invitation has already been used. Each invitation works once."))
    if invitation.expires_at <= now:
        raise DomainError(_("This invitation has expired. Ask the organization for a new one."))
    if not invitation.cohort.organization.is_approved:
        raise DomainError(_("This organization is not accepting members at the moment."))
    if invitation.cohort.archived_at is not None:
        raise DomainError(
            _("The cohort “%(cohort)s” is archived and no longer takes new members.", cohort=invitation.cohort.name)
        )
    return invitation


def consent_text(cohort: Cohort) -> str:
    """Exactly what the learner agrees to; stored with their agreement."""
    org = cohort.organization
    courses = "; ".join(c.title for c in cohort.courses)
    # in the reader's language; the text they agreed to is stored as it was shown
    return _(
        "%(org)s (%(kind)s) will see, for the cohort “%(cohort)s” and only for its assigned courses (%(courses)s): "
        "your name and email address; when you enrolled and your progress in each course; when you were last "
        "active in them; your quiz attempts and best scores; and your certificates for those courses with their "
        "current status (valid, expired or revoked). They will not see your other courses, your answers, or "
        "anything after you leave. You can leave at any time from your account page.",
        org=org.name,
        kind=org.kind.label,
        cohort=cohort.name,
        courses=courses,
    )


def accept(user: User, invitation: Invitation, *, shown_text: str, now: datetime) -> CohortMember:
    """The learner joins the cohort, agreeing to ``shown_text`` (which must be what ``consent_text`` says now).

    Raises DomainError when the invitation is for another email, the learner is already in the cohort, or what was
    shown no longer matches (the cohort changed meanwhile). Writes nothing on error. Caller commits.
    """
    cohort = invitation.cohort
    if cohort.archived_at is not None:  # archived while the consent page was open
        raise DomainError(_("The cohort “%(cohort)s” is archived and no longer takes new members.", cohort=cohort.name))
    if shown_text != consent_text(cohort):
        raise DomainError(
            _("What this organization will see has changed since you opened the page. Please read it again.")
        )
    if invitation.kind is InvitationKind.EMAIL and invitation.email != user.email:
        raise DomainError(
            _(
                "This invitation was sent to another email address. Log in with that address, or ask for an "
                "invitation to yours."
            )
        )
    member = db.session.scalar(
        select(CohortMember).where(CohortMember.cohort_id == cohort.id, CohortMember.user_id == user.id)
    )
    if member is not None and member.left_at is None:
        raise DomainError(
            _("You are already in %(org)s’s cohort “%(cohort)s”.", org=cohort.organization.name, cohort=cohort.name)
        )
    if invitation.kind is InvitationKind.EMAIL:
        # single use even under a double submit: only one UPDATE can flip used_at
        claimed = db.session.execute(
            update(Invitation)
            .where(Invitation.id == invitation.id, Invitation.used_at.is_(None))
            .values(used_at=now, used_by_id=user.id)
        ).rowcount
        if claimed != 1:
            raise DomainError(_("This invitation has already been used. Each invitation works once."))
    if member is None:
        member = CohortMember(cohort_id=cohort.id, user_id=user.id)
        db.session.add(member)
    member.invitation_id = invitation.id
    member.joined_at = now
    member.consent_at = now
    member.consent_text = shown_text
    member.left_at = None
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise DomainError(
            _("You are already in %(org)s’s cohort “%(cohort)s”.", org=cohort.organization.name, cohort=cohort.name)
        ) from None
    return member


def my_cohorts(user: User) -> list[CohortMember]:
    """The learner's current cohort memberships, with cohort and organization."""
    return list(
        db.session.scalars(
            select(CohortMember)
            .where(CohortMember.user_id == user.id, CohortMember.left_at.is_(None))
            .options(selectinload(CohortMember.cohort).selectinload(Cohort.organization))
            .order_by(CohortMember.joined_at)
        )
    )


def leave(user: User, org: Organization, *, now: datetime) -> int:
    """The learner leaves every cohort of ``org``; from now on it sees nothing of them. Returns cohorts left.

    Raises DomainError if they were in none. Caller commits.
    """
    cohort_ids = select(Cohort.id).where(Cohort.organization_id == org.id)
    left = db.session.execute(
        update(CohortMember)
        .where(CohortMember.user_id == user.id, CohortMember.left_at.is_(None), CohortMember.cohort_id.in_(cohort_ids))
        .values(left_at=now)
    ).rowcount
    if not left:
        raise DomainError(_("You are not in any cohort of %(org)s.", org=org.name))
    return left


REMINDER_GAP = timedelta(hours=24)


def claim_reminders(cohort: Cohort, member_ids: list[int], *, now: datetime) -> set[int]:
    """Mark current members as reminded now, except those reminded in the last 24 hours; returns the ids to mail.

    One conditional UPDATE, so two managers pressing the button together send one reminder. Caller commits.
    """
    if not member_ids:
        return set()
    return set(
        db.session.scalars(
            update(CohortMember)
            .where(
                CohortMember.id.in_(member_ids),
                CohortMember.cohort_id == cohort.id,
                CohortMember.left_at.is_(None),
                or_(CohortMember.last_reminded_at.is_(None), CohortMember.last_reminded_at < now - REMINDER_GAP),
            )
            .values(last_reminded_at=now)
            .returning(CohortMember.id)
        )
    )


# ---- candidates -----------------------------------------------------------------------------------------------


def save_candidate(
    actor: User, org: Organization, certificate: Certificate, *, note: str, now: datetime
) -> tuple[SavedCandidate, bool]:
    """Keep a verified certificate on the organization's shared list (once). Returns (row, created). Caller commits."""

    def existing() -> SavedCandidate | None:
        return db.session.scalar(
            select(SavedCandidate).where(
                SavedCandidate.organization_id == org.id, SavedCandidate.certificate_id == certificate.id
            )
        )

    row = existing()
    if row is not None:
        return row, False
    row = SavedCandidate(
        organization_id=org.id,
        certificate_id=certificate.id,
        added_by_id=actor.id,
        note=note.strip()[:200],
        added_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return existing(), False
    return row, True


def remove_candidate(org: Organization, row_id: int) -> None:
    """Raises DomainError when the row is not on this organization's list. Caller commits."""
    row = db.session.get(SavedCandidate, row_id)
    if row is None or row.organization_id != org.id:
        raise DomainError(_("That candidate is not on your list."))
    db.session.delete(row)
    db.session.flush()


def candidates(org: Organization, *, now: datetime) -> list[tuple[SavedCandidate, str]]:
    """The organization's list with each certificate's status now: valid, expiring, expired or revoked."""
    rows = db.session.scalars(
        select(SavedCandidate)
        .where(SavedCandidate.organization_id == org.id)
        .options(selectinload(SavedCandidate.certificate), selectinload(SavedCandidate.added_by))
        .order_by(SavedCandidate.added_at.desc(), SavedCandidate.id.desc())
    )
    result = []
    for row in rows:
        status = row.certificate.status_at(now).value
        if status == "valid" and expiring_soon(row.certificate, now):
            status = "expiring"
        result.append((row, status))
    return result
