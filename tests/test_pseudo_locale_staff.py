"""The pseudo-locale check (tests/test_pseudo_locale.py) on the organization journey and the main admin, studio and
email-preference pages: every page rendered with each translated string wrapped in ⟦…⟧ must show no visible
interface text outside the markers, apart from what people wrote (names, titles, notes: ``staff_content``).

Pages: organization creation, the organization home, a cohort's dashboard, a member's page, invitations, the roster
check, saved candidates, bulk verification, the workforce report; the approval queue, users, a learner's record,
the audit log, background jobs, insights and item analysis, certificate administration and branding; the studio
(courses, a course, a module, a lesson, a quiz, the preview, programs) and the email preferences.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from core.i18n import LANG_COOKIE
from tests import test_pseudo_locale as pseudo
from tests.factories import (
    enroll,
    join_cohort,
    load_test_framework,
    make_certificate,
    make_cohort,
    make_course,
    make_employer,
    make_user,
    sign_in,
)
from tests.test_pseudo_locale import PSEUDO, Page, known_content, problems_on

# the pseudo-locale catalog and app of the learner-journey check, shared (module-scoped fixtures)
pseudo_dir = pseudo.pseudo_dir
pseudo_app = pseudo.pseudo_app

STAFF_PAGES: dict[str, list[Page]] = {
    "organization": [
        Page("anonymous", "/organizations"),
        Page("learner", "/organizations/new"),
        Page("learner", "/join"),
        Page("learner", "/join/code/ZZZZ-ZZZZ", 400),
        Page("learner", "/account/organizations"),
        Page("learner", "/account/notifications"),
        Page("employer", "/organizations"),
        Page("employer", "/organizations/{org}"),
        Page("employer", "/organizations/{org}/cohorts/new"),
        Page("employer", "/organizations/{org}/cohorts/{cohort}"),
        Page("employer", "/organizations/{org}/cohorts/{cohort}?show=behind"),
        Page("employer", "/organizations/{org}/cohorts/{cohort}/members/{member}"),
        Page("employer", "/organizations/{org}/cohorts/{cohort}/invite"),
        Page("employer", "/organizations/{org}/candidates"),
        Page("employer", "/verify/bulk"),
        Page("employer", "/organizations/{org}/reports/workforce"),
        Page("employer", "/organizations/{org}/reports/workforce?program={program}"),
        Page("employer", "/account/notifications"),
        Page("pending_owner", "/organizations/{pending_org}"),
    ],
    "admin": [
        Page("admin", "/admin/organizations"),
        Page("admin", "/admin/users/"),
        Page("admin", "/admin/learners/{learner_id}"),
        Page("admin", "/admin/audit/"),
        Page("admin", "/admin/jobs/"),
        Page("admin", "/admin/insights"),
        Page("admin", "/admin/insights/quizzes/{quiz}"),
        Page("admin", "/admin/certificates"),
        Page("admin", "/admin/certificates/{certificate}"),
        Page("admin", "/admin/name-corrections"),
        Page("admin", "/admin/branding"),
    ],
    "studio": [
        Page("admin", "/studio/"),
        Page("admin", "/studio/new"),
        Page("admin", "/studio/{course}"),
        Page("admin", "/studio/{course}/modules/0"),
        Page("admin", "/studio/{course}/modules/0/lessons/0"),
        Page("admin", "/studio/{course}/modules/0/lessons/new"),
        Page("admin", "/studio/{course}/modules/0/quiz"),
        Page("admin", "/studio/{course}/preview"),
        Page("admin", "/studio/programs"),
        Page("admin", "/studio/programs/new"),
        Page("admin", "/studio/programs/{program}"),
    ],
}

ACCOUNTS = {
    "learner": "lee@example.org",
    "employer": "hr@example.org",
    "pending_owner": "owner@pending.example.org",
    "admin": "admin@example.org",
}


@dataclass(frozen=True)
class StaffWorld:
    org: str
    pending_org: str
    cohort: int
    member: int
    course: str
    quiz: int
    program: str
    certificate: str
    learner_id: int


@pytest.fixture
def staff_world(ctx) -> StaffWorld:
    """An approved employer with a cohort (one member who has started, one invitation pending, a saved candidate),
    an organization still waiting for its email, a program, a certificate and an admin."""
    from courses.models import CourseStatus
    from courses.programs import ProgramSpec, apply_program
    from credentials.ids import format_public_id
    from orgs import services as org_services
    from orgs.models import CohortMember

    load_test_framework()
    learner = make_user(email="lee@example.org", name="Lee Learner")
    course = make_course("ai-basics", title="AI Basics")
    enroll(learner, course)
    certificate = make_certificate(learner, make_course("power-basics", title="Power Basics"))
    manager, org = make_employer("hr@example.org", name="Hana Recruiter", org_name="Acme Staffing")
    today = utcnow().date()
    cohort = make_cohort(org, [course], name="Warehouse crew", starts_on=today - timedelta(days=20), due_on=today)
    join_cohort(cohort, learner)
    now = utcnow()
    org_services.invite_email(manager, cohort, email="new.person@example.org", name="Pat Newcomer", now=now)
    org_services.save_candidate(manager, org, certificate, note="Forklift lead", now=now)
    owner = make_user(email="owner@pending.example.org", name="Olga Owner")
    pending = org_services.create_organization(
        owner, name="Pending Works", kind=org.kind, website="", contact_email="owner@pending.example.org", now=now
    )
    make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    spec = ProgramSpec("basics-path", "Basics Path", "A start.", "Everyone.", 4, [], ["ai-basics", "power-basics"])
    program, _outcome = apply_program(spec, now=now, status=CourseStatus.PUBLISHED)
    db.session.commit()
    member = db.session.scalar(select(CohortMember.id).where(CohortMember.cohort_id == cohort.id))
    return StaffWorld(
        org=org.slug,
        pending_org=pending.slug,
        cohort=cohort.id,
        member=member,
        course="ai-basics",
        quiz=course.modules[0].quiz.id,
        program=program.slug,
        certificate=format_public_id(certificate.public_id),
        learner_id=learner.id,
    )


def staff_content() -> list[str]:
    """What the staff pages show that people wrote, beyond the learner journeys' known content."""
    from core.audit import AuditEvent
    from courses.models import Lesson, Program, Question
    from orgs.models import Cohort, Invitation, SavedCandidate

    texts = set(known_content())
    for model, fields in [
        (Cohort, ("name",)),
        (Invitation, ("name", "email")),
        (SavedCandidate, ("note",)),
        (Program, ("title", "purpose", "audience")),
        # audit summaries are stored records, written in English when the event happened (not interface text)
        (AuditEvent, ("summary", "actor_label")),
    ]:
        for row in db.session.scalars(select(model)):
            texts.update(str(getattr(row, f)) for f in fields if getattr(row, f, None))
    # what an author typed, shown back in the studio's text areas as written (Markdown, the quiz's plain text)
    for lesson in db.session.scalars(select(Lesson)):
        texts.update(line.lstrip("#").strip() for line in lesson.body_md.splitlines() if line.strip())
    for question in db.session.scalars(select(Question)):
        texts.update(choice.text for choice in question.choices)
    return sorted(texts, key=len, reverse=True)


def _clients(app) -> dict:
    clients = {}
    for who in ("anonymous", *ACCOUNTS):
        client = app.test_client()
        client.set_cookie(LANG_COOKIE, PSEUDO)
        if who != "anonymous":
            sign_in(client, ACCOUNTS[who])
        clients[who] = client
    return clients


def test_organization_admin_and_studio_pages_are_fully_translated(pseudo_app, staff_world, ctx):
    clients = _clients(pseudo_app)
    known = staff_content()
    report = {}
    checked = 0
    for journey, pages in STAFF_PAGES.items():
        for page in pages:
            path = page.path.format(**vars(staff_world))
            response = clients[page.who].get(path)
            assert response.status_code == page.status, (journey, path, response.status_code)
            found = problems_on(response.get_data(as_text=True), known)
            if found:
                report[f"{journey} {page.who} {path}"] = found
            checked += 1
    assert checked == sum(len(pages) for pages in STAFF_PAGES.values()) >= 40
    assert report == {}, "\n".join(f"{where}:\n  " + "\n  ".join(found) for where, found in report.items())


def test_roster_check_and_its_errors_are_fully_translated(pseudo_app, staff_world, ctx):
    """The roster check answers a POST: the preview of a good file and the refusal of a bad one."""
    import io

    client = _clients(pseudo_app)["employer"]
    url = f"/organizations/{staff_world.org}/cohorts/{staff_world.cohort}"
    known = staff_content()
    for content, status in ((b"email,name\nana@example.org,Ana\nlee@example.org,Lee\n", 200), (b"nope\n=1,x\n", 422)):
        response = client.submit(url + "/roster", {"file": (io.BytesIO(content), "roster.csv")}, page=url + "/invite")
        assert response.status_code == status
        assert problems_on(response.get_data(as_text=True), [*known, "Ana", "Lee"]) == []


def test_the_dates_on_these_pages_are_not_iso_strftime(pseudo_app, staff_world, ctx):
    """Dates go through Babel in the viewer's locale: the cohort's due date is not printed as YYYY-MM-DD."""
    client = _clients(pseudo_app)["employer"]
    html = client.get(f"/organizations/{staff_world.org}").get_data(as_text=True)
    today = utcnow().date().isoformat()
    assert f'<time datetime="{today}">' in html and f">{today}<" not in html
