"""Admin lifecycle (revoke, reinstate, reissue, history, search), name corrections, learner pages."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from credentials.ids import format_public_id
from credentials.models import Certificate, CertificateEvent, NameChangeRequest, NameChangeStatus
from tests.factories import make_certificate, make_course, make_employer, make_user, sign_in


@pytest.fixture
def certificate(prebuilt_certificate):
    return prebuilt_certificate(title="AI Basics")


@pytest.fixture
def admin(client, certificate):
    user = make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    return user


def detail_url(certificate) -> str:
    return f"/admin/certificates/{format_public_id(certificate.public_id)}"


def test_admin_lists_and_searches_certificates(client, certificate, admin):
    other = make_certificate(make_user(email="kim@example.org", name="Kim Other"), make_course("other", title="Other"))
    page = client.get("/admin/certificates").get_data(as_text=True)
    assert "Lee Learner" in page and "Kim Other" in page
    by_email = client.get("/admin/certificates?q=kim@example").get_data(as_text=True)
    assert "Kim Other" in by_email and "Lee Learner" not in by_email
    by_id = client.get("/admin/certificates?q=" + other.public_id.lower()).get_data(as_text=True)
    assert "Kim Other" in by_id and "Lee Learner" not in by_id
    assert "Lee Learner" not in client.get("/admin/certificates?status=revoked").get_data(as_text=True)


def test_revoke_needs_a_reason_and_note_then_reinstate(client, certificate, admin):
    url = detail_url(certificate)
    missing = client.submit(url + "/revoke", {"reason": "other", "note": ""}, page=url)
    assert missing.status_code == 422 and "Explain the revocation" in missing.get_data(as_text=True)
    bogus = client.submit(url + "/revoke", {"reason": "because", "note": "x"}, page=url)
    assert bogus.status_code == 422
    db.session.refresh(certificate)
    assert certificate.revoked_at is None

    response = client.submit(url + "/revoke", {"reason": "issued_in_error", "note": "Wrong learner"}, page=url)
    assert response.status_code == 303
    db.session.refresh(certificate)
    assert certificate.revoked_at is not None and certificate.revocation_note == "Wrong learner"
    again = client.submit(url + "/revoke", {"reason": "other", "note": "twice"}, page=url, follow_redirects=True)
    assert "already revoked" in again.get_data(as_text=True)
    assert client.submit(url + "/reinstate", page=url).status_code == 303
    db.session.refresh(certificate)
    assert certificate.revoked_at is None
    history = client.get(url).get_data(as_text=True)
    assert "revoked" in history and "reinstated" in history and "Ada Admin" in history
    actions = [e.action for e in db.session.scalars(select(CertificateEvent).order_by(CertificateEvent.id))]
    assert actions == ["issued", "revoked", "reinstated"]


def test_reissue_keeps_id_award_date_and_the_holder_name_as_issued(client, certificate, admin):
    url = detail_url(certificate)
    public_id, awarded, issued = certificate.public_id, certificate.awarded_at, certificate.issued_at
    certificate.user.legal_name = "Lee Ngọc Learner"  # an unreviewed edit on the account page
    db.session.commit()
    assert client.submit(url + "/reissue", page=url).status_code == 303
    db.session.refresh(certificate)
    assert certificate.public_id == public_id and certificate.awarded_at == awarded
    assert certificate.issued_at > issued and certificate.revision == 2
    # a name changes only through an approved name correction (issue 12, item 3)
    assert certificate.holder_name == "Lee Learner" and certificate.pdf_sha256 is None
    event = db.session.scalar(select(CertificateEvent).where(CertificateEvent.action == "reissued"))
    assert event.detail["before"]["holder_name"] == "Lee Learner" and event.actor_id == admin.id
    page = client.get(f"/verify/{format_public_id(public_id)}").get_data(as_text=True)
    assert "Lee Learner" in page and "Lee Ngọc Learner" not in page


def test_name_correction_request_approve_and_reject(client, other_client, certificate, admin):
    sign_in(other_client, "lee@example.org")
    form = other_client.submit(
        "/certificates/name-correction", {"requested_name": "Lee Ngọc Learner", "reason": "accents missing"}
    )
    assert form.status_code == 303
    duplicate = other_client.submit("/certificates/name-correction", {"requested_name": "Another Name"})
    assert duplicate.status_code == 422 and "already have a name correction waiting" in duplicate.get_data(as_text=True)
    same = other_client.submit("/certificates/name-correction", {"requested_name": "Lee Learner"})
    assert same.status_code == 422
    request = db.session.scalar(select(NameChangeRequest))
    assert "1 name correction waiting" in client.get("/admin/certificates").get_data(as_text=True)
    response = client.submit(f"/admin/name-corrections/{request.id}", {"approve": "1"}, page="/admin/name-corrections")
    assert response.status_code == 303
    db.session.refresh(request)
    db.session.refresh(certificate)
    assert request.status is NameChangeStatus.APPROVED and request.decided_by_id == admin.id
    assert certificate.holder_name == "Lee Ngọc Learner" and certificate.user.legal_name == "Lee Ngọc Learner"
    twice = client.submit(
        f"/admin/name-corrections/{request.id}", {"reject": "1"}, page="/admin/name-corrections", follow_redirects=True
    )
    assert "already been decided" in twice.get_data(as_text=True)

    other_client.submit("/certificates/name-correction", {"requested_name": "Typo Name"})
    second = db.session.scalar(select(NameChangeRequest).where(NameChangeRequest.requested_name == "Typo Name"))
    client.submit(
        f"/admin/name-corrections/{second.id}", {"reject": "1", "note": "Send ID"}, page="/admin/name-corrections"
    )
    db.session.refresh(second)
    db.session.refresh(certificate)
    assert second.status is NameChangeStatus.REJECTED and certificate.holder_name == "Lee Ngọc Learner"


def test_my_certificates_share_and_linkedin(client, certificate):
    sign_in(client, "lee@example.org")
    public = format_public_id(certificate.public_id)
    listing = client.get("/certificates").get_data(as_text=True)
    assert "AI Basics" in listing and "Valid" in listing and "verified 0 times" in listing
    page = client.get(f"/certificates/{public}").get_data(as_text=True)
    assert f"http://127.0.0.1:5000/verify/{public}" in page
    link = next(part for part in page.split('"') if part.startswith("https://www.linkedin.com/profile/add?"))
    query = parse_qs(urlsplit(link.replace("&amp;", "&")).query)
    assert query["name"] == ["AI Basics"] and query["organizationName"] == ["AI Workforce Academy"]
    assert query["certId"] == [public] and query["certUrl"] == [f"http://127.0.0.1:5000/verify/{public}"]
    assert query["issueYear"] == [str(certificate.awarded_at.year)]
    assert query["expirationMonth"] == [str(certificate.expires_at.month)]


def test_expiring_soon_links_back_to_the_course(client, certificate):
    certificate.expires_at = utcnow() + timedelta(days=20)
    db.session.commit()
    sign_in(client, "lee@example.org")
    listing = client.get("/certificates").get_data(as_text=True)
    assert "Expires soon" in listing and 'href="/courses/ai-basics"' in listing


def test_learners_and_employers_cannot_use_admin_actions(client, certificate):
    make_employer("hr@example.org")
    sign_in(client, "hr@example.org")
    url = detail_url(certificate)
    assert client.get(url).status_code == 403
    token = client.csrf_token("/account")
    assert client.post(url + "/revoke", data={"csrf_token": token, "reason": "other", "note": "x"}).status_code == 403
    db.session.refresh(certificate)
    assert certificate.revoked_at is None
    assert db.session.scalar(select(Certificate.revision)) == 1


def test_renewing_extends_the_same_certificate(client, certificate):
    import re

    from courses.models import Enrollment

    original_id, awarded = certificate.public_id, certificate.awarded_at
    certificate.expires_at = utcnow() + timedelta(days=10)
    db.session.commit()
    sign_in(client, "lee@example.org")
    public = format_public_id(original_id)
    page = client.get(f"/certificates/{public}").get_data(as_text=True)
    assert "Renew certificate" in page
    response = client.submit("/courses/ai-basics/renew", page=f"/certificates/{public}")
    assert response.status_code == 303
    enrollment = db.session.scalar(select(Enrollment))
    assert enrollment.completed_at is None and enrollment.renewal_started_at is not None
    # lessons stay done: the next step is the first quiz
    assert client.get("/courses/ai-basics/continue").headers["Location"].endswith("/module-1/quiz")
    for module in ("module-1", "module-2"):
        quiz = f"/courses/ai-basics/{module}/quiz"
        attempt = client.submit(quiz + "/start", page=quiz).headers["Location"]
        html = client.get(attempt).get_data(as_text=True)
        answers = {
            f"q-{q}": re.search(r'value="([\w-]+)"\s*>\s*<label for="c-[\d-]+">Right', body).group(1)
            for q, body in re.findall(r'name="q-(\d+)"(.*?)</fieldset>', html, flags=re.S)
        }
        assert client.submit(attempt, answers).status_code == 303
    db.session.refresh(certificate)
    assert certificate.public_id == original_id and certificate.awarded_at == awarded
    assert certificate.expires_at > utcnow() + timedelta(days=700) and certificate.revision == 2
    assert db.session.scalar(select(db.func.count()).select_from(Certificate)) == 1
    assert next(e.action for e in certificate.events) == "renewed"
