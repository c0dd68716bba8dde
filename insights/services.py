"""Employers' candidate lists. Flush only; callers commit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from core.errors import DomainError
from core.extensions import db
from credentials.models import Certificate
from credentials.services import expiring_soon
from insights.models import SavedCandidate


def save_candidate(employer, certificate: Certificate, *, note: str, now: datetime) -> tuple[SavedCandidate, bool]:
    """Keep a verified certificate on the employer's list (once). Returns (row, created)."""
    existing = db.session.scalar(
        select(SavedCandidate).where(
            SavedCandidate.employer_id == employer.id, SavedCandidate.certificate_id == certificate.id
        )
    )
    if existing is not None:
        return existing, False
    row = SavedCandidate(employer_id=employer.id, certificate_id=certificate.id, note=note.strip()[:200], added_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        return db.session.scalar(
            select(SavedCandidate).where(
                SavedCandidate.employer_id == employer.id, SavedCandidate.certificate_id == certificate.id
            )
        ), False
    return row, True


def remove_candidate(employer, row_id: int) -> None:
    row = db.session.get(SavedCandidate, row_id)
    if row is None or row.employer_id != employer.id:
        raise DomainError("That candidate is not on your list.")
    db.session.delete(row)
    db.session.flush()


def candidates(employer, *, now: datetime) -> list[tuple[SavedCandidate, str]]:
    """The employer's list with each certificate's status now: valid, expiring, expired or revoked."""
    rows = db.session.scalars(
        select(SavedCandidate)
        .where(SavedCandidate.employer_id == employer.id)
        .options(selectinload(SavedCandidate.certificate))
        .order_by(SavedCandidate.added_at.desc())
    )
    result = []
    for row in rows:
        status = row.certificate.status_at(now).value
        if status == "valid" and expiring_soon(row.certificate, now):
            status = "expiring"
        result.append((row, status))
    return result
