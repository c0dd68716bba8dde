"""Email through the task queue, against a real SMTP server on loopback (aiosmtpd, started here).

The suite's queue runs jobs in-process as soon as they are handed over (QUEUE_URL=immediate); a retry waits
for ``queue.run_due(now=...)``, which is what the worker's sweep does when the time comes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from accounts.models import Role, User
from core import queue
from core.database import utcnow
from core.extensions import db
from core.mail import MailState, Notification, send_mail
from credentials import services as credential_services
from credentials.models import RevocationReason
from notifications import services
from notifications.models import NotificationPreference
from orgs.models import SavedCandidate
from tests.factories import load_test_framework, make_certificate, make_employer, make_user, sign_in
from tests.smtp import app_mailing_to

LATER = timedelta(hours=7)  # past every backoff step a test needs


@pytest.fixture
def smtp(app, monkeypatch):
    with app_mailing_to(app, monkeypatch) as handler:
        yield handler


def parts(message) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def link_in(text: str, path: str) -> str:
    match = re.search(r"http://127\.0\.0\.1:5000(" + re.escape(path) + r"[^\s\"<]*)", text)
    assert match, f"no {path} link in:\n{text}"
    return match.group(1)


# ---- registration, verification, welcome -------------------------------------------------------------


def test_registration_mails_one_verification_link_and_the_first_click_one_welcome(client, app, ctx, smtp):
    response = client.submit(
        "/register",
        {
            "name": "Rosa Diaz",
            "email": "Rosa@Example.org",
            "password": "violet tractor umbrella",
            "confirm": "violet tractor umbrella",
        },
    )
    assert response.status_code == 303  # to the login page, as for a taken email (issue 12, item 6)
    (message,) = smtp.messages()
    assert message["To"] == "rosa@example.org"
    assert message["From"] == app.config["MAIL_DEFAULT_SENDER"]
    assert message["Subject"] == "Confirm your email address for AI Workforce Academy"
    assert re.fullmatch(r"<[0-9a-f]{32}@academy\.local>", message["Message-ID"])
    assert message["Date"] and message["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in message  # transactional
    text, html = parts(message)
    assert "Confirm my email address" in html and "<a href=" in html
    link = link_in(text, "/verify-email/")
    assert link in html

    user = db.session.scalar(select(User).where(User.email == "rosa@example.org"))
    assert not user.is_email_verified
    page = client.get(link)
    assert page.status_code == 200
    assert "is confirmed" in page.get_data(as_text=True)
    db.session.refresh(user)
    assert user.is_email_verified

    assert len(smtp.messages()) == 2
    welcome = smtp.messages()[1]
    assert welcome["Subject"] == "Welcome to AI Workforce Academy"
    unsubscribe = welcome["List-Unsubscribe"]
    assert re.fullmatch(r"<http://127\.0\.0\.1:5000/unsubscribe/[\w.-]+>", unsubscribe)
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    welcome_text, welcome_html = parts(welcome)
    assert unsubscribe[1:-1] in welcome_text and unsubscribe[1:-1] in welcome_html

    # the same link again: still fine, no second welcome
    assert client.get(link).status_code == 200
    assert len(smtp.messages()) == 2
    assert count(Notification) == 2


def test_a_tampered_or_outdated_verification_link_is_refused(client, ctx, smtp):
    from accounts.services import email_verification_token

    user = make_user(email="kim@example.org", verified=False)
    token = email_verification_token(user, secret_key="another-key-" + "z" * 40)
    assert client.get(f"/verify-email/{token}").status_code == 400
    assert client.get("/verify-email/not-a-token").status_code == 400
    db.session.refresh(user)
    assert not user.is_email_verified
    assert smtp.messages() == []


def test_resend_is_a_new_message_and_needs_login(client, ctx, smtp):
    make_user(email="kim@example.org", verified=False)
    assert client.post("/account/verify-email").status_code in (302, 400)
    sign_in(client, "kim@example.org")
    response = client.submit("/account/verify-email", page="/account")
    assert response.status_code == 303
    client.submit("/account/verify-email", page="/account")
    assert [m["Subject"] for m in smtp.messages()] == ["Confirm your email address for AI Workforce Academy"] * 2


# ---- the compatible send_mail ----------------------------------------------------------------------------


def test_send_mail_keeps_its_signature_and_sends_both_parts_once_per_key(app, ctx, smtp):
    send_mail("dana@example.org", "Hello Dana", "First line.\n\nSee https://example.org/x for more.")
    (message,) = smtp.messages()
    text, html = parts(message)
    assert text.startswith("First line.")
    assert '<a href="https://example.org/x">https://example.org/x</a>' in html
    assert send_mail("dana@example.org", "Again", "Same event.", key="invite:7") is not None
    assert send_mail("DANA@example.org", "Again", "Same event.", key="invite:7") is None
    assert send_mail("lee@example.org", "Again", "Same event.", key="invite:7") is not None
    assert len(smtp.messages()) == 3
    assert count(Notification, Notification.state == MailState.SENT) == 3


def test_a_rolled_back_request_mails_nothing(app, ctx, smtp):
    user = make_user(email="kim@example.org")
    services.notify(user, "welcome", key="welcome:test", category="tips", user=user)
    db.session.rollback()
    assert count(Notification) == 0 and count(queue.Job) == 0
    assert smtp.messages() == []


# ---- refusals, timeouts, retries, failures ------------------------------------------------------------


def test_a_refusing_server_makes_the_job_retry_with_backoff_and_nothing_is_lost_or_doubled(app, ctx, smtp):
    smtp.mode = "refuse"
    before = utcnow()
    send_mail("dana@example.org", "Hello", "Body.")
    job = db.session.scalar(select(queue.Job))
    assert job.state is queue.JobState.QUEUED and job.attempts == 1
    assert "451" in job.last_error
    assert job.run_after - before >= timedelta(seconds=30)
    assert smtp.messages() == []

    # a second failure waits four times as long
    queue.run_due(now=job.run_after + timedelta(seconds=1))
    db.session.refresh(job)
    assert job.attempts == 2 and job.state is queue.JobState.QUEUED
    assert job.run_after - job.updated_at >= timedelta(minutes=2)

    smtp.mode = "accept"
    assert queue.run_due(now=utcnow()) == []  # not due yet: nothing runs early
    queue.run_due(now=utcnow() + LATER)
    queue.run_due(now=utcnow() + LATER)
    assert len(smtp.messages()) == 1
    db.session.refresh(job)
    assert job.state is queue.JobState.DONE and job.attempts == 3
    assert db.session.scalar(select(Notification.state)) is MailState.SENT


def test_a_server_that_never_answers_times_out_and_the_job_retries(app, ctx, smtp, monkeypatch):
    smtp.mode = "stall"
    monkeypatch.setitem(app.config, "MAIL_TIMEOUT", 1)  # the stalled attempt gives up after 1 s
    send_mail("dana@example.org", "Hello", "Body.")
    job = db.session.scalar(select(queue.Job))
    assert job.state is queue.JobState.QUEUED and job.attempts == 1
    assert "timed out" in job.last_error.lower()
    smtp.release.set()
    smtp.mode = "accept"
    monkeypatch.setitem(app.config, "MAIL_TIMEOUT", 10)
    queue.run_due(now=utcnow() + LATER)
    assert len(smtp.messages()) == 1
    queue.run_due(now=utcnow() + LATER)
    assert len(smtp.messages()) == 1


def test_a_job_that_fails_for_good_is_listed_for_admins_and_a_retry_sends_it_once(client, app, ctx, smtp):
    smtp.mode = "refuse"
    make_user(email="ada@example.org", role=Role.ADMIN)
    send_mail("dana@example.org", "Hello", "Body.")
    job = db.session.scalar(select(queue.Job))
    for _ in range(job.max_attempts):
        queue.run_due(now=utcnow() + timedelta(days=1))
    db.session.refresh(job)
    assert job.state is queue.JobState.FAILED and job.attempts == job.max_attempts

    sign_in(client, "ada@example.org")
    page = client.get("/admin/jobs/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Failed (1)" in html and "Send an email" in html
    assert "SMTPRecipientsRefused" in html and "Try again later" in html

    smtp.mode = "accept"
    response = client.submit(f"/admin/jobs/{job.id}/retry", page="/admin/jobs/")
    assert response.status_code == 303
    assert len(smtp.messages()) == 1
    db.session.refresh(job)
    assert job.state is queue.JobState.DONE
    assert "No failed jobs." in client.get("/admin/jobs/").get_data(as_text=True)
    # retrying a job that is not failed is refused with a message, and sends nothing
    response = client.submit(f"/admin/jobs/{job.id}/retry", page="/admin/jobs/", follow_redirects=True)
    assert "Only a failed job can be retried." in response.get_data(as_text=True)
    assert len(smtp.messages()) == 1


def test_the_jobs_page_is_for_admins_only(client, ctx):
    make_user(email="lee@example.org")
    sign_in(client, "lee@example.org")
    assert client.get("/admin/jobs/").status_code == 403


def test_a_job_handed_over_twice_runs_once(app, ctx, smtp):
    smtp.mode = "refuse"
    send_mail("dana@example.org", "Hello", "Body.")
    job = db.session.scalar(select(queue.Job))
    smtp.mode = "accept"
    later = utcnow() + LATER
    first = queue.execute(job.id, now=later)
    second = queue.execute(job.id, now=later)
    assert (first.status, second.status) == ("done", "skipped")
    assert len(smtp.messages()) == 1


# ---- certificates ---------------------------------------------------------------------------------------


@pytest.fixture
def framework(ctx):
    load_test_framework()


def test_certificate_issued_mail_links_to_the_certificate_without_attaching_it(ctx, framework, smtp):
    certificate = make_certificate(make_user(email="lee@example.org", name="Lee Learner"))
    (message,) = smtp.messages("lee@example.org")
    assert message["Subject"] == f"Your certificate: {certificate.course_title}"
    assert not any(part.get_content_disposition() == "attachment" for part in message.walk())
    text, html = parts(message)
    display = credential_services.format_public_id(certificate.public_id)
    assert f"/verify/{display}" in text and f"/certificates/{display}" in html
    assert "List-Unsubscribe" not in message


def test_an_unverified_learner_gets_the_certificate_but_no_certificate_mail(ctx, framework, smtp):
    certificate = make_certificate(make_user(email="lee@example.org", verified=False))
    assert certificate is not None
    assert smtp.messages() == []
    assert count(Notification) == 0


def test_revocation_notifies_the_holder_and_employers_who_saved_the_candidate(ctx, framework, smtp):
    admin = make_user(email="ada@example.org", role=Role.ADMIN)
    _, org = make_employer("evan@example.org", name="Evan Employer")
    certificate = make_certificate(make_user(email="lee@example.org"))
    db.session.add(SavedCandidate(organization_id=org.id, certificate_id=certificate.id))
    db.session.commit()
    credential_services.revoke(
        admin, certificate, reason=RevocationReason.IDENTITY_MISMATCH, note="Checked twice", now=utcnow()
    )
    db.session.commit()
    notice = smtp.messages("lee@example.org")[-1]
    assert notice["Subject"] == f"Your certificate has been revoked: {certificate.course_title}"
    text, _ = parts(notice)
    assert "Reason: Identity could not be confirmed." in text
    (alert,) = smtp.messages("evan@example.org")
    assert alert["Subject"] == "A saved candidate's certificate was revoked"
    assert alert["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    credential_services.reinstate(admin, certificate, now=utcnow())
    db.session.commit()
    assert smtp.messages("lee@example.org")[-1]["Subject"].startswith("Your certificate is valid again")
    assert len(smtp.messages("evan@example.org")) == 1


def _expiring(email: str, days: float, slug: str):
    certificate = make_certificate(make_user(email=email), slug=slug)
    certificate.expires_at = utcnow() + timedelta(days=days)
    db.session.commit()
    return certificate


def test_the_expiry_scan_sends_60_30_and_7_day_reminders_once_each(ctx, framework, smtp):
    _expiring("a@example.org", 59.5, "course-a")
    _expiring("b@example.org", 29.5, "course-b")
    _expiring("c@example.org", 6.5, "course-c")
    _expiring("d@example.org", 90, "course-d")
    unverified = _expiring("e@example.org", 6.5, "course-e")
    unverified.user.email_verified_at = None
    db.session.commit()
    smtp.accepted.clear()

    assert services.expiry_reminders(utcnow()) == 3
    db.session.commit()
    subjects = {m["To"]: m["Subject"] for m in smtp.messages()}
    assert subjects == {
        "a@example.org": "Your certificate expires in 60 days: Course course-a",
        "b@example.org": "Your certificate expires in 30 days: Course course-b",
        "c@example.org": "Your certificate expires in 7 days: Course course-c",
    }
    renew = link_in(parts(smtp.messages("c@example.org")[0])[0], "/certificates/")
    assert renew.startswith("/certificates/")
    assert smtp.messages("a@example.org")[0]["List-Unsubscribe"]

    # the scan again the same day, and the daily job twice: nothing more
    assert services.expiry_reminders(utcnow()) == 0
    queue.enqueue_scheduled(utcnow().replace(hour=23), daily_hour=0)
    queue.enqueue_scheduled(utcnow().replace(hour=23), daily_hour=0)
    db.session.commit()
    queue.run_due(now=utcnow() + timedelta(seconds=5))
    assert len(smtp.messages()) == 3
    assert count(queue.Job, queue.Job.task == "notifications.daily") == 1


def test_reminders_follow_the_preference_and_the_one_click_unsubscribe(client, ctx, framework, smtp):
    certificate = _expiring("a@example.org", 29.5, "course-a")
    smtp.accepted.clear()
    services.expiry_reminders(utcnow())
    db.session.commit()
    (reminder,) = smtp.messages()
    url = reminder["List-Unsubscribe"][1:-1]
    path = urlsplit(url).path

    page = client.get(path)
    assert page.status_code == 200
    assert "Stop sending “Certificate expiry reminders” emails" in page.get_data(as_text=True)
    # RFC 8058: the mail client's POST, no cookie, no CSRF token
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "will no longer get" in response.get_data(as_text=True)
    assert services.wants(certificate.user, "reminders") is False
    assert client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # idempotent

    # the next threshold is not mailed
    certificate.expires_at = utcnow() + timedelta(days=5)
    db.session.commit()
    assert services.expiry_reminders(utcnow()) == 0
    assert len(smtp.messages()) == 1


def test_a_forged_unsubscribe_token_is_refused(client, ctx):
    user = make_user(email="a@example.org")
    token = services.unsubscribe_token(user.id, "reminders")
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.post(f"/unsubscribe/{forged}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert client.get("/unsubscribe/nonsense").status_code == 400
    assert count(NotificationPreference) == 0


def test_preferences_page_saves_choices_and_nudges_are_opt_in(client, ctx, framework, smtp):
    from courses.models import Enrollment
    from tests.factories import enroll, make_course

    user = make_user(email="lee@example.org", name="Lee Learner")
    enrollment = enroll(user, make_course())
    enrollment.last_activity_at = utcnow() - timedelta(days=20)
    db.session.commit()
    assert services.inactivity_nudges(utcnow()) == 0  # not opted in

    sign_in(client, "lee@example.org")
    page = client.get("/account/notifications").get_data(as_text=True)
    assert "Reminders to continue a course" in page and "Alerts about saved candidates" not in page
    response = client.submit("/account/notifications", {"tips": "y", "reminders": "y", "nudges": "y"})
    assert response.status_code == 303
    assert services.preferences(user) == {"tips": True, "reminders": True, "nudges": True}

    assert services.inactivity_nudges(utcnow()) == 1
    db.session.commit()
    assert services.inactivity_nudges(utcnow()) == 0
    db.session.commit()
    (nudge,) = smtp.messages()
    assert nudge["Subject"] == "Pick up where you left off: Course ai-basics"
    assert "List-Unsubscribe" in nudge
    assert db.session.get(Enrollment, enrollment.id).completed_at is None


def test_employers_hear_when_a_saved_candidates_certificate_expires_once(ctx, framework, smtp):
    _, org = make_employer("evan@example.org")
    certificate = make_certificate(make_user(email="lee@example.org"))
    db.session.add(SavedCandidate(organization_id=org.id, certificate_id=certificate.id))
    certificate.awarded_at = certificate.issued_at = utcnow() - timedelta(days=400)
    certificate.expires_at = utcnow() - timedelta(hours=3)
    db.session.commit()
    assert services.candidate_expiries(utcnow()) == 1
    db.session.commit()
    assert services.candidate_expiries(utcnow()) == 0
    (alert,) = smtp.messages("evan@example.org")
    assert alert["Subject"] == "A saved candidate's certificate has expired"


# ---- the other jobs ---------------------------------------------------------------------------------------


def test_issuance_queues_a_pdf_render_that_stores_the_pdf_once(app, ctx, framework, monkeypatch, tmp_path):
    from pathlib import Path

    monkeypatch.setitem(app.config, "PRERENDER_PDF", True)
    monkeypatch.setitem(app.config, "CERTIFICATE_DIR", str(tmp_path))
    certificate = make_certificate(make_user(email="lee@example.org"))
    db.session.refresh(certificate)
    job = db.session.scalar(select(queue.Job).where(queue.Job.task == "credentials.prerender_pdf"))
    assert job.state is queue.JobState.DONE and job.key == f"pdf:{certificate.id}:1"
    assert certificate.pdf_sha256 and Path(tmp_path, certificate.pdf_path).read_bytes().startswith(b"%PDF")


def test_revocation_queues_a_status_list_signature(ctx, framework, smtp):
    from credentials.models import StatusList

    admin = make_user(email="ada@example.org", role=Role.ADMIN)
    certificate = make_certificate(make_user(email="lee@example.org"))
    credential_services.revoke(admin, certificate, reason=RevocationReason.OTHER, note="Test", now=utcnow())
    db.session.commit()
    job = db.session.scalar(select(queue.Job).where(queue.Job.task == "credentials.resign_status_list"))
    assert job.state is queue.JobState.DONE and job.args == {"list_id": certificate.status_list_id}
    status_list = db.session.get(StatusList, certificate.status_list_id)
    assert status_list.signed_credential and status_list.bits_sha256
