"""Certificate issuance by one INSERT … ON CONFLICT DO NOTHING (issue 17, posts): the constraints decide double
submits, retries and taken status slots, and every rule of issuance still holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from core.database import utcnow
from core.extensions import db
from credentials import openbadges, services
from credentials.ids import format_public_id
from credentials.models import Certificate, CertificateEvent
from insights.models import XapiStatement
from tests.factories import complete_course, enroll, load_test_framework, make_course, make_user, sign_in
from tests.test_study_requests import right_answers


@pytest.fixture
def framework(ctx):
    load_test_framework()


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_a_double_submit_of_the_completing_submission_issues_one_certificate(client, framework):
    user = make_user(email="lee@example.org", name="Lee Learner")
    sign_in(client, "lee@example.org")
    enroll(user, make_course("ai-basics", modules=1, lessons=1, questions=2))
    lesson, quiz = "/courses/ai-basics/module-1/lesson-1-1", "/courses/ai-basics/module-1/quiz"
    assert client.submit(lesson + "/complete", page=lesson).status_code == 303
    attempt = client.submit(quiz + "/start", page=quiz).headers["Location"]
    data = {**right_answers(client, attempt), "csrf_token": client.csrf_token(attempt)}
    first, second = client.post(attempt, data=data), client.post(attempt, data=data)
    assert first.status_code == 303 and first.headers["Location"] == "/courses/ai-basics/done"
    assert second.status_code == 409  # already submitted: a conflict, nothing written again
    certificate = db.session.scalar(select(Certificate))
    assert count(Certificate) == 1 and certificate.user_id == user.id and certificate.revision == 1
    assert certificate.holder_name == "Lee Learner" and certificate.score == 100 and certificate.language == "en"
    assert certificate.subject_salt and len(certificate.subject_salt) == 32
    assert certificate.status_list_id is not None and certificate.status_list_index is not None
    assert count(CertificateEvent, CertificateEvent.action == "issued") == 1
    assert count(XapiStatement, XapiStatement.verb == "earned") == 1
    # the page the completion redirects to shows the certificate that was written (nothing read back was wrong)
    page = client.get("/courses/ai-basics/done").get_data(as_text=True)
    assert format_public_id(certificate.public_id) in page


def test_issuing_again_for_the_same_completion_changes_nothing_and_a_renewal_renews(framework):
    user, course = make_user(name="Lee Learner"), make_course("ai-basics")  # valid 24 months
    enrollment = complete_course(user, course)
    db.session.commit()
    certificate = db.session.scalar(select(Certificate))
    # a retried job or a second server: the unique (user, course) says no, and the certificate found was issued for
    # this very completion
    again = services.issue_for_enrollment(enrollment, now=utcnow(), issuer="AI Workforce Academy")
    db.session.commit()
    assert again.id == certificate.id and again.revision == 1
    assert count(Certificate) == 1 and count(CertificateEvent) == 1
    # a later completion (the renewal's) renews the same row: one more revision, a "renewed" event, the new expiry
    later = utcnow() + timedelta(days=300)
    enrollment.completed_at = later
    db.session.flush()
    renewed = services.issue_for_enrollment(enrollment, now=later, issuer="AI Workforce Academy")
    db.session.commit()
    assert renewed.id == certificate.id and renewed.revision == 2
    assert renewed.issued_at == later and renewed.expires_at == services.add_months(later, 24)
    assert count(CertificateEvent, CertificateEvent.action == "renewed") == 1
    assert count(Certificate) == 1


def test_a_status_slot_taken_by_a_concurrent_issuance_is_drawn_again(framework, monkeypatch):
    """The drawn (list, index) is already another credential's: the INSERT writes nothing (no error, no savepoint
    rolled back) and the issuance draws again."""
    first = complete_course(make_user(), make_course("first-course"))
    db.session.commit()
    taken = db.session.scalar(select(Certificate)).status_list_index
    draws = iter([taken, taken, (taken + 1) % openbadges.LIST_SIZE])
    monkeypatch.setattr(openbadges.secrets, "randbelow", lambda _n: next(draws))
    second = complete_course(make_user(), make_course("second-course"))
    db.session.commit()
    assert first.completed_at and second.completed_at
    rows = db.session.execute(select(Certificate.status_list_id, Certificate.status_list_index)).all()
    assert len(rows) == 2 and len(set(rows)) == 2
    assert rows[0][0] == rows[1][0] and {index for _, index in rows} == {taken, (taken + 1) % openbadges.LIST_SIZE}
    assert count(CertificateEvent, CertificateEvent.action == "issued") == 2
    assert next(draws, None) is None  # drawn three times: twice the taken slot, then a free one


def test_no_free_status_slot_in_fifty_draws_fails_loudly_and_writes_nothing(framework, monkeypatch):
    complete_course(make_user(), make_course("first-course"))
    db.session.commit()
    taken = db.session.scalar(select(Certificate)).status_list_index
    monkeypatch.setattr(openbadges.secrets, "randbelow", lambda _n: taken)
    with pytest.raises(RuntimeError, match="status list slot"):
        complete_course(make_user(), make_course("second-course"))
    db.session.rollback()
    assert count(Certificate) == 1 and count(CertificateEvent) == 1
