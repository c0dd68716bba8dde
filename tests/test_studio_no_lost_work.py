"""No lost work in the studio: what an author typed survives an image upload, a failed check and a refused
(stale) save; pages with forms load the unsaved-changes guard."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import func, select

from core.extensions import db
from courses.models import MediaFile
from courses.studio import CourseDraft
from tests.factories import sign_in
from tests.test_studio import admin, build_course, png_bytes, revision  # noqa: F401  (the admin fixture)

LESSON = "/studio/warehouse-ai/modules/0/lessons/0"


def token(client, page: str) -> tuple[str, str]:
    html = client.get(page).get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    image_csrf = re.search(r'name="image-csrf_token" type="hidden" value="([^"]+)"', html)
    return csrf, image_csrf.group(1) if image_csrf else ""


@pytest.fixture
def uploads(app, tmp_path):
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    yield
    app.config["UPLOAD_DIR"] = None


def test_uploading_an_image_keeps_the_unsaved_lesson_and_adds_the_image(client, admin, uploads):  # noqa: F811
    build_course(client)
    csrf, image_csrf = token(client, LESSON)
    response = client.post(
        LESSON,
        data={
            "csrf_token": csrf,
            "revision": revision(client, "warehouse-ai"),
            "title": "Unsaved new title",
            "minutes": "12",
            "body": "## Unsaved\n\nText typed but not saved.",
            "image-csrf_token": image_csrf,
            "image-file": (io.BytesIO(png_bytes()), "aisle.png"),
            "image-alt_text": "A warehouse aisle",
            "image-submit": "Upload image",
        },
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 201
    media = db.session.scalar(select(MediaFile))
    assert media is not None and media.alt_text == "A warehouse aisle"
    assert 'value="Unsaved new title"' in html and 'value="12"' in html
    assert f"Text typed but not saved.\n\n![A warehouse aisle](/media/{media.filename})" in html
    assert "Image uploaded and added at the end of the lesson text" in html
    assert "data-unsaved-warning data-unsaved" in html
    # nothing of the lesson was saved: the draft still has the old title
    draft = db.session.scalar(select(CourseDraft))
    db.session.refresh(draft)
    assert draft.spec["modules"][0]["lessons"][0]["title"] == "Pick paths"


def test_a_refused_image_keeps_the_lesson_too(client, admin, uploads):  # noqa: F811
    build_course(client)
    csrf, image_csrf = token(client, LESSON)
    response = client.post(
        LESSON,
        data={
            "csrf_token": csrf,
            "revision": revision(client, "warehouse-ai"),
            "title": "Still here",
            "minutes": "8",
            "body": "Body still here.",
            "image-csrf_token": image_csrf,
            "image-file": (io.BytesIO(b"<svg/>"), "evil.png"),
            "image-alt_text": "x",
            "image-submit": "Upload image",
        },
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "not a PNG, JPEG or WebP image" in html
    assert 'value="Still here"' in html and "Body still here." in html
    assert db.session.scalar(select(func.count()).select_from(MediaFile)) == 0


def test_a_stale_save_is_refused_and_keeps_what_was_typed(client, other_client, admin):  # noqa: F811
    build_course(client)
    sign_in(other_client, "admin@example.org")
    stale = revision(other_client, "warehouse-ai")
    csrf, _ = token(client, LESSON)
    client.post(
        LESSON,
        data={"csrf_token": csrf, "revision": stale, "title": "First", "minutes": "8", "body": "One.", "save": "1"},
    )
    csrf, _ = token(other_client, LESSON)
    response = other_client.post(
        LESSON,
        data={
            "csrf_token": csrf,
            "revision": stale,
            "title": "Second admin's title",
            "minutes": "9",
            "body": "Second admin's long text.",
            "save": "1",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "changed by someone else since you opened it" in html and "Your changes are still below" in html
    assert 'value="Second admin&#39;s title"' in html and "Second admin&#39;s long text." in html
    current = re.search(r'name="revision" type="hidden" value="(\d+)"', html).group(1)
    assert int(current) == int(stale) + 1  # a second save is a deliberate overwrite
    draft = db.session.scalar(select(CourseDraft))
    db.session.refresh(draft)
    assert draft.spec["modules"][0]["lessons"][0]["title"] == "First"
    again = other_client.post(
        LESSON,
        data={
            "csrf_token": csrf,
            "revision": current,
            "title": "Second admin's title",
            "minutes": "9",
            "body": "Second admin's long text.",
            "save": "1",
        },
    )
    assert again.status_code == 303


def test_failed_checks_on_the_course_page_keep_every_field(client, admin):  # noqa: F811
    build_course(client)
    html = client.get("/studio/warehouse-ai").get_data(as_text=True)
    csrf = re.search(r'name="meta-csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post(
        "/studio/warehouse-ai/meta",
        data={
            "meta-csrf_token": csrf,
            "meta-revision": revision(client, "warehouse-ai"),
            "meta-title": "A better title",
            "meta-summary": "A summary I spent ten minutes writing.",
            "meta-audience": "Everyone.",
            "meta-estimated_minutes": "-5",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'value="A better title"' in html and "A summary I spent ten minutes writing." in html
    assert 'aria-invalid="true"' in html


def test_a_stale_module_edit_keeps_what_was_typed(client, other_client, admin):  # noqa: F811
    build_course(client)
    stale = revision(client, "warehouse-ai")
    html = client.get("/studio/warehouse-ai/modules/0").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    first = client.post(
        "/studio/warehouse-ai/modules/0",
        data={"csrf_token": csrf, "revision": stale, "title": "Renamed once", "summary": ""},
    )
    assert first.status_code == 303
    response = client.post(
        "/studio/warehouse-ai/modules/0",
        data={"csrf_token": csrf, "revision": stale, "title": "Renamed twice", "summary": "My summary."},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 409 and 'value="Renamed twice"' in html and "My summary." in html


def test_studio_pages_load_the_unsaved_changes_guard(client, admin):  # noqa: F811
    build_course(client)
    for page in (
        "/studio/warehouse-ai",
        LESSON,
        "/studio/warehouse-ai/modules/0",
        "/studio/warehouse-ai/modules/0/quiz",
    ):
        html = client.get(page).get_data(as_text=True)
        assert '<script src="/static/js/unsaved.js" defer></script>' in html, page
        assert "data-unsaved-warning" in html and "data-unsaved>" not in html, page
    assert "beforeunload" in client.get("/static/js/unsaved.js").get_data(as_text=True)
