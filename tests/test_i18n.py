"""Which language a page is in: ?lang= > the signed-in person's preference > the switcher's cookie >
Accept-Language > English; the switcher, the account page's choice, <html lang> and hreflang alternates."""

from __future__ import annotations

import re

from sqlalchemy import select

from accounts.models import User
from core.extensions import db
from core.i18n import LANG_COOKIE
from tests.factories import make_user, sign_in


def html_lang(response) -> str:
    match = re.search(r'<html lang="([^"]+)"', response.get_data(as_text=True))
    assert match, "no <html lang>"
    return match.group(1)


def test_english_without_any_hint(client):
    response = client.get("/")
    assert html_lang(response) == "en"
    assert ">Courses</a>" in response.get_data(as_text=True)


def test_accept_language_picks_spanish_including_a_regional_variant(client):
    for header in ("es", "es-MX,es;q=0.9,en;q=0.5", "es-419"):
        response = client.get("/", headers={"Accept-Language": header})
        assert html_lang(response) == "es", header
        assert ">Cursos</a>" in response.get_data(as_text=True)


def test_an_unsupported_language_falls_back_to_english(client):
    response = client.get("/", headers={"Accept-Language": "fr-FR,de;q=0.8"})
    assert html_lang(response) == "en"


def test_the_cookie_outranks_accept_language(client):
    client.set_cookie(LANG_COOKIE, "es")
    assert html_lang(client.get("/", headers={"Accept-Language": "en-US"})) == "es"
    client.set_cookie(LANG_COOKIE, "en")
    assert html_lang(client.get("/", headers={"Accept-Language": "es"})) == "en"


def test_a_cookie_with_an_unknown_language_is_ignored(client):
    client.set_cookie(LANG_COOKIE, "xx<script>")
    assert html_lang(client.get("/", headers={"Accept-Language": "es"})) == "es"


def test_the_preference_outranks_the_cookie_and_accept_language(client, ctx):
    user = make_user(email="ana@example.org")
    user.locale = "es"
    db.session.commit()
    sign_in(client, "ana@example.org")
    client.set_cookie(LANG_COOKIE, "en")
    response = client.get("/account", headers={"Accept-Language": "en"})
    assert html_lang(response) == "es"
    assert "Cerrar sesión" in response.get_data(as_text=True)


def test_no_preference_follows_the_cookie_when_signed_in(client, ctx):
    make_user(email="ana@example.org")
    sign_in(client, "ana@example.org")
    client.set_cookie(LANG_COOKIE, "es")
    assert html_lang(client.get("/account")) == "es"


def test_lang_in_the_url_outranks_everything_for_that_response_only(client, ctx):
    user = make_user(email="ana@example.org")
    user.locale = "es"
    db.session.commit()
    sign_in(client, "ana@example.org")
    assert html_lang(client.get("/account?lang=en")) == "en"
    assert html_lang(client.get("/account")) == "es"
    assert client.get_cookie(LANG_COOKIE) is None


def test_switcher_link_sets_the_cookie_and_returns_to_the_page(client):
    response = client.get("/language/es?next=/courses%3Fq%3Dsafety")
    assert response.status_code == 303
    assert response.headers["Location"] == "/courses?q=safety"
    cookie = client.get_cookie(LANG_COOKIE)
    assert cookie.value == "es"
    assert cookie.http_only and cookie.same_site == "Lax"
    assert html_lang(client.get("/courses")) == "es"


def test_switcher_refuses_an_offsite_next_and_an_unknown_language(client):
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = client.get("/language/es", query_string={"next": target})
        assert response.status_code == 303
        assert response.headers["Location"] == "/"
    assert client.get("/language/xx?next=/").status_code == 404
    assert client.get("/language/../etc?next=/").status_code == 404


def test_switcher_get_never_writes_the_signed_in_preference(client, ctx):
    user = make_user(email="ana@example.org")
    sign_in(client, "ana@example.org")
    client.get("/language/es?next=/")
    db.session.expire_all()
    assert db.session.get(User, user.id).locale is None


def test_switcher_post_saves_the_preference_and_needs_csrf(client, ctx):
    user = make_user(email="ana@example.org")
    sign_in(client, "ana@example.org")
    assert client.post("/language/es", data={"next": "/account"}).status_code == 400
    db.session.expire_all()
    assert db.session.get(User, user.id).locale is None
    response = client.submit("/language/es", {"next": "/account"}, page="/account")
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    db.session.expire_all()
    assert db.session.get(User, user.id).locale == "es"
    # the header shows signed-in people a button (a form), anonymous visitors a link
    page = client.get("/account", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert html_lang(client.get("/account")) == "es"
    assert re.search(r'action="/language/en".*?lang="en">English</button>', page, re.S)


def test_account_page_saves_and_clears_the_language(client, ctx):
    user = make_user(email="ana@example.org")
    sign_in(client, "ana@example.org")
    response = client.submit("/account/language", {"lang-locale": "es"}, page="/account")
    assert response.status_code == 303
    page = client.get("/account")
    assert html_lang(page) == "es"
    assert "Se guardó su idioma." in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(User, user.id).locale == "es"
    client.submit("/account/language", {"lang-locale": ""}, page="/account")
    db.session.expire_all()
    assert db.session.get(User, user.id).locale is None


def test_account_page_refuses_a_language_not_offered(client, ctx):
    user = make_user(email="ana@example.org")
    sign_in(client, "ana@example.org")
    response = client.submit("/account/language", {"lang-locale": "fr"}, page="/account")
    assert response.status_code == 422
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert db.session.scalar(select(User.locale).where(User.id == user.id)) is None


def test_hreflang_alternates_name_every_language_and_keep_the_query(client):
    html = client.get("/courses?q=safety&lang=es").get_data(as_text=True)
    links = dict(re.findall(r'<link rel="alternate" hreflang="([^"]+)" href="([^"]+)">', html))
    assert links == {
        "en": "http://localhost/courses?q=safety&amp;lang=en",
        "es": "http://localhost/courses?q=safety&amp;lang=es",
        "x-default": "http://localhost/courses?q=safety",
    }


def test_anonymous_switcher_links_to_the_other_language_without_lang_param(client):
    html = client.get("/courses?q=safety&lang=en").get_data(as_text=True)
    assert '<a href="/language/es?next=/courses?q%3Dsafety" lang="es" hreflang="es">Español</a>' in html
    html = client.get("/courses", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert 'lang="en" hreflang="en">English</a>' in html


def test_error_pages_and_responses_vary_on_language(client):
    response = client.get("/no-such-page", headers={"Accept-Language": "es"})
    assert response.status_code == 404
    assert html_lang(response) == "es"
    assert {"Accept-Language", "Cookie"} <= set(response.vary)


# ---- content, mail and certificates in the right language ------------------------------------------------


def test_registering_in_spanish_saves_the_language_and_the_confirmation_mail_is_spanish(client, ctx):
    from core.mail import Notification

    response = client.submit(
        "/register",
        {
            "name": "Rosa",
            "email": "rosa@example.org",
            "password": "copper conduit breaker 77",
            "confirm": "copper conduit breaker 77",
        },
        headers={"Accept-Language": "es-MX"},
    )
    assert response.status_code == 303
    user = db.session.scalar(select(User).where(User.email == "rosa@example.org"))
    assert user.locale == "es"
    mail = db.session.scalar(select(Notification).where(Notification.recipient == "rosa@example.org"))
    assert mail.subject == "Confirme su correo electrónico para AI Workforce Academy"
    assert "Hola, Rosa:" in mail.text_body and '<html lang="es">' in mail.html_body


def test_mail_follows_the_recipients_language_not_the_senders(app, ctx):
    """A mail rendered during someone else's request (an admin's, in English) uses the recipient's preference."""
    from core.mail import render

    rosa = make_user(email="rosa@example.org", name="Rosa")
    rosa.locale = "es"
    db.session.commit()
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        subject, text, _ = render("verify_email", user=rosa, link="http://x/verify", days=7)
        assert subject.startswith("Confirme su correo") and "Hola, Rosa:" in text
        plain = make_user(email="sam@example.org", name="Sam")
        subject, _, _ = render("verify_email", user=plain, link="http://x/verify", days=7)
        assert subject.startswith("Confirm your email address")


def test_a_spanish_course_gives_a_spanish_certificate_whatever_the_viewer_reads(app, client, ctx):
    from core.database import utcnow
    from credentials.ids import format_public_id
    from credentials.pdf import render_html
    from credentials.presenters import certificate_data
    from tests.factories import load_test_framework, make_certificate, make_course

    load_test_framework()
    course = make_course("ia-basica", title="IA básica")
    course.language = "es"
    db.session.commit()
    certificate = make_certificate(course=course)
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        html = render_html(certificate_data(certificate, utcnow()))
    assert '<html lang="es">' in html
    assert "Certificado de finalización" in html and "Se certifica que" in html
    assert " de 20" in html  # a Spanish long date, e.g. "7 de diciembre de 2026"
    # the employer reads the verify page in English: English status words, the Spanish title marked as Spanish
    page = client.get(f"/verify/{format_public_id(certificate.public_id)}", headers={"Accept-Language": "en"})
    body = page.get_data(as_text=True)
    assert html_lang(page) == "en" and "✓ Valid" in body
    assert '<span lang="es">IA básica</span>' in body
    # a Spanish reader sees the status in Spanish and the title without a lang of its own
    body = client.get(f"/verify/{format_public_id(certificate.public_id)}?lang=es").get_data(as_text=True)
    assert "✓ Válido" in body and '<span lang="es">IA básica</span>' not in body


def test_verification_explains_every_check_in_spanish(app, client, ctx, tmp_path):
    """The API's checks[].message and the upload page's explanations follow the language; the check names and
    the verdict codes stay English (machines read them)."""
    import io
    import json

    from credentials.ids import format_public_id
    from tests.factories import load_test_framework, make_certificate, make_course

    load_test_framework()
    app.config["CERTIFICATE_DIR"] = str(tmp_path / "pdfs")
    certificate = make_certificate(make_user(email="lee@example.org", name="Lee Learner"), make_course("ai-basics"))
    credential = json.loads(client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").data)
    credential["credentialSubject"]["name"] = "Pat Impostor"
    tampered = json.dumps(credential).encode()

    spanish = client.post(
        "/api/v1/verify", data=tampered, content_type="application/json", headers={"Accept-Language": "es"}
    ).json
    messages = {c["check"]: c["message"] for c in spanish["checks"]}
    assert spanish["verdict"] == "invalid" and list(messages) == ["structure", "proof", "status", "validity", "record"]
    assert messages["structure"] == "Están todos los campos que exige Open Badges 3.0."
    assert messages["status"] == "No se verificó: la firma no es válida."
    english = client.post("/api/v1/verify", data=tampered, content_type="application/json").json
    assert {c["check"]: c["message"] for c in english["checks"]}["status"] == "Not checked: the proof failed."

    token = client.csrf_token("/verify/credential?lang=es")
    page = client.post(
        "/verify/credential",
        data={"csrf_token": token, "file": (io.BytesIO(tampered), "credential.json")},
        content_type="multipart/form-data",
        headers={"Accept-Language": "es"},
    )
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html_lang(page) == "es"
    assert "Están todos los campos que exige Open Badges 3.0." in html
    assert "No se verificó: la firma no es válida." in html
    assert "Firma:</strong> ✗ no aprobado." in html
    assert "Not checked" not in html and '<span lang="en">' not in html

    unreadable = client.post(
        "/api/v1/verify", data=b"{nope", content_type="application/json", headers={"Accept-Language": "es"}
    )
    assert unreadable.status_code == 400 and unreadable.json["verdict"] == "unreadable"
    assert unreadable.json["message"].startswith("La credencial no es un JSON válido (línea 1, columna 2:")
    credential["evil"] = 1
    shape = client.post(
        "/api/v1/verify",
        data=json.dumps(credential),
        content_type="application/json",
        headers={"Accept-Language": "es"},
    ).json
    structure = next(c for c in shape["checks"] if c["check"] == "structure")
    assert structure["ok"] is False and structure["message"].startswith("propiedad inesperada 'evil':")
    app.config["CERTIFICATE_DIR"] = None
