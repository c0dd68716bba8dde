"""Issue 12, item 3: the holder's name is frozen at issuance; item 11: reissuing expired certificates.

The attack: edit the legal name on the account page, press Renew (accepted at any time), pass the quizzes:
the same public ID and award date named someone else, with nothing in the review queue, history or audit log.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from accounts.models import Role
from core.audit import AuditEvent
from core.database import utcnow
from core.extensions import db
from credentials.ids import format_public_id
from credentials.models import CertificateEvent, NameChangeRequest, NameChangeStatus
from tests.factories import load_test_framework, make_certificate, make_course, make_user, sign_in


@pytest.fixture
def lee(ctx):
    load_test_framework()
    return make_user(email="lee@example.org", name="Lee Learner")


def pass_quizzes_again(client, slug: str = "ai-basics") -> None:
    for module in ("module-1", "module-2"):
        quiz = f"/courses/{slug}/{module}/quiz"
        attempt = client.submit(quiz + "/start", page=quiz).headers["Location"]
        html = client.get(attempt).get_data(as_text=True)
        answers = {
            f"q-{q}": re.search(r'value="([\w-]+)"\s*>\s*<label for="c-[\d-]+">Right', body).group(1)
            for q, body in re.findall(r'name="q-(\d+)"(.*?)</fieldset>', html, flags=re.S)
        }
        assert client.submit(attempt, answers).status_code == 303


def test_renewal_is_refused_outside_the_expiry_window(client, lee):
    certificate = make_certificate(lee, make_course("ai-basics"))
    sign_in(client, "lee@example.org")
    assert client.submit("/account", {"name": "Lee", "legal_name": "Pat Impostor"}).status_code in (302, 303)
    response = client.submit("/courses/ai-basics/renew", page="/courses/ai-basics", follow_redirects=True)
    assert "You can renew from" in response.get_data(as_text=True)
    db.session.refresh(certificate)
    assert certificate.holder_name == "Lee Learner" and certificate.revision == 1
    from courses.models import Enrollment

    enrollment = db.session.scalar(select(Enrollment))
    assert enrollment.completed_at is not None and enrollment.renewal_started_at is None


def test_renewal_in_the_window_keeps_the_holder_name_and_records_every_changed_field(client, lee):
    course = make_course("ai-basics", title="AI Basics")
    certificate = make_certificate(lee, course, now=utcnow() - timedelta(days=700))  # expires in ~30 days
    public_id, awarded, old_expiry = certificate.public_id, certificate.awarded_at, certificate.expires_at
    course.title = "AI Basics, second edition"
    db.session.commit()
    sign_in(client, "lee@example.org")
    client.submit("/account", {"name": "Lee", "legal_name": "Pat Impostor"})
    assert client.submit("/courses/ai-basics/renew", page="/courses/ai-basics").status_code == 303
    pass_quizzes_again(client)

    db.session.refresh(certificate)
    assert certificate.public_id == public_id and certificate.awarded_at == awarded
    assert certificate.expires_at > old_expiry and certificate.revision == 2
    assert certificate.holder_name == "Lee Learner"  # not the unreviewed legal name
    assert certificate.course_title == "AI Basics, second edition"
    event = db.session.scalar(select(CertificateEvent).where(CertificateEvent.action == "renewed"))
    changed = set(event.detail["after"])
    assert {"expires_at", "issued_at", "course_title"} <= changed and "holder_name" not in changed
    assert event.detail["before"]["course_title"] == "AI Basics"
    audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "certificate.renewed"))
    assert audit.target_id == public_id and audit.detail["after"] == event.detail["after"]
    assert db.session.scalar(select(NameChangeRequest)) is None
    page = client.get(f"/verify/{format_public_id(public_id)}").get_data(as_text=True)
    assert "Lee Learner" in page and "Pat Impostor" not in page


def test_an_admin_reissue_does_not_take_an_unreviewed_legal_name(client, lee):
    certificate = make_certificate(lee, make_course("ai-basics"))
    lee.legal_name = "Pat Impostor"
    make_user(email="admin@example.org", role=Role.ADMIN)
    db.session.commit()
    sign_in(client, "admin@example.org")
    url = f"/admin/certificates/{format_public_id(certificate.public_id)}"
    assert client.submit(url + "/reissue", page=url).status_code == 303
    db.session.refresh(certificate)
    assert certificate.holder_name == "Lee Learner" and certificate.revision == 2


def test_reissuing_an_expired_certificate_works(client, lee):
    certificate = make_certificate(lee, make_course("ai-basics"), now=utcnow() - timedelta(days=3 * 365))
    issued = certificate.issued_at
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    url = f"/admin/certificates/{format_public_id(certificate.public_id)}"
    response = client.submit(url + "/reissue", page=url)
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    db.session.refresh(certificate)
    assert certificate.revision == 2 and certificate.issued_at == issued  # still issued before it expired
    credential = client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").json
    assert credential["validFrom"] < credential["validUntil"]
    verdict = client.post("/api/v1/verify", json=credential).json
    assert verdict["verdict"] == "expired" and {c["check"]: c["ok"] for c in verdict["checks"]}["record"] is True


def test_name_correction_approval_reissues_expired_certificates_too(client, other_client, lee):
    expired = make_certificate(lee, make_course("old-course"), now=utcnow() - timedelta(days=3 * 365))
    current = make_certificate(lee, make_course("ai-basics"))
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(other_client, "lee@example.org")
    other_client.submit("/certificates/name-correction", {"requested_name": "Lee Ngọc Learner", "reason": "accents"})
    request = db.session.scalar(select(NameChangeRequest))
    sign_in(client, "admin@example.org")
    response = client.submit(f"/admin/name-corrections/{request.id}", {"approve": "1"}, page="/admin/name-corrections")
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    db.session.refresh(request)
    assert request.status is NameChangeStatus.APPROVED
    for certificate in (expired, current):
        db.session.refresh(certificate)
        assert certificate.holder_name == "Lee Ngọc Learner" and certificate.revision == 2
