"""Certificate rules: issue exactly once, snapshot, look up, revoke, reinstate, reissue, renew, name corrections.

Services flush, never commit; the caller commits. PDFs on disk are ``storage.py``, bulk checks ``bulk.py``, the
verification counter ``counter.py``; the receivers that call in here on completion are ``receivers.py``.
"""

from __future__ import annotations

import calendar
import secrets
import unicodedata
from datetime import datetime, timedelta

from blinker import Namespace
from flask_babel import gettext
from sqlalchemy import and_, bindparam, func, insert, literal, not_, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached, selectinload

from accounts.models import User
from core import audit
from core.errors import DomainError
from core.extensions import db
from courses.models import Course, Enrollment, Module, ProgramEnrollment, Quiz, QuizAttempt
from courses.services import cached_outline
from credentials import openbadges
from credentials.ids import format_public_id, new_public_id, normalize_public_id
from credentials.models import (
    Certificate,
    CertificateEvent,
    CertificatePart,
    CertificateStatus,
    NameChangeRequest,
    NameChangeStatus,
    RevocationReason,
)

EXPIRING_SOON_DAYS = 60
signals = Namespace()
certificate_issued = signals.signal("certificate-issued")  # sent in the issuing transaction
# sent in the revoking / reinstating transaction (program certificates stacking a course certificate follow it)
certificate_revoked = signals.signal("certificate-revoked")
certificate_reinstated = signals.signal("certificate-reinstated")
# sent in the suspending / lifting transaction (the suspension list is re-signed before the admin's request returns)
certificate_suspended = signals.signal("certificate-suspended")
certificate_suspension_lifted = signals.signal("certificate-suspension-lifted")
MAX_SUSPENSION_DAYS = 3660  # an end date further than ten years ahead is a typing mistake, not a plan
# sent in the reissuing transaction (notices and the PDF job are queued; nothing leaves before the commit)
certificate_reissued = signals.signal("certificate-reissued")


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _best_scores():
    """The best score of each quiz of the enrollment's course (``enrollment`` and ``course`` bound)."""
    return (
        select(func.max(QuizAttempt.score).label("best"))
        .join(Quiz, Quiz.id == QuizAttempt.quiz_id)
        .join(Module, Module.id == Quiz.module_id)
        .where(
            QuizAttempt.enrollment_id == bindparam("enrollment"),
            Module.course_id == bindparam("course"),
            QuizAttempt.submitted_at.is_not(None),
        )
        .group_by(QuizAttempt.quiz_id)
        .subquery()
    )


# built once: what an issuance reads, in one statement. The final score (the mean of the best score of each quiz
# in the course; NULL without a quiz), the latest revocation list and how many of its slots are given out (for the
# new certificate's status slot, written with its INSERT)
_ISSUANCE_READ = select(
    select(func.avg(_best_scores().c.best)).scalar_subquery().label("score"),
    openbadges.LATEST_LIST_ID.label("list_id"),
    openbadges.LATEST_LIST_USED.label("used"),
)
_FINAL_SCORE = select(func.avg(_best_scores().c.best))


def _score(value) -> int:
    return round(value) if value is not None else 100


def _final_score(enrollment: Enrollment) -> int:
    """The mean of the best score of each quiz in the course (100 if it has no quiz)."""
    return _score(db.session.scalar(_FINAL_SCORE, {"enrollment": enrollment.id, "course": enrollment.course_id}))


def _snapshot_values(course: Course, user: User, issuer: str, score: int) -> dict:
    return {
        "holder_name": user.legal_name,
        "course_title": course.title,
        "course_slug": course.slug,
        "course_version": course.version,
        "language": course.language,
        "skills": [{"id": s.id, "name": s.name} for s in course.skills],
        "goals": [{"id": g.id, "title": g.title} for g in course.goals],
        "score": score,
        "issuer_name": issuer,
    }


def _snapshot(certificate: Certificate, course: Course, user: User, enrollment: Enrollment, issuer: str) -> None:
    for key, value in _snapshot_values(course, user, issuer, _final_score(enrollment)).items():
        setattr(certificate, key, value)


def _event(certificate: Certificate, action: str, *, actor: User | None, now: datetime, **detail) -> None:
    db.session.add(
        CertificateEvent(
            certificate=certificate, actor_id=actor.id if actor else None, action=action, at=now, detail=detail
        )
    )


def _invalidate_pdf(certificate: Certificate) -> None:
    # the stored file is replaced on the next download (rendering never blocks a state change)
    certificate.pdf_sha256 = None
    certificate.pdf_rendered_at = None
    certificate.pdf_stamp = None


# every column a new course certificate's INSERT gives that the issuance does not compute (so the object made from
# the values is complete: nothing is read back)
_NEW_CERTIFICATE = {
    "program_id": None,
    "revision": 1,
    "revoked_at": None,
    "revocation_reason": None,
    "revocation_note": None,
    "suspended_at": None,
    "suspended_until": None,
    "suspension_reason": None,
    "pdf_path": None,
    "pdf_sha256": None,
    "pdf_rendered_at": None,
    "pdf_stamp": None,
    "signed_credential": None,
    "signed_revision": None,
    "verification_count": 0,
    "last_verified_at": None,
}
# built once per dialect: a new certificate, or nothing when any unique constraint says no (the learner's
# certificate for the course exists, the drawn status slot or public ID is taken); RETURNING tells which
_INSERT_CERTIFICATE = {
    name: dialect_insert(Certificate.__table__).on_conflict_do_nothing().returning(Certificate.__table__.c.id)
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_INSERT_EVENT = insert(CertificateEvent.__table__)


def _issue_with_event(columns: tuple[str, ...]):
    """PostgreSQL, built once per set of columns: ``WITH issued AS (INSERT INTO certificates … ON CONFLICT DO
    NOTHING RETURNING id) INSERT INTO certificate_events … SELECT … FROM issued RETURNING certificate_id``: the
    certificate and its "issued" event in one statement (no row, so no event, when the constraint refused it).
    Parameters: the certificate's columns by name, ``event_at`` and ``event_detail``."""
    built = _ISSUE_WITH_EVENT.get(columns)
    if built is None:
        certificates, events = Certificate.__table__, CertificateEvent.__table__
        issued = (
            postgresql.insert(certificates)
            .values({name: bindparam(name, type_=certificates.c[name].type) for name in columns})
            .on_conflict_do_nothing()
            .returning(certificates.c.id)
            .cte("issued")
        )
        built = _ISSUE_WITH_EVENT[columns] = (
            insert(events)
            .from_select(
                ["certificate_id", "actor_id", "action", "at", "detail"],
                select(
                    issued.c.id,
                    null().cast(events.c.actor_id.type),
                    literal("issued", events.c.action.type),
                    bindparam("event_at", type_=events.c.at.type),
                    bindparam("event_detail", type_=events.c.detail.type),
                ),
            )
            .returning(events.c.certificate_id)
        )
    return built


_ISSUE_WITH_EVENT: dict[tuple[str, ...], object] = {}


def issue_for_enrollment(enrollment: Enrollment, *, now: datetime, issuer: str) -> Certificate:
    """Issue the learner's certificate for a completed enrollment, exactly once per learner and course.

    A second completion (a renewal) extends the same certificate. The unique constraint on (user, course) decides
    races between requests or app servers: a certificate found there issued at or after this enrollment's
    completion is this completion's (a concurrent request, a retried job) and is returned unchanged; an older one is
    renewed. Raises RuntimeError only if no free status slot is drawn in 50 tries. Flush only; the caller commits.

    A new certificate costs one read (final score, status list and fill), one INSERT … ON CONFLICT DO NOTHING
    RETURNING id (no existence check, no savepoint) and the "issued" event's INSERT; the object handed to
    ``certificate_issued`` is made from the written values, not read back.
    """
    # the completing request has just read the course's outline (shared, read-only: only read here)
    course = cached_outline(enrollment.course_id) or db.session.scalar(
        select(Course)
        .where(Course.id == enrollment.course_id)
        .options(selectinload(Course.skills), selectinload(Course.goals))
    )
    user = db.session.get(User, enrollment.user_id)
    expires = add_months(now, course.validity_months) if course.validity_months else None
    connection = db.session.connection()
    read = connection.execute(_ISSUANCE_READ, {"enrollment": enrollment.id, "course": course.id}).one()
    values = {
        **_NEW_CERTIFICATE,
        "user_id": user.id,
        "course_id": course.id,
        "enrollment_id": enrollment.id,
        "awarded_at": now,
        "issued_at": now,
        "expires_at": expires,
        "subject_salt": secrets.token_hex(16),
        **_snapshot_values(course, user, issuer, _score(read.score)),
    }
    latest = (read.list_id, read.used)
    event = {"course_version": course.version, "score": values["score"]}
    # PostgreSQL: the "issued" event is written by the certificate's own INSERT (a data-modifying CTE), only when
    # the row was written; SQLite has no INSERT in a WITH: there the event's INSERT follows
    with_event = connection.dialect.name == "postgresql"
    for _ in range(50):
        values["public_id"] = new_public_id()
        values["status_list_id"], values["status_list_index"] = openbadges.draw_slot(*latest)
        if with_event:
            certificate_id = connection.execute(
                _issue_with_event(tuple(values)), {**values, "event_at": now, "event_detail": event}
            ).scalar()
        else:
            certificate_id = connection.execute(_INSERT_CERTIFICATE[connection.dialect.name], values).scalar()
        if certificate_id is not None:
            break
        existing = db.session.scalar(
            select(Certificate).where(Certificate.user_id == user.id, Certificate.course_id == course.id)
        )
        if existing is not None:
            return _complete_again(existing, enrollment, course, user, issuer, values["score"], now, expires)
        latest = ()  # the drawn status slot (or public ID) was taken by a concurrent issuance: read and draw again
    else:
        raise RuntimeError("could not allocate a status list slot")
    certificate = Certificate(id=certificate_id, **values)
    make_transient_to_detached(certificate)
    db.session.add(certificate)
    if not with_event:
        connection.execute(
            _INSERT_EVENT,
            {"certificate_id": certificate_id, "actor_id": None, "action": "issued", "at": now, "detail": event},
        )
    certificate_issued.send(certificate, now=now)
    return certificate


def _complete_again(
    existing: Certificate,
    enrollment: Enrollment,
    course: Course,
    user: User,
    issuer: str,
    score: int,
    now: datetime,
    expires: datetime | None,
) -> Certificate:
    if enrollment.completed_at is not None and existing.issued_at >= enrollment.completed_at:
        return existing  # issued for this very completion (a concurrent request, a retried job): that one it is
    if existing.revoked_at is not None:
        return existing  # completing again does not undo a revocation; an admin reinstates
    before = _renewal_fields(existing)
    holder_name = existing.holder_name  # frozen at issuance: only an approved name correction changes it
    for key, value in _snapshot_values(course, user, issuer, score).items():
        setattr(existing, key, value)
    existing.holder_name = holder_name
    existing.issued_at, existing.expires_at = now, expires
    existing.revision += 1
    _invalidate_pdf(existing)
    after = _renewal_fields(existing)
    changed = sorted(k for k in after if after[k] != before[k])
    before, after = {k: before[k] for k in changed}, {k: after[k] for k in changed}
    _event(existing, "renewed", actor=user, now=now, before=before, after=after)
    audit.record(
        user,
        "certificate.renewed",
        "certificate",
        existing.public_id,
        f"Renewed {existing.course_title} for {existing.holder_name} ({', '.join(changed) or 'no field changed'})",
        now=now,
        before=before,
        after=after,
    )
    db.session.flush()
    return existing


def _renewal_fields(certificate: Certificate) -> dict:
    """Every snapshot field a renewal may change, as JSON-ready values (for the history and the audit log)."""
    return {
        "holder_name": certificate.holder_name,
        "course_title": certificate.course_title,
        "course_slug": certificate.course_slug,
        "course_version": certificate.course_version,
        "language": certificate.language,
        "skills": certificate.skills,
        "goals": certificate.goals,
        "score": certificate.score,
        "issuer_name": certificate.issuer_name,
        "issued_at": _iso(certificate.issued_at),
        "expires_at": _iso(certificate.expires_at),
    }


def renewal_window_problem(certificate: Certificate | None, now: datetime) -> str | None:
    """Why the certificate cannot be renewed now, or None: renewal opens EXPIRING_SOON_DAYS before expiry."""
    if certificate is None or certificate.revoked_at is not None:
        return None  # nothing to extend: completing again changes no certificate
    if certificate.expires_at is None:
        return "Your certificate does not expire, so there is nothing to renew."
    opens = certificate.expires_at - timedelta(days=EXPIRING_SOON_DAYS)
    if now < opens:
        return f"You can renew from {opens:%-d %B %Y}, {EXPIRING_SOON_DAYS} days before your certificate expires."
    return None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def get_certificate(raw_id: str) -> Certificate | None:
    """Look a certificate up by a typed, pasted or case-mangled public ID (a primary-key-cheap lookup)."""
    public_id = normalize_public_id(raw_id)
    if public_id is None:
        return None
    return db.session.scalar(select(Certificate).where(Certificate.public_id == public_id))


def lookup(public_id: str) -> Certificate | None:
    """A certificate by canonical public ID: one indexed lookup, no write."""
    return db.session.scalar(select(Certificate).where(Certificate.public_id == public_id))


def expiring_soon(certificate: Certificate, now: datetime) -> bool:
    return (
        certificate.status_at(now) is CertificateStatus.VALID
        and certificate.expires_at is not None
        and (certificate.expires_at - now).days <= EXPIRING_SOON_DAYS
    )


def revoke(actor: User, certificate: Certificate, *, reason: RevocationReason, note: str, now: datetime) -> None:
    """Revoke with a reason category and a note. Raises DomainError if already revoked. Caller commits."""
    if certificate.revoked_at is not None:
        raise DomainError("This certificate is already revoked.")
    if not note.strip():
        raise DomainError("Explain the revocation in the note.", field="note")
    certificate.revoked_at, certificate.revocation_reason, certificate.revocation_note = now, reason, note.strip()
    detail = {}
    if certificate.suspended_at_time(now):
        # revocation ends a running suspension: reinstating later gives a valid certificate, not a suspended one
        detail["suspension_ended"] = {
            "suspended_at": _iso(certificate.suspended_at),
            "until": _iso(certificate.suspended_until),
        }
        certificate.suspended_until = now
    _invalidate_pdf(certificate)
    _event(certificate, "revoked", actor=actor, now=now, reason=reason.value, note=note.strip(), **detail)
    audit.record(
        actor,
        "certificate.revoked",
        "certificate",
        certificate.public_id,
        f"Revoked {certificate.holder_name} — {certificate.course_title} ({reason.label})",
        now=now,
        after={"reason": reason.value, "note": note.strip()},
    )
    db.session.flush()
    certificate_revoked.send(certificate, actor=actor, now=now)


def reinstate(actor: User, certificate: Certificate, *, now: datetime) -> None:
    if certificate.revoked_at is None:
        raise DomainError("This certificate is not revoked.")
    if certificate.revocation_reason is RevocationReason.STACKED_REVOKED:
        raise DomainError(
            "This program certificate was revoked because a course credential it stacks was revoked: "
            "reinstate that course credential and this one follows."
        )
    before = {"revoked_at": _iso(certificate.revoked_at), "reason": certificate.revocation_reason.value}
    certificate.revoked_at = certificate.revocation_reason = certificate.revocation_note = None
    _invalidate_pdf(certificate)
    _event(certificate, "reinstated", actor=actor, now=now, before=before)
    audit.record(
        actor,
        "certificate.reinstated",
        "certificate",
        certificate.public_id,
        f"Reinstated {certificate.holder_name} — {certificate.course_title}",
        now=now,
        before=before,
    )
    db.session.flush()
    certificate_reinstated.send(certificate, actor=actor, now=now)


def suspend(actor: User, certificate: Certificate, *, reason: str, until: datetime | None, now: datetime) -> None:
    """Suspend the certificate: it stops counting at once, until ``until`` (None: until an admin lifts it).

    The reason is kept in the history and shown to the holder, never to the public. Raises DomainError if the
    certificate is revoked or already suspended, the reason is empty, or the end is not ahead (and within ten
    years). Flush only; the caller commits.
    """
    if certificate.revoked_at is not None:
        raise DomainError(gettext("This certificate is revoked: a revoked certificate cannot be suspended."))
    if certificate.suspended_at_time(now):
        raise DomainError(gettext("This certificate is already suspended."))
    reason = reason.strip()
    if not reason:
        raise DomainError(gettext("Explain the suspension."), field="suspension_reason")
    if until is not None and until <= now:
        raise DomainError(gettext("The end of the suspension must be in the future."), field="suspended_until")
    if until is not None and until > now + timedelta(days=MAX_SUSPENSION_DAYS):
        raise DomainError(gettext("The end of the suspension must be within ten years."), field="suspended_until")
    before = _suspension_fields(certificate)
    certificate.suspended_at, certificate.suspended_until, certificate.suspension_reason = now, until, reason
    _invalidate_pdf(certificate)
    _event(certificate, "suspended", actor=actor, now=now, reason=reason, until=_iso(until))
    audit.record(
        actor,
        "certificate.suspended",
        "certificate",
        certificate.public_id,
        f"Suspended {certificate.holder_name} — {certificate.course_title} (until {_iso(until) or 'lifted'}): {reason}",
        now=now,
        before=before,
        after=_suspension_fields(certificate),
    )
    db.session.flush()
    certificate_suspended.send(certificate, actor=actor, now=now)


def lift_suspension(actor: User, certificate: Certificate, *, now: datetime) -> None:
    """End a running suspension now (its record stays: ``suspended_until`` becomes now). Raises DomainError if
    the certificate is not suspended (never was, already lifted, its end passed, or revoked), or if it is a program
    certificate stacking a course certificate that is suspended (lifting that one lifts this). Flush only; the
    caller commits."""
    if certificate.revoked_at is not None or not certificate.suspended_at_time(now):
        raise DomainError(gettext("This certificate is not suspended."))
    if certificate.is_program and any(
        part.revoked_at is None and part.suspended_at_time(now)
        for part in db.session.scalars(
            select(Certificate)
            .join(CertificatePart, CertificatePart.part_id == Certificate.id)
            .where(CertificatePart.certificate_id == certificate.id)
        )
    ):
        raise DomainError(
            gettext(
                "A course credential this program certificate stacks is suspended: lift that suspension and this "
                "one follows."
            )
        )
    before = _suspension_fields(certificate)
    certificate.suspended_until = now
    _invalidate_pdf(certificate)
    _event(certificate, "suspension_lifted", actor=actor, now=now, before=before)
    audit.record(
        actor,
        "certificate.suspension_lifted",
        "certificate",
        certificate.public_id,
        f"Lifted the suspension of {certificate.holder_name} — {certificate.course_title}",
        now=now,
        before=before,
        after=_suspension_fields(certificate),
    )
    db.session.flush()
    certificate_suspension_lifted.send(certificate, actor=actor, now=now)


def _suspension_fields(certificate: Certificate) -> dict:
    return {
        "suspended_at": _iso(certificate.suspended_at),
        "suspended_until": _iso(certificate.suspended_until),
        "reason": certificate.suspension_reason,
    }


def reissue(
    actor: User | None,
    certificate: Certificate,
    *,
    now: datetime,
    why: str = "reissued by an administrator",
    holder_name: str | None = None,
) -> None:
    """Reissue: same public ID, award date and expiry, new issue time; works for expired certificates too.

    The holder name changes only when ``holder_name`` is given (an approved name correction); an edit
    of the legal name on the account page never reaches a certificate by itself. Flush only; caller commits.
    """
    before = {"holder_name": certificate.holder_name, "issued_at": _iso(certificate.issued_at)}
    if holder_name is not None:
        certificate.holder_name = holder_name
    # validity is not extended by a reissue (renewal does that); an expired certificate keeps its issue
    # time, so it still expires after it was issued and its credential's validFrom stays before validUntil
    if certificate.expires_at is None or certificate.expires_at > now:
        certificate.issued_at = now
    certificate.revision += 1
    _invalidate_pdf(certificate)
    after = {"holder_name": certificate.holder_name, "issued_at": _iso(certificate.issued_at)}
    _event(certificate, "reissued", actor=actor, now=now, why=why, before=before, after=after)
    audit.record(
        actor,
        "certificate.reissued",
        "certificate",
        certificate.public_id,
        f"Reissued {certificate.course_title} for {certificate.holder_name} ({why})",
        now=now,
        before=before,
        after=after,
    )
    db.session.flush()
    certificate_reissued.send(certificate, now=now)


def search_certificates(query: str | None, status: str | None, *, now: datetime):
    stmt = select(Certificate).order_by(Certificate.issued_at.desc(), Certificate.id.desc())
    if query:
        q = query.strip()
        public_id = normalize_public_id(q)
        text = q.lower()  # % _ and \ in a search are text, not wildcards
        conditions = [
            func.lower(Certificate.holder_name).contains(text, autoescape=True),
            func.lower(Certificate.course_title).contains(text, autoescape=True),
            Certificate.user_id.in_(select(User.id).where(User.email.contains(text, autoescape=True))),
        ]
        if public_id:
            conditions.append(Certificate.public_id == public_id)
        stmt = stmt.where(or_(*conditions))
    suspended = and_(
        Certificate.revoked_at.is_(None),
        Certificate.suspended_at.is_not(None),
        or_(Certificate.suspended_until.is_(None), Certificate.suspended_until > now),
    )
    if status == "revoked":
        stmt = stmt.where(Certificate.revoked_at.is_not(None))
    elif status == "suspended":
        stmt = stmt.where(suspended)
    elif status == "expired":
        stmt = stmt.where(Certificate.revoked_at.is_(None), not_(suspended), Certificate.expires_at <= now)
    elif status == "valid":
        stmt = stmt.where(
            Certificate.revoked_at.is_(None),
            not_(suspended),
            or_(Certificate.expires_at.is_(None), Certificate.expires_at > now),
        )
    return stmt


# ---- name corrections ---------------------------------------------------------------------


def request_name_change(user: User, *, requested_name: str, reason: str, now: datetime) -> NameChangeRequest:
    """Open a name-correction request (one open request per learner). Raises DomainError. Caller commits."""
    requested_name = unicodedata.normalize("NFC", requested_name.strip())
    if requested_name == user.legal_name:
        raise DomainError("That is already your legal name on record.", field="requested_name")
    request = NameChangeRequest(
        user_id=user.id,
        current_name=user.legal_name,
        requested_name=requested_name,
        reason=reason.strip(),
        created_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(request)
            db.session.flush()
    except IntegrityError:
        raise DomainError("You already have a name correction waiting for review.") from None
    return request


def decide_name_change(
    actor: User, request: NameChangeRequest, *, approve: bool, note: str, now: datetime
) -> list[Certificate]:
    """Approve (update the legal name and reissue every certificate) or reject. Returns reissued ones."""
    if request.status is not NameChangeStatus.PENDING:
        raise DomainError("This request has already been decided.")
    request.status = NameChangeStatus.APPROVED if approve else NameChangeStatus.REJECTED
    request.decided_at, request.decided_by_id, request.decision_note = now, actor.id, note.strip() or None
    audit.record(
        actor,
        f"name_correction.{request.status.value}",
        "user",
        request.user_id,
        f"Name correction {request.current_name} → {request.requested_name} {request.status.value}",
        now=now,
        before={"legal_name": request.current_name},
        after={"requested": request.requested_name},
    )
    reissued: list[Certificate] = []
    if approve:
        user = db.session.get(User, request.user_id)
        user.legal_name = request.requested_name
        user.updated_at = now
        for certificate in db.session.scalars(select(Certificate).where(Certificate.user_id == user.id)):
            reissue(actor, certificate, now=now, why="name correction approved", holder_name=user.legal_name)
            reissued.append(certificate)
    db.session.flush()
    return reissued


def certificate_id_for(enrollment: Enrollment | ProgramEnrollment) -> str | None:
    """The formatted ID of the certificate a finished course or program enrollment earned, or None (one query;
    raises nothing).

    The course and program pages ask through this: the factory hands it to templates, because courses sit
    below credentials and never import it."""
    earned = (
        Certificate.program_id == enrollment.program_id
        if isinstance(enrollment, ProgramEnrollment)
        else Certificate.course_id == enrollment.course_id
    )
    public_id = db.session.scalar(
        select(Certificate.public_id).where(Certificate.user_id == enrollment.user_id, earned)
    )
    return format_public_id(public_id) if public_id else None
