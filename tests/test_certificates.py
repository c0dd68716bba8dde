"""Issuance exactly once, IDs, PDFs, storage and downloads."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from core.csv import csv_safe
from core.database import utcnow
from core.extensions import db
from credentials import services
from credentials.ids import ALPHABET, LENGTH, format_public_id, new_public_id, normalize_public_id
from credentials.models import Certificate, CertificateEvent
from credentials.pdf import FONTS, CertificateData, RestrictedFetcher, fonts_for, printable_name
from tests.factories import (
    complete_course,
    enroll,
    load_test_framework,
    login,
    make_certificate,
    make_course,
    make_user,
    passed_attempt,
)


@pytest.fixture
def framework(ctx):
    load_test_framework()


@pytest.fixture
def pdf_dir(app, tmp_path):
    app.config["CERTIFICATE_DIR"] = str(tmp_path / "pdfs")
    yield tmp_path / "pdfs"
    app.config["CERTIFICATE_DIR"] = None


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


# ---- IDs ------------------------------------------------------------------------------------


@pytest.mark.nodb
def test_public_ids_carry_140_random_bits_and_read_aloud_in_groups():
    ids = {new_public_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(len(i) == LENGTH == 28 and set(i) <= set(ALPHABET) for i in ids)
    assert LENGTH * 5 >= 128 and len(ALPHABET) == 32
    assert not set("ILOU") & set(ALPHABET)
    sample = next(iter(ids))
    assert re.fullmatch(r"([0-9A-Z]{4}-){6}[0-9A-Z]{4}", format_public_id(sample))


@pytest.mark.parametrize(
    "mangle",
    [
        str.lower,
        lambda s: format_public_id(s),
        lambda s: " ".join(s),
        lambda s: format_public_id(s).lower().replace("-", "\u2013"),
    ],
)
@pytest.mark.nodb
def test_ids_are_case_and_separator_insensitive(mangle):
    public_id = new_public_id()
    assert normalize_public_id(mangle(public_id)) == public_id


@pytest.mark.nodb
def test_confusable_letters_are_read_as_digits_and_junk_is_refused():
    assert normalize_public_id("O" * 28) == "0" * 28
    assert normalize_public_id("il" * 14) == "1" * 28
    for junk in ["", "U" * 28, "A" * 27, "A" * 29, "A" * 100, None, 12, "<script>" * 4, "Ä" * 28]:
        assert normalize_public_id(junk) is None


# ---- issuance -------------------------------------------------------------------------------


def test_completion_issues_one_certificate_with_an_immutable_snapshot(framework):
    user = make_user(name="Lee Learner")
    user.legal_name = "Lee Ngọc Learner"
    db.session.commit()
    course = make_course("ai-basics", title="AI Basics")
    certificate = make_certificate(user, course)
    assert certificate.holder_name == "Lee Ngọc Learner"
    assert certificate.course_title == "AI Basics" and certificate.course_version == 1
    assert certificate.skills == [{"id": "AIL-01", "name": "AI Foundations"}]
    assert certificate.goals == [{"id": "G1", "title": "AI skills in workforce funding"}]
    assert certificate.score == 90 and certificate.issuer_name == "AI Workforce Academy"
    assert certificate.expires_at - certificate.issued_at > timedelta(days=720)  # validity 24 months
    assert [e.action for e in certificate.events] == ["issued"]
    # later changes to the course or the name do not touch the snapshot
    course.title = "Renamed course"
    user.legal_name = "Someone Else"
    db.session.commit()
    db.session.refresh(certificate)
    assert certificate.course_title == "AI Basics" and certificate.holder_name == "Lee Ngọc Learner"


def test_no_expiry_when_the_course_has_no_validity_period(framework):
    course = make_course("forever")
    course.validity_months = None
    db.session.commit()
    assert make_certificate(course=course).expires_at is None


def test_completion_through_the_site_issues_exactly_one_certificate(client, framework):
    user = make_user(email="lee@example.org")
    login(client, "lee@example.org")
    course = make_course("ai-basics", modules=1, lessons=1, questions=1)
    enroll(user, course)
    token = client.csrf_token("/courses/ai-basics")
    lesson = "/courses/ai-basics/module-1/lesson-1-1"
    for _ in range(2):
        client.post(lesson + "/complete", data={"csrf_token": token})
    quiz = "/courses/ai-basics/module-1/quiz"
    attempt = client.post(quiz + "/start", data={"csrf_token": token}).headers["Location"]
    html = client.get(attempt).get_data(as_text=True)
    qid = re.search(r'name="q-(\d+)"', html).group(1)
    right = re.search(r'value="([\w-]+)"\s*>\s*<label for="c-[\d-]+">Right', html).group(1)
    client.post(attempt, data={"csrf_token": token, f"q-{qid}": right})
    client.post(attempt, data={"csrf_token": token, f"q-{qid}": right})  # a double submit
    assert count(Certificate) == 1
    page = client.get("/courses/ai-basics").get_data(as_text=True)
    assert "View certificate" in page


def test_the_unique_constraint_holds_even_if_the_check_is_skipped(framework):
    certificate = make_certificate()
    duplicate = Certificate(
        public_id=new_public_id(),
        user_id=certificate.user_id,
        course_id=certificate.course_id,
        holder_name="x",
        course_title="x",
        course_slug="x",
        course_version=1,
        skills=[],
        goals=[],
        score=1,
        issuer_name="x",
        awarded_at=utcnow(),
        issued_at=utcnow(),
    )
    db.session.add(duplicate)
    with pytest.raises(Exception, match=r"(?i)unique"):
        db.session.commit()
    db.session.rollback()
    assert count(Certificate) == 1


def test_parallel_issuance_yields_one_certificate(app, framework):
    """Several app-server requests issuing at once (real threads, separate sessions) → one row."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from courses.models import Enrollment

    user, course = make_user(), make_course("race")
    enrollment_id = complete_course(user, course).id
    db.session.execute(db.delete(CertificateEvent))
    db.session.execute(db.delete(Certificate))
    db.session.commit()
    barrier = Barrier(4)

    def issue(_):
        with app.app_context():
            enrollment = db.session.get(Enrollment, enrollment_id)
            barrier.wait(timeout=10)
            certificate = services.issue_for_enrollment(enrollment, now=utcnow(), issuer="Academy")
            db.session.commit()
            public_id = certificate.public_id
            db.session.remove()
            return public_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = set(pool.map(issue, range(4)))
    assert count(Certificate) == 1
    assert ids == {db.session.scalar(select(Certificate.public_id))}


# ---- PDF --------------------------------------------------------------------------------------


def data(**overrides) -> CertificateData:
    values = dict(
        public_id="A" * 28,
        display_id=format_public_id("A" * 28),
        holder_name="Lee Learner",
        course_title="AI Basics",
        course_version=1,
        skills=["AI Foundations"],
        score=95,
        issuer_name="AI Workforce Academy",
        awarded_on="November 26, 2026",
        issued_on="November 26, 2026",
        expires_on="November 26, 2028",
        verify_url="http://127.0.0.1:5000/verify/AAAA",
    )
    return CertificateData(**(values | overrides))


def pdf_text(pdf: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def pdf_fonts(pdf: bytes) -> set[str]:
    fonts = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = descendant["/FontDescriptor"].get_object()
            assert "/FontFile2" in descriptor or "/FontFile3" in descriptor, "font not embedded"
            fonts.add(str(font["/BaseFont"]))
    return fonts


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("Nguyễn Thị Ngọc Trần", "Noto-Sans"),
        ("Αλέξανδρος Παπαδόπουλος", "Noto-Sans"),
        ("Żaneta Łukasiewicz", "Noto-Sans"),
        ("Анна Борисовна Петрова", "Noto-Sans"),
        ("محمد عبد الله", "Noto-Sans-Arabic"),
        ("王小明", "Noto-Sans-SC"),
    ],
)
@pytest.mark.nodb
def test_names_in_many_scripts_are_printed_with_embedded_subset_fonts(app, name, family):
    with app.test_request_context():
        pdf = services_render(data(holder_name=name))
    fonts = pdf_fonts(pdf)
    assert any(re.fullmatch(rf"/[A-Z]{{6}}\+{family}(-Bold)?", f) for f in fonts), fonts  # subset prefix + family
    text = pdf_text(pdf)
    assert "\ufffd" not in text and "?" not in text
    if family != "Noto-Sans-Arabic":  # text extraction of shaped Arabic is unreliable; the font check stands
        # extraction splits some letter+mark pairs (Vietnamese "ị" comes back as "iị"), so compare base letters
        assert is_subsequence(base_letters(name), base_letters(text)), (name, text)


def base_letters(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c) and not c.isspace())


def is_subsequence(needle: str, haystack: str) -> bool:
    start = haystack.find(needle[0])
    it = iter(haystack[start:]) if start >= 0 else iter("")
    return all(ch in it for ch in needle)


def services_render(d: CertificateData, **kwargs) -> bytes:
    from credentials.pdf import render_pdf

    return render_pdf(d, **kwargs)


@pytest.mark.nodb
def test_uncovered_scripts_fall_back_to_a_documented_transliteration(app):
    name = "김민준"
    printable, transliterated = printable_name(name)
    assert transliterated and printable.isascii() and printable.strip()
    with app.test_request_context():
        pdf = services_render(data(holder_name=name))
    text = pdf_text(pdf)
    assert printable.replace(" ", "") in text.replace(" ", "")
    assert "verification page shows it exactly" in text.replace("\n", " ")


@pytest.mark.nodb
def test_only_the_fonts_a_name_needs_are_loaded():
    faces, covered = fonts_for("Lee Learner")
    assert covered and faces == [FONTS[0]]
    faces, _ = fonts_for("Lee 王")
    assert faces == [FONTS[0], ("Noto Sans SC", "NotoSansSC-Regular.ttf")]


@pytest.mark.nodb
def test_pdf_is_small_landscape_and_paper_is_configurable(app):
    with app.test_request_context():
        a4 = services_render(data())
        app.config["CERTIFICATE_PAPER"] = "Letter"
        try:
            letter = services_render(data())
        finally:
            app.config["CERTIFICATE_PAPER"] = "A4"
    assert a4.startswith(b"%PDF") and len(a4) <= 150_000
    a4_box = PdfReader(io.BytesIO(a4)).pages[0].mediabox
    letter_box = PdfReader(io.BytesIO(letter)).pages[0].mediabox
    assert round(float(a4_box.width)) == 842 and round(float(a4_box.height)) == 595
    assert round(float(letter_box.width)) == 792 and round(float(letter_box.height)) == 612
    text = pdf_text(a4)
    for expected in (
        "Lee Learner",
        "AI Basics",
        "AAAA-AAAA-AAAA",
        "http://127.0.0.1:5000/verify/AAAA",
        "AI Foundations",
    ):
        assert expected in text


@pytest.mark.nodb
def test_the_fetcher_refuses_files_remote_hosts_and_escapes(app, monkeypatch, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    fetcher = RestrictedFetcher()
    for url in (
        f"file://{secret}",
        "http://example.com/x.png",
        "https://awa-static.invalid/../../etc/passwd",
        "https://awa-static.invalid/%2e%2e/core/config.py",
        "ftp://example.com/x",
    ):
        with pytest.raises(ValueError, match="refused"):
            fetcher.fetch(url)
    assert fetcher.fetch("https://awa-static.invalid/css/certificate.css").read().startswith(b"/*")
    assert fetcher.fetch("data:text/plain,hello").read() == b"hello"

    # a hostile value in the template: every outside reference is refused, the render still completes
    import credentials.pdf as pdf_module

    hostile = (
        f'<img src="file://{secret}"><img src="http://127.0.0.1:1/x.png">'
        f'<link rel="stylesheet" href="file://{secret}"><iframe src="file://{secret}"></iframe>'
    )
    real = pdf_module.render_html
    monkeypatch.setattr(pdf_module, "render_html", lambda d: real(d).replace("<body", hostile + "<body", 1))
    fetcher = RestrictedFetcher()
    with app.test_request_context():
        pdf = pdf_module.render_pdf(data(), fetcher=fetcher)
    assert f"file://{secret}" in fetcher.refused and "http://127.0.0.1:1/x.png" in fetcher.refused
    assert b"TOP-SECRET" not in pdf and "TOP-SECRET" not in pdf_text(pdf)


# ---- storage and downloads -----------------------------------------------------------------------


def test_pdf_is_rendered_once_stored_and_served_from_storage(client, framework, pdf_dir, monkeypatch):
    import credentials.storage as storage

    user = make_user(email="lee@example.org")
    certificate = make_certificate(user)
    login(client, "lee@example.org")
    renders = []
    real = storage.render_pdf
    monkeypatch.setattr(storage, "render_pdf", lambda d: renders.append(d) or real(d))
    url = f"/certificates/{format_public_id(certificate.public_id)}.pdf"
    first = client.get(url)
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    assert first.headers["Content-Disposition"].startswith("inline;")
    second = client.get(url + "?download=1")
    assert second.headers["Content-Disposition"].startswith("attachment;")
    assert second.data == first.data and len(renders) == 1
    db.session.refresh(certificate)
    stored = pdf_dir / certificate.pdf_path
    assert stored.read_bytes() == first.data
    import hashlib

    assert certificate.pdf_sha256 == hashlib.sha256(first.data).hexdigest()
    assert client.get(url, headers={"If-None-Match": f'"{certificate.pdf_sha256}"'}).status_code == 304
    stored.unlink()  # a missing file is re-rendered from the snapshot
    assert client.get(url).status_code == 200 and len(renders) == 2 and stored.exists()
    stored.write_bytes(b"%PDF tampered")  # so is one whose bytes no longer match the recorded hash
    assert client.get(url).data != b"%PDF tampered" and len(renders) == 3


def test_revoked_and_expired_certificates_still_download_stamped(client, framework, pdf_dir):
    admin = make_user(email="admin@example.org")
    user = make_user(email="lee@example.org")
    certificate = make_certificate(user)
    login(client, "lee@example.org")
    url = f"/certificates/{format_public_id(certificate.public_id)}.pdf"
    assert "REVOKED" not in pdf_text(client.get(url).data)
    from credentials.models import RevocationReason

    services.revoke(admin, certificate, reason=RevocationReason.ISSUED_IN_ERROR, note="wrong course", now=utcnow())
    db.session.commit()
    assert "REVOKED" in pdf_text(client.get(url).data)
    services.reinstate(admin, certificate, now=utcnow())
    certificate.expires_at = utcnow() - timedelta(days=1)
    certificate.issued_at = utcnow() - timedelta(days=800)
    db.session.commit()
    assert "EXPIRED" in pdf_text(client.get(url).data)


def test_storage_failure_still_serves_the_pdf(client, framework, app, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the folder should be")
    app.config["CERTIFICATE_DIR"] = str(blocker / "pdfs")
    try:
        user = make_user(email="lee@example.org")
        certificate = make_certificate(user)
        login(client, "lee@example.org")
        response = client.get(f"/certificates/{format_public_id(certificate.public_id)}.pdf")
    finally:
        app.config["CERTIFICATE_DIR"] = None
    assert response.status_code == 200 and response.data.startswith(b"%PDF")


def test_other_people_cannot_download_a_certificate(client, framework, pdf_dir):
    certificate = make_certificate(make_user(email="lee@example.org"))
    make_user(email="eve@example.org")
    login(client, "eve@example.org")
    public = format_public_id(certificate.public_id)
    assert client.get(f"/certificates/{public}.pdf").status_code == 404
    assert client.get(f"/certificates/{public}").status_code == 404


def test_cli_renders_missing_pdfs(app, framework, pdf_dir):
    first, second = make_certificate(make_user()), make_certificate(make_user(), make_course("other"))
    result = app.test_cli_runner().invoke(args=["credentials", "render", "--all", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "Rendered 2 certificate PDFs" in result.output
    for certificate in (first, second):
        db.session.refresh(certificate)
        assert (pdf_dir / certificate.pdf_path).read_bytes().startswith(b"%PDF")
    again = app.test_cli_runner().invoke(args=["credentials", "render", "--all"])
    assert "up to date" in again.output


def test_parallel_final_requests_issue_one_certificate(app, client, framework):
    """The last lesson posted twice at once (two tabs, a double tap): one completion, one certificate."""
    from concurrent.futures import ThreadPoolExecutor

    from courses.models import LessonProgress

    user = make_user(email="lee@example.org")
    course = make_course("ai-basics", modules=1, lessons=2, questions=1)
    enrollment = enroll(user, course)
    now = utcnow()
    db.session.add(
        LessonProgress(enrollment_id=enrollment.id, lesson_id=course.modules[0].lessons[0].id, completed_at=now)
    )
    db.session.add(passed_attempt(enrollment, course.modules[0].quiz, now=now, score=100))
    db.session.commit()
    login(client, "lee@example.org")
    token = client.csrf_token("/courses/ai-basics")
    cookie = client.get_cookie("session").value
    last = "/courses/ai-basics/module-1/lesson-1-2/complete"

    def post(_):
        other = app.test_client()
        other.set_cookie("session", cookie)
        return other.post(last, data={"csrf_token": token}).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(post, range(6))) == {303}
    assert count(Certificate) == 1
    assert db.session.scalar(select(func.count()).select_from(CertificateEvent)) == 1


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+2", "'=1+2"),
        ("  =HYPERLINK(1)", "'  =HYPERLINK(1)"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("\t=1", "'\t=1"),
        ("\0=1", "'\0=1"),
        ("Lee = Learner", "Lee = Learner"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
@pytest.mark.nodb
def test_csv_cells_never_start_a_formula(cell, safe):
    assert csv_safe(cell) == safe
