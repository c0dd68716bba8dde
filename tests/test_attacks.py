"""Classic attacks: stored XSS (pages, PDF, CSV), SQL metacharacters in searches, path traversal, IDOR."""

from __future__ import annotations

import csv
import io
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from accounts.models import Role, User
from core.database import utcnow
from core.extensions import db
from credentials import services
from credentials.ids import format_public_id
from credentials.models import NameChangeRequest, RevocationReason
from orgs.models import SavedCandidate
from tests.factories import load_test_framework, login, make_certificate, make_course, make_employer, make_user

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def assert_inert(html: str, payload: str = XSS, escaped: str = ESCAPED) -> None:
    """The payload is shown as text (escaped) and never as markup."""
    assert escaped in html, "the stored value is not shown at all"
    assert payload not in html
    assert "<script>alert" not in html and "<img src=x" not in html


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def csv_cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


@pytest.fixture
def pdf_dir(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "CERTIFICATE_DIR", str(tmp_path / "pdfs"))
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path / "uploads"))
    return tmp_path


# ---- stored XSS ---------------------------------------------------------------------------------------


def test_names_entered_by_users_are_inert_everywhere_they_are_shown(client, other_client, ctx, pdf_dir):
    load_test_framework()
    make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    _, org = make_employer("emma@example.org", name="Emma Employer")
    learner = make_user(email="lee@example.org", name="Lee")
    login(client, "lee@example.org")
    saved = client.submit("/account", {"name": XSS, "legal_name": XSS})
    assert saved.status_code == 302
    assert_inert(page(client, "/account"))
    certificate = make_certificate(db.session.get(User, learner.id), make_course("ai-basics"))
    assert certificate.holder_name == XSS
    public = format_public_id(certificate.public_id)
    assert_inert(page(client, "/certificates"))
    assert_inert(page(client, f"/certificates/{public}"))
    assert_inert(page(other_client, f"/verify/{public}"))  # the public verification page

    login(other_client, "emma@example.org")
    candidates = f"/organizations/{org.slug}/candidates"
    other_client.submit(candidates, {"certificate_id": public, "note": XSS}, page=f"/verify/{public}")
    assert db.session.scalar(select(SavedCandidate.note).where(SavedCandidate.organization_id == org.id)) == XSS
    assert_inert(page(other_client, candidates))
    bulk = other_client.post(
        "/verify/bulk",
        data={
            "csrf_token": other_client.csrf_token("/verify/bulk"),
            "file": (io.BytesIO(f"{public},{XSS}\n{XSS}\n".encode()), "ids.csv"),
            "show": "1",
        },
        content_type="multipart/form-data",
    )
    assert bulk.status_code == 200
    assert_inert(bulk.get_data(as_text=True))

    other_client.post("/logout", data={"csrf_token": other_client.csrf_token("/account")})
    login(other_client, "admin@example.org")
    assert_inert(page(other_client, "/admin/users/?q=lee"))
    assert_inert(page(other_client, "/admin/certificates"))
    assert_inert(page(other_client, f"/admin/certificates/{public}"))
    other_client.submit(f"/admin/users/{learner.id}/role", {"role": "admin"}, page="/admin/users/")
    assert_inert(page(other_client, "/admin/audit/"))


def test_notes_and_reasons_are_inert_for_admins_and_not_published(client, other_client, ctx, pdf_dir):
    load_test_framework()
    make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    learner = make_user(email="lee@example.org", name="Lee Learner")
    certificate = make_certificate(learner, make_course("ai-basics"))
    public = format_public_id(certificate.public_id)
    login(client, "lee@example.org")
    response = client.submit("/certificates/name-correction", {"requested_name": "Lee " + XSS, "reason": XSS})
    assert response.status_code == 303
    assert_inert(page(client, "/certificates"), "Lee " + XSS, "Lee " + ESCAPED)

    login(other_client, "admin@example.org")
    assert_inert(page(other_client, "/admin/name-corrections"))
    request_id = db.session.scalar(select(NameChangeRequest.id))
    other_client.submit(
        f"/admin/name-corrections/{request_id}", {"note": XSS, "reject": "1"}, page="/admin/name-corrections"
    )
    assert_inert(page(other_client, "/admin/name-corrections"))
    revoked = other_client.submit(
        f"/admin/certificates/{public}/revoke",
        {"reason": "other", "note": XSS},
        page=f"/admin/certificates/{public}",
    )
    assert revoked.status_code == 303
    assert_inert(page(other_client, f"/admin/certificates/{public}"))
    public_page = page(client, f"/verify/{public}")
    assert "Revoked" in public_page
    assert "alert(" not in public_page  # the note is internal: only the category is public


QUESTIONS = f"""? Which is right? {XSS}
* Right {XSS}
- Wrong
> Because {XSS}"""


def test_course_content_written_in_the_studio_is_inert_for_learners(client, other_client, ctx, pdf_dir):
    from tests.test_studio import post

    load_test_framework()
    make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    make_user(email="lee@example.org", name="Lee Learner")
    login(client, "admin@example.org")
    slug = "xss-course"
    created = client.submit(
        "/studio/new",
        {
            "title": "Course " + XSS,
            "slug": slug,
            "summary": "Summary " + XSS,
            "audience": "Audience " + XSS,
            "estimated_minutes": "30",
            "revision": "0",
        },
    )
    assert created.status_code == 303
    tags = {"_prefix": "tags-", "skills": "AIL-01", "goals": "G1"}
    assert post(client, f"/studio/{slug}/tags", tags, slug=slug).status_code == 303
    module = {"_prefix": "module-", "title": "Module " + XSS}
    assert post(client, f"/studio/{slug}/modules", module, slug=slug).status_code == 303
    # <script> lines are refused at publishing (tested in test_studio); other markup must come out inert
    body = "## Part one\n\nAn image <img src=x onerror=alert(2)> and `<b>code</b>` and \\<b>escaped\\</b>.\n"
    saved = post(
        client,
        f"/studio/{slug}/modules/0/lessons/new",
        {"title": "Lesson " + XSS, "minutes": "5", "body": body, "save": "1"},
        slug=slug,
    )
    assert saved.status_code == 303
    quiz = post(
        client,
        f"/studio/{slug}/modules/0/quiz",
        {"title": "Quiz " + XSS, "pass_mark": "50", "questions": QUESTIONS},
        slug=slug,
    )
    assert quiz.status_code == 303
    assert_inert(page(client, f"/studio/{slug}"))
    assert_inert(page(client, "/studio/"))
    assert_inert(page(client, f"/studio/{slug}/preview"))
    published = post(client, f"/studio/{slug}/publish", {}, slug=slug)
    assert published.status_code == 303 and published.headers["Location"] == "/studio/", page(client, f"/studio/{slug}")

    assert_inert(page(other_client, "/courses"))
    assert_inert(page(other_client, f"/courses/{slug}"))
    login(other_client, "lee@example.org")
    other_client.submit(f"/courses/{slug}/enroll", page=f"/courses/{slug}")
    lesson_url = next(
        m.group(0)
        for m in re.finditer(rf"/courses/{slug}/[a-z0-9-]+/[a-z0-9-]+", page(other_client, f"/courses/{slug}"))
        if not m.group(0).endswith(("/quiz", "/continue", "/enroll"))
    )
    lesson = page(other_client, lesson_url)
    assert_inert(lesson)
    assert "&lt;img src=x onerror=alert(2)&gt;" in lesson and "&lt;b&gt;code&lt;/b&gt;" in lesson
    assert "<b>" not in lesson
    module_slug = lesson_url.split("/")[3]
    quiz_url = f"/courses/{slug}/{module_slug}/quiz"
    assert_inert(page(other_client, quiz_url))
    started = other_client.submit(f"{quiz_url}/start", page=quiz_url)
    attempt = page(other_client, started.headers["Location"])
    assert_inert(attempt)
    choice = re.search(r'name="(q-\d+)" value="([\w-]+)"', attempt)
    result = other_client.submit(
        started.headers["Location"], {choice.group(1): choice.group(2)}, page=started.headers["Location"]
    )
    assert result.status_code == 303
    assert_inert(page(other_client, result.headers["Location"]))
    assert_inert(page(other_client, "/dashboard"))


def pdf_text(pdf: bytes) -> str:
    return " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def test_markup_in_names_and_titles_is_printed_as_text_in_the_pdf(client, ctx, pdf_dir, caplog):
    load_test_framework()
    name = 'Lee <b>Bold</b> <img src="https://evil.example/x.png">'
    learner = make_user(email="lee@example.org", name=name)
    certificate = make_certificate(learner, make_course("ai-basics", title='Course <i>Italic</i> <link href="x">'))
    login(client, "lee@example.org")
    response = client.get(f"/certificates/{format_public_id(certificate.public_id)}.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    text = " ".join(pdf_text(response.data).split())
    assert "<b>Bold</b>" in text and "evil.example" in text
    assert "<i>Italic</i>" in text
    assert "refused to fetch" not in caplog.text  # the markup was never parsed, so nothing was fetched


def test_csv_exports_neutralise_formulas_in_every_user_value(client, other_client, ctx, pdf_dir):
    load_test_framework()
    make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    _, org = make_employer("emma@example.org", name="Emma Employer")
    formulas = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
    certificate = make_certificate(
        make_user(email="lee@example.org", name="=cmd|' /C calc'!A0"), make_course("ai-basics", title="+Course")
    )
    public = format_public_id(certificate.public_id)
    login(client, "emma@example.org")
    candidates = f"/organizations/{org.slug}/candidates"
    client.submit(candidates, {"certificate_id": public, "note": formulas[0]}, page=f"/verify/{public}")
    exported = client.get(candidates + "?format=csv")
    assert exported.mimetype == "text/csv"
    cells = csv_cells(exported.get_data(as_text=True))
    assert '\'=HYPERLINK("http://evil.example","x")' in cells and "'=cmd|' /C calc'!A0" in cells
    assert not any(cell.startswith(FORMULA_START) for cell in cells), cells

    out = io.StringIO()
    csv.writer(out).writerows([*([public, f] for f in formulas), ["=1+2", "@x"]])
    rows = out.getvalue()
    bulk = client.post(
        "/verify/bulk",
        data={
            "csrf_token": client.csrf_token("/verify/bulk"),
            "file": (io.BytesIO(rows.encode()), "ids.csv"),
            "download": "1",
        },
        content_type="multipart/form-data",
    )
    assert bulk.mimetype == "text/csv"
    cells = csv_cells(bulk.get_data(as_text=True))
    assert "'+Course" in cells and "'=1+2" in cells and "'@x" in cells
    assert not any(cell.startswith(FORMULA_START) for cell in cells), cells

    login(other_client, "admin@example.org")
    target = make_user(email="-2+3@example.org", name="Tom")  # the audit summary starts with the email
    other_client.submit(f"/admin/users/{target.id}/role", {"role": "admin"}, page="/admin/users/")
    cells = csv_cells(other_client.get("/admin/audit/?format=csv").get_data(as_text=True))
    assert "'-2+3@example.org: learner → admin" in cells
    assert not any(cell.startswith(FORMULA_START) for cell in cells), cells


# ---- SQL metacharacters in searches and filters ---------------------------------------------------------

METACHARACTERS = [
    "'",
    '"',
    ";",
    "--",
    "%",
    "_",
    "\\",
    "' OR '1'='1",
    "%' --",
    '"; DROP TABLE users; --',
    "\\%",
    "[a-z]",
    "*",
]


@pytest.fixture
def searchable(client, ctx, pdf_dir, prebuilt):
    """Admin logged in; one user, course and certificate per metacharacter, plus plain ones that match nothing.

    The rows are built once per module and copied back for each test (tests/conftest.py, prebuilt).
    """
    names = prebuilt(searchable_rows)
    login(client, "admin@example.org")
    return dict(names)


def searchable_rows() -> dict[str, str]:
    load_test_framework()
    admin = make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    names = {
        "percent": "Rate 100% Done",
        "under": "Under_score Person",
        "back": "Back\\slash Person",
        "quote": "Quinn O'Brien",
        "plain": "Plain Person",
    }
    for key, name in names.items():
        certificate = make_certificate(
            make_user(email=f"{key}@example.org", name=name), make_course(f"course-{key}", title=f"Course {name}")
        )
        if key == "plain":  # an audit event naming a person
            services.revoke(admin, certificate, reason=RevocationReason.OTHER, note="n", now=utcnow())
    db.session.commit()
    return names


SEARCHES = [
    "/courses?q={v}",
    "/courses?goal={v}&skill={v}&occupation={v}&audience={v}",
    "/admin/users/?q={v}&role={v}&page={v}",
    "/admin/certificates?q={v}&status={v}&page={v}",
    "/admin/audit/?q={v}&action={v}&page={v}",
    "/admin/audit/?q={v}&action={v}&format=csv",
    "/admin/insights?table={v}&format={v}",
    "/framework?q={v}",
]


@pytest.mark.parametrize("value", METACHARACTERS)
def test_sql_metacharacters_in_searches_and_filters_are_plain_text(client, searchable, value):
    from urllib.parse import quote

    for template in SEARCHES:
        url = template.format(v=quote(value, safe=""))
        response = client.get(url)
        assert response.status_code in (200, 400), (url, response.status_code)
    assert client.get("/verify?id=" + quote(value, safe="")).status_code == 422
    assert db.session.scalar(select(func.count()).select_from(User)) == 6  # nothing dropped, nothing added


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("%", "percent"),
        ("100%", "percent"),
        ("_", "under"),
        ("r_s", "under"),
        ("\\", "back"),
        ("'", "quote"),
        ("o'b", "quote"),
    ],
)
def test_wildcards_in_searches_match_themselves_only(client, searchable, query, key):
    from urllib.parse import quote

    names = searchable
    expected = names[key].replace("'", "&#39;")
    others = [n.replace("'", "&#39;") for k, n in names.items() if k != key]
    for url in (
        f"/admin/users/?q={quote(query)}",
        f"/admin/certificates?q={quote(query)}",
        f"/courses?q={quote(query)}",
    ):
        html = page(client, url)
        assert expected in html, url
        assert not [o for o in others if o in html], url


def test_audit_log_filters_treat_wildcards_as_text(client, searchable):
    html = page(client, "/admin/audit/?action=%25")
    assert "certificate.revoked" not in html  # no action starts with a literal %
    assert "certificate.revoked" in page(client, "/admin/audit/?action=certificate.")
    assert "certificate.revoked" not in page(client, "/admin/audit/?action=certificate_")
    assert "Plain Person" in page(client, "/admin/audit/?q=plain")
    assert "Plain Person" not in page(client, "/admin/audit/?q=%25%25")


# ---- path traversal -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/certificates/..%2F..%2Finstance%2Fconfig.py.pdf",
        "/certificates/..%2f..%2f..%2fetc%2fpasswd.pdf",
        "/certificates/....%2F%2F....%2F%2Fetc%2Fpasswd.pdf",
        "/certificates/%2e%2e%2f%2e%2e%2finstance%2fsigning-keys.json.pdf",
        "/media/..%2F..%2Finstance%2Fconfig.py",
        "/media/..%2F..%2Finstance%2Fconfig.py.png",
        "/media/" + "a" * 64 + ".png%2F..%2F..%2Fconfig.py",
        "/media/" + "a" * 64 + "..%2F..%2Fconfig.py",
        "/static/..%2F..%2Finstance%2Fconfig.py",
        "/static/..%2Fcore%2Fconfig.py",
        "/static/%2e%2e/%2e%2e/instance/config.py",
        "/static/../wsgi.py",
        "/static/%252e%252e%252fwsgi.py",
        "/static/..\\..\\wsgi.py",
        "/static/css/..%2F..%2F..%2Fwsgi.py",
        "/credentials/..%2F..%2Finstance%2Fsigning-keys.json",
        "/verify/..%2F..%2Finstance%2Fsigning-keys.json",
        "/api/v1/certificates/..%2F..%2Finstance%2Fsigning-keys.json",
    ],
)
def test_traversal_in_download_paths_finds_nothing(client, ctx, path):
    make_user(email="admin@example.org", role=Role.ADMIN)
    login(client, "admin@example.org")  # the most privileged reader
    response = client.get(path)
    assert response.status_code in (400, 404), (path, response.status_code)
    body = response.get_data()
    assert b"SECRET_KEY" not in body and b"privateKeyMultibase" not in body and b"create_app" not in body


def test_media_files_are_looked_up_by_record_never_by_the_typed_path(client, app, ctx, pdf_dir):
    from courses.models import MediaFile

    secret = pdf_dir / "secret.txt"
    secret.write_text("TOP SECRET")
    (pdf_dir / "uploads").mkdir()
    # even a record naming a file outside the folder is served only from the upload folder, by its own name
    db.session.add(
        MediaFile(
            sha256="b" * 64,
            mime_type="image/png",
            extension="png",
            size=1,
            width=1,
            height=1,
            alt_text="x",
            created_at=utcnow(),
        )
    )
    db.session.commit()
    assert client.get("/media/" + "b" * 64 + ".png").status_code == 404  # recorded but not on disk
    assert client.get("/media/" + "b" * 64 + ".txt").status_code == 404
    assert b"TOP SECRET" not in client.get("/media/..%2Fsecret.txt").get_data()


def test_course_import_refuses_files_outside_the_course_folder(app, ctx, tmp_path):
    from courses.catalog import course_spec, spec_files

    load_test_framework()
    course = make_course("ai-basics")
    files = spec_files(course_spec(course))
    db.session.delete(course)
    db.session.commit()
    (tmp_path / "secret.md").write_text("TOP SECRET lesson stolen from outside")
    runner = app.test_cli_runner()

    def write(folder, replace_from=None, replace_to=None):
        for relative, text in files.items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if relative == "course.yaml" and replace_from:
                text = text.replace(replace_from, replace_to, 1)
            path.write_text(text)
        return folder

    lesson_file = next(r for r in files if r.endswith(".md"))
    for hostile in ("../../secret.md", "/etc/passwd", "~/.ssh/id_rsa", "..\\\\secret.md"):
        folder = write(tmp_path / f"c{len(hostile)}", f"file: {lesson_file}", f"file: {hostile}")
        result = runner.invoke(args=["courses", "import", str(folder)])
        assert result.exit_code != 0 and "Nothing was imported" in result.output, (hostile, result.output)
    # a symlink inside the folder that points outside it is refused too
    linked = write(tmp_path / "linked")
    target = linked / lesson_file
    target.unlink()
    target.symlink_to(tmp_path / "secret.md")
    result = runner.invoke(args=["courses", "import", str(linked)])
    assert result.exit_code != 0 and "leaves the course folder" in result.output, result.output
    from courses.models import Lesson

    assert not db.session.scalar(select(func.count()).select_from(Lesson).where(Lesson.body_md.contains("TOP SECRET")))


# ---- IDOR ---------------------------------------------------------------------------------------------


@pytest.fixture
def two_learners(client, other_client, ctx, pdf_dir):
    load_test_framework()
    make_user(email="admin@example.org", role=Role.ADMIN)
    alice = make_user(email="alice@example.org", name="Alice Owner")
    make_user(email="bob@example.org", name="Bob Other")
    make_employer("emma@example.org", org_name="Emma Hiring")
    course = make_course("ai-basics")
    return alice, course


def test_quiz_attempts_and_progress_belong_to_their_learner(client, other_client, two_learners):
    alice, _ = two_learners
    login(client, "alice@example.org")
    client.submit("/courses/ai-basics/enroll", page="/courses/ai-basics")
    client.submit("/courses/ai-basics/module-1/lesson-1-1/complete", page="/courses/ai-basics/module-1/lesson-1-1")
    started = client.submit("/courses/ai-basics/module-1/quiz/start", page="/courses/ai-basics/module-1/quiz")
    attempt_url = started.headers["Location"]
    assert attempt_url == "/courses/ai-basics/module-1/quiz/attempts/1"

    login(other_client, "bob@example.org")
    assert other_client.get(attempt_url).status_code == 403  # not enrolled: nothing of Alice's is reachable
    token = other_client.csrf_token("/account")
    assert other_client.post(attempt_url, data={"csrf_token": token, "q-1": "1"}).status_code == 403
    other_client.submit("/courses/ai-basics/enroll", page="/courses/ai-basics")
    assert other_client.get(attempt_url).status_code == 404  # Bob has no attempt 1: Alice's is never shown
    assert other_client.post(attempt_url, data={"csrf_token": token, "q-1": "1"}).status_code == 404
    from courses.models import Enrollment, QuizAttempt

    alice_enrollment = db.session.scalar(select(Enrollment).where(Enrollment.user_id == alice.id))
    attempt = db.session.scalar(select(QuizAttempt).where(QuizAttempt.enrollment_id == alice_enrollment.id))
    db.session.refresh(attempt)
    assert attempt.submitted_at is None and attempt.answers in (None, {})  # Bob's posts changed nothing


def test_certificate_pages_and_pdfs_are_for_the_holder_and_admins(client, other_client, app, two_learners):
    alice, course = two_learners
    certificate = make_certificate(alice, course)
    public = format_public_id(certificate.public_id)
    urls = [
        f"/certificates/{public}",
        f"/certificates/{public}.pdf",
        f"/certificates/{certificate.public_id.lower()}.pdf",
    ]

    def statuses(email):
        app.test_client_class = type(client)
        visitor = app.test_client()
        if email:
            login(visitor, email)
        return [visitor.get(url).status_code for url in urls]

    assert statuses("alice@example.org") == [200, 200, 200]
    assert statuses("admin@example.org") == [200, 200, 200]
    assert statuses("bob@example.org") == [404, 404, 404]
    assert statuses("emma@example.org") == [404, 404, 404]  # employers verify through the public page
    assert all(code == 302 for code in statuses(None))
    admin = db.session.scalar(select(User).where(User.role == Role.ADMIN))
    services.revoke(admin, certificate, reason=RevocationReason.ACADEMIC_MISCONDUCT, note="copied", now=utcnow())
    db.session.commit()
    assert statuses("bob@example.org") == [404, 404, 404]
    assert statuses("emma@example.org") == [404, 404, 404]
    assert all(code == 302 for code in statuses(None))
    assert statuses("alice@example.org") == [200, 200, 200]  # the holder keeps a stamped copy (by design)
    verify = page(other_client, f"/verify/{public}")
    assert "Revoked" in verify and "copied" not in verify


def test_name_correction_requests_are_private_to_the_learner_and_admins(client, other_client, two_learners):
    alice, course = two_learners
    make_certificate(alice, course)
    login(client, "alice@example.org")
    client.submit("/certificates/name-correction", {"requested_name": "Alice Private-Name", "reason": "secret reason"})
    request_id = db.session.scalar(select(NameChangeRequest.id))
    login(other_client, "bob@example.org")
    for url in ("/certificates", "/certificates/name-correction", "/dashboard", "/account"):
        html = page(other_client, url)
        assert "Private-Name" not in html and "secret reason" not in html, url
    token = other_client.csrf_token("/account")
    refused = other_client.post(f"/admin/name-corrections/{request_id}", data={"csrf_token": token, "approve": "1"})
    assert refused.status_code == 403
    assert db.session.get(User, alice.id).legal_name == "Alice Owner"
    assert "Private-Name" in page(client, "/certificates")


def test_employers_see_and_remove_only_their_own_candidates(client, other_client, two_learners):
    alice, course = two_learners
    certificate = make_certificate(alice, course)
    public = format_public_id(certificate.public_id)
    _, evan_org = make_employer("evan@example.org", org_name="Evan Hiring")
    login(client, "emma@example.org")
    emma_list = "/organizations/emma-hiring/candidates"
    client.submit(emma_list, {"certificate_id": public, "note": "Emma's shortlist"}, page=f"/verify/{public}")
    row_id = db.session.scalar(select(SavedCandidate.id))
    login(other_client, "evan@example.org")
    evan_list = f"/organizations/{evan_org.slug}/candidates"
    assert "Emma&#39;s shortlist" not in page(other_client, evan_list)
    assert "shortlist" not in other_client.get(evan_list + "?format=csv").get_data(as_text=True)
    assert other_client.get(emma_list).status_code == 404  # another organization's list does not exist for him
    token = other_client.csrf_token(evan_list)
    assert other_client.post(f"{evan_list}/{row_id}/remove", data={"csrf_token": token}).status_code == 404
    assert other_client.post(f"{emma_list}/{row_id}/remove", data={"csrf_token": token}).status_code == 404
    assert db.session.scalar(select(func.count()).select_from(SavedCandidate)) == 1
    assert "Emma&#39;s shortlist" in page(client, emma_list)


# ---- CSRF (what test_security does not cover: logged-in posts, tokens from another session) --------------


def test_every_post_route_refuses_a_logged_in_post_without_a_token(client, ctx, pdf_dir):
    from core.extensions import csrf
    from tests.test_hostile_properties import Session, build_world, routes, row_counts

    # the machine API, RFC 8058 one-click unsubscribe (its signed token is the proof), the VC-API wallet
    # exchange (wallets post without a session; its single-use challenge is the proof) and the OB 3.0 API's
    # machine endpoints (apps post with client credentials or a bearer token, never a session) alone are exempt;
    # the OB consent form (obapi.authorize) and Disconnect are learners' forms and stay checked
    exempt = {
        "credentials.api_verify",
        "notifications.unsubscribe",
        "credentials.wallet_exchange",
        "obapi.register",
        "obapi.token",
        "obapi.revoke",
        "obapi.upsert_credential",
        "obapi.put_profile",
    }
    assert csrf._exempt_views == {
        "credentials.views.api_verify",
        "notifications.views.unsubscribe",
        "credentials.wallet_views.wallet_exchange",
        "obapi.views.register",
        "obapi.views.token",
        "obapi.views.revoke",
        "obapi.views.upsert_credential",
        "obapi.views.put_profile",
    }
    world = build_world(client)
    for endpoint, route in sorted(routes(world).items()):
        if endpoint in exempt:
            continue
        session = Session(client, world.users.get(route.role) if route.role else None)
        session.prepare()
        good = {k: v for k, v in route.fields.items() if v is not None}
        before = row_counts()
        response = client.post(route.url, data=good)
        assert response.status_code == 400, endpoint
        assert "form expired" in response.get_data(as_text=True), endpoint
        assert row_counts() == before, endpoint


def test_a_token_from_another_session_is_refused(client, other_client, ctx):
    make_user(email="lee@example.org", name="Lee Learner")
    make_user(email="eve@example.org", name="Eve")
    login(client, "lee@example.org")
    login(other_client, "eve@example.org")
    eves_token = other_client.csrf_token("/account")
    response = client.post("/account", data={"csrf_token": eves_token, "name": "Pwned", "legal_name": "Pwned"})
    assert response.status_code == 400
    assert db.session.scalar(select(User.name).where(User.email == "lee@example.org")) == "Lee Learner"
