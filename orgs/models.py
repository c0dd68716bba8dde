"""Organizations, their staff, cohorts of learners (who consented), invitations, and the shared candidate list."""

from __future__ import annotations

import enum
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, Column, Date, ForeignKey, Index, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.models import User
from core.database import str_enum, utcnow
from core.extensions import db
from courses.models import Course, Program
from credentials.models import Certificate


class OrgKind(enum.Enum):
    EMPLOYER = "employer"
    WORKFORCE_BOARD = "workforce_board"
    COLLEGE = "college"
    TRAINING_PROVIDER = "training_provider"
    APPRENTICESHIP_SPONSOR = "apprenticeship_sponsor"
    UNION = "union"

    @property
    def label(self) -> str:
        # lazy: form choices are built at import time and read in the viewer's language
        return {
            "employer": _l("Employer"),
            "workforce_board": _l("Workforce board / American Job Center"),
            "college": _l("College or school"),
            "training_provider": _l("Training provider"),
            "apprenticeship_sponsor": _l("Apprenticeship sponsor"),
            "union": _l("Union"),
        }[self.value]


class OrgStatus(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"

    @property
    def label(self) -> str:
        return {"pending": _l("Pending"), "approved": _l("Approved"), "declined": _l("Declined")}[self.value]


class OrgRole(enum.Enum):
    OWNER = "owner"
    MANAGER = "manager"  # case manager, instructor, HR
    VIEWER = "viewer"

    @property
    def label(self) -> str:
        return {"owner": _l("Owner"), "manager": _l("Manager"), "viewer": _l("Viewer")}[self.value]


class InvitationKind(enum.Enum):
    EMAIL = "email"  # one person, one use
    LINK = "link"  # a long secret link a manager shares with a group
    CODE = "code"  # a short code read out in a classroom


class Organization(db.Model):
    __tablename__ = "organizations"
    __table_args__ = (CheckConstraint("contact_email = lower(contact_email)", name="contact_email_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[OrgKind] = mapped_column(str_enum(OrgKind, "org_kind", 32))
    status: Mapped[OrgStatus] = mapped_column(str_enum(OrgStatus, "org_status", 16), default=OrgStatus.PENDING)
    website: Mapped[str] = mapped_column(String(300), default="")
    # the work address the creator gave; nothing happens until a link sent to it is followed
    contact_email: Mapped[str] = mapped_column(String(254))
    email_verified_at: Mapped[datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_note: Mapped[str] = mapped_column(Text, default="")

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="organization", cascade="all, delete-orphan", passive_deletes=True
    )
    cohorts: Mapped[list[Cohort]] = relationship(
        back_populates="organization", order_by="Cohort.created_at.desc()", cascade="all, delete-orphan"
    )

    @property
    def is_approved(self) -> bool:
        return self.status is OrgStatus.APPROVED


class Membership(db.Model):
    """A person's role in an organization's staff (not a learner in one of its cohorts)."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[OrgRole] = mapped_column(str_enum(OrgRole, "org_role", 16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organization: Mapped[Organization] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship()


class AutoApproveDomain(db.Model):
    """An email domain whose verified organizations are approved without waiting for an admin."""

    __tablename__ = "org_auto_approve_domains"
    __table_args__ = (CheckConstraint("domain = lower(domain)", name="domain_lowercase"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


cohort_courses = Table(
    "cohort_courses",
    db.metadata,
    Column("cohort_id", ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True),
    Column("course_id", ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Cohort(db.Model):
    __tablename__ = "cohorts"
    __table_args__ = (CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="ends_after_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    due_on: Mapped[date | None] = mapped_column(Date)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # a cohort following a program has that program's courses (kept in step by orgs/receivers.py)
    program_id: Mapped[int | None] = mapped_column(ForeignKey("programs.id", ondelete="SET NULL"), index=True)
    # archived: off the default list, no new members; its data and its place in reports stay
    archived_at: Mapped[datetime | None]

    organization: Mapped[Organization] = relationship(back_populates="cohorts")
    courses: Mapped[list[Course]] = relationship(secondary=cohort_courses, order_by="Course.title")
    program: Mapped[Program | None] = relationship()

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None


class CohortMember(db.Model):
    """A learner in a cohort, from the moment they agreed to what the organization sees until they leave.

    ``consent_text`` keeps exactly what was shown when they agreed; after ``left_at`` the organization sees
    nothing of them (every query filters on it), and rejoining needs a new invitation and a new agreement.
    """

    __tablename__ = "cohort_members"
    __table_args__ = (
        UniqueConstraint("cohort_id", "user_id"),
        Index("ix_cohort_members_cohort_active", "cohort_id", "left_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    invitation_id: Mapped[int | None] = mapped_column(ForeignKey("invitations.id", ondelete="SET NULL"))
    joined_at: Mapped[datetime]
    consent_at: Mapped[datetime]
    consent_text: Mapped[str] = mapped_column(Text)
    left_at: Mapped[datetime | None]
    last_reminded_at: Mapped[datetime | None]

    cohort: Mapped[Cohort] = relationship()
    user: Mapped[User] = relationship()


class Invitation(db.Model):
    """An invitation into a cohort. Only a sha256 of its secret is stored.

    Email invitations are for one address and one use; links and codes let many people join until they expire
    (each person once) and can be switched off by a manager.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint("email IS NULL OR email = lower(email)", name="email_lowercase"),
        CheckConstraint("kind <> 'email' OR email IS NOT NULL", name="email_invitation_has_email"),
        Index("ix_invitations_cohort_kind", "cohort_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohorts.id", ondelete="CASCADE"))
    kind: Mapped[InvitationKind] = mapped_column(str_enum(InvitationKind, "invitation_kind", 8))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(120), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]

    cohort: Mapped[Cohort] = relationship()


class SavedCandidate(db.Model):
    """A certificate an organization verified and keeps an eye on, shared by its staff."""

    __tablename__ = "saved_candidates"
    __table_args__ = (UniqueConstraint("organization_id", "certificate_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), index=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id", ondelete="CASCADE"))
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(String(200), default="")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    certificate: Mapped[Certificate] = relationship()
    added_by: Mapped[User | None] = relationship()
