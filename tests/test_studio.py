"""The authoring studio: drafts, editing, concurrency, publishing and versions, archive, zip bundles, audit log."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from sqlalchemy import func, select

from accounts.models import Role
from core.audit import AuditEvent
from core.database import utcnow
from core.errors import DomainError
from core.extensions import db
from courses import studio
from courses.models import Course, CourseDraft, CourseStatus, Enrollment, Lesson, LessonProgress
from tests.factories import complete_course, enroll, load_test_framework, login, make_course, make_user

QUESTIONS = """? Suggestions from an AI pick-path tool should be
* checked by a person
- followed blindly
> People stay accountable.

?* Which are personal data?
* A home address
* A phone number
- A public press release
> Both identify a person.

? The AI is always right.
- True
* False
> It predicts, it does not know."""


@pytest.fixture
def admin(client, ctx):
    load_test_framework()
    user = make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    login(client, "admin@example.org")
    return user


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def revision(client, slug: str) -> str:
    html = client.get(f"/studio/{slug}").get_data(as_text=True)
    return re.search(r'name="(?:[a-z]+-)?revision" (?:type="hidden" )?value="(\d+)"', html).group(1)


def post(client, url: str, data: dict, *, slug: str):
    """Submit a studio form the way the page does: CSRF token plus the draft revision it showed."""
    page = client.get(f"/studio/{slug}").get_data(as_text=True)
    token = re.search(r'name="(?:[a-z]+-)?csrf_token" (?:type="hidden" )?value="([^"]+)"', page).group(1)
    rev = re.search(r'name="(?:[a-z]+-)?revision" (?:type="hidden" )?value="(\d+)"', page).group(1)
    prefix = data.pop("_prefix", "")
    payload = {f"{prefix}csrf_token": token, f"{prefix}revision": rev, **{f"{prefix}{k}": v for k, v in data.items()}}
    return client.post(url, data=payload)


def build_course(client, slug: str = "warehouse-ai") -> None:
    response = client.submit(
        "/studio/new",
        {
            "title": "AI for Warehouse Teams",
            "slug": slug,
            "summary": "Short.",
            "audience": "Warehouse staff.",
            "estimated_minutes": "30",
            "revision": "0",
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == f"/studio/{slug}"
    assert (
        post(
            client, f"/studio/{slug}/tags", {"_prefix": "tags-", "skills": "AIL-01", "goals": "G1"}, slug=slug
        ).status_code
        == 303
    )
    assert (
        post(
            client, f"/studio/{slug}/modules", {"_prefix": "module-", "title": "Getting started"}, slug=slug
        ).status_code
        == 303
    )
    assert (
        post(
            client,
            f"/studio/{slug}/modules/0/lessons/new",
            {"title": "Pick paths", "minutes": "8", "body": "## Picking\n\nText.", "save": "1"},
            slug=slug,
        ).status_code
        == 303
    )
    assert (
        post(
            client,
            f"/studio/{slug}/modules/0/quiz",
            {"title": "Check", "pass_mark": "70", "questions": QUESTIONS},
            slug=slug,
        ).status_code
        == 303
    )


# ---- questions as text -----------------------------------------------------------------------


@pytest.mark.nodb
def test_questions_text_parses_all_three_kinds_and_round_trips():
    questions = studio.parse_questions(QUESTIONS)
    assert [q.kind for q in questions] == ["single", "multiple", "true_false"]
    assert [c.correct for c in questions[1].choices] == [True, True, False]
    assert studio.parse_questions(studio.questions_text(questions)) == questions


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("? Only one choice\n* yes\n> why", "2 to 8 choices"),
        ("? No right answer\n- a\n- b\n> why", "exactly one correct"),
        ("? Two right\n* a\n* b\n> why", "exactly one correct"),
        ("? No explanation\n* a\n- b", "add an explanation"),
        ("* a choice before any question", "Line 1: start each question"),
        ("? Q\n* a\n- a\n> why", "same text"),
        ("? Q\n* a\n- b\nrandom text\n> why", "Line 4: lines start with"),
        ("", "at least one question"),
    ],
)
@pytest.mark.nodb
def test_questions_text_errors_name_the_line(text, message):
    with pytest.raises(DomainError, match=message):
        studio.parse_questions(text)


# ---- building and publishing a course ------------------------------------------------------------


def test_an_admin_builds_and_publishes_a_course(client, admin):
    build_course(client)
    course = db.session.scalar(select(Course).where(Course.slug == "warehouse-ai"))
    assert course.status is CourseStatus.DRAFT and course.version == 0
    assert client.get("/courses/warehouse-ai").status_code == 404  # learners do not see drafts
    page = client.get("/studio/warehouse-ai").get_data(as_text=True)
    assert "Ready to publish as version 1" in page
    assert post(client, "/studio/warehouse-ai/publish", {}, slug="warehouse-ai").status_code == 303
    db.session.refresh(course)
    assert course.status is CourseStatus.PUBLISHED and course.version == 1
    assert [m.title for m in course.modules] == ["Getting started"]
    assert [q.kind.value for q in course.modules[0].quiz.questions] == ["single", "multiple", "true_false"]
    assert count(CourseDraft) == 0
    assert "AI for Warehouse Teams" in client.get("/courses?q=warehouse").get_data(as_text=True)
    actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions[0] == "course.created" and actions[-1] == "course.published" and "course.edited" in actions


def test_publishing_is_refused_with_what_is_missing(client, admin):
    client.submit(
        "/studio/new",
        {"title": "Empty", "slug": "empty", "summary": "s", "audience": "a", "estimated_minutes": "5", "revision": "0"},
    )
    post(client, "/studio/empty/modules", {"_prefix": "module-", "title": "Lonely module"}, slug="empty")
    page = client.get("/studio/empty").get_data(as_text=True)
    assert "Tag the course with at least one skill." in page
    response = post(client, "/studio/empty/publish", {}, slug="empty")
    assert response.status_code == 303
    assert db.session.scalar(select(Course.status).where(Course.slug == "empty")) is CourseStatus.DRAFT
    follow = client.get("/studio/empty").get_data(as_text=True)
    assert "cannot be published yet" in follow and "needs at least one lesson" in follow


def test_duplicate_slug_and_bad_fields_are_refused(client, admin):
    make_course("taken")
    response = client.submit(
        "/studio/new",
        {"title": "X", "slug": "taken", "summary": "s", "audience": "a", "estimated_minutes": "5", "revision": "0"},
    )
    assert response.status_code == 422 and "already uses this web address" in response.get_data(as_text=True)
    bad = client.submit(
        "/studio/new",
        {"title": "X", "slug": "Bad Slug!", "summary": "s", "audience": "a", "estimated_minutes": "0", "revision": "0"},
    )
    assert bad.status_code == 422 and "Lowercase letters" in bad.get_data(as_text=True)
    assert count(Course) == 1


def test_hostile_markdown_is_inert_in_preview_and_blocks_publishing(client, admin):
    build_course(client, "hostile")
    body = (
        "## Hi\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n<img src=x onerror=alert(1)>\n\n"
        "[d](data:text/html;base64,PHNjcmlwdD4=)"
    )
    response = post(
        client,
        "/studio/hostile/modules/0/lessons/0",
        {"title": "Pick paths", "minutes": "8", "body": body, "preview": "1"},
        slug="hostile",
    )
    html = response.get_data(as_text=True)
    preview = html[html.index("Preview (exactly") :]
    assert (
        "<script>alert" not in preview
        and 'href="javascript' not in preview
        and "onerror=" not in preview.replace("onerror=alert(1)&gt;", "")
    )
    assert 'href="data:' not in preview
    post(
        client,
        "/studio/hostile/modules/0/lessons/0",
        {"title": "Pick paths", "minutes": "8", "body": body, "save": "1"},
        slug="hostile",
    )
    page = client.get("/studio/hostile").get_data(as_text=True)
    assert "raw HTML" in page  # publishing names the file and line


def test_a_giant_lesson_is_refused(client, admin):
    build_course(client, "giant")
    response = post(
        client,
        "/studio/giant/modules/0/lessons/0",
        {"title": "Big", "minutes": "8", "body": "x" * 100_001, "save": "1"},
        slug="giant",
    )
    assert response.status_code == 422 and "under 100,000 characters" in response.get_data(as_text=True)


def test_concurrent_edits_are_refused_not_overwritten(client, other_client, admin):
    build_course(client)
    login(other_client, "admin@example.org")
    stale = revision(other_client, "warehouse-ai")  # the second admin opens the page
    post(
        client,
        "/studio/warehouse-ai/modules/0/lessons/0",
        {"title": "First admin's title", "minutes": "8", "body": "One.", "save": "1"},
        slug="warehouse-ai",
    )
    token = client.csrf_token("/studio/warehouse-ai")
    response = other_client.post(
        "/studio/warehouse-ai/modules/0/lessons/0",
        data={
            "csrf_token": other_client.csrf_token("/studio/warehouse-ai"),
            "revision": stale,
            "title": "Second admin's title",
            "minutes": "8",
            "body": "Two.",
            "save": "1",
        },
        follow_redirects=True,
    )
    assert "changed by someone else since you opened it" in response.get_data(as_text=True)
    draft = db.session.scalar(select(CourseDraft))
    db.session.refresh(draft)
    assert draft.spec["modules"][0]["lessons"][0]["title"] == "First admin's title"
    assert token


def test_moving_and_deleting_without_javascript(client, admin):
    build_course(client)
    post(
        client,
        "/studio/warehouse-ai/modules/0/lessons/new",
        {"title": "Second lesson", "minutes": "5", "body": "Two.", "save": "1"},
        slug="warehouse-ai",
    )
    post(client, "/studio/warehouse-ai/modules/0/lessons/1/up", {}, slug="warehouse-ai")
    draft = db.session.scalar(select(CourseDraft))
    db.session.refresh(draft)
    assert [lesson["title"] for lesson in draft.spec["modules"][0]["lessons"]] == ["Second lesson", "Pick paths"]
    response = post(client, "/studio/warehouse-ai/modules/0/lessons/0/up", {}, slug="warehouse-ai")
    assert "cannot move further" in client.get(response.headers["Location"]).get_data(as_text=True)
    post(client, "/studio/warehouse-ai/modules/0/lessons/0/delete", {}, slug="warehouse-ai")
    db.session.refresh(draft)
    assert [lesson["title"] for lesson in draft.spec["modules"][0]["lessons"]] == ["Pick paths"]
    assert post(client, "/studio/warehouse-ai/modules/0/lessons/9/delete", {}, slug="warehouse-ai").status_code == 404


# ---- versions ---------------------------------------------------------------------------------


def test_publishing_a_new_version_keeps_learners_progress_and_certificates(client, other_client, admin):
    course = make_course("ai-basics", modules=2, lessons=1)
    finished = make_user(email="done@example.org")
    complete_course(finished, course)
    learner = make_user(email="mid@example.org")
    enrollment = enroll(learner, course)
    first_lesson = course.modules[0].lessons[0]
    db.session.add(LessonProgress(enrollment_id=enrollment.id, lesson_id=first_lesson.id, completed_at=utcnow()))
    db.session.commit()

    post(
        client,
        "/studio/ai-basics/modules/0/lessons/new",
        {"title": "A new lesson", "minutes": "5", "body": "New.", "save": "1"},
        slug="ai-basics",
    )
    page = client.get("/studio/ai-basics").get_data(as_text=True)
    assert "1 learner in progress" in page and "get 1 new step" in page and "1 who completed it" in page
    assert client.get("/courses/ai-basics").get_data(as_text=True).count("A new lesson") == 0  # not live yet
    post(client, "/studio/ai-basics/publish", {}, slug="ai-basics")
    db.session.refresh(course)
    assert course.version == 2
    assert db.session.get(Lesson, first_lesson.id) is not None  # the lesson kept its identity
    assert (
        db.session.scalar(
            select(func.count()).select_from(LessonProgress).where(LessonProgress.enrollment_id == enrollment.id)
        )
        == 1
    )
    done = db.session.scalar(select(Enrollment).where(Enrollment.user_id == finished.id))
    assert done.completed_at is not None
    from credentials.models import Certificate

    certificate = db.session.scalar(select(Certificate).where(Certificate.user_id == finished.id))
    assert certificate.course_version == 1 and certificate.revision == 1

    login(other_client, "mid@example.org")
    assert other_client.get("/courses/ai-basics/continue").headers["Location"] == (
        "/courses/ai-basics/module-1/a-new-lesson"
    )


def test_archived_courses_stay_readable_for_enrolled_learners(client, other_client, admin):
    course = make_course("old-course")
    learner = make_user(email="mid@example.org")
    enroll(learner, course)
    certificate_holder = make_user(email="done@example.org")
    complete_course(certificate_holder, course)
    token = client.csrf_token("/studio/")
    assert client.post("/studio/old-course/status/archived", data={"csrf_token": token}).status_code == 303
    db.session.refresh(course)
    assert course.status is CourseStatus.ARCHIVED
    assert 'href="/courses/old-course"' not in client.get("/courses").get_data(as_text=True)
    login(other_client, "mid@example.org")
    assert other_client.get("/courses/old-course").status_code == 200
    from credentials.models import Certificate

    certificate = db.session.scalar(select(Certificate))
    from credentials.ids import format_public_id

    assert "✓ Valid" in client.get(f"/verify/{format_public_id(certificate.public_id)}").get_data(as_text=True)


# ---- zip bundles ---------------------------------------------------------------------------------


def zip_of(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def upload(client, data: bytes):
    token = client.csrf_token("/studio/")
    return client.post(
        "/studio/import",
        data={"csrf_token": token, "file": (io.BytesIO(data), "bundle.zip")},
        content_type="multipart/form-data",
    )


def shipped_files() -> dict[str, str]:
    from courses.catalog import CATALOG_DIR, course_folders

    folder = course_folders(CATALOG_DIR)[0]
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_every_starter_course_exports_and_imports_as_a_zip(client, admin):
    from courses.catalog import CATALOG_DIR, course_folders, import_folder
    from skills.services import load_framework_file

    load_framework_file(now=utcnow())
    db.session.commit()
    for folder in course_folders(CATALOG_DIR):
        course, _ = import_folder(folder, now=utcnow())
        db.session.commit()
        bundle = client.get(f"/studio/{course.slug}/bundle.zip")
        assert bundle.mimetype == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(bundle.data)).namelist()
        assert f"{course.slug}/course.yaml" in names
        response = upload(client, bundle.data)
        assert response.status_code == 303, response.get_data(as_text=True)[-800:]
        draft = db.session.scalar(select(CourseDraft).where(CourseDraft.course_id == course.id))
        from courses.catalog import course_spec

        assert studio.spec_from_dict(draft.spec) == course_spec(course)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"../evil/course.yaml": "x"}, "must stay inside the bundle"),
        ({"/etc/course.yaml": "x"}, "must stay inside the bundle"),
        ({"readme.txt": "no course here"}, "course.yaml: missing"),
        ({"course.yaml": b"\xff\xfe"}, "not UTF-8"),
        ({"course.yaml": "slug: [broken"}, "course.yaml, line"),
    ],
)
def test_hostile_or_broken_zips_are_refused_and_nothing_is_written(client, admin, files, message):
    response = upload(client, zip_of(files))
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert count(Course) == count(CourseDraft) == 0


def test_zip_bombs_and_non_zips_are_refused(client, admin):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("course.yaml", "a" * (25 * 1024 * 1024))
    response = upload(client, bomb.getvalue())
    assert response.status_code == 422 and "larger than" in response.get_data(as_text=True)
    assert upload(client, b"not a zip at all").status_code == 422
    assert count(Course) == 0


def test_bundle_with_unknown_skill_is_refused_with_file_and_line(client, admin):
    files = shipped_files()
    files["course.yaml"] = files["course.yaml"].replace("skills: [", "skills: [NOPE-01, ", 1)
    response = upload(client, zip_of(files))
    assert response.status_code == 422 and "unknown skill id &#39;NOPE-01&#39;" in response.get_data(as_text=True)
    assert count(Course) == 0


# ---- audit log -------------------------------------------------------------------------------------


def test_audit_log_records_role_changes_and_exports_safe_csv(client, admin):
    target = make_user(email="=cmd@example.org")
    client.submit(f"/admin/users/{target.id}/role", {"role": "admin"}, page="/admin/users/")
    page = client.get("/admin/audit/?q=cmd").get_data(as_text=True)
    assert "user.role_changed" in page and "learner → admin" in page
    csv_text = client.get("/admin/audit/?format=csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("at,actor,action") and "'=cmd@example.org" in csv_text
    assert client.post("/admin/audit/", data={}).status_code in (400, 405)  # read-only: no way to write


# ---- images ------------------------------------------------------------------------------------------


def png_bytes(width: int = 4, height: int = 3) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (11, 79, 138)).save(buffer, "PNG")
    return buffer.getvalue()


def upload_image(client, data: bytes, name: str, alt: str = "A warehouse aisle"):
    token = client.csrf_token("/studio/")
    return client.post(
        "/studio/media",
        data={"csrf_token": token, "file": (io.BytesIO(data), name), "alt_text": alt, "next": "/studio/"},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def test_images_are_checked_by_content_stored_once_and_served_safely(client, app, admin, tmp_path):
    from courses.models import MediaFile

    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    try:
        response = upload_image(client, png_bytes(), "photo.jpg")  # the name lies; the content decides
        assert "Image uploaded" in response.get_data(as_text=True)
        media = db.session.scalar(select(MediaFile))
        assert media.mime_type == "image/png" and (media.width, media.height) == (4, 3)
        assert (tmp_path / "uploads" / media.filename).read_bytes() == png_bytes()
        upload_image(client, png_bytes(), "again.png")
        assert count(MediaFile) == 1
        with client.get(f"/media/{media.filename}") as served:
            assert served.status_code == 200 and served.mimetype == "image/png"
            assert served.headers["X-Content-Type-Options"] == "nosniff"
            assert "sandbox" in served.headers["Content-Security-Policy"]
        assert client.get("/media/" + "0" * 64 + ".png").status_code == 404
        assert "media.uploaded" in client.get("/admin/audit/").get_data(as_text=True)
    finally:
        app.config["UPLOAD_DIR"] = None


@pytest.mark.parametrize(
    ("data", "name", "alt", "message"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.png", "Logo", "not a PNG"),
        (b"GIF89a" + b"\x00" * 20, "anim.gif", "Animation", "not a PNG"),
        (b"%PDF-1.7", "doc.png", "Document", "not a PNG"),
        (None, "big.png", "Big", "at most 1024 KB"),
        (None, "ok.png", "", "alt text"),
    ],
)
def test_bad_images_are_refused_and_nothing_is_stored(client, app, admin, tmp_path, data, name, alt, message):
    from courses.models import MediaFile

    if data is None:
        data = png_bytes() if alt == "" else png_bytes() + b"\x00" * (1024 * 1024)
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    try:
        response = upload_image(client, data, name, alt)
    finally:
        app.config["UPLOAD_DIR"] = None
    assert message in response.get_data(as_text=True).replace("&#39;", "'")
    assert count(MediaFile) == 0
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_images_without_alt_text_block_publishing(client, admin):
    build_course(client, "pictures")
    post(
        client,
        "/studio/pictures/modules/0/lessons/0",
        {"title": "Pick paths", "minutes": "8", "body": "## A\n\n![](/media/abc.png)\n", "save": "1"},
        slug="pictures",
    )
    assert "an image needs alt text" in client.get("/studio/pictures").get_data(as_text=True)


def test_bundles_carry_their_images_and_check_them(client, app, admin, tmp_path):
    import hashlib

    from courses.models import MediaFile

    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    try:
        upload_image(client, png_bytes(), "aisle.png", "A warehouse aisle")
        name = db.session.scalar(select(MediaFile)).filename
        build_course(client, "pictures")
        post(
            client,
            "/studio/pictures/modules/0/lessons/0",
            {"title": "Pick paths", "minutes": "8", "body": f"![A warehouse aisle](/media/{name})\n", "save": "1"},
            slug="pictures",
        )
        bundle = client.get("/studio/pictures/bundle.zip").data
        assert f"pictures/media/{name}" in zipfile.ZipFile(io.BytesIO(bundle)).namelist()

        files = {
            n.split("/", 1)[1]: c
            for n, c in (
                (i, zipfile.ZipFile(io.BytesIO(bundle)).read(i)) for i in zipfile.ZipFile(io.BytesIO(bundle)).namelist()
            )
        }
        files["course.yaml"] = files["course.yaml"].replace(b"slug: pictures", b"slug: pictures-copy", 1)
        assert upload(client, zip_of(files)).status_code == 303  # imports with its image

        svg = b'<svg xmlns="http://www.w3.org/2000/svg"/>'
        bad = dict(files)
        bad[f"media/{hashlib.sha256(svg).hexdigest()}.png"] = svg
        response = upload(client, zip_of(bad))
        assert response.status_code == 422 and "not a PNG" in response.get_data(as_text=True)
        missing = dict(files)
        missing.pop(f"media/{name}")
        lesson = next(k for k in missing if k.endswith(".md"))
        missing[lesson] = missing[lesson].replace(name.encode(), ("f" * 64 + ".png").encode())
        response = upload(client, zip_of(missing))
        assert response.status_code == 422 and "neither in the bundle nor uploaded" in response.get_data(as_text=True)
    finally:
        app.config["UPLOAD_DIR"] = None
