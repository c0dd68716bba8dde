"""Cohorts: invitations (email, link, code, roster), explicit consent, leaving, the dashboard, reminders, and
that an organization reaches nothing of another organization or of learners who have not joined or have left."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from sqlalchemy import func, insert, select

from accounts.models import User
from core.database import utcnow
from core.extensions import db
from courses.models import Enrollment
from orgs import services
from orgs.models import Cohort, CohortMember, Invitation, InvitationKind, OrgRole, SavedCandidate
from tests.factories import (
    PASSWORD,
    add_staff,
    complete_course,
    enroll,
    join_cohort,
    load_test_framework,
    login,
    make_certificate,
    make_cohort,
    make_course,
    make_employer,
    make_user,
)
from tests.test_orgs import count, link_in, outbox


@pytest.fixture
def world(prebuilt_rows):
    """Org A (Acme) with a manager logged in elsewhere, a cohort on one course; org B (Bolt) with its own cohort
    (built once per module, copied back for each test: tests/conftest.py, prebuilt_rows)."""
    return prebuilt_rows(build_world)


def build_world() -> dict:
    load_test_framework()
    course = make_course("ai-basics", title="AI Basics")
    manager, org = make_employer("hr@acme.example.com", name="Hana Manager", org_name="Acme")
    cohort = make_cohort(org, [course], name="Warehouse crew")
    other_manager, other_org = make_employer("boss@bolt.example.com", org_name="Bolt")
    other_cohort = make_cohort(other_org, [course], name="Bolt crew")
    return {
        "course": course,
        "manager": manager,
        "org": org,
        "cohort": cohort,
        "other_org": other_org,
        "other_cohort": other_cohort,
        "other_manager": other_manager,
    }


def switch(client, email: str):
    """Log the client in as someone else (the login page only shows a form to visitors)."""
    with client.session_transaction() as session:
        session.clear()
    return login(client, email)


def cohort_url(w, suffix="") -> str:
    return f"/organizations/{w['org'].slug}/cohorts/{w['cohort'].id}{suffix}"


# ---- creating a cohort -----------------------------------------------------------------------------------------


def test_managers_create_cohorts_with_published_courses_and_dates_in_order(client, world):
    login(client, "hr@acme.example.com")
    url = "/organizations/acme/cohorts/new"
    form = {"name": "Night shift", "starts_on": "2027-01-10", "ends_on": "2027-03-01", "due_on": "2027-02-15"}
    assert client.submit(url, {**form, "ends_on": "2027-01-01", "course_ids": world["course"].id}).status_code == 422
    assert client.submit(url, form).status_code == 422  # no course
    assert client.submit(url, {**form, "course_ids": "99999"}).status_code == 422
    assert count(Cohort) == 2
    created = client.submit(url, {**form, "course_ids": world["course"].id})
    assert created.status_code == 303
    cohort = db.session.scalar(select(Cohort).where(Cohort.name == "Night shift"))
    assert created.headers["Location"] == f"/organizations/acme/cohorts/{cohort.id}/invite"
    assert cohort.due_on == date(2027, 2, 15) and [c.slug for c in cohort.courses] == ["ai-basics"]


def test_managers_edit_a_cohort_and_nobody_else_can(client, other_client, world):
    second = make_course("data-basics", title="Data Basics")
    url = cohort_url(world, "/edit")
    login(client, "hr@acme.example.com")
    page = client.get(url)
    assert page.status_code == 200 and 'value="Warehouse crew"' in page.get_data(as_text=True)
    assert "Edit cohort" in client.get(cohort_url(world)).get_data(as_text=True)
    form = {"name": "Warehouse crew, nights", "starts_on": "2026-02-01", "ends_on": "2026-05-01", "due_on": ""}
    # bad input: a clear message, 422, nothing written
    for bad in ({**form, "ends_on": "2026-01-01", "course_ids": second.id}, form, {**form, "course_ids": "99999"}):
        response = client.submit(url, bad)
        assert response.status_code == 422
    assert "The end date is before the start date." in client.submit(
        url, {**form, "ends_on": "2026-01-01", "course_ids": second.id}
    ).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Cohort, world["cohort"].id).name == "Warehouse crew"
    # no CSRF token: refused, nothing written
    assert client.post(url, data={**form, "course_ids": second.id}).status_code == 400
    saved = client.submit(url, {**form, "course_ids": [world["course"].id, second.id]})
    assert saved.status_code == 303 and saved.headers["Location"] == cohort_url(world)
    db.session.expire_all()
    cohort = db.session.get(Cohort, world["cohort"].id)
    assert (cohort.name, cohort.starts_on, cohort.ends_on, cohort.due_on) == (
        "Warehouse crew, nights",
        date(2026, 2, 1),
        date(2026, 5, 1),
        None,
    )
    assert [c.slug for c in cohort.courses] == ["ai-basics", "data-basics"]

    # a manager of A, on B's cohort through A's slug or B's: 404, B's cohort untouched
    other = world["other_cohort"]
    for slug in ("acme", world["other_org"].slug):
        bad_url = f"/organizations/{slug}/cohorts/{other.id}/edit"
        assert client.get(bad_url).status_code == 404
        assert client.submit(bad_url, {**form, "course_ids": second.id}, page=url).status_code == 404
    db.session.expire_all()
    assert db.session.get(Cohort, other.id).name == "Bolt crew"
    # a viewer of A: 403; a learner of A's cohort: 404
    viewer = make_user(email="viewer@acme.example.com")
    add_staff(world["org"], viewer, OrgRole.VIEWER)
    login(other_client, "viewer@acme.example.com")
    assert other_client.get(url).status_code == 403
    assert (
        other_client.submit(
            url, {**form, "name": "Viewer's", "course_ids": second.id}, page=cohort_url(world)
        ).status_code
        == 403
    )
    db.session.expire_all()
    assert db.session.get(Cohort, world["cohort"].id).name == "Warehouse crew, nights"


def test_viewers_see_the_dashboard_but_cannot_invite_or_create(client, world):
    viewer = make_user(email="viewer@acme.example.com")
    add_staff(world["org"], viewer, OrgRole.VIEWER)
    login(client, "viewer@acme.example.com")
    assert client.get(cohort_url(world)).status_code == 200
    assert client.get(cohort_url(world, "/invite")).status_code == 403
    assert client.get("/organizations/acme/cohorts/new").status_code == 403
    token = client.csrf_token(cohort_url(world))
    assert (
        client.post(cohort_url(world, "/invite"), data={"csrf_token": token, "email": "x@example.org"}).status_code
        == 403
    )
    assert count(Invitation) == 0


# ---- invitations by email ----------------------------------------------------------------------------------------


def invite(client, w, email="lee@example.org", name="Lee Learner"):
    return client.submit(cohort_url(w, "/invite"), {"email": email, "name": name})


def test_an_email_invitation_is_single_use_for_its_address_with_consent(app, client, other_client, world):
    login(client, "hr@acme.example.com")
    assert invite(client, world).status_code == 303
    (mail,) = outbox(app, "lee@example.org")
    path = link_in(mail, "/join/")
    token = path.rsplit("/", 1)[1]
    invitation = db.session.scalar(select(Invitation))
    assert invitation.token_hash == services.token_hash(token) and token not in invitation.token_hash
    assert len(token) >= 43  # 256 bits, url-safe base64

    # someone else logged in: refused, nothing written
    make_user(email="mallory@example.org")
    login(other_client, "mallory@example.org")
    foreign = other_client.get(path)
    assert foreign.status_code == 403 and "another email address" in foreign.get_data(as_text=True)
    consent = services.consent_text(world["cohort"])
    refused = other_client.submit(path, {"shown": consent}, page="/account")
    assert refused.status_code == 409 and count(CohortMember) == 0
    db.session.refresh(invitation)
    assert invitation.used_at is None

    # the invited learner sees exactly what the organization will see, then agrees
    make_user(email="lee@example.org", name="Lee Learner")
    switch(other_client, "lee@example.org")
    page = other_client.get(path).get_data(as_text=True)
    assert "What Acme will see" in page and "your quiz attempts and best scores" in page and "AI Basics" in page
    joined = other_client.submit(path, {"shown": consent})
    assert joined.status_code == 303 and joined.headers["Location"] == "/account/organizations"
    member = db.session.scalar(select(CohortMember))
    assert member.consent_text == consent and member.consent_at is not None and member.left_at is None

    # twice: a clear message, nothing more written
    again = other_client.submit(path, {"shown": consent}, page="/account")
    assert again.status_code == 400 and "already been used" in again.get_data(as_text=True)
    assert count(CohortMember) == 1


def test_what_was_shown_must_be_what_is_agreed(client, other_client, world):
    login(client, "hr@acme.example.com")
    invite(client, world)
    make_user(email="lee@example.org")
    login(other_client, "lee@example.org")
    _, secret = services.open_link(world["manager"], world["cohort"], InvitationKind.LINK, now=utcnow())
    db.session.commit()
    response = other_client.submit(f"/join/{secret}", {"shown": "They will see nothing at all."})
    assert response.status_code == 409 and "has changed" in response.get_data(as_text=True)
    assert count(CohortMember) == 0


def test_an_expired_or_withdrawn_invitation_writes_nothing(client, other_client, world):
    make_user(email="lee@example.org")
    _, secret = services.invite_email(
        world["manager"], world["cohort"], email="lee@example.org", name="", now=utcnow() - timedelta(days=15)
    )
    db.session.commit()
    login(other_client, "lee@example.org")
    consent = services.consent_text(world["cohort"])
    expired = other_client.submit(f"/join/{secret}", {"shown": consent}, page="/account")
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)
    # a newer invitation to the same address withdraws the older one
    _, newer = services.invite_email(world["manager"], world["cohort"], email="lee@example.org", name="", now=utcnow())
    _, newest = services.invite_email(world["manager"], world["cohort"], email="lee@example.org", name="", now=utcnow())
    db.session.commit()
    withdrawn = other_client.submit(f"/join/{newer}", {"shown": consent}, page="/account")
    assert withdrawn.status_code == 400 and "withdrawn" in withdrawn.get_data(as_text=True)
    unknown = other_client.get("/join/" + "A" * 43)
    assert unknown.status_code == 400 and "not valid" in unknown.get_data(as_text=True)
    assert count(CohortMember) == 0
    assert other_client.submit(f"/join/{newest}", {"shown": consent}, page="/account").status_code == 303


def test_new_people_register_through_the_invitation_and_come_back_to_agree(app, client, other_client, world):
    login(client, "hr@acme.example.com")
    invite(client, world, email="new.person@example.org", name="New Person")
    path = link_in(outbox(app, "new.person@example.org")[0], "/join/")
    page = other_client.get(path).get_data(as_text=True)
    assert "Create an account" in page and "new.person@example.org" in page
    register = f"/register?next={path}&email=new.person@example.org"
    assert 'value="new.person@example.org"' in other_client.get(register).get_data(as_text=True)
    response = other_client.submit(
        register,
        {
            "name": "New Person",
            "email": "new.person@example.org",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "next": path,
        },
    )
    # registering answers the same for new and taken emails: log in next, and come back to the invitation
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    assert login(other_client, "new.person@example.org", next=path).headers["Location"] == path
    joined = other_client.submit(path, {"shown": services.consent_text(world["cohort"])})
    assert joined.status_code == 303 and count(CohortMember) == 1


def test_join_links_and_codes_work_once_per_person_and_can_be_switched_off(client, other_client, world):
    login(client, "hr@acme.example.com")
    page = client.submit(cohort_url(world, "/links"), {"kind": "code"}, page=cohort_url(world, "/invite"))
    html = page.get_data(as_text=True)
    code = html.split("Your new join code")[1].split("<code>")[1].split("</code>")[0]
    assert len(code) == 9 and code[4] == "-"
    make_user(email="lee@example.org")
    login(other_client, "lee@example.org")
    # forgiving of case, spaces and dashes
    typed = other_client.submit("/join", {"code": f" {code.lower().replace('-', ' ')} "})
    assert typed.status_code == 303 and typed.headers["Location"] == f"/join/code/{code.replace('-', '')}"
    consent = services.consent_text(world["cohort"])
    assert other_client.submit(typed.headers["Location"], {"shown": consent}).status_code == 303
    again = other_client.submit(typed.headers["Location"], {"shown": consent})
    assert again.status_code == 409 and "already in" in again.get_data(as_text=True)
    assert count(CohortMember) == 1
    # a new code switches the old one off
    client.submit(cohort_url(world, "/links"), {"kind": "code"}, page=cohort_url(world, "/invite"))
    make_user(email="kim@example.org")
    switch(other_client, "kim@example.org")
    old = other_client.get(typed.headers["Location"])
    assert old.status_code == 400 and "withdrawn" in old.get_data(as_text=True)
    assert other_client.submit("/join", {"code": "nope!"}).status_code == 422
    assert other_client.get("/join/code/NONSENSE").status_code == 400  # well-formed, but no such code


def test_join_attempts_are_rate_limited(app, other_client, world, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ORG_JOIN", "5 per minute")
    statuses = [other_client.get(f"/join/guess{n}").status_code for n in range(7)]
    assert statuses[:5] == [400] * 5 and statuses[5:] == [429, 429]


def test_an_invitation_of_an_unapproved_organization_does_not_open(other_client, world):
    from orgs.models import OrgStatus

    _, secret = services.open_link(world["manager"], world["cohort"], InvitationKind.LINK, now=utcnow())
    world["org"].status = OrgStatus.DECLINED
    db.session.commit()
    assert other_client.get(f"/join/{secret}").status_code == 400


# ---- roster import -------------------------------------------------------------------------------------------


def upload_roster(client, w, content: bytes):
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    token = client.csrf_token(cohort_url(w, "/invite"))
    # encoded here, in memory: the test client would spool a large body to a temporary file it never closes
    boundary, body = encode_multipart(
        {"csrf_token": token, "file": FileStorage(io.BytesIO(content), "roster.csv", content_type="text/csv")}
    )
    return client.post(cohort_url(w, "/roster"), data=body, content_type=f"multipart/form-data; boundary={boundary}")


def test_a_good_roster_is_shown_first_and_sent_only_on_confirmation(app, client, world):
    login(client, "hr@acme.example.com")
    already = make_user(email="already@example.org")
    join_cohort(world["cohort"], already)
    roster = (
        b"\xef\xbb\xbfEmail,Name\r\nana@example.org,Ana Lopez\r\n\r\n"
        b"BEN@example.org, Ben  Okafor \r\nalready@example.org,Al\r\n"
    )
    preview = upload_roster(client, world, roster)
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "All 3 lines are valid" in html and "2 people will get an invitation" in html
    assert count(Invitation) == 0 and outbox(app) == []
    hidden = html.split('name="roster" type="hidden" value="')[1].split('"')[0]
    confirmed = client.submit(
        cohort_url(world, "/roster/confirm"), {"roster": hidden}, page=cohort_url(world, "/invite")
    )
    assert confirmed.status_code == 303
    assert sorted(db.session.scalars(select(Invitation.email))) == ["ana@example.org", "ben@example.org"]
    assert db.session.scalar(select(Invitation.name).where(Invitation.email == "ben@example.org")) == "Ben Okafor"
    assert len(outbox(app, "ana@example.org")) == 1 and len(outbox(app, "ben@example.org")) == 1
    assert outbox(app, "already@example.org") == []


HOSTILE = [
    (b'ana@example.org,=HYPERLINK("http://evil")\n', "Line 1: “=HYPERLINK"),
    (b"email,name\nana@example.org,Ana\n@SUM(1),x\n+1@example.org,y\n", "Line 3"),
    ("ana@example.org,Zoë\n".encode("utf-16"), "not UTF-8"),
    ("ana@example.org,Zo\xeb\n".encode("latin-1"), "byte 19 cannot be read"),
    (
        b"ana@example.org,Ana\nbob@example.org,Bob\nANA@example.org,Ana again\n",
        "Line 3: ana@example.org is already on line 1",
    ),
    (b"not-an-email,Ana\n", "Line 1: “not-an-email” is not an email address"),
    (b"a@example.org,b,c\n", "Line 1: expected 2 columns"),
    (
        ("\n".join(f"p{n}@example.org,P {n}" for n in range(2001))).encode(),
        "The roster has 2,001 people; the limit is 2,000",
    ),
    (b"PK\x03\x04\x00\x00", "not CSV text"),
    (b"", "The roster is empty"),
    (b"\n\n", "The roster is empty"),
    (b"x" * (1024 * 1024 + 10), "a roster may be at most 1 MB"),
]


@pytest.mark.parametrize(("content", "message"), HOSTILE)
def test_a_hostile_roster_is_refused_precisely_and_writes_nothing(app, client, world, content, message):
    login(client, "hr@acme.example.com")
    response = upload_roster(client, world, content)
    assert response.status_code == 422, response.get_data(as_text=True)[-400:]
    assert message in response.get_data(as_text=True).replace("&#34;", '"').replace("&#39;", "'")
    assert count(Invitation) == 0 and outbox(app) == []


def test_every_bad_line_is_reported_with_its_number(client, world):
    login(client, "hr@acme.example.com")
    lines = ["good@example.org,Good"] + [f"bad{n},x" for n in range(5)] + ["=1+1@example.org,x"]
    html = upload_roster(client, world, "\n".join(lines).encode()).get_data(as_text=True)
    assert "6 lines of the roster cannot be used. Nothing was saved." in html
    for line in range(2, 8):
        assert f"Line {line}:" in html


def test_a_ten_megabyte_roster_is_refused_with_a_roster_message(client, world):
    login(client, "hr@acme.example.com")
    response = upload_roster(client, world, b"a@example.org,A\n" * (10 * 1024 * 1024 // 16))
    assert response.status_code == 413 and "A roster may be at most 1 MB" in response.get_data(as_text=True)
    assert count(Invitation) == 0


def test_a_tampered_or_foreign_confirmation_is_refused(app, client, world):
    from orgs import roster

    login(client, "hr@acme.example.com")
    url, page = cohort_url(world, "/roster/confirm"), cohort_url(world, "/invite")
    response = client.submit(url, {"roster": "ok@example.org,Ok\n=cmd,x\n"}, page=page)
    assert response.status_code == 422 and "was changed" in response.get_data(as_text=True)
    rows = roster.parse(b"ok@example.org,Ok\n")
    key = app.config["SECRET_KEY"]
    other = roster.to_token(rows, cohort_id=world["other_cohort"].id, secret_key=key)
    assert "another cohort" in client.submit(url, {"roster": other}, page=page).get_data(as_text=True)
    assert count(Invitation) == 0


# ---- consent, leaving, invisibility --------------------------------------------------------------------------


def test_learners_leave_from_their_account_and_disappear(client, other_client, world):
    lee = make_user(email="lee@example.org", name="Lee Learner")
    join_cohort(world["cohort"], lee)
    enroll(lee, world["course"])
    login(client, "hr@acme.example.com")
    assert "Lee Learner" in client.get(cohort_url(world)).get_data(as_text=True)
    member_id = db.session.scalar(select(CohortMember.id))
    assert client.get(cohort_url(world, f"/members/{member_id}")).status_code == 200

    login(other_client, "lee@example.org")
    mine = other_client.get("/account/organizations").get_data(as_text=True)
    assert "Acme: Warehouse crew" in mine and "your quiz attempts and best scores" in mine
    left = other_client.submit("/account/organizations/acme/leave", page="/account/organizations")
    assert left.status_code == 303
    assert "You have not joined any organization" in other_client.get("/account/organizations").get_data(as_text=True)
    again = other_client.submit("/account/organizations/acme/leave", page="/account/organizations")
    assert again.status_code == 404

    dashboard = client.get(cohort_url(world)).get_data(as_text=True)
    assert "Lee Learner" not in dashboard and "Nobody has joined yet" in dashboard
    assert "lee@example.org" not in client.get(cohort_url(world, "?format=csv")).get_data(as_text=True)
    assert client.get(cohort_url(world, f"/members/{member_id}")).status_code == 404
    assert db.session.scalar(select(CohortMember.left_at)) is not None  # the record of consent is kept


def test_an_organization_sees_nothing_of_learners_who_have_not_joined(client, world):
    stranger = make_user(email="stranger@example.org", name="Sam Stranger")
    complete_course(stranger, world["course"])  # busy on the same course, never joined
    invited = make_user(email="invited@example.org", name="Ivy Invited")
    services.invite_email(world["manager"], world["cohort"], email=invited.email, name="", now=utcnow())
    other = make_user(email="other@example.org", name="Otto Other")
    join_cohort(world["other_cohort"], other)  # joined Bolt, not Acme
    db.session.commit()
    login(client, "hr@acme.example.com")
    html = client.get(cohort_url(world)).get_data(as_text=True)
    for name in ("Sam Stranger", "Ivy Invited", "Otto Other"):
        assert name not in html


# ---- the dashboard ---------------------------------------------------------------------------------------------


def test_dashboard_shows_progress_attempts_certificates_and_flags(client, world):
    now = utcnow()
    cohort = world["cohort"]
    cohort.starts_on = (now - timedelta(days=30)).date()
    cohort.due_on = (now + timedelta(days=30)).date()  # half the time has passed
    db.session.commit()
    course = world["course"]
    done = make_user(email="done@example.org", name="Dee Done")
    join_cohort(cohort, done, now=now - timedelta(days=20))
    make_certificate(done, course)
    half = make_user(email="half@example.org", name="Hal Half")
    join_cohort(cohort, half, now=now - timedelta(days=20))
    enrollment = enroll(half, course)
    from courses.models import LessonProgress, QuizAttempt

    lessons = [lesson for m in course.modules for lesson in m.lessons]
    for lesson in lessons[:2]:
        db.session.add(LessonProgress(enrollment_id=enrollment.id, lesson_id=lesson.id, completed_at=now))
    quiz = course.modules[0].quiz
    for n, (score, passed) in enumerate([(40, False), (80, True)], start=1):
        db.session.add(
            QuizAttempt(
                enrollment_id=enrollment.id,
                quiz_id=quiz.id,
                attempt_no=n,
                layout=[],
                answers={},
                score=score,
                passed=passed,
                started_at=now,
                submitted_at=now,
            )
        )
    enrollment.last_activity_at = now - timedelta(days=1)
    idle = make_user(email="idle@example.org", name="=Ida Idle")
    join_cohort(cohort, idle, now=now - timedelta(days=20))
    db.session.commit()

    login(client, "hr@acme.example.com")
    html = client.get(cohort_url(world)).get_data(as_text=True)
    # 6 steps (4 lessons, 2 quizzes): Hal did 2 lessons + 1 quiz = 50%
    assert "3 members" in html and "expected by now: 50%" in html
    hal_row = html.split("Hal Half")[1].split("</tr>")[0]
    assert "50%" in hal_row and "2 quiz attempts, best 80%" in hal_row and "Behind" not in hal_row
    dee_row = html.split("Dee Done")[1].split("</tr>")[0]
    assert "Completed" in dee_row and "Certificate valid" in dee_row
    ida_row = html.split("=Ida Idle")[1].split("</tr>")[0]
    assert "Not started" in ida_row and "Behind" in ida_row and "No activity in 14 days" in ida_row

    behind = client.get(cohort_url(world, "?show=behind")).get_data(as_text=True)
    assert "=Ida Idle" in behind and "Hal Half" not in behind and "Dee Done" not in behind
    assert "Dee Done" in client.get(cohort_url(world, "?show=completed")).get_data(as_text=True)
    search = client.get(cohort_url(world, "?q=HAL")).get_data(as_text=True)
    assert "Hal Half" in search and "Dee Done" not in search
    assert client.get(cohort_url(world, "?show=%27%3B--&q=%00")).status_code in (200, 400)

    csv_text = client.get(cohort_url(world, "?format=csv")).get_data(as_text=True)
    header, *rows = csv_text.strip().splitlines()
    assert header.startswith("name,email,joined,last_activity,overall_percent") and "ai-basics_best_score" in header
    assert len(rows) == 3 and any(r.startswith("'=Ida Idle") for r in rows)
    assert any(r.startswith("Hal Half,half@example.org") and ",50,2,80," in r for r in rows)

    hal = db.session.scalar(select(CohortMember.id).join(User).where(User.email == "half@example.org"))
    detail = client.get(cohort_url(world, f"/members/{hal}")).get_data(as_text=True)
    assert "Quiz 1" in detail and "80%" in detail and "2 of 6 steps" not in detail and "3 of 6 steps" in detail


def test_reminders_go_to_those_behind_once_a_day(app, client, world):
    cohort = world["cohort"]
    now = utcnow()
    cohort.starts_on = (now - timedelta(days=30)).date()
    cohort.due_on = (now - timedelta(days=1)).date()  # past due: everyone unfinished is behind
    db.session.commit()
    for email in ("a@example.org", "b@example.org"):
        join_cohort(cohort, make_user(email=email))
    finished = make_user(email="done@example.org")
    join_cohort(cohort, finished)
    complete_course(finished, world["course"])
    gone = make_user(email="gone@example.org")
    join_cohort(cohort, gone, left=True)
    login(client, "hr@acme.example.com")
    response = client.submit(cohort_url(world, "/remind"), page=cohort_url(world))
    assert response.status_code == 303
    to = ("a@example.org", "b@example.org", "done@example.org", "gone@example.org")
    # (other mail goes out too, e.g. the certificate notice: only reminders count here)
    assert [m for m in to if any("asks you to keep going" in body for body in outbox(app, m))] == list(to[:2])
    client.submit(cohort_url(world, "/remind"), page=cohort_url(world))
    assert len([m for m in outbox(app) if "asks you to keep going" in m]) == 2  # not again within 24 hours


def test_reminders_are_rate_limited(app, client, world, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ORG_REMIND", "2 per hour")
    login(client, "hr@acme.example.com")
    statuses = [client.submit(cohort_url(world, "/remind"), page=cohort_url(world)).status_code for _ in range(3)]
    assert statuses == [303, 303, 429]


def add_members(cohort, course, n: int, *, start: int = 0) -> None:
    """n learners in the cohort, each enrolled with a lesson done, a quiz attempt and a certificate (bulk inserts)."""
    from courses.models import LessonProgress, QuizAttempt
    from credentials.models import Certificate

    now = utcnow()
    users = (
        db.session.execute(
            insert(User).returning(User.id),
            [
                {
                    "email": f"m{start + i}@example.org",
                    "name": f"M {start + i}",
                    "legal_name": "M",
                    "password_hash": "x",
                }
                for i in range(n)
            ],
        )
        .scalars()
        .all()
    )
    db.session.execute(
        insert(CohortMember),
        [
            {"cohort_id": cohort.id, "user_id": u, "joined_at": now, "consent_at": now, "consent_text": "t"}
            for u in users
        ],
    )
    enrollments = (
        db.session.execute(
            insert(Enrollment).returning(Enrollment.id),
            [{"user_id": u, "course_id": course.id, "enrolled_at": now, "last_activity_at": now} for u in users],
        )
        .scalars()
        .all()
    )
    lesson = course.modules[0].lessons[0]
    quiz = course.modules[0].quiz
    db.session.execute(
        insert(LessonProgress), [{"enrollment_id": e, "lesson_id": lesson.id, "completed_at": now} for e in enrollments]
    )
    db.session.execute(
        insert(QuizAttempt),
        [
            {
                "enrollment_id": e,
                "quiz_id": quiz.id,
                "attempt_no": 1,
                "layout": [],
                "score": 75,
                "passed": True,
                "started_at": now,
                "submitted_at": now,
            }
            for e in enrollments
        ],
    )
    import secrets

    db.session.execute(
        insert(Certificate),
        [
            {
                "public_id": secrets.token_hex(14).upper(),
                "user_id": u,
                "course_id": course.id,
                "holder_name": "M",
                "course_title": course.title,
                "course_slug": course.slug,
                "course_version": 1,
                "skills": [],
                "goals": [],
                "score": 75,
                "issuer_name": "I",
                "awarded_at": now,
                "issued_at": now,
            }
            for u in users
        ],
    )
    db.session.commit()
    if db.engine.dialect.name == "postgresql":
        # the statistics a live database has (autovacuum gathers them within a minute of a bulk load): without them
        # PostgreSQL takes these tables for empty and joins 2000 certificates to the members in a nested loop
        # (2 million comparisons, ~0.2-2 s of server CPU for each dashboard request below)
        with db.engine.begin() as conn:
            tables = "users, cohort_members, enrollments, lesson_progress, quiz_attempts, certificates"
            conn.exec_driver_sql(f"ANALYZE {tables}")


def test_dashboard_costs_the_same_queries_at_one_and_2000_members(client, world, count_queries):
    login(client, "hr@acme.example.com")
    url = cohort_url(world)  # before counting: reading the fixture's objects would count too
    add_members(world["cohort"], world["course"], 1)
    client.get(url)
    small = count_queries(lambda: client.get(url))
    small_csv = count_queries(lambda: client.get(url + "?format=csv"))
    add_members(world["cohort"], world["course"], 1999, start=1)
    response = []
    large = count_queries(lambda: response.append(client.get(url)))
    assert response[0].status_code == 200 and "2000 members" in response[0].get_data(as_text=True)
    assert large == small <= 14, (small, large)
    assert count_queries(lambda: client.get(url + "?format=csv")) == small_csv


# ---- authorization: strangers, and organization A against organization B --------------------------------------


def org_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("orgs.") and "slug" in rule.arguments and not rule.rule.startswith("/account"):
            yield rule


def build(rule, slug, cohort_id, other_ids) -> str:
    values = {"slug": slug}
    for arg in rule.arguments - {"slug"}:
        values[arg] = cohort_id if arg == "cohort_id" else other_ids.get(arg, 1)
    return rule.build(values, append_unknown=False)[1]


def snapshot():
    from orgs.models import Membership, Organization

    return tuple(
        db.session.scalar(select(func.count()).select_from(m))
        for m in (Organization, Membership, Cohort, CohortMember, Invitation, SavedCandidate)
    )


def test_every_organization_page_refuses_people_outside_it(app, client, world):
    """A learner, a member of org B, and an admin: every org-A route answers 404/403 and writes nothing."""
    from credentials.ids import format_public_id

    b_member = join_cohort(world["other_cohort"], make_user(email="bee@example.org"))
    certificate = make_certificate(make_user(), world["course"])
    services.save_candidate(world["manager"], world["org"], certificate, note="", now=utcnow())
    db.session.commit()
    row_id = db.session.scalar(select(SavedCandidate.id))
    a_member = join_cohort(world["cohort"], make_user(email="ay@example.org"))
    ids = {"row_id": row_id, "member_id": a_member.id}
    make_user(email="learner@example.org")
    from accounts.models import Role

    make_user(email="admin@example.org", role=Role.ADMIN)
    rules = list(org_rules(app))
    assert len(rules) >= 14
    for email in ("learner@example.org", "boss@bolt.example.com", "admin@example.org"):
        switch(client, email)
        token = client.csrf_token("/account")
        before = snapshot()
        for rule in rules:
            method = "GET" if "GET" in rule.methods else "POST"
            url = build(rule, world["org"].slug, world["cohort"].id, ids)
            data = {
                "csrf_token": token,
                "certificate_id": format_public_id(certificate.public_id),
                "kind": "link",
                "email": "x@example.org",
                "name": "X",
                "roster": "x@example.org,X\n",
                "shown": "x",
            }
            response = client.open(url, method=method, data=data if method == "POST" else None)
            assert response.status_code in (403, 404), (email, rule.endpoint, response.status_code)
        assert snapshot() == before, email
    assert b_member.left_at is None


def test_a_manager_of_one_organization_reaches_nothing_of_another(app, client, world):
    """Manager of A, on B's routes, on A's URLs carrying B's cohort, members and candidates: all 404/403."""
    from credentials.ids import format_public_id

    certificate = make_certificate(make_user(), world["course"])
    services.save_candidate(world["other_manager"], world["other_org"], certificate, note="B's", now=utcnow())
    db.session.commit()
    b_row = db.session.scalar(select(SavedCandidate.id))
    b_member = join_cohort(world["other_cohort"], make_user(email="bee@example.org", name="Bea Bolt"))
    login(client, "hr@acme.example.com")
    token = client.csrf_token("/account")
    ids = {"row_id": b_row, "member_id": b_member.id}
    before = snapshot()
    for rule in org_rules(app):
        method = "GET" if "GET" in rule.methods else "POST"
        data = {
            "csrf_token": token,
            "certificate_id": format_public_id(certificate.public_id),
            "kind": "link",
            "email": "x@example.org",
            "name": "X",
            "roster": "x@example.org,X\n",
            "shown": "x",
        }
        for slug in (world["other_org"].slug, world["org"].slug):
            if slug == world["org"].slug and not ({"cohort_id", "row_id", "member_id"} & rule.arguments):
                continue  # A's own pages without an object id of B's are A's business
            url = build(rule, slug, world["other_cohort"].id, ids)
            response = client.open(url, method=method, data=data if method == "POST" else None)
            assert response.status_code in (403, 404), (rule.endpoint, url, response.status_code)
            assert "Bea Bolt" not in response.get_data(as_text=True)
        if {"row_id", "member_id"} & rule.arguments:  # A's own cohort, B's member or candidate
            url = build(rule, world["org"].slug, world["cohort"].id, ids)
            response = client.open(url, method=method, data=data if method == "POST" else None)
            assert response.status_code in (403, 404), (rule.endpoint, url, response.status_code)
    assert snapshot() == before
    # and leaving: a learner cannot be made to leave B through A's slug
    assert client.submit("/account/organizations/bolt/leave", page="/account").status_code == 404
