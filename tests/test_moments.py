"""The completion moment, sharing, the worker's view of a revoked or expired certificate, and branding."""

from __future__ import annotations

import io
import re
import unicodedata
from datetime import timedelta

import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import func, select

from accounts.models import Role
from core.audit import AuditEvent
from core.database import utcnow
from core.extensions import db
from courses.models import LessonProgress
from credentials import services
from credentials.ids import format_public_id
from credentials.models import Branding, Certificate, RevocationReason
from tests.factories import enroll, load_test_framework, login, make_certificate, make_course, make_user


@pytest.fixture
def framework(ctx):
    load_test_framework()


@pytest.fixture
def pdf_dir(app, tmp_path):
    app.config["CERTIFICATE_DIR"] = str(tmp_path / "pdfs")
    yield tmp_path / "pdfs"
    app.config["CERTIFICATE_DIR"] = None


@pytest.fixture
def support(app):
    app.config["SUPPORT_EMAIL"] = "help@academy.example.org"
    yield "help@academy.example.org"
    app.config["SUPPORT_EMAIL"] = None


def png_bytes(size=(300, 300), color=(11, 79, 138)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


# ---- the completion moment -------------------------------------------------------------------------


def test_finishing_the_last_lesson_lands_on_the_completion_page(client, framework, pdf_dir):
    course = make_course("no-quiz", questions=0, modules=1, lessons=2, title="Lessons Only")
    make_course("same-skill", title="Shares The Skill")  # same skill and occupation: suggested next
    make_course("other", title="Unrelated Course", skills=("INF-01",), occupations=("47-2111.00",))
    started = make_course("started", title="Already Started")
    learner = make_user(email="lee@example.org", name="Lee Learner")
    enrollment = enroll(learner, course)
    enroll(learner, started)
    db.session.add(
        LessonProgress(enrollment_id=enrollment.id, lesson_id=course.modules[0].lessons[0].id, completed_at=utcnow())
    )
    db.session.commit()
    login(client, "lee@example.org")
    last = "/courses/no-quiz/module-1/lesson-1-2"
    response = client.submit(last + "/complete", page=last)
    assert response.status_code == 303 and response.headers["Location"] == "/courses/no-quiz/done"

    page = client.get("/courses/no-quiz/done")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Congratulations, <bdi>Lee Learner</bdi>!" in html and "You completed <strong>Lessons Only</strong>" in html
    certificate = db.session.scalar(select(Certificate).where(Certificate.user_id == learner.id))
    display_id = format_public_id(certificate.public_id)
    assert f'src="/verify/{display_id}/certificate.png?v=valid.1"' in html
    assert f'href="/certificates/{display_id}.pdf?download=1">Download PDF' in html
    assert "https://www.linkedin.com/profile/add?startTask=CERTIFICATION_NAME" in html
    assert "https://www.linkedin.com/sharing/share-offsite/?url=http" in html
    assert 'href="mailto:?subject=' in html and 'href="sms:?body=' in html
    assert f'href="/credentials/{display_id}.json"' in html  # the wallet link
    assert 'data-copy="share-h-url"' in html and 'readonly class="select-all"' in html
    assert '<script src="/static/js/share.js" defer></script>' in html
    # what to learn next: shares the skill or occupation, not already started, not unrelated
    assert "Shares The Skill" in html
    assert "Unrelated Course" not in html and "Already Started" not in html


def test_the_completion_page_is_only_for_the_learner_who_completed(client, framework):
    make_certificate(make_user(email="done@example.org"))
    make_user(email="other@example.org")
    login(client, "other@example.org")
    assert client.get("/courses/ai-basics/done").status_code == 404
    assert client.get("/courses/no-such-course/done").status_code == 404


def test_preview_png_is_the_pdfs_first_page_rendered_once_and_cached(client, framework, pdf_dir):
    certificate = make_certificate()
    display_id = format_public_id(certificate.public_id)
    response = client.get(f"/verify/{display_id}/certificate.png")  # public: link unfurlers have no account
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    assert image.width == 1200 and 840 <= image.height <= 860  # A4 landscape
    cached = list(pdf_dir.glob(f"{certificate.public_id}-*.png"))
    assert len(cached) == 1 and cached[0].read_bytes() == response.data
    cached[0].write_bytes(b"\x89PNG cached copy")  # served from the cache, not rendered again
    assert client.get(f"/verify/{display_id}/certificate.png").data == b"\x89PNG cached copy"
    assert client.get(f"/verify/{display_id.lower()}/certificate.png").status_code == 301
    assert client.get("/verify/ABCD/certificate.png").status_code == 404


def test_the_preview_follows_a_revocation(client, framework, pdf_dir):
    certificate = make_certificate()
    display_id = format_public_id(certificate.public_id)
    before = client.get(f"/verify/{display_id}/certificate.png").data
    admin = make_user(role=Role.ADMIN)
    services.revoke(admin, certificate, reason=RevocationReason.OTHER, note="test", now=utcnow())
    db.session.commit()
    after = client.get(f"/verify/{display_id}/certificate.png").data
    assert after != before  # the PDF was re-stamped, so the image too
    assert len(list(pdf_dir.glob(f"{certificate.public_id}-*.png"))) == 1  # the old preview is gone


# ---- sharing: the verify page unfurls ----------------------------------------------------------------


def test_verify_page_carries_open_graph_and_twitter_card_tags(client, framework):
    certificate = make_certificate()
    display_id = format_public_id(certificate.public_id)
    html = client.get(f"/verify/{display_id}").get_data(as_text=True)
    image = f"http://127.0.0.1:5000/verify/{display_id}/certificate.png?v=valid.1"
    assert f'<meta property="og:image" content="{image}">' in html
    assert f'<meta name="twitter:image" content="{image}">' in html
    assert '<meta name="twitter:card" content="summary_large_image">' in html
    assert f'<meta property="og:url" content="http://127.0.0.1:5000/verify/{display_id}">' in html
    assert '<meta property="og:title" content="Course ai-basics · certificate of Lee Learner">' in html
    # what the holder did, and who the issuer is
    assert "Lee Learner completed every lesson of “Course ai-basics” (about 1 hour of study)" in html
    assert 'href="/about/issuer"' in html
    about = client.get("/about/issuer")
    assert about.status_code == 200 and "How a certificate is earned" in about.get_data(as_text=True)


def test_an_unknown_id_has_no_preview_tags(client, framework):
    html = client.get("/verify/" + "0" * 28).get_data(as_text=True)
    assert "og:image" not in html


# ---- the worker's side of status ----------------------------------------------------------------------


def test_a_revoked_certificate_tells_the_worker_why_what_to_do_and_whom_to_contact(client, framework, support):
    learner = make_user(email="lee@example.org", name="Lee Learner")
    certificate = make_certificate(learner)
    admin = make_user(role=Role.ADMIN)
    services.revoke(
        admin, certificate, reason=RevocationReason.IDENTITY_MISMATCH, note="internal: ID check", now=utcnow()
    )
    db.session.commit()
    login(client, "lee@example.org")
    display_id = format_public_id(certificate.public_id)
    html = client.get(f"/certificates/{display_id}").get_data(as_text=True)
    assert "Revoked on" in html and "Identity could not be confirmed" in html
    assert "Ask for a name correction" in html
    assert 'href="mailto:help@academy.example.org?subject=Certificate%20' in html
    assert "internal: ID check" not in html  # the admin's note stays internal
    for share in ("linkedin.com", "Share by email", "share.js", "Copy link", "Renew certificate"):
        assert share not in html
    mine = client.get("/certificates").get_data(as_text=True)
    assert "valid until" not in mine and "(Identity could not be confirmed)" in mine
    dashboard = client.get("/dashboard").get_data(as_text=True)
    assert "AI Foundations" not in dashboard  # the skills profile stops counting it
    assert "Complete a course to add its skills here." in dashboard
    done = client.get("/courses/ai-basics/done").get_data(as_text=True)
    assert "Revoked on" in done and "linkedin.com" not in done


def test_an_expired_certificate_offers_renewal(client, framework, support):
    learner = make_user(email="lee@example.org")
    certificate = make_certificate(learner, now=utcnow() - timedelta(days=800))  # valid 24 months
    assert certificate.expires_at < utcnow()
    login(client, "lee@example.org")
    html = client.get(f"/certificates/{format_public_id(certificate.public_id)}").get_data(as_text=True)
    assert "Expired on" in html and "Renew certificate" in html and "help@academy.example.org" in html
    assert "linkedin.com" not in html
    assert "AI Foundations" not in client.get("/dashboard").get_data(as_text=True)


def test_a_valid_certificate_counts_and_can_be_shared(client, framework):
    learner = make_user(email="lee@example.org")
    certificate = make_certificate(learner)
    login(client, "lee@example.org")
    html = client.get(f"/certificates/{format_public_id(certificate.public_id)}").get_data(as_text=True)
    assert "linkedin.com/profile/add" in html and "Revoked" not in html
    assert "AI Foundations" in client.get("/dashboard").get_data(as_text=True)


# ---- branding ------------------------------------------------------------------------------------------


def branding_post(client, **data):
    return client.submit(
        "/admin/branding",
        {
            "issuer_address": "200 Constitution Ave NW, Washington, DC 20210",
            "signatory_name": "Grace Hopper",
            "signatory_title": "Director of Credentials",
            "seal_alt": "The academy's blue seal",
            **data,
        },
        content_type="multipart/form-data",
    )


def test_admins_set_branding_and_certificates_show_it(client, other_client, framework, pdf_dir):
    make_user(email="admin@example.org", role=Role.ADMIN)
    login(client, "admin@example.org")
    response = branding_post(
        client,
        seal=(io.BytesIO(png_bytes((2000, 2000))), "seal.png"),
        signature=(io.BytesIO(png_bytes((900, 300), (0, 0, 0))), "signature.png"),
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    branding = db.session.get(Branding, 1)
    assert branding.signatory_name == "Grace Hopper" and branding.revision == 1
    assert Image.open(io.BytesIO(branding.seal_png)).size == (480, 480)  # shrunk on upload
    assert Image.open(io.BytesIO(branding.signature_png)).size == (720, 240)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "branding.updated"))
    assert event.detail["after"]["signatory"] == "Grace Hopper, Director of Credentials"
    assert event.detail["before"]["seal"] == "none"
    audit = client.get("/admin/audit/").get_data(as_text=True)  # readable before → after, one line per field
    assert '<span class="change-field">Seal:</span>\n      <del>none</del> → <ins>PNG, ' in audit
    assert "<ins>Grace Hopper, Director of Credentials</ins>" in audit and "{&#39;" not in audit

    learner = make_user(email="lee@example.org")
    certificate = make_certificate(learner)
    login(other_client, "lee@example.org")
    pdf = other_client.get(f"/certificates/{format_public_id(certificate.public_id)}.pdf").data
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(reader.pages[0].extract_text().split())
    assert "Grace Hopper" in text and "Director of Credentials" in text
    assert "200 Constitution Ave NW" in text and "1 hour of study" in text
    assert (
        "Aligned with the workforce goals of America's AI Action Plan (July 2025): AI skills in workforce funding"
        in (text)
    )
    assert "course version" not in text
    assert len(reader.pages[0].images) >= 2  # seal and signature (the QR code is vector)
    assert "credential.json" in reader.attachments or reader.attachments == {}  # kept when a key is configured


def test_a_bad_branding_upload_is_refused_and_keeps_what_was_typed(client, framework):
    make_user(email="admin@example.org", role=Role.ADMIN)
    login(client, "admin@example.org")
    response = branding_post(
        client, signatory_name="Typed Name", seal=(io.BytesIO(b"<svg xmlns='http://www.w3.org/2000/svg'/>"), "s.png")
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "not a PNG, JPEG or WebP image" in html and 'value="Typed Name"' in html
    assert db.session.scalar(select(func.count()).select_from(Branding)) == 0
    missing_alt = branding_post(client, seal_alt="", seal=(io.BytesIO(png_bytes()), "seal.png"))
    assert missing_alt.status_code == 422 and "Describe the seal" in missing_alt.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Branding)) == 0


def test_only_admins_reach_the_branding_page(client, framework):
    make_user(email="lee@example.org")
    login(client, "lee@example.org")
    assert client.get("/admin/branding").status_code == 403


# ---- long names in three scripts stay on the page --------------------------------------------------------

NAMES = {
    "vietnamese": "Nguyễn Thị Phương Thảo Trần Hoàng Bảo Ngọc Lê Phạm Quỳnh An Đặng Vũ Hà",
    "arabic": "عبد الرحمن محمد عبد الله إبراهيم الحسيني القحطاني العتيبي الشمري الدوس",
    "chinese": "欧阳诸葛司马上官慕容皇甫令狐东方西门南宫长孙宇文尉迟公孙轩辕端木独孤百里呼延"
    "夏侯澹台第五太史钟离仲孙闻人公冶赫连拓跋濮阳万俟单于申屠淳于羊舌",
}


@pytest.mark.parametrize("paper", ["A4", "Letter"])
@pytest.mark.parametrize("script", sorted(NAMES))
def test_a_70_character_name_stays_inside_the_page(app, framework, script, paper):
    from credentials.pdf import render_pdf
    from credentials.presenters import certificate_data

    name = NAMES[script]
    assert len(name) == 70
    learner = make_user(name=name)
    certificate = make_certificate(learner)
    app.config["CERTIFICATE_PAPER"] = paper
    try:
        with app.test_request_context():
            pdf = render_pdf(certificate_data(certificate, utcnow()))
    finally:
        app.config["CERTIFICATE_PAPER"] = "A4"
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    page = reader.pages[0]
    box = page.mediabox
    expected = (842, 595) if paper == "A4" else (792, 612)
    assert (round(float(box.width)), round(float(box.height))) == expected
    positions: list[tuple[float, float, str]] = []

    def visit(text, cm, tm, font_dict, font_size):
        if text.strip():
            # the text matrix applied to the current transformation: where the glyphs start on the page
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            positions.append((x, y, text))

    page.extract_text(visitor_text=visit)
    assert positions
    margin = 9 * 72 / 25.4  # the frame's inset: nothing may sit outside the frame either
    for x, y, text in positions:
        assert margin - 1 <= x <= float(box.width) - margin + 1, (x, text)
        assert margin - 1 <= y <= float(box.height) - margin + 1, (y, text)
    # and every glyph's whole box (PDFium's character boxes: left, bottom, right, top), not only where runs start
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(pdf)
    try:
        text_page = document[0].get_textpage()
        boxes = [text_page.get_charbox(i) for i in range(text_page.count_chars())]
        shown = text_page.get_text_range()
    finally:
        document.close()
    for left, bottom, right, top in boxes:
        if right > left:  # spaces and line ends have empty boxes
            assert margin - 1 <= left and right <= float(box.width) - margin + 1, (left, right)
            assert margin - 1 <= bottom and top <= float(box.height) - margin + 1, (bottom, top)
    # the whole name is printed; shaped Arabic glyphs do not all map back to letters in the text layer, so
    # there count the Arabic characters on the page instead
    if script == "arabic":
        assert sum("\u0600" <= ch <= "\u06ff" for ch in shown) >= 50
    else:
        # decomposed: the text layer may order a combining mark apart from its letter
        letters = set(unicodedata.normalize("NFKD", name).replace(" ", ""))
        on_page = set(unicodedata.normalize("NFKD", shown))
        assert letters <= on_page, letters - on_page


# ---- the failed-quiz page ------------------------------------------------------------------------------


def failed_attempt(client, *, max_attempts=None):
    from courses.models import QuizAttempt

    course = make_course("ai-basics", max_attempts=max_attempts)
    learner = make_user(email="lee@example.org")
    enrollment = enroll(learner, course)
    now = utcnow()
    db.session.add(
        QuizAttempt(
            enrollment_id=enrollment.id,
            quiz_id=course.modules[0].quiz.id,
            attempt_no=1,
            layout=[],
            answers={},
            score=20,
            passed=False,
            started_at=now,
            submitted_at=now,
        )
    )
    db.session.commit()
    login(client, "lee@example.org")
    return client.get("/courses/ai-basics/module-1/quiz/attempts/1").get_data(as_text=True)


def test_a_failed_quiz_offers_try_again_first_while_attempts_remain(client, framework):
    html = failed_attempt(client)
    assert "Not passed yet: the pass mark is 50%." in html
    assert '<button type="submit" class="button">Try again</button>' in html  # the primary action
    assert ">Review the lessons</a>" in html and ">Continue</a>" not in html
    assert "Read the explanations" not in html  # explanations come only after passing: no contradiction


def test_a_failed_quiz_with_no_attempts_left_says_so(client, framework):
    html = failed_attempt(client, max_attempts=1)
    assert "Try again</button>" not in html
    assert ">Back to the course</a>" in html and "Not passed: the pass mark is 50%." in html


# ---- bulk and single verification keep the input ---------------------------------------------------------


def test_bulk_flags_mismatched_names_and_duplicate_ids_and_keeps_the_list(client, framework):
    from tests.factories import make_employer

    certificate = make_certificate()
    public = format_public_id(certificate.public_id)
    make_employer("hr@example.org")
    login(client, "hr@example.org")
    pasted = f"{public},Lee Learner\n{public.lower()},Pat Impostor\n{public.replace('-', '')}\n{'0' * 28}\n"
    response = client.submit("/verify/bulk", {"ids": pasted, "show": "1"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Valid: name does not match</span>" in html  # never a plain green "Valid" on a mismatch
    assert html.count('<span class="badge badge-duplicate">Duplicate</span>') == 3
    assert "Listed 3 times (lines 1, 2, 3)." in html
    assert "3 rows listing a certificate more than once" in html
    assert pasted.splitlines()[1] in html  # the list stays on the page, ready to correct
    download = client.submit("/verify/bulk", {"ids": pasted, "download": "1"})
    assert "Listed 3 times (lines 1, 2, 3)." in download.get_data(as_text=True)
    nothing = client.submit("/verify/bulk", {"ids": "  ", "show": "1"})
    assert nothing.status_code == 422 and "or paste the IDs" in nothing.get_data(as_text=True)


def test_an_uploaded_file_is_shown_back_as_text(client, framework):
    from tests.factories import make_employer

    certificate = make_certificate()
    make_employer("hr@example.org")
    login(client, "hr@example.org")
    public = format_public_id(certificate.public_id)
    response = client.submit(
        "/verify/bulk",
        {"file": (io.BytesIO(f"{public},Lee Learner\n".encode()), "ids.csv"), "show": "1"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert f"{public},Lee Learner</textarea>" in response.get_data(as_text=True).replace("\r\n", "\n").replace(
        "\n</textarea>", "</textarea>"
    )


def test_not_found_keeps_the_typed_id(client, framework):
    typed = "7K3Q-9XWM-ABCD-EFGH-JKMN-PQRS-TVWZ"
    response = client.get(f"/verify/{typed}")
    assert response.status_code == 404
    assert f'name="id" maxlength="64" autocomplete="off" value="{typed}"' in response.get_data(as_text=True)


@pytest.mark.nodb
def test_chart_axes_count_people_in_whole_numbers():
    from insights.charts import chart_svg, whole_ticks

    assert whole_ticks(0) == [0, 1] and whole_ticks(3) == [0, 1, 2, 3] and whole_ticks(17) == [0, 5, 10, 15, 20]
    svg = chart_svg("course", [{"name": "A", "enrolled": 3, "completed": 1, "certificates_issued": 1}])
    ticks = re.findall(r"<text[^>]*>([0-9.,]+)</text>", svg)
    assert ticks and all("." not in t for t in ticks), ticks


def test_an_admin_sees_one_learners_whole_record(client, framework):
    learner = make_user(email="lee@example.org", name="Lee Learner")
    certificate = make_certificate(learner)
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    services.revoke(admin, certificate, reason=RevocationReason.OTHER, note="n", now=utcnow())
    db.session.commit()
    login(client, "admin@example.org")
    assert f'href="/admin/learners/{learner.id}"' in client.get("/admin/users/").get_data(as_text=True)
    html = client.get(f"/admin/learners/{learner.id}").get_data(as_text=True)
    assert "lee@example.org" in html and "Course ai-basics" in html and "100%" in html  # progress
    assert "Quiz 1" in html and "passed" in html  # attempts
    assert "badge-revoked" in html and format_public_id(certificate.public_id) in html  # certificates
    assert "Revoked Lee Learner" in html  # the audit trail
    assert client.get("/admin/learners/999999").status_code == 404


def test_only_admins_see_a_learners_record(client, framework):
    learner = make_user(email="lee@example.org")
    login(client, "lee@example.org")
    assert client.get(f"/admin/learners/{learner.id}").status_code == 403
