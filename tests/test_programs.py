"""Programs: files, studio, learner pages, and the program certificate (exactly once, PDF, credential, cascade)."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import func, select, update

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from courses.catalog import CATALOG_DIR, CatalogError
from courses.models import Course, CourseStatus, Enrollment, Program, ProgramEnrollment
from courses.programs import ProgramSpec, apply_program, enroll_program, import_programs, parse_program, program_file
from credentials import openbadges
from credentials.ids import format_public_id
from credentials.models import Certificate, CertificateEvent, CertificatePart, RevocationReason
from credentials.services import revoke
from tests.factories import complete_course, load_test_framework, login, make_course, make_user

PROGRAMS_DIR = CATALOG_DIR / "programs"


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


COURSE_SLUGS = ("alpha", "bravo", "charlie")


def three_courses() -> dict:
    load_test_framework()
    return {slug: make_course(slug, title=f"Course {slug}") for slug in COURSE_SLUGS}


@pytest.fixture
def courses(prebuilt_rows):
    """The test framework and three published courses: built once per module, copied back for each test."""
    rows = prebuilt_rows(three_courses)
    return [rows[slug] for slug in COURSE_SLUGS]


def make_program(slug="pathway", course_slugs=("alpha", "bravo"), status=CourseStatus.PUBLISHED, **kw) -> Program:
    spec = ProgramSpec(
        slug=slug,
        title=kw.get("title", "Test Pathway"),
        purpose="Get ready for the work.",
        audience="Jobseekers.",
        normal_weeks=kw.get("normal_weeks", 4),
        occupations=["43-4051.00"],
        courses=list(course_slugs),
    )
    program, _ = apply_program(spec, now=utcnow(), status=status)
    db.session.commit()
    return program


def program_certificates(user=None):
    where = [Certificate.program_id.is_not(None)]
    if user is not None:
        where.append(Certificate.user_id == user.id)
    return list(db.session.scalars(select(Certificate).where(*where)))


# ---- files ------------------------------------------------------------------------------------------


def test_shipped_programs_import_with_the_catalog_and_export_byte_for_byte(app, ctx, tmp_path):
    from skills.services import load_framework_file

    load_framework_file(now=utcnow())
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["courses", "import", str(CATALOG_DIR)])
    assert result.exit_code == 0, result.output
    shipped = sorted(PROGRAMS_DIR.glob("*.yaml"))
    assert len(shipped) >= 2
    programs = {p.slug: p for p in db.session.scalars(select(Program))}
    assert set(programs) == {p.stem for p in shipped}
    dc = programs["data-center-technician-pathway"]
    assert [c.slug for c in dc.courses] == [
        "data-center-technician-foundations",
        "powering-ai-grid-energy-permitting",
        "securing-ai-systems-incident-response",
    ]
    assert dc.status is CourseStatus.PUBLISHED and dc.total_minutes == sum(c.estimated_minutes for c in dc.courses)
    office = programs["ai-at-work-pathway"]
    assert [c.slug for c in office.courses] == [
        "ai-literacy-for-every-worker",
        "ai-at-work-customer-service-office",
        "spotting-synthetic-media",
    ]
    for path in shipped:
        result = runner.invoke(args=["courses", "export-program", path.stem, str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()
    again = runner.invoke(args=["courses", "import", str(CATALOG_DIR)]).output
    assert "created" not in again and again.count("unchanged") >= len(shipped) + 8


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("courses: [alpha, bravo]", "courses: [alpha, nope]"), "line 7: unknown course 'nope'"),
        (lambda t: t.replace("courses: [alpha, bravo]", "courses: [alpha, alpha]"), "course 'alpha' is listed twice"),
        (lambda t: t.replace("normal_weeks: 4", "normal_weeks: 0"), "'normal_weeks' must be a whole number"),
        (lambda t: t.replace("slug: pathway", "slug: Bad Slug"), "'slug' must be lowercase"),
        (lambda t: t + "wages: 100\n", "unknown key 'wages'"),
        (lambda t: t.replace("occupations: [43-4051.00]", "occupations: [99-9999.99]"), "unknown occupation"),
        (lambda t: t.replace("title: Test Pathway", "title: [oops"), "pathway.yaml, line 3"),
    ],
)
def test_a_bad_program_file_is_refused_with_its_line_and_nothing_is_written(courses, tmp_path, edit, message):
    good = ProgramSpec("pathway", "Test Pathway", "Purpose.", "Jobseekers.", 4, ["43-4051.00"], ["alpha", "bravo"])
    folder = tmp_path / "programs"
    folder.mkdir()
    (folder / "a-fine.yaml").write_text(program_file(ProgramSpec(**{**vars(good), "slug": "a-fine"})))
    (folder / "pathway.yaml").write_text(edit(program_file(good)))
    with pytest.raises(CatalogError) as caught:
        import_programs(sorted(folder.glob("*.yaml")), now=utcnow(), status=CourseStatus.PUBLISHED)
    assert any(message in p for p in caught.value.problems), caught.value.problems
    db.session.rollback()
    assert count(Program) == 0  # the valid file beside it was not imported either


def test_a_program_file_must_be_named_after_its_slug_and_published_courses_only(courses, tmp_path):
    make_course("delta", status=CourseStatus.DRAFT)
    spec = ProgramSpec("pathway", "T", "P.", "A.", 4, [], ["alpha", "delta"])
    (tmp_path / "other-name.yaml").write_text(program_file(spec))
    with pytest.raises(CatalogError) as caught:
        import_programs([tmp_path / "other-name.yaml"], now=utcnow(), status=CourseStatus.PUBLISHED)
    assert "named after its slug (pathway.yaml)" in caught.value.problems[0]
    (tmp_path / "pathway.yaml").write_text(program_file(spec))
    with pytest.raises(CatalogError) as caught:
        import_programs([tmp_path / "pathway.yaml"], now=utcnow(), status=CourseStatus.PUBLISHED)
    assert "cannot be published while these courses are not: delta" in caught.value.problems[0]


def test_parse_round_trips(courses):
    spec = ProgramSpec("pathway", "Title: with colon", "Purpose\nover lines.", "A.", 9, ["43-4051.00"], ["bravo", "a"])
    assert parse_program(program_file(spec), source="x", known_courses={"a", "bravo"}) == spec


# ---- learner pages ----------------------------------------------------------------------------------


def test_catalog_lists_programs_and_the_program_page_shows_courses_in_order(client, courses):
    make_program(course_slugs=("bravo", "alpha"))
    make_program("hidden", status=CourseStatus.DRAFT, title="Hidden Draft")
    html = client.get("/courses").get_data(as_text=True)
    assert "Test Pathway" in html and "Hidden Draft" not in html
    html = client.get("/programs").get_data(as_text=True)
    assert "Test Pathway" in html and "Hidden Draft" not in html
    response = client.get("/programs/pathway")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.index("Course bravo") < html.index("Course alpha")
    assert "2 h of instruction" in html and "about 4 weeks" in html and "Log in to enroll" in html
    assert client.get("/programs/hidden").status_code == 404
    assert client.get("/programs/nope").status_code == 404


def test_enrolling_enrols_in_every_course_once_and_progress_shows(client, courses):
    user = make_user(email="lee@example.org")
    make_program()
    login(client, "lee@example.org")
    for _ in range(2):  # a double click
        response = client.submit("/programs/pathway/enroll", page="/programs/pathway")
        assert response.status_code == 303 and response.headers["Location"] == "/programs/pathway"
    assert count(ProgramEnrollment) == 1
    assert count(Enrollment, Enrollment.user_id == user.id) == 2
    html = client.get("/programs/pathway").get_data(as_text=True)
    assert "0 of 2 courses completed" in html and "Continue: Course alpha" in html
    complete_course(user, courses[0])
    html = client.get("/programs/pathway").get_data(as_text=True)
    assert "1 of 2 courses completed" in html and "Continue: Course bravo" in html and "50% complete" in html
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "My programs" in dashboard and "1 of 2 courses completed" in dashboard and "next: Course bravo" in dashboard


def test_program_page_runs_a_constant_number_of_queries(client, courses, count_queries):
    make_user(email="lee@example.org")
    make_program(course_slugs=("alpha",))
    for n in range(8):
        make_course(f"extra-{n}")
    make_program("big", course_slugs=["alpha", "bravo", "charlie", *(f"extra-{n}" for n in range(8))])
    login(client, "lee@example.org")
    client.submit("/programs/pathway/enroll", page="/programs/pathway")
    client.submit("/programs/big/enroll", page="/programs/big")
    small = count_queries(lambda: client.get("/programs/pathway"))
    big = count_queries(lambda: client.get("/programs/big"))
    assert small == big
    assert count_queries(lambda: client.get("/courses")) > 0


# ---- the program certificate ---------------------------------------------------------------------


def test_completing_every_course_issues_one_program_certificate(courses, app):
    user = make_user(name="Pat Learner")
    program = make_program()
    enroll_program(user, program, now=utcnow())
    db.session.commit()
    complete_course(user, courses[0])
    assert program_certificates() == []
    complete_course(user, courses[1])
    [certificate] = program_certificates()
    assert certificate.course_id is None and certificate.program_id == program.id
    assert certificate.course_title == "Test Pathway" and certificate.holder_name == "Pat Learner"
    assert certificate.expires_at is None and certificate.status_list_index is not None
    parts = db.session.scalars(select(CertificatePart).order_by(CertificatePart.position)).all()
    assert [p.part.course_id for p in parts] == [courses[0].id, courses[1].id]
    enrollment = db.session.scalar(select(ProgramEnrollment))
    assert enrollment.completed_at is not None
    # completing a course again (a renewal) and re-running the rule issue nothing more
    from credentials.programs import issue_due
    from credentials.services import issue_for_enrollment

    assert issue_due(user.id, now=utcnow(), issuer="X") == []
    course_enrollment = db.session.scalar(select(Enrollment).where(Enrollment.course_id == courses[1].id))
    issue_for_enrollment(course_enrollment, now=utcnow(), issuer="X")
    db.session.commit()
    assert len(program_certificates()) == 1


def test_a_course_outside_the_program_or_no_program_enrolment_issues_nothing(courses):
    user = make_user()
    make_program()
    complete_course(user, courses[0])
    complete_course(user, courses[1])
    assert program_certificates() == []  # not enrolled in the program


def test_enrolling_after_finishing_the_courses_issues_the_certificate_at_once(client, courses):
    user = make_user(email="lee@example.org")
    make_program()
    complete_course(user, courses[0])
    complete_course(user, courses[1])
    login(client, "lee@example.org")
    response = client.submit("/programs/pathway/enroll", page="/programs/pathway")
    assert response.status_code == 303
    assert len(program_certificates(user)) == 1
    html = client.get("/programs/pathway").get_data(as_text=True)
    assert "Program completed" in html and "View program certificate" in html


def test_the_unique_constraint_refuses_a_second_program_certificate(courses):
    from sqlalchemy.exc import IntegrityError

    user = make_user()
    program = make_program()
    enroll_program(user, program, now=utcnow())
    db.session.commit()
    complete_course(user, courses[0])
    complete_course(user, courses[1])
    first = program_certificates()[0]
    db.session.add(
        Certificate(
            public_id="X" * 28,
            user_id=user.id,
            program_id=program.id,
            holder_name="x",
            course_title="x",
            course_slug="x",
            course_version=1,
            skills=[],
            goals=[],
            score=1,
            issuer_name="x",
            awarded_at=first.awarded_at,
            issued_at=first.issued_at,
        )
    )
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    assert len(program_certificates()) == 1


def test_double_completion_over_http_issues_one_program_certificate(client, other_client, courses):
    """The last lesson submitted twice (two tabs) completes the course once and issues one program certificate."""
    user = make_user(email="lee@example.org")
    program = make_program(course_slugs=("alpha",))
    enroll_program(user, program, now=utcnow())
    db.session.commit()
    course = courses[0]
    from courses.models import LessonProgress
    from tests.factories import passed_attempt

    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.user_id == user.id))
    lessons = [lesson for m in course.modules for lesson in m.lessons]
    for lesson in lessons[:-1]:
        db.session.add(LessonProgress(enrollment_id=enrollment.id, lesson_id=lesson.id, completed_at=utcnow()))
    for module in course.modules:
        db.session.add(passed_attempt(enrollment, module.quiz, now=utcnow()))
    db.session.commit()
    last = lessons[-1]
    url = f"/courses/alpha/{course.modules[-1].slug}/{last.slug}"
    login(client, "lee@example.org")
    login(other_client, "lee@example.org")
    tokens = [c.csrf_token(url) for c in (client, other_client)]
    for c, token in zip((client, other_client), tokens, strict=True):
        assert c.post(url + "/complete", data={"csrf_token": token}).status_code in (302, 303)
    db.session.expire_all()
    assert count(Certificate, Certificate.course_id == course.id) == 1
    assert len(program_certificates(user)) == 1


def test_racing_completions_of_the_last_two_courses_issue_exactly_one(app, courses):
    """Two transactions each complete one of the two remaining courses at the same moment (the real race needs
    PostgreSQL's row locks; SQLite serializes the two writers)."""
    user = make_user()
    program = make_program()
    enroll_program(user, program, now=utcnow())
    db.session.commit()
    user_id, course_ids = user.id, [courses[0].id, courses[1].id]
    barrier = threading.Barrier(2)
    errors = []

    def finish(course_id):
        try:
            with app.app_context():
                from courses.models import Course

                course = db.session.get(Course, course_id)
                from accounts.models import User

                barrier.wait()
                complete_course(db.session.get(User, user_id), course)
                db.session.remove()
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=finish, args=(cid,)) for cid in course_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    db.session.expire_all()
    assert len(program_certificates()) == 1


def test_program_certificate_pdf_verify_page_api_and_credential(client, courses):
    user = make_user(email="lee@example.org", name="Pat Learner")
    program = make_program()
    enroll_program(user, program, now=utcnow())
    db.session.commit()
    complete_course(user, courses[0])
    complete_course(user, courses[1])
    certificate = program_certificates()[0]
    parts = db.session.scalars(select(Certificate).where(Certificate.course_id.is_not(None))).all()
    display = format_public_id(certificate.public_id)
    page = client.get(f"/verify/{display}").get_data(as_text=True)
    assert "✓ Valid" in page and "Program</dt>" in page and "Test Pathway" in page
    for part in parts:
        assert format_public_id(part.public_id) in page and part.course_title in page
    facts = client.get(f"/api/v1/certificates/{display}").get_json()
    assert facts["kind"] == "program" and [s["course"] for s in facts["stacks"]] == ["Course alpha", "Course bravo"]
    credential = client.get(f"/credentials/{display}.json").get_json()
    achievement = credential["credentialSubject"]["achievement"]
    assert achievement["id"].endswith("/programs/pathway#achievement")
    stacked = [a for a in achievement["alignment"] if a.get("targetType") == "ceterms:Credential"]
    assert [a["targetUrl"].rsplit("/", 1)[1] for a in stacked] == ["alpha#achievement", "bravo#achievement"]
    narrative = achievement["criteria"]["narrative"]
    assert "Course alpha" in narrative and "Course bravo" in narrative
    assert "proof" in credential
    assert credential["credentialSchema"] == openbadges.CREDENTIAL_SCHEMA  # its type defined by vc.OB_EXTENSIONS
    report = client.post("/api/v1/verify", data=json.dumps(credential), content_type="application/json").get_json()
    assert report["verified"] is True, report
    baked = client.get(f"/credentials/{display}.png")
    assert baked.status_code == 200 and b"openbadgecredential" in baked.data
    report = client.post("/api/v1/verify", data=baked.data, content_type="image/png").get_json()
    assert report["verified"] is True, report
    login(client, "lee@example.org")
    pdf = client.get(f"/certificates/{display}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    from io import BytesIO

    from pypdf import PdfReader

    text = "".join(page.extract_text() for page in PdfReader(BytesIO(pdf.data)).pages)
    assert "has completed every course of the program" in text and "Course alpha" in text
    mine = client.get("/certificates").get_data(as_text=True)
    assert "Test Pathway" in mine and "Program" in mine


def test_revoking_a_course_credential_cascades_and_the_verify_page_says_which(client, courses):
    make_user(email="admin@example.org", role=Role.ADMIN)
    user = make_user(email="lee@example.org")
    program = make_program()
    enroll_program(user, program, now=utcnow())
    db.session.commit()
    complete_course(user, courses[0])
    complete_course(user, courses[1])
    certificate = program_certificates()[0]
    bravo = db.session.scalar(select(Certificate).where(Certificate.course_id == courses[1].id))
    login(client, "admin@example.org")
    bravo_id = format_public_id(bravo.public_id)
    response = client.submit(
        f"/admin/certificates/{bravo_id}/revoke",
        {"reason": "academic_misconduct", "note": "Copied the quiz answers."},
        page=f"/admin/certificates/{bravo_id}",
    )
    assert response.status_code == 303
    db.session.expire_all()
    certificate = db.session.get(Certificate, certificate.id)
    assert certificate.revocation_reason is RevocationReason.STACKED_REVOKED
    assert bravo_id in certificate.revocation_note
    page = client.get(f"/verify/{format_public_id(certificate.public_id)}").get_data(as_text=True)
    assert "✗ Revoked" in page and "A course credential it stacks was revoked" in page
    assert "Revoked course credential: <strong>Course bravo</strong>" in page and bravo_id in page
    assert "Academic misconduct" in page
    facts = client.get(f"/api/v1/certificates/{format_public_id(certificate.public_id)}").get_json()
    assert facts["status"] == "revoked" and facts["stacks"][1]["status"] == "revoked"
    # the program certificate's status-list bit is set too
    from credentials.openbadges import bit_is_set, decode_bits, encoded_bits

    assert bit_is_set(decode_bits(encoded_bits(certificate.status_list_id)), certificate.status_list_index)
    # the program certificate alone cannot be reinstated; reinstating the course credential undoes the cascade
    program_id = format_public_id(certificate.public_id)
    client.submit(f"/admin/certificates/{program_id}/reinstate", page=f"/admin/certificates/{program_id}")
    db.session.expire_all()
    assert db.session.get(Certificate, certificate.id).revoked_at is not None
    client.submit(f"/admin/certificates/{bravo_id}/reinstate", page=f"/admin/certificates/{bravo_id}")
    db.session.expire_all()
    assert db.session.get(Certificate, certificate.id).revoked_at is None
    actions = db.session.scalars(
        select(CertificateEvent.action).where(CertificateEvent.certificate_id == certificate.id)
    ).all()
    assert sorted(actions) == ["issued", "reinstated", "revoked"]


def test_a_program_certificate_revoked_for_its_own_reason_stays_revoked(courses):
    admin = make_user(role=Role.ADMIN)
    user = make_user()
    program = make_program()
    enroll_program(user, program, now=utcnow())
    db.session.commit()
    complete_course(user, courses[0])
    complete_course(user, courses[1])
    certificate = program_certificates()[0]
    revoke(admin, certificate, reason=RevocationReason.IDENTITY_MISMATCH, note="Wrong person.", now=utcnow())
    alpha = db.session.scalar(select(Certificate).where(Certificate.course_id == courses[0].id))
    revoke(admin, alpha, reason=RevocationReason.OTHER, note="x", now=utcnow())
    from credentials.services import reinstate

    reinstate(admin, alpha, now=utcnow())
    db.session.commit()
    assert certificate.revocation_reason is RevocationReason.IDENTITY_MISMATCH


def test_a_revoked_course_certificate_blocks_the_program_certificate(courses):
    admin = make_user(role=Role.ADMIN)
    user = make_user()
    program = make_program()
    complete_course(user, courses[0])
    alpha = db.session.scalar(select(Certificate).where(Certificate.course_id == courses[0].id))
    revoke(admin, alpha, reason=RevocationReason.OTHER, note="x", now=utcnow())
    db.session.commit()
    enroll_program(user, program, now=utcnow())
    db.session.commit()
    complete_course(user, courses[1])
    assert program_certificates() == []
    from credentials.services import reinstate

    reinstate(admin, alpha, now=utcnow())
    db.session.commit()
    assert len(program_certificates()) == 1


# ---- studio -------------------------------------------------------------------------------------------


def test_admin_creates_orders_publishes_and_archives_a_program(client, courses):
    make_user(email="admin@example.org", role=Role.ADMIN)
    login(client, "admin@example.org")
    response = client.submit(
        "/studio/programs/new",
        {
            "title": "Office Pathway",
            "slug": "office-pathway",
            "purpose": "Use AI at work.\nSafely.",
            "audience": "Office workers.",
            "normal_weeks": "6",
            "courses": ["alpha", "charlie"],
            "occupations": ["43-4051.00"],
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == "/studio/programs/office-pathway"
    program = db.session.scalar(select(Program).where(Program.slug == "office-pathway"))
    assert program.status is CourseStatus.DRAFT and [c.slug for c in program.courses] == ["alpha", "charlie"]
    assert program.purpose == "Use AI at work. Safely."
    assert client.get("/programs/office-pathway").status_code == 404  # a draft is invisible to learners
    page = "/studio/programs/office-pathway"
    response = client.submit(f"{page}/courses/0/down", page=page)
    assert response.status_code == 303
    db.session.expire_all()
    program = db.session.scalar(select(Program).where(Program.slug == "office-pathway"))
    assert [c.slug for c in program.courses] == ["charlie", "alpha"] and program.version == 2
    # adding a course keeps the order and appends it
    seen = client.get(page).get_data(as_text=True).split('name="seen" type="hidden" value="')[1].split('"')[0]
    response = client.submit(
        page,
        {
            "seen": seen,
            "title": "Office Pathway",
            "purpose": "Use AI at work.",
            "audience": "Office workers.",
            "normal_weeks": "6",
            "courses": ["alpha", "bravo", "charlie"],
        },
    )
    assert response.status_code == 303
    db.session.expire_all()
    program = db.session.scalar(select(Program).where(Program.slug == "office-pathway"))
    assert [c.slug for c in program.courses] == ["charlie", "alpha", "bravo"]
    # a stale form is refused and changes nothing
    response = client.submit(
        page,
        {"seen": seen, "title": "Stale", "purpose": "p", "audience": "a", "normal_weeks": "6", "courses": ["alpha"]},
    )
    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.scalar(select(Program.title).where(Program.slug == "office-pathway")) == "Office Pathway"
    assert "changed since you opened it" in client.get(page).get_data(as_text=True)
    client.submit(f"{page}/status/published", page=page)
    assert client.get("/programs/office-pathway").status_code == 200
    export = client.get(f"{page}.yaml")
    assert export.status_code == 200 and b"courses: [charlie, alpha, bravo]" in export.data
    client.submit(f"{page}/status/archived", page=page)
    assert client.get("/programs/office-pathway").status_code == 404  # archived: only enrolled learners see it


def test_studio_refuses_bad_program_input_with_422_and_writes_nothing(client, courses):
    make_user(email="admin@example.org", role=Role.ADMIN)
    make_course("drafty", status=CourseStatus.DRAFT)
    login(client, "admin@example.org")
    base = {"title": "T", "purpose": "P", "audience": "A", "normal_weeks": "6", "courses": ["alpha"]}
    for bad in (
        {"slug": "Bad Slug"},
        {"slug": "ok", "normal_weeks": "0"},
        {"slug": "ok", "courses": ["no-such-course"]},
        {"slug": "ok", "courses": []},
        {"slug": "ok", "title": ""},
    ):
        response = client.submit("/studio/programs/new", {**base, **bad})
        assert response.status_code == 422, bad
    assert count(Program) == 0
    make_program()
    response = client.submit("/studio/programs/new", {**base, "slug": "pathway"})
    assert response.status_code == 422 and "already uses this slug" in response.get_data(as_text=True)
    make_program("with-draft", course_slugs=("alpha", "drafty"), status=CourseStatus.DRAFT)
    response = client.submit("/studio/programs/with-draft/status/published", page="/studio/programs/with-draft")
    assert response.status_code == 303
    assert "courses are not: drafty" in client.get("/studio/programs/with-draft").get_data(as_text=True)
    assert db.session.scalar(select(Program.status).where(Program.slug == "with-draft")) is CourseStatus.DRAFT


def test_learners_cannot_reach_the_program_studio(client, courses):
    make_user(email="lee@example.org")
    make_program()
    login(client, "lee@example.org")
    pages = ("/studio/programs", "/studio/programs/new", "/studio/programs/pathway", "/studio/programs/pathway.yaml")
    for url in pages:
        assert client.get(url).status_code == 403


def test_a_course_a_published_program_uses_cannot_be_archived(client, courses):
    from core.audit import AuditEvent

    make_program("pathway", ("alpha", "bravo"), title="Warehouse Pathway")
    make_program("office", ("alpha", "charlie"), title="Office Pathway")
    make_program("drafty", ("bravo",), status=CourseStatus.DRAFT, title="Draft Pathway")
    make_user(email="admin@example.org", role=Role.ADMIN)
    login(client, "admin@example.org")
    audits = db.session.scalar(select(func.count()).select_from(AuditEvent))

    response = client.submit("/studio/alpha/status/archived", page="/studio/")
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "cannot be archived" in page and "Office Pathway" in page and "Warehouse Pathway" in page
    db.session.expire_all()
    assert db.session.scalar(select(Course.status).where(Course.slug == "alpha")) is CourseStatus.PUBLISHED
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == audits

    # a draft program does not hold its course; an archived one no longer does
    assert client.submit("/studio/bravo/status/archived", page="/studio/").status_code == 409
    db.session.execute(update(Program).where(Program.slug == "pathway").values(status=CourseStatus.ARCHIVED))
    db.session.commit()
    assert client.submit("/studio/bravo/status/archived", page="/studio/").status_code == 303
    db.session.expire_all()
    assert db.session.scalar(select(Course.status).where(Course.slug == "bravo")) is CourseStatus.ARCHIVED
    assert client.submit("/studio/charlie/status/archived", page="/studio/").status_code == 409
