"""Issuance wiring: course completion issues (or renews) the certificate in the same transaction, and a
renewal outside its window is refused. Connected when the factory imports this module; importing
``credentials.programs`` connects the program-certificate receivers too. Flush only: the request that sent
the signal commits."""

from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import select

from core.errors import DomainError
from core.extensions import db
from courses.services import enrollment_completed, renewal_requested
from credentials import programs as _program_receivers  # noqa: F401  (connects them)
from credentials import services
from credentials.models import Certificate


@enrollment_completed.connect
def _issue_on_completion(enrollment, now: datetime, **_) -> None:
    services.issue_for_enrollment(enrollment, now=now, issuer=current_app.config["ISSUER_NAME"])


@renewal_requested.connect
def _renewal_only_in_its_window(enrollment, now: datetime, **_) -> None:
    certificate = db.session.scalar(
        select(Certificate).where(
            Certificate.user_id == enrollment.user_id, Certificate.course_id == enrollment.course_id
        )
    )
    problem = services.renewal_window_problem(certificate, now)
    if problem:
        raise DomainError(problem)
