"""A course's language: read from course.yaml, stored, exported, refused when not allowed, edited in the studio."""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest
from sqlalchemy import func, select, update

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from courses import studio
from courses.catalog import CATALOG_DIR, CatalogError, course_folders, export_course, import_folder
from courses.models import Course, CourseDraft
from skills.services import load_framework_file
from tests.factories import make_user, sign_in
from tests.test_studio import build_course, post

SHIPPED = course_folders(CATALOG_DIR)


@pytest.fixture
def framework(shipped_framework):
    """The shipped skills framework, loaded (once per session, copied back for each test: tests/conftest.py)."""


def spanish_copy(tmp_path, line: str = "language: es"):
    folder = tmp_path / "bundle"
    shutil.copytree(SHIPPED[0], folder)
    text = (folder / "course.yaml").read_text()
    before, after = text.split("\nskills: ", 1)
    assert "\nvalidity_months: " in before
    (folder / "course.yaml").write_text(f"{before}\n{line}\nskills: {after}", encoding="utf-8")
    return folder


def test_a_course_without_language_is_english(framework):
    course, _ = import_folder(SHIPPED[0], now=utcnow())
    db.session.commit()
    assert course.language == "en"
    assert db.session.scalar(select(Course.language).where(Course.slug == course.slug)) == "en"


def test_language_is_imported_stored_and_exported_byte_for_byte(framework, tmp_path):
    folder = spanish_copy(tmp_path)
    course, outcome = import_folder(folder, now=utcnow())
    db.session.commit()
    assert outcome == "created"
    db.session.expire_all()
    assert db.session.scalar(select(Course.language).where(Course.slug == course.slug)) == "es"
    target = tmp_path / "out"
    export_course(db.session.scalar(select(Course)), target)
    exported = (target / "course.yaml").read_text()
    assert "\nlanguage: es\nskills: " in exported  # right after validity_months, as FORMAT.md says
    shipped = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()} == shipped


def test_changing_only_the_language_is_a_new_version(framework, tmp_path):
    course, _ = import_folder(SHIPPED[0], now=utcnow())
    db.session.commit()
    assert course.version == 1
    folder = spanish_copy(tmp_path)
    course, outcome = import_folder(folder, now=utcnow())
    db.session.commit()
    assert outcome == "updated" and course.version == 2 and course.language == "es"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("language: fr", "'language' must be one of en, es (a BCP 47 code), not 'fr'"),
        ("language: ES", "not 'ES'"),
        ("language: es-MX", "not 'es-MX'"),
        ("language: [es]", "'language' must be one of en, es"),
        ("language: null", "'language' must be one of en, es"),
    ],
)
def test_a_language_outside_the_allow_list_is_refused_with_its_line(framework, tmp_path, line, shown):
    folder = spanish_copy(tmp_path, line)
    with pytest.raises(CatalogError) as caught:
        import_folder(folder, now=utcnow())
    assert any("course.yaml, line 1:" in p and shown in p for p in caught.value.problems), caught.value.problems
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Course)) == 0


# ---- studio --------------------------------------------------------------------------------------


@pytest.fixture
def admin(client, ctx):
    from tests.factories import load_test_framework

    load_test_framework()
    user = make_user(email="admin@example.org", name="Ada Admin", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    return user


def test_a_new_course_gets_the_language_chosen_and_english_by_default(client, admin):
    fields = {"summary": "s", "audience": "a", "estimated_minutes": "5", "revision": "0"}
    assert client.submit("/studio/new", {"title": "Uno", "slug": "uno", "language": "es", **fields}).status_code == 303
    assert client.submit("/studio/new", {"title": "Two", "slug": "two", **fields}).status_code == 303
    languages = dict(db.session.execute(select(Course.slug, Course.language)).all())
    assert languages == {"uno": "es", "two": "en"}
    drafts = {d.course.slug: d.spec["language"] for d in db.session.scalars(select(CourseDraft))}
    assert drafts == {"uno": "es", "two": "en"}
    page = client.get("/studio/uno").get_data(as_text=True)
    assert '<option lang="es" selected value="es">Español</option>' in page


def test_the_language_is_edited_in_the_draft_and_reaches_learners_on_publish(client, admin):
    build_course(client)
    meta = {"_prefix": "meta-", "title": "AI for Warehouse Teams", "summary": "Short.", "audience": "Warehouse staff."}
    response = post(
        client, "/studio/warehouse-ai/meta", {**meta, "estimated_minutes": "30", "language": "es"}, slug="warehouse-ai"
    )
    assert response.status_code == 303
    course = db.session.scalar(select(Course).where(Course.slug == "warehouse-ai"))
    assert studio.get_draft(course).spec["language"] == "es"
    assert course.language == "en"  # the live course changes only when the draft is published
    assert post(client, "/studio/warehouse-ai/publish", {}, slug="warehouse-ai").status_code == 303
    db.session.refresh(course)
    assert course.language == "es" and course.version == 1


def test_a_language_outside_the_list_is_refused_in_the_studio(client, admin):
    build_course(client)
    meta = {"_prefix": "meta-", "title": "T", "summary": "S", "audience": "A", "estimated_minutes": "30"}
    response = post(client, "/studio/warehouse-ai/meta", {**meta, "language": "fr"}, slug="warehouse-ai")
    assert response.status_code == 422 and "Not a valid choice" in response.get_data(as_text=True)
    course = db.session.scalar(select(Course).where(Course.slug == "warehouse-ai"))
    db.session.expire_all()
    assert studio.get_draft(course).spec["language"] == "en" and studio.get_draft(course).spec["title"] != "T"


def test_a_draft_saved_before_languages_existed_still_loads_as_english(client, admin):
    build_course(client)
    course = db.session.scalar(select(Course).where(Course.slug == "warehouse-ai"))
    old = {k: v for k, v in studio.get_draft(course).spec.items() if k != "language"}
    db.session.execute(update(CourseDraft).where(CourseDraft.course_id == course.id).values(spec=old))
    db.session.commit()
    assert studio.spec_from_dict(old).language == "en"
    page = client.get("/studio/warehouse-ai")
    assert page.status_code == 200 and '<option lang="en" selected value="en">English</option>' in page.get_data(
        as_text=True
    )
    assert post(client, "/studio/warehouse-ai/publish", {}, slug="warehouse-ai").status_code == 303
    db.session.refresh(course)
    assert course.version == 1 and course.language == "en"


def test_a_zip_bundle_carries_the_language_into_a_new_course(client, admin, tmp_path):
    load_framework_file(now=utcnow())
    db.session.commit()
    folder = spanish_copy(tmp_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in folder.rglob("*"):
            if path.is_file():
                archive.writestr(str(path.relative_to(folder)), path.read_bytes())
    token = client.csrf_token("/studio/")
    response = client.post(
        "/studio/import",
        data={"csrf_token": token, "file": (io.BytesIO(buffer.getvalue()), "bundle.zip")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    course = db.session.scalar(select(Course))
    assert course.language == "es" and studio.get_draft(course).spec["language"] == "es"
    exported = zipfile.ZipFile(io.BytesIO(client.get(f"/studio/{course.slug}/bundle.zip").data))
    assert "\nlanguage: es\n" in exported.read(f"{course.slug}/course.yaml").decode()
