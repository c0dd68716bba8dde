"""Program certificates: issued once a learner holds a certificate for every course of a program they enrolled in.

A program certificate is a Certificate row with ``program_id`` set (so the PDF, verify page, API, Open Badges
credential, status list and admin lifecycle are the course certificate's own); ``certificate_parts`` records
the course certificates it stacks. Revoking one of those revokes the program certificate too (reason
"stacked_revoked"), and reinstating it undoes that. Everything here runs inside the caller's transaction from
signal receivers: flush only, the request that triggered it commits.
"""

from __future__ import annotations

from datetime import datetime

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
from credentials.models import Certificate, CertificatePart, RevocationReason
from credentials.services import (
    _event,
    _invalidate_pdf,
    certificate_issued,
    certificate_reinstated,
    certificate_revoked,
    signals,
)

# sent in the issuing transaction, like certificate_issued for course certificates
program_certificate_issued = signals.signal("program-certificate-issued")


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
    held = {
        c.course_id: c
        for c in db.session.scalars(
            select(Certificate).where(
                Certificate.user_id == user_id,
                Certificate.course_id.in_(course_ids),
                Certificate.revoked_at.is_(None),
            )
        )
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


def stacking(certificate: Certificate) -> list[Certificate]:
    """The program certificates that stack this course certificate (one query)."""
    return list(
        db.session.scalars(
            select(Certificate)
            .join(CertificatePart, CertificatePart.certificate_id == Certificate.id)
            .where(CertificatePart.part_id == certificate.id)
            .order_by(Certificate.id)
        )
    )


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
    once none of their parts is revoked; and it may complete a program that was waiting for it."""
    if certificate.is_program:
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
    db.session.flush()
    issue_due(certificate.user_id, now=now, issuer=_issuer_name(), course_id=certificate.course_id)
