"""Program certificates: issued once a learner holds a certificate for every course of a program they enrolled in.

A program certificate is a Certificate row with ``program_id`` set (so the PDF, verify page, API, Open Badges
credential, status list and admin lifecycle are the course certificate's own); ``certificate_parts`` records
the course certificates it stacks. Revoking one of those revokes the program certificate too (reason
"stacked_revoked"), and reinstating it undoes that. Suspending one suspends the program certificate for as long
(cause "stacked_suspended" in its history), and lifting it lifts what it caused; a suspended course certificate
also holds back a program certificate not issued yet. Everything here runs inside the caller's transaction from
signal receivers: flush only, the request that triggered it commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from accounts.models import User
from core.extensions import db
from courses.models import Program, ProgramCourse, ProgramEnrollment
from courses.programs import program_enrolled
from credentials import openbadges
from credentials.ids import format_public_id, new_public_id
from credentials.models import Certificate, CertificateEvent, CertificatePart, RevocationReason
from credentials.services import (
    _event,
    _invalidate_pdf,
    _iso,
    certificate_issued,
    certificate_reinstated,
    certificate_revoked,
    certificate_suspended,
    certificate_suspension_lifted,
    signals,
)

# sent in the issuing transaction, like certificate_issued for course certificates
program_certificate_issued = signals.signal("program-certificate-issued")
# sent once a suspension or its lift has reached the program certificates stacking the certificate (``programs``:
# those it changed), so that the holder gets one notice naming everything that changed
suspension_changed = signals.signal("suspension-changed")
# sent once a reinstatement has run its course here (a program certificate suspended again while a part is; program
# certificates reinstated with a part): blinker calls receivers in no set order, so the holder's notice, written
# from the certificate's state, waits for this rather than for certificate_reinstated
reinstatement_settled = signals.signal("reinstatement-settled")
# the history's mark of a suspension a stacked course certificate caused (lifted with it, not by an admin)
STACKED_SUSPENDED = "stacked_suspended"


def issue_due(user_id: int, *, now: datetime, issuer: str, course_id: int | None = None, program_id: int | None = None):
    """Issue every program certificate the learner has now earned (optionally only programs holding ``course_id``
    or only ``program_id``). Returns the certificates issued. Caller commits.

    Exactly once: the unique (user, program) constraint decides between racing requests, and the learner's
    program enrollments are row-locked first so that two courses completed at the same moment in two
    transactions cannot both miss each other's certificate (the second waits, then sees the first's).
    """
    stmt = (
        select(ProgramEnrollment)
        .where(ProgramEnrollment.user_id == user_id, ProgramEnrollment.completed_at.is_(None))
        .order_by(ProgramEnrollment.id)
        .with_for_update()
    )
    if program_id is not None:
        stmt = stmt.where(ProgramEnrollment.program_id == program_id)
    if course_id is not None:
        stmt = stmt.where(
            ProgramEnrollment.program_id.in_(
                select(ProgramCourse.program_id).where(ProgramCourse.course_id == course_id)
            )
        )
    enrollments = list(db.session.scalars(stmt))
    if not enrollments:
        return []
    programs = {
        p.id: p
        for p in db.session.scalars(
            select(Program)
            .where(Program.id.in_([e.program_id for e in enrollments]))
            .options(selectinload(Program.steps))
        )
    }
    course_ids = {step.course_id for p in programs.values() for step in p.steps}
    # a revoked or (now) suspended course certificate does not count: lifting it, or the end of its suspension
    # (programs_after_suspensions), issues what it held back
    held = {
        c.course_id: c
        for c in db.session.scalars(
            select(Certificate).where(
                Certificate.user_id == user_id,
                Certificate.course_id.in_(course_ids),
                Certificate.revoked_at.is_(None),
            )
        )
        if not c.suspended_at_time(now)
    }
    issued = []
    for enrollment in enrollments:
        program = programs[enrollment.program_id]
        parts = [held.get(step.course_id) for step in program.steps]
        if not parts or any(part is None for part in parts):
            continue
        issued.append(_issue(enrollment, program, parts, now=now, issuer=issuer))
    return issued


def _issue(
    enrollment: ProgramEnrollment, program: Program, parts: list[Certificate], *, now: datetime, issuer: str
) -> Certificate:
    user = db.session.get(User, enrollment.user_id)
    skills: dict[str, dict] = {}
    goals: dict[str, dict] = {}
    for part in parts:
        for skill in part.skills:
            skills.setdefault(skill["id"], skill)
        for goal in part.goals:
            goals.setdefault(goal["id"], goal)
    certificate = Certificate(
        public_id=new_public_id(),
        user_id=user.id,
        program_id=program.id,
        holder_name=user.legal_name,
        course_title=program.title,
        course_slug=program.slug,
        course_version=program.version,
        skills=list(skills.values()),
        goals=list(goals.values()),
        score=round(sum(p.score for p in parts) / len(parts)),
        issuer_name=issuer,
        awarded_at=now,
        issued_at=now,
        expires_at=None,  # the stacked course certificates carry their own validity, shown on the verify page
    )
    try:
        with db.session.begin_nested():
            db.session.add(certificate)
            db.session.flush()
    except IntegrityError:
        # another transaction issued it first: that one is the certificate
        return db.session.scalar(
            select(Certificate).where(Certificate.user_id == user.id, Certificate.program_id == program.id)
        )
    db.session.add_all(
        CertificatePart(certificate_id=certificate.id, part_id=part.id, position=position)
        for position, part in enumerate(parts)
    )
    enrollment.completed_at = now
    _event(
        certificate,
        "issued",
        actor=None,
        now=now,
        program_version=program.version,
        stacks=[format_public_id(p.public_id) for p in parts],
    )
    openbadges.allocate_status_slot(certificate)
    db.session.flush()
    program_certificate_issued.send(certificate, now=now)
    return certificate


def parts_of(certificate: Certificate) -> list[Certificate]:
    """The course certificates a program certificate stacks, in program order (one query)."""
    if not certificate.is_program:
        return []
    return list(
        db.session.scalars(
            select(Certificate)
            .join(CertificatePart, CertificatePart.part_id == Certificate.id)
            .where(CertificatePart.certificate_id == certificate.id)
            .order_by(CertificatePart.position)
        )
    )


def stacking(certificate: Certificate, *, lock: bool = False) -> list[Certificate]:
    """The program certificates that stack this course certificate (one query). ``lock``: row-lock them and read
    their latest committed state, so that two transactions changing two of their parts follow one another."""
    stmt = (
        select(Certificate)
        .join(CertificatePart, CertificatePart.certificate_id == Certificate.id)
        .where(CertificatePart.part_id == certificate.id)
        .order_by(Certificate.id)
    )
    if lock:
        stmt = stmt.with_for_update(of=Certificate).execution_options(populate_existing=True)
    return list(db.session.scalars(stmt))


# ---- receivers -------------------------------------------------------------------------------------


def _issuer_name() -> str:
    return current_app.config["ISSUER_NAME"]


@certificate_issued.connect
def _on_course_certificate(certificate: Certificate, now: datetime, **_) -> None:
    if certificate.course_id is not None:
        issue_due(certificate.user_id, now=now, issuer=_issuer_name(), course_id=certificate.course_id)


@program_enrolled.connect
def _on_program_enrollment(enrollment: ProgramEnrollment, now: datetime, **_) -> None:
    issue_due(enrollment.user_id, now=now, issuer=_issuer_name(), program_id=enrollment.program_id)


@certificate_revoked.connect
def _cascade_revocation(certificate: Certificate, actor, now: datetime, **_) -> None:
    """A revoked course certificate revokes every program certificate stacking it, saying which and why."""
    if certificate.is_program:
        return
    for program_certificate in stacking(certificate):
        if program_certificate.revoked_at is not None:
            continue
        note = (
            f"The course credential “{certificate.course_title}” ({format_public_id(certificate.public_id)}) "
            f"that this program certificate stacks was revoked on {now:%Y-%m-%d} "
            f"({certificate.revocation_reason.label})."
        )
        program_certificate.revoked_at = now
        program_certificate.revocation_reason = RevocationReason.STACKED_REVOKED
        program_certificate.revocation_note = note
        _invalidate_pdf(program_certificate)
        _event(
            program_certificate,
            "revoked",
            actor=actor,
            now=now,
            reason=RevocationReason.STACKED_REVOKED.value,
            note=note,
            part=format_public_id(certificate.public_id),
        )
    db.session.flush()


@certificate_reinstated.connect
def _undo_cascade(certificate: Certificate, actor, now: datetime, **_) -> None:
    """Reinstating a course certificate reinstates program certificates revoked only because of a stacked one,
    once none of their parts is revoked; and it may complete a program that was waiting for it. A reinstated
    program certificate is suspended again while a course certificate it stacks is suspended."""
    if certificate.is_program:
        sync_suspension(certificate, actor=actor, now=now, part=None)
        reinstatement_settled.send(certificate, now=now)
        return
    for program_certificate in stacking(certificate):
        if program_certificate.revocation_reason is not RevocationReason.STACKED_REVOKED:
            continue  # revoked for its own reason: only an admin reinstates it
        if any(part.revoked_at is not None for part in parts_of(program_certificate)):
            continue
        before = {"revoked_at": program_certificate.revoked_at.isoformat(), "reason": "stacked_revoked"}
        program_certificate.revoked_at = None
        program_certificate.revocation_reason = program_certificate.revocation_note = None
        _invalidate_pdf(program_certificate)
        _event(
            program_certificate,
            "reinstated",
            actor=actor,
            now=now,
            before=before,
            part=format_public_id(certificate.public_id),
        )
        sync_suspension(program_certificate, actor=actor, now=now, part=certificate)
    db.session.flush()
    issue_due(certificate.user_id, now=now, issuer=_issuer_name(), course_id=certificate.course_id)
    reinstatement_settled.send(certificate, now=now)


# ---- suspension cascade ----------------------------------------------------------------------------


def suspended_by_parts(program_certificate: Certificate) -> bool:
    """Whether the program certificate's last suspension was caused by a stacked course certificate (its history
    says so) rather than set by an admin. One query; raises nothing."""
    detail = db.session.scalar(
        select(CertificateEvent.detail)
        .where(CertificateEvent.certificate_id == program_certificate.id, CertificateEvent.action == "suspended")
        .order_by(CertificateEvent.at.desc(), CertificateEvent.id.desc())
        .limit(1)
    )
    return bool(detail) and detail.get("cause") == STACKED_SUSPENDED


def sync_suspension(program_certificate: Certificate, *, actor, now: datetime, part: Certificate | None) -> str | None:
    """Make the program certificate's suspension follow its stacked course certificates after ``part`` changed
    (None: the program certificate itself was reinstated).

    Suspended while any stacked course certificate is (until the latest of their ends; no end if one has none);
    lifted when none is any more, unless an admin suspended it for its own reason (that one is left as set, and
    only extended when a stacked suspension outlasts it). A revoked program certificate is left alone (revocation
    wins; reinstating it syncs again). Returns "suspended", "lifted" or None (nothing changed). Flush only.
    """
    if program_certificate.revoked_at is not None:
        return None
    running = program_certificate.suspended_at_time(now)
    by_parts = running and suspended_by_parts(program_certificate)
    # the parts as committed now (another transaction may have suspended or lifted one while we waited for the lock)
    parts = db.session.scalars(
        select(Certificate)
        .join(CertificatePart, CertificatePart.part_id == Certificate.id)
        .where(CertificatePart.certificate_id == program_certificate.id)
        .execution_options(populate_existing=True)
    )
    suspended = [p for p in parts if p.revoked_at is None and p.suspended_at_time(now)]
    if suspended:
        ends = [p.suspended_until for p in suspended]
        until = None if any(end is None for end in ends) else max(ends)
        names = "; ".join(f"“{p.course_title}” ({format_public_id(p.public_id)})" for p in suspended)
        note = f"A course credential this program certificate stacks is suspended: {names}."
        if running and not by_parts:
            mine = program_certificate.suspended_until
            if mine is None or (until is not None and until <= mine):
                return None  # the admin's own suspension lasts at least as long
        elif running and (program_certificate.suspended_until, program_certificate.suspension_reason) == (until, note):
            return None
        if not running:
            program_certificate.suspended_at = now
        program_certificate.suspended_until, program_certificate.suspension_reason = until, note
        _invalidate_pdf(program_certificate)
        _event(
            program_certificate,
            "suspended",
            actor=actor,
            now=now,
            cause=STACKED_SUSPENDED,
            part=format_public_id(part.public_id) if part is not None else None,
            reason=note,
            until=_iso(until),
        )
        db.session.flush()
        return "suspended"
    if by_parts:
        before = {
            "suspended_at": _iso(program_certificate.suspended_at),
            "until": _iso(program_certificate.suspended_until),
        }
        program_certificate.suspended_until = now
        _invalidate_pdf(program_certificate)
        _event(
            program_certificate,
            "suspension_lifted",
            actor=actor,
            now=now,
            cause=STACKED_SUSPENDED,
            part=format_public_id(part.public_id) if part is not None else None,
            before=before,
        )
        db.session.flush()
        return "lifted"
    return None


@certificate_suspended.connect
def _cascade_suspension(certificate: Certificate, actor, now: datetime, **_) -> None:
    """A suspended course certificate suspends every program certificate stacking it, for as long."""
    changed = []
    if not certificate.is_program:
        changed = [
            p
            for p in stacking(certificate, lock=True)
            if sync_suspension(p, actor=actor, now=now, part=certificate) == "suspended"
        ]
    suspension_changed.send(certificate, change="suspended", programs=changed, now=now)


@certificate_suspension_lifted.connect
def _lift_cascade(certificate: Certificate, actor, now: datetime, **_) -> None:
    """Lifting a course certificate's suspension lifts what it caused (not an admin's own suspension of a program
    certificate, nor one another stacked course certificate still causes), and issues a program certificate it
    held back."""
    changed = []
    if not certificate.is_program:
        changed = [
            p
            for p in stacking(certificate, lock=True)
            if sync_suspension(p, actor=actor, now=now, part=certificate) == "lifted"
        ]
        issue_due(certificate.user_id, now=now, issuer=_issuer_name(), course_id=certificate.course_id)
    suspension_changed.send(certificate, change="lifted", programs=changed, now=now)


def programs_after_suspensions(now: datetime, *, window: timedelta = timedelta(days=2)) -> list[Certificate]:
    """Issue the program certificates held back by a course certificate whose suspension ran out by itself in the
    last ``window`` (no request saw it end; the hourly job runs this, so a missed hour is caught up). Returns those
    issued. Flush only; the job commits."""
    users = db.session.scalars(
        select(Certificate.user_id)
        .distinct()
        .join(ProgramCourse, ProgramCourse.course_id == Certificate.course_id)
        .join(
            ProgramEnrollment,
            (ProgramEnrollment.program_id == ProgramCourse.program_id)
            & (ProgramEnrollment.user_id == Certificate.user_id),
        )
        .where(
            ProgramEnrollment.completed_at.is_(None),
            Certificate.revoked_at.is_(None),
            Certificate.suspended_until.is_not(None),
            Certificate.suspended_until <= now,
            Certificate.suspended_until > now - window,
        )
        .order_by(Certificate.user_id)
    ).all()
    issued = []
    for user_id in users:
        issued += issue_due(user_id, now=now, issuer=_issuer_name())
    return issued
