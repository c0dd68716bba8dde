"""Suspension reaches program certificates: suspending a course certificate suspends the program certificates that
stack it (both decoded status lists say so before the admin's request returns), lifting it lifts what it caused (not
an admin's own suspension), a suspended course certificate holds back a program certificate not issued yet, and the
holder gets one email per suspension and per lift naming every certificate that changed (real SMTP on loopback)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from flask_babel import format_date
from sqlalchemy import select

from accounts.models import Role
from core import queue
from core.database import utcnow
from core.extensions import db
from courses.models import Course
from courses.programs import enroll_program
from credentials import openbadges, programs, services, vc
from credentials.ids import format_public_id
from credentials.models import Certificate, CertificateEvent, RevocationReason
from tests.factories import complete_course, load_test_framework, login, make_course, make_user
from tests.smtp import app_mailing_to
from tests.test_programs import make_program

BASE = "http://127.0.0.1:5000"


@pytest.fixture
def smtp(app, monkeypatch):
    with app_mailing_to(app, monkeypatch) as handler:
        yield handler


@pytest.fixture
def world(ctx, prebuilt_rows):
    """Lee holds course certificates for alpha and bravo and the program certificate stacking both: built once per
    module, copied back for each test (tests/conftest.py prebuilt_rows; ~0.5 s of CPU per test on PostgreSQL)."""
    return prebuilt_rows(build_world)


def build_world() -> dict:
    load_test_framework()
    courses = [make_course(slug, title=f"Course {slug}") for slug in ("alpha", "bravo", "charlie")]
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    lee = make_user(email="lee@example.org", name="Lee Learner")
    program = make_program()
    enroll_program(lee, program, now=utcnow())
    db.session.commit()
    complete_course(lee, courses[0])
    complete_course(lee, courses[1])
    alpha, bravo = (course_certificate(lee, c) for c in courses[:2])
    program_certificate = db.session.scalar(select(Certificate).where(Certificate.program_id == program.id))
    assert program_certificate is not None
    return {"admin": admin, "lee": lee, "alpha": alpha, "bravo": bravo, "program": program_certificate}


def course_certificate(user, course) -> Certificate:
    return db.session.scalar(
        select(Certificate).where(Certificate.user_id == user.id, Certificate.course_id == course.id)
    )


def url_of(certificate) -> str:
    return f"/admin/certificates/{format_public_id(certificate.public_id)}"


def suspend(client, certificate, reason="A complaint about the quiz is under review.", until=""):
    url = url_of(certificate)
    return client.submit(url + "/suspend", {"suspension_reason": reason, "suspended_until": until}, page=url)


def lift(client, certificate):
    url = url_of(certificate)
    return client.submit(url + "/lift-suspension", page=url)


def set_bits(client, certificates) -> dict[str, set[int]]:
    """{purpose: indexes set} of the lists these certificates' credentials point to, as a verifier downloads them
    (signature checked), with each index mapped back to the certificate's id (anything else set is a failure)."""
    from credentials.keys import public_keys

    published = public_keys()
    found: dict[str, set[int]] = {"revocation": set(), "suspension": set()}
    by_index = {}
    for certificate in certificates:
        credential = json.loads(client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").data)
        for entry in credential["credentialStatus"]:
            by_index[(entry["statusListCredential"], int(entry["statusListIndex"]))] = certificate.id
    for url in {u for u, _ in by_index}:
        listing = json.loads(client.get(url.replace(BASE, "")).data)
        assert vc.verify(listing, lambda method: published.get(method.split("#", 1)[1]))
        subject = listing["credentialSubject"]
        bits = openbadges.decode_bits(subject["encodedList"])
        for index in range(len(bits) * 8):
            if openbadges.bit_is_set(bits, index):
                assert (url, index) in by_index, f"bit {index} of {url} belongs to none of these certificates"
                found[subject["statusPurpose"]].add(by_index[(url, index)])
    return found


def status(client, certificate) -> str:
    return client.get(f"/api/v1/certificates/{format_public_id(certificate.public_id)}").json["status"]


def text_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def test_suspending_a_course_credential_suspends_the_program_one_and_lifting_it_lifts_both(client, world, smtp):
    alpha, bravo, program = world["alpha"], world["bravo"], world["program"]
    everyone = [alpha, bravo, program]
    login(client, "admin@example.org")
    smtp.accepted.clear()
    assert set_bits(client, everyone) == {"revocation": set(), "suspension": set()}

    until = (utcnow() + timedelta(days=20)).date()
    assert suspend(client, bravo, until=until.isoformat()).status_code == 303
    # both lists as served right after the admin's request: bravo and the program certificate, nothing else
    assert set_bits(client, everyone) == {"revocation": set(), "suspension": {bravo.id, program.id}}
    assert status(client, program) == "suspended" and status(client, alpha) == "valid"
    facts = client.get(f"/api/v1/certificates/{format_public_id(program.public_id)}").json
    assert facts["suspended_until"].startswith(until.isoformat())
    page = client.get(f"/verify/{format_public_id(program.public_id)}").get_data(as_text=True)
    assert "Suspended" in page and f'datetime="{until.isoformat()}"' in page
    assert "complaint" not in page  # the reason stays with the holder and the issuer
    # the stacked course credential is listed as suspended (it used to read "valid until <its expiry>")
    bravo_item = page.split(f"<code>{format_public_id(bravo.public_id)}</code>")[1].split("</li>")[0]
    assert "suspended until" in bravo_item and "valid until" not in bravo_item

    # one email, naming the course certificate and the program certificate that followed it
    (notice,) = smtp.messages("lee@example.org")
    assert notice["Subject"] == "Your certificate has been suspended: Course bravo"
    text = text_of(notice)
    assert "Reason: A complaint about the quiz is under review." in text
    assert f'"Test Pathway" (ID {format_public_id(program.public_id)})' in text
    assert "Because it stacks this certificate, your program certificate is suspended for as long:" in text
    assert "Test Pathway" in notice.get_body(("html",)).get_content()

    # the program certificate's suspension is the cascade's: the admin lifts it by lifting bravo's (the page
    # says so and links there instead of offering the button; a forged POST is refused all the same)
    detail = client.get(url_of(program)).get_data(as_text=True)
    assert "lift that suspension and this one follows" in detail and "/lift-suspension" not in detail
    assert f'href="{url_of(bravo)}"' in detail
    refused = lift(client, program)
    assert refused.status_code == 303
    assert "lift that suspension and this one follows" in client.get(refused.headers["Location"]).get_data(as_text=True)
    assert set_bits(client, everyone)["suspension"] == {bravo.id, program.id}

    smtp.accepted.clear()
    assert lift(client, bravo).status_code == 303
    assert set_bits(client, everyone) == {"revocation": set(), "suspension": set()}
    assert status(client, program) == "valid"
    (notice,) = smtp.messages("lee@example.org")
    assert notice["Subject"] == "Your certificate is no longer suspended: Course bravo"
    text = text_of(notice)
    assert 'Employers who check it see "Valid".' in text
    assert "Your program certificate that stacks it is no longer suspended either:" in text
    assert format_public_id(program.public_id) in text

    db.session.expire_all()
    history = db.session.execute(
        select(CertificateEvent.action, CertificateEvent.detail)
        .where(CertificateEvent.certificate_id == program.id)
        .order_by(CertificateEvent.id)
    ).all()
    assert [a for a, _ in history] == ["issued", "suspended", "suspension_lifted"]
    assert history[1][1]["cause"] == history[2][1]["cause"] == "stacked_suspended"
    assert history[1][1]["part"] == format_public_id(bravo.public_id)


def test_two_suspended_parts_keep_the_program_certificate_suspended_until_the_later_end(client, world, smtp):
    alpha, bravo, program = world["alpha"], world["bravo"], world["program"]
    login(client, "admin@example.org")
    near = (utcnow() + timedelta(days=5)).date()
    far = (utcnow() + timedelta(days=40)).date()
    suspend(client, alpha, until=near.isoformat())
    assert (
        client.get(f"/api/v1/certificates/{format_public_id(program.public_id)}")
        .json["suspended_until"]
        .startswith(near.isoformat())
    )
    smtp.accepted.clear()
    suspend(client, bravo, until=far.isoformat())
    db.session.expire_all()
    program = db.session.get(Certificate, program.id)
    assert program.suspended_until.date() == far  # the later end
    # bravo's notice names the program certificate: its suspension now lasts longer because of bravo
    assert format_public_id(program.public_id) in text_of(smtp.messages("lee@example.org")[-1])

    smtp.accepted.clear()
    lift(client, bravo)
    db.session.expire_all()
    program = db.session.get(Certificate, program.id)
    # alpha still holds it, until alpha's end; the lift's notice does not claim the program certificate is free
    assert program.suspended_at_time(utcnow()) and program.suspended_until.date() == near
    assert "no longer suspended either" not in text_of(smtp.messages("lee@example.org")[-1])
    assert set_bits(client, [alpha, bravo, program])["suspension"] == {alpha.id, program.id}
    later = utcnow() + timedelta(days=6)  # alpha's end passes: the program certificate's with it
    assert program.status_at(later).value == "valid" and alpha.status_at(later).value == "valid"


def test_an_admins_own_suspension_of_the_program_certificate_stays_when_the_part_is_lifted(client, world, smtp):
    bravo, program = world["bravo"], world["program"]
    login(client, "admin@example.org")
    assert suspend(client, program, reason="Program audit.").status_code == 303  # until further notice
    (notice,) = smtp.messages("lee@example.org")
    assert notice["Subject"] == "Your certificate has been suspended: Test Pathway"
    assert "until further notice" in text_of(notice) and "program certificate" not in text_of(notice)

    suspend(client, bravo, until=(utcnow() + timedelta(days=3)).date().isoformat())
    lift(client, bravo)
    db.session.expire_all()
    program = db.session.get(Certificate, program.id)
    assert program.suspended_at_time(utcnow()) and program.suspension_reason == "Program audit."
    assert status(client, program) == "suspended"
    assert "no longer suspended either" not in text_of(smtp.messages("lee@example.org")[-1])
    # now the admin lifts it themselves
    assert lift(client, program).status_code == 303
    assert status(client, program) == "valid"


def test_a_suspended_course_certificate_holds_back_the_program_certificate_until_its_end(world, smtp, monkeypatch):
    from courses.models import Course
    from credentials import tasks

    admin, lee, alpha = world["admin"], world["lee"], world["alpha"]
    second = make_program("second", course_slugs=("alpha", "charlie"), title="Second Pathway")
    enroll_program(lee, second, now=utcnow())
    db.session.commit()
    now = utcnow()
    services.suspend(admin, alpha, reason="Review.", until=now + timedelta(days=2), now=now)
    db.session.commit()
    complete_course(lee, db.session.scalar(select(Course).where(Course.slug == "charlie")))
    held_back = select(Certificate).where(Certificate.program_id == second.id)
    assert db.session.scalar(held_back) is None  # alpha is suspended: not issued

    # the suspension runs out by itself: the hourly job issues it (no request would notice)
    assert programs.programs_after_suspensions(now + timedelta(hours=1)) == []
    issued = programs.programs_after_suspensions(now + timedelta(days=2, hours=1))
    assert [c.program_id for c in issued] == [second.id]
    assert programs.programs_after_suspensions(now + timedelta(days=2, hours=2)) == []  # once
    db.session.rollback()

    # the same through the queue: the periodic job runs after the commit and commits what it issued
    assert ("credentials.programs_after_suspensions", 60) in [(n, m) for n, m, _w in queue.PERIODIC]
    monkeypatch.setattr(tasks, "utcnow", lambda: now + timedelta(days=2, hours=1))
    queue.enqueue("credentials.programs_after_suspensions", key="test-run")
    db.session.commit()
    db.session.expire_all()
    issued = db.session.scalar(held_back)
    assert issued is not None and issued.status_at(now + timedelta(days=3)).value == "valid"


def test_lifting_the_suspension_issues_the_program_certificate_it_held_back(client, world, smtp):
    lee = world["lee"]
    second = make_program("second", course_slugs=("alpha", "charlie"), title="Second Pathway")
    enroll_program(lee, second, now=utcnow())
    db.session.commit()
    login(client, "admin@example.org")
    suspend(client, world["alpha"])
    from courses.models import Course

    db.session.expire_all()  # the admin's request wrote in its own session
    complete_course(lee, db.session.scalar(select(Course).where(Course.slug == "charlie")))
    held_back = select(Certificate).where(Certificate.program_id == second.id)
    assert db.session.scalar(held_back) is None
    assert lift(client, world["alpha"]).status_code == 303
    db.session.expire_all()
    issued = db.session.scalar(held_back)
    assert issued is not None and status(client, issued) == "valid"


def test_revocation_and_reinstatement_leave_the_program_certificate_following_its_parts(client, world, smtp):
    alpha, bravo, program = world["alpha"], world["bravo"], world["program"]
    everyone = [alpha, bravo, program]
    login(client, "admin@example.org")
    suspend(client, bravo)
    assert set_bits(client, everyone) == {"revocation": set(), "suspension": {bravo.id, program.id}}
    url = url_of(bravo)
    client.submit(url + "/revoke", {"reason": "academic_misconduct", "note": "Copied answers."}, page=url)
    # revocation wins: both revoked, neither suspension bit set
    assert set_bits(client, everyone) == {"revocation": {bravo.id, program.id}, "suspension": set()}
    client.submit(url + "/reinstate", page=url)
    # bravo's suspension ended with its revocation: both come back valid, not suspended
    assert set_bits(client, everyone) == {"revocation": set(), "suspension": set()}
    assert status(client, program) == "valid"

    # an admin revokes the program certificate for its own reason while alpha is suspended; reinstating it
    # brings it back suspended, since alpha still is
    suspend(client, alpha)
    purl = url_of(program)
    client.submit(purl + "/revoke", {"reason": "other", "note": "Checked the record."}, page=purl)
    assert set_bits(client, everyone) == {"revocation": {program.id}, "suspension": {alpha.id}}
    client.submit(purl + "/reinstate", page=purl)
    assert set_bits(client, everyone) == {"revocation": set(), "suspension": {alpha.id, program.id}}
    lift(client, alpha)
    assert set_bits(client, everyone) == {"revocation": set(), "suspension": set()}
    db.session.expire_all()
    assert db.session.get(Certificate, program.id).revocation_reason is None


def test_a_program_certificate_reinstated_while_a_part_is_suspended_is_told_it_is_suspended(client, world, smtp):
    alpha, bravo, program = world["alpha"], world["bravo"], world["program"]
    login(client, "admin@example.org")
    until = (utcnow() + timedelta(days=20)).date()
    suspend(client, alpha, until=until.isoformat())
    purl = url_of(program)
    client.submit(purl + "/revoke", {"reason": "other", "note": "Checked the record."}, page=purl)
    smtp.accepted.clear()
    assert client.submit(purl + "/reinstate", page=purl).status_code == 303
    assert status(client, program) == "suspended"
    (notice,) = smtp.messages("lee@example.org")
    assert notice["Subject"] == "Your certificate is reinstated but suspended: Test Pathway"
    text, html = text_of(notice), notice.get_body(("html",)).get_content()
    program_id, alpha_id = format_public_id(program.public_id), format_public_id(alpha.public_id)
    db.session.expire_all()
    ends = format_date(db.session.get(Certificate, program.id).suspended_until, "long")
    assert ends == format_date(until, "long")
    assert (
        f'Your certificate for "Test Pathway" (ID {program_id}) was reinstated on {format_date(utcnow(), "long")}, '
        f'but it is suspended until {ends}. Employers who check it see "Suspended" until then.'
    ) in text
    assert "because this course certificate it stacks is suspended" in text
    assert f'- "Course alpha" (ID {alpha_id})' in text
    assert "valid again" not in text and "Valid" not in text
    assert f"was reinstated on {format_date(utcnow(), 'long')}, but it is suspended until {ends}" in html
    assert "<strong>Course alpha</strong>" in html and "valid again" not in html

    # a course certificate reinstated on its own is valid again, and says so (revoking bravo took the program
    # certificate with it; reinstating bravo brings it back, still suspended by alpha)
    burl = url_of(bravo)
    client.submit(burl + "/revoke", {"reason": "other", "note": "Checked the record."}, page=burl)
    smtp.accepted.clear()
    client.submit(burl + "/reinstate", page=burl)
    (notice,) = smtp.messages("lee@example.org")
    assert notice["Subject"] == "Your certificate is valid again: Course bravo"
    assert "is valid again" in text_of(notice) and status(client, program) == "suspended"


def test_the_reinstated_but_suspended_notice_in_spanish_until_further_notice(world, smtp):
    admin, lee, alpha, bravo, program = (world[k] for k in ("admin", "lee", "alpha", "bravo", "program"))
    lee.locale = "es"
    db.session.commit()
    now = utcnow()
    services.suspend(admin, alpha, reason="Revisión.", until=None, now=now)
    services.suspend(admin, bravo, reason="Revisión.", until=now + timedelta(days=3), now=now)
    services.revoke(admin, program, reason=RevocationReason.OTHER, note="Revisado.", now=now)
    db.session.commit()
    smtp.accepted.clear()
    services.reinstate(admin, program, now=now + timedelta(minutes=5))
    db.session.commit()
    (notice,) = smtp.messages("lee@example.org")
    assert notice["Subject"] == "Su certificado fue restablecido, pero está suspendido: Test Pathway"
    text = text_of(notice)
    assert "pero está suspendido hasta nuevo aviso" in text and "hasta que se levante la suspensión" in text
    assert "estos certificados de curso que lo componen están suspendidos" in text
    for part in (alpha, bravo):
        assert f"«{part.course_title}» (ID {format_public_id(part.public_id)})" in text
    assert "vuelve a ser válido" not in text and "«Válido»" not in text


def test_a_released_savepoint_hands_no_job_over_before_the_commit(ctx):
    """SQLAlchemy sends after_commit for a SAVEPOINT too; the queue used to hand its jobs over then, so the worker
    looked for a row not committed yet and skipped it (the suspension notice above was lost that way)."""
    job = queue.enqueue("queue.prune")
    with db.session.begin_nested():  # e.g. keys.publish while the admin's request signs a status list
        pass
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(queue.Job, job.id).state is queue.JobState.DONE


def test_the_notices_are_in_the_holders_language(world, smtp):
    admin, lee, bravo, program = world["admin"], world["lee"], world["bravo"], world["program"]
    lee.locale = "es"
    db.session.commit()
    now = utcnow()
    until = now + timedelta(days=15)
    services.suspend(admin, bravo, reason="Revisión de una queja.", until=until, now=now)
    db.session.commit()
    (notice,) = smtp.messages("lee@example.org")
    assert notice["Subject"] == "Su certificado fue suspendido: Course bravo"
    text = text_of(notice)
    assert "Motivo: Revisión de una queja." in text and "mientras dure la suspensión" in text
    assert "su certificado de programa queda suspendido durante el mismo tiempo" in text
    assert f"«Test Pathway» (ID {format_public_id(program.public_id)})" in text
    assert "Su certificado fue suspendido" in notice.get_body(("html",)).get_content()

    smtp.accepted.clear()
    services.lift_suspension(admin, bravo, now=now + timedelta(hours=1))
    db.session.commit()
    (notice,) = smtp.messages("lee@example.org")
    assert notice["Subject"] == "Su certificado ya no está suspendido: Course bravo"
    assert "verán «Válido»" in text_of(notice) and "tampoco está suspendido ya" in text_of(notice)


def test_the_cohort_page_names_suspended_certificates_in_the_readers_words(client, world):
    from tests.factories import join_cohort, make_cohort, make_employer

    lee, bravo, program = world["lee"], world["bravo"], world["program"]
    _, org = make_employer("hr@example.org")
    cohort = make_cohort(org, [db.session.get(Course, bravo.course_id)])
    cohort.program_id = program.program_id
    join_cohort(cohort, lee)
    services.suspend(world["admin"], bravo, reason="Review.", until=None, now=utcnow())
    db.session.commit()
    login(client, "hr@example.org")
    html = client.get(f"/organizations/{org.slug}/cohorts/{cohort.id}").get_data(as_text=True)
    row = html.split("Lee Learner")[1].split("</tr>")[0]
    assert 'badge-suspended">Certificate suspended<' in row
    assert 'badge-suspended">Program certificate suspended<' in row
    client.set_cookie("lang", "es")
    html = client.get(f"/organizations/{org.slug}/cohorts/{cohort.id}").get_data(as_text=True)
    assert "Certificado suspendido" in html and "Certificado del programa suspendido" in html


def test_the_workforce_report_counts_a_suspended_credential_as_attained_and_says_so(client, world):
    """A decision, not an accident: "credentials attained" is what was earned in the period; a suspension is
    temporary, so it does not take the credential out (a revocation does)."""
    from insights.workforce import workforce_report
    from tests.factories import join_cohort, make_cohort, make_employer

    lee, bravo = world["lee"], world["bravo"]
    _, org = make_employer("hr@example.org")
    cohort = make_cohort(org, [db.session.get(Course, bravo.course_id)])
    join_cohort(cohort, lee, now=utcnow() - timedelta(days=1))
    today = utcnow().date()

    def attained() -> int:
        report = workforce_report(org, start=today - timedelta(days=7), end=today, now=utcnow())
        return report.total.credentials_attained

    before = attained()
    assert before >= 1
    services.suspend(world["admin"], bravo, reason="Review.", until=None, now=utcnow())
    db.session.commit()
    assert attained() == before
    services.revoke(world["admin"], bravo, reason=RevocationReason.OTHER, note="x", now=utcnow())
    db.session.commit()
    assert attained() == before - 1
    login(client, "hr@example.org")
    page = client.get(f"/organizations/{org.slug}/reports/workforce").get_data(as_text=True)
    assert "a suspended one still counts" in page


def test_two_parts_suspended_at_the_same_moment_both_count(app, world):
    """Two admins suspend the two course credentials of one program certificate at once, in two transactions: the
    program certificate ends up suspended until the later end, naming both (the program certificate's row lock
    orders them; without it the last writer's view, which missed the other part, won). SQLite serializes the two
    writers; PostgreSQL is where the race is real."""
    import threading

    ids = {"alpha": world["alpha"].id, "bravo": world["bravo"].id}
    admin_id, program_id = world["admin"].id, world["program"].id
    now = utcnow()
    ends = {"alpha": now + timedelta(days=40), "bravo": now + timedelta(days=5)}
    barrier = threading.Barrier(2)
    errors = []

    def suspend_part(name: str) -> None:
        try:
            with app.app_context():
                from accounts.models import User

                admin, part = db.session.get(User, admin_id), db.session.get(Certificate, ids[name])
                barrier.wait()
                services.suspend(admin, part, reason=f"Review of {name}.", until=ends[name], now=now)
                db.session.commit()
                db.session.remove()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=suspend_part, args=(name,)) for name in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    db.session.expire_all()
    program = db.session.get(Certificate, program_id)
    assert program.suspended_until == ends["alpha"]
    assert "Course alpha" in program.suspension_reason and "Course bravo" in program.suspension_reason
