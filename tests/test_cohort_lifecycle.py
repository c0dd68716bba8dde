"""Cohorts archived and unarchived (off the default list, no new members, data and reports kept, double submits
harmless), and cohorts following a program (its courses, kept in step with it; program progress on the dashboard).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from core.database import utcnow
from core.extensions import db
from courses.models import CourseStatus
from courses.programs import ProgramSpec, apply_program, enroll_program
from insights.workforce import workforce_report
from orgs import services
from orgs.models import Cohort, CohortMember, Invitation, InvitationKind, OrgRole
from tests.factories import add_staff, complete_course, join_cohort, make_course, make_user, sign_in
from tests.test_cohorts import cohort_url, switch, world  # noqa: F401  (the fixture)
from tests.test_orgs import count


def test_archiving_takes_a_cohort_off_the_list_and_closes_it_to_new_members(client, other_client, world):  # noqa: F811
    manager = world["manager"]
    cohort = world["cohort"]
    member = join_cohort(cohort, make_user(email="ann@example.org", name="Ann Member"))
    complete_course(member.user, world["course"])
    _, link_secret = services.open_link(manager, cohort, InvitationKind.LINK, now=utcnow())
    _, code = services.open_link(manager, cohort, InvitationKind.CODE, now=utcnow())
    _, email_secret = services.invite_email(manager, cohort, email="lee@example.org", name="Lee", now=utcnow())
    db.session.commit()
    sign_in(client, "hr@acme.example.com")
    home = client.get("/organizations/acme").get_data(as_text=True)
    assert "Warehouse crew" in home and "archived cohort" not in home

    # no CSRF token: refused, nothing written
    assert client.post(cohort_url(world, "/archive")).status_code == 400
    db.session.expire_all()
    assert db.session.get(Cohort, cohort.id).archived_at is None
    archived = client.submit(cohort_url(world, "/archive"), page=cohort_url(world))
    assert archived.status_code == 303 and archived.headers["Location"] == cohort_url(world)
    db.session.expire_all()
    stamp = db.session.get(Cohort, cohort.id).archived_at
    assert stamp is not None
    page = client.get(cohort_url(world)).get_data(as_text=True)
    assert "archived" in page and "Ann Member" in page and "Unarchive cohort" in page
    assert "Invite people" not in page
    # a double submit changes nothing and says so
    again = client.submit(cohort_url(world, "/archive"), page=cohort_url(world))
    assert again.status_code == 303
    assert "was already archived" in client.get(cohort_url(world)).get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Cohort, cohort.id).archived_at == stamp

    # off the default list, behind a link
    home = client.get("/organizations/acme").get_data(as_text=True)
    assert "Warehouse crew" not in home and "Show 1 archived cohort" in home
    assert "Warehouse crew" in client.get("/organizations/acme?archived=1").get_data(as_text=True)

    # no new members: every invitation, the link and the code say why; inviting is refused; nothing written
    before = (count(CohortMember), count(Invitation))
    newcomer = make_user(email="lee@example.org")
    sign_in(other_client, newcomer.email)
    for url in (f"/join/{link_secret}", f"/join/code/{code}", f"/join/{email_secret}"):
        response = other_client.get(url)
        assert response.status_code == 400 and "is archived and no longer takes new members" in response.get_data(
            as_text=True
        )
        assert other_client.submit(url, {"shown": "x"}, page="/account").status_code == 400
    assert client.get(cohort_url(world, "/invite")).status_code == 200
    assert "unarchive it before inviting" in client.get(cohort_url(world, "/invite")).get_data(as_text=True)
    refused = client.submit(cohort_url(world, "/invite"), {"email": "new@example.org", "name": "N"}, page="/account")
    assert refused.status_code == 409 and "unarchive it before inviting" in refused.get_data(as_text=True)
    assert client.submit(cohort_url(world, "/links"), {"kind": "code"}, page="/account").status_code == 409
    assert client.submit(cohort_url(world, "/roster/confirm"), {"roster": "x"}, page="/account").status_code == 409
    assert (count(CohortMember), count(Invitation)) == before
    assert services.consent_text(cohort)  # the cohort itself is intact
    # reports still count it: its member and their completion
    report = workforce_report(world["org"], start=date(2020, 1, 1), end=utcnow().date(), now=utcnow())
    assert report.total.participants_served == 1
    assert [(row.name, row.participants_served) for row in report.rows["cohort"]] == [("Warehouse crew", 1)]

    # unarchived: back on the list, and the link that was never withdrawn works again
    assert client.submit(cohort_url(world, "/unarchive"), page=cohort_url(world)).status_code == 303
    db.session.expire_all()
    assert db.session.get(Cohort, cohort.id).archived_at is None
    assert "Warehouse crew" in client.get("/organizations/acme").get_data(as_text=True)
    assert client.submit(cohort_url(world, "/unarchive"), page=cohort_url(world)).status_code == 303
    assert "was not archived" in client.get(cohort_url(world)).get_data(as_text=True)
    joined = other_client.get(f"/join/{link_secret}")
    assert joined.status_code == 200 and "I agree" in joined.get_data(as_text=True)


def test_only_the_organizations_managers_archive(client, other_client, world):  # noqa: F811
    viewer = make_user(email="viewer@acme.example.com")
    add_staff(world["org"], viewer, OrgRole.VIEWER)
    sign_in(other_client, viewer.email)
    assert "Archive cohort" not in other_client.get(cohort_url(world)).get_data(as_text=True)
    for action in ("/archive", "/unarchive"):
        assert other_client.submit(cohort_url(world, action), page=cohort_url(world)).status_code == 403
    # a manager of A on B's cohort, through A's slug or B's: 404, B's cohort untouched
    sign_in(client, "hr@acme.example.com")
    other = world["other_cohort"]
    for slug in ("acme", world["other_org"].slug):
        for action in ("/archive", "/unarchive"):
            url = f"/organizations/{slug}/cohorts/{other.id}{action}"
            assert client.submit(url, page=cohort_url(world)).status_code == 404
    db.session.expire_all()
    assert db.session.get(Cohort, other.id).archived_at is None
    assert db.session.get(Cohort, world["cohort"].id).archived_at is None


def _program(slug: str, courses: list[str], *, status=CourseStatus.PUBLISHED):
    program, _ = apply_program(
        ProgramSpec(slug, f"Program {slug}", "Purpose.", "Audience.", 4, [], courses), now=utcnow(), status=status
    )
    db.session.commit()
    return program


def test_a_cohort_follows_a_program_and_its_dashboard_shows_program_progress(client, world):  # noqa: F811
    second = make_course("data-basics", title="Data Basics")
    third = make_course("safety", title="Safety First")
    program = _program("pathway", ["ai-basics", "data-basics"])
    draft = _program("draft-path", ["ai-basics"], status=CourseStatus.DRAFT)
    sign_in(client, "hr@acme.example.com")
    url = "/organizations/acme/cohorts/new"
    form = {"name": "Pathway crew", "starts_on": "2026-01-10", "ends_on": "", "due_on": ""}
    page = client.get(url).get_data(as_text=True)
    assert "Program pathway" in page and "Program draft-path" not in page
    # a draft program (not offered) or nonsense: 422, nothing written
    before = count(Cohort)
    for bad in (draft.id, 99999, "x"):
        assert client.submit(url, {**form, "program_id": bad}).status_code == 422
    assert count(Cohort) == before
    created = client.submit(url, {**form, "program_id": program.id, "course_ids": third.id})
    assert created.status_code == 303
    cohort = db.session.scalar(select(Cohort).where(Cohort.name == "Pathway crew"))
    assert cohort.program_id == program.id
    assert sorted(c.slug for c in cohort.courses) == ["ai-basics", "data-basics"]  # the ticked course is ignored

    # members: one finishes the program (program certificate), one finishes one course of two
    done = join_cohort(cohort, make_user(email="done@example.org", name="Dora Done"))
    half = join_cohort(cohort, make_user(email="half@example.org", name="Hal Half"))
    enroll_program(done.user, program, now=utcnow())  # a program certificate is for those who enrolled in it
    complete_course(done.user, world["course"])
    complete_course(done.user, second)
    complete_course(half.user, world["course"])
    db.session.commit()
    dashboard = client.get(f"/organizations/acme/cohorts/{cohort.id}").get_data(as_text=True)
    assert "Program: Program pathway" in dashboard and "1 member completed it" in dashboard
    assert "2 of 2 courses" in dashboard and "1 of 2 courses" in dashboard
    assert "Program certificate valid" in dashboard

    # the program gains a course: the cohort follows, without anyone editing it
    _program("pathway", ["ai-basics", "data-basics", "safety"])
    db.session.expire_all()
    cohort = db.session.get(Cohort, cohort.id)
    assert sorted(c.slug for c in cohort.courses) == ["ai-basics", "data-basics", "safety"]
    assert "2 of 3 courses" in client.get(f"/organizations/acme/cohorts/{cohort.id}").get_data(as_text=True)

    # edited back to courses only: the program is dropped and the ticked courses count
    edit = f"/organizations/acme/cohorts/{cohort.id}/edit"
    assert f'<option selected value="{program.id}">' in client.get(edit).get_data(as_text=True)
    saved = client.submit(edit, {**form, "program_id": 0, "course_ids": third.id})
    assert saved.status_code == 303
    db.session.expire_all()
    cohort = db.session.get(Cohort, cohort.id)
    assert cohort.program_id is None and [c.slug for c in cohort.courses] == ["safety"]
    _program("pathway", ["ai-basics"])  # no longer followed: nothing changes
    db.session.expire_all()
    assert [c.slug for c in db.session.get(Cohort, cohort.id).courses] == ["safety"]
    assert db.session.scalar(select(func.count()).select_from(Cohort).where(Cohort.program_id.is_not(None))) == 0
