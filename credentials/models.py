"""Certificates are records with legal weight: snapshots that are never hard-deleted."""

from __future__ import annotations

import enum
from datetime import datetime

from flask_babel import gettext
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from accounts.models import User
from core.database import str_enum, utcnow
from core.extensions import db
from courses.models import Course, Program


class RevocationReason(enum.Enum):
    ISSUED_IN_ERROR = "issued_in_error"
    ACADEMIC_MISCONDUCT = "academic_misconduct"
    IDENTITY_MISMATCH = "identity_mismatch"
    SUPERSEDED = "superseded"
    HOLDER_REQUEST = "holder_request"
    OTHER = "other"
    # a program certificate whose stacked course certificate was revoked (undone when that one is reinstated)
    STACKED_REVOKED = "stacked_revoked"

    @property
    def label(self) -> str:
        """In the reader's language."""
        return {
            "issued_in_error": gettext("Issued in error"),
            "academic_misconduct": gettext("Academic misconduct"),
            "identity_mismatch": gettext("Identity could not be confirmed"),
            "superseded": gettext("Superseded by another certificate"),
            "holder_request": gettext("Withdrawn at the holder's request"),
            "other": gettext("Other"),
            "stacked_revoked": gettext("A course credential it stacks was revoked"),
        }[self.value]


class CertificateStatus(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    SUSPENDED = "suspended"

    @property
    def label(self) -> str:
        return status_label(self.value)


def status_label(value: str) -> str:
    """A certificate's status word ("valid", "expired", "revoked", "suspended") in the reader's language,
    capitalized: what badges and the verify page show (the value itself stays English in data and APIs)."""
    return {
        "valid": gettext("Valid"),
        "expired": gettext("Expired"),
        "revoked": gettext("Revoked"),
        "suspended": gettext("Suspended"),
    }.get(value, value)


class Certificate(db.Model):
    __tablename__ = "certificates"
    __table_args__ = (
        # exactly one certificate per learner and course (or program), whatever races between app servers
        UniqueConstraint("user_id", "course_id"),
        UniqueConstraint("user_id", "program_id"),
        # a certificate is for a course or for a program, never both
        CheckConstraint("(course_id IS NULL) <> (program_id IS NULL)", name="course_or_program"),
        # one credential per bit of a status list
        UniqueConstraint("status_list_id", "status_list_index"),
        CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),
        CheckConstraint("expires_at IS NULL OR expires_at > issued_at", name="expires_after_issue"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # 28 Crockford base32 characters = 140 random bits; stored without dashes, upper case
    public_id: Mapped[str] = mapped_column(String(28), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("courses.id", ondelete="RESTRICT"), index=True)
    program_id: Mapped[int | None] = mapped_column(ForeignKey("programs.id", ondelete="RESTRICT"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollments.id", ondelete="SET NULL"))

    # the snapshot: what was true when it was awarded, never recomputed from live rows (for a program
    # certificate the course_* columns hold the program's title, slug and version)
    holder_name: Mapped[str] = mapped_column(String(120))
    course_title: Mapped[str] = mapped_column(String(200))
    course_slug: Mapped[str] = mapped_column(String(80))
    course_version: Mapped[int]
    # the language the course is written in (BCP 47): the certificate PDF and the credential's text use it
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    skills: Mapped[list] = mapped_column(JSON)
    goals: Mapped[list] = mapped_column(JSON)
    score: Mapped[int]
    issuer_name: Mapped[str] = mapped_column(String(200))
    awarded_at: Mapped[datetime]  # the original award date, kept across reissues and renewals
    issued_at: Mapped[datetime]  # this revision's issue time
    expires_at: Mapped[datetime | None]
    revision: Mapped[int] = mapped_column(default=1)

    revoked_at: Mapped[datetime | None]
    revocation_reason: Mapped[RevocationReason | None] = mapped_column(
        str_enum(RevocationReason, "revocation_reason", 24)
    )
    revocation_note: Mapped[str | None] = mapped_column(Text)
    # a suspension: temporary, with an optional end. It no longer counts once suspended_until has passed (computed
    # at read, by status_at and the suspension list's bits alike); the columns stay as the last one's record
    suspended_at: Mapped[datetime | None]
    suspended_until: Mapped[datetime | None]
    suspension_reason: Mapped[str | None] = mapped_column(Text)

    pdf_path: Mapped[str | None] = mapped_column(String(255))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    pdf_rendered_at: Mapped[datetime | None]
    # the state the stored PDF was stamped with, so a revoked or expired one is re-rendered
    pdf_stamp: Mapped[str | None] = mapped_column(String(16))

    # Open Badges credential: a salt for the hashed email, the status list slot, the last signed copy
    subject_salt: Mapped[str | None] = mapped_column(String(32))
    status_list_id: Mapped[int | None] = mapped_column(ForeignKey("status_lists.id", ondelete="RESTRICT"))
    status_list_index: Mapped[int | None]
    signed_credential: Mapped[str | None] = mapped_column(Text)
    signed_revision: Mapped[int | None]

    verification_count: Mapped[int] = mapped_column(default=0)
    last_verified_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
    course: Mapped[Course | None] = relationship()
    program: Mapped[Program | None] = relationship()
    events: Mapped[list[CertificateEvent]] = relationship(
        back_populates="certificate", order_by="CertificateEvent.at.desc(), CertificateEvent.id.desc()"
    )

    def status_at(self, now: datetime) -> CertificateStatus:
        if self.revoked_at is not None:
            return CertificateStatus.REVOKED
        if suspended_at_time(self, now):
            return CertificateStatus.SUSPENDED
        if self.expires_at is not None and self.expires_at <= now:
            return CertificateStatus.EXPIRED
        return CertificateStatus.VALID

    def suspended_at_time(self, now: datetime) -> bool:
        return suspended_at_time(self, now)

    @property
    def is_program(self) -> bool:
        return self.program_id is not None


def suspended_at_time(certificate, now: datetime) -> bool:
    """Suspended at ``now``: a suspension was set and its end (if any) is still ahead. Revocation wins over it in
    ``status_at``; the suspension list's bits use the same rule (``openbadges.list_bits``). A function, not only a
    method: the verification fast path runs ``status_at`` on plain rows (credentials/answers.py)."""
    return certificate.suspended_at is not None and (
        certificate.suspended_until is None or certificate.suspended_until > now
    )


class CertificatePart(db.Model):
    """A course certificate that a program certificate stacks (written when the program certificate is issued)."""

    __tablename__ = "certificate_parts"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id", ondelete="RESTRICT"), primary_key=True)
    part_id: Mapped[int] = mapped_column(
        ForeignKey("certificates.id", ondelete="RESTRICT"), primary_key=True, index=True
    )
    position: Mapped[int]

    part: Mapped[Certificate] = relationship(foreign_keys=[part_id])


class StatusList(db.Model):
    """A W3C Bitstring Status List: the bits come from the certificates; the signed copy is cached.

    A revocation list owns the slots (``Certificate.status_list_id`` / ``status_list_index``). A suspension list
    mirrors one revocation list (``revocation_list_id``): a certificate's suspension bit sits at the same index, so
    no second slot is allocated. Both are served at /credentials/status/<id>; ``purpose`` says which is which.
    """

    __tablename__ = "status_lists"
    __table_args__ = (CheckConstraint("purpose IN ('revocation', 'suspension')", name="purpose_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    size: Mapped[int] = mapped_column(default=131072)
    purpose: Mapped[str] = mapped_column(String(16), default="revocation", server_default="revocation")
    # at most one suspension list per revocation list (decides races between app servers creating it)
    # NO ACTION, not RESTRICT: checked at the end of a statement, so one DELETE may empty the table (tests do)
    revocation_list_id: Mapped[int | None] = mapped_column(ForeignKey("status_lists.id"), unique=True)
    # sha256 of the encoded bits the signed copy was made from; a mismatch means re-sign
    bits_sha256: Mapped[str | None] = mapped_column(String(64))
    signed_credential: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PublishedKey(db.Model):
    """The public half of every signing key we have used, so that our did:web document and credential checks keep
    working when the private key file is missing or unreadable (the private key never enters the database)."""

    __tablename__ = "published_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the key id, e.g. key-1
    public_multibase: Mapped[str] = mapped_column(String(200))
    created: Mapped[str] = mapped_column(String(40), default="")
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class CertificateEvent(db.Model):
    """The history of a certificate: who did what, when, with a before/after summary."""

    __tablename__ = "certificate_events"
    __table_args__ = (Index("ix_certificate_events_certificate_at", "certificate_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificates.id", ondelete="RESTRICT"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict] = mapped_column(JSON, default=dict)

    certificate: Mapped[Certificate] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class NameChangeStatus(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class NameChangeRequest(db.Model):
    """A learner asks for their legal name to be corrected on their certificates; an admin decides."""

    __tablename__ = "name_change_requests"
    __table_args__ = (
        # at most one open request per learner
        Index(
            "uq_name_change_requests_one_pending",
            "user_id",
            unique=True,
            sqlite_where=db.text("status = 'pending'"),
            postgresql_where=db.text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    current_name: Mapped[str] = mapped_column(String(120))
    requested_name: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[NameChangeStatus] = mapped_column(
        str_enum(NameChangeStatus, "name_change_status", 24), default=NameChangeStatus.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_note: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship(foreign_keys=[user_id])


class Branding(db.Model):
    """What the certificate shows about its issuer beyond its name: seal, signatory, address. One row (id 1).

    Images are kept in the database, normalised to small PNGs on upload, so every app server renders the same
    certificate without a shared file system.
    """

    __tablename__ = "branding"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    issuer_address: Mapped[str] = mapped_column(String(300), default="")
    signatory_name: Mapped[str] = mapped_column(String(120), default="")
    signatory_title: Mapped[str] = mapped_column(String(120), default="")
    seal_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    seal_alt: Mapped[str] = mapped_column(String(300), default="")
    signature_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    revision: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime | None]
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class WalletExchange(db.Model):
    """One "Add to wallet" offer (VC-API exchange): a single-use challenge, bound to the learner who opened it and to
    one certificate (or to their whole record as CLR when ``certificate_id`` is empty), that expires.

    Redeeming it is one conditional UPDATE (``redeemed_at IS NULL``), so a replayed or raced presentation gets
    nothing: the database, not a check-then-write, decides which request wins."""

    __tablename__ = "wallet_exchanges"

    id: Mapped[int] = mapped_column(primary_key=True)
    # in the exchange URL the wallet posts to; 192 random bits, like the challenge (secrets.token_urlsafe(24))
    public_id: Mapped[str] = mapped_column(String(43), unique=True)
    challenge: Mapped[str] = mapped_column(String(43), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificates.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    redeemed_at: Mapped[datetime | None]
    # the wallet's did:key the credential was bound to, and the suite its presentation was signed with
    holder_did: Mapped[str | None] = mapped_column(String(512))
    suite: Mapped[str | None] = mapped_column(String(40))

    certificate: Mapped[Certificate | None] = relationship()
