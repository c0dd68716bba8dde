"""The learner journey once in Spanish on a phone without JavaScript: switch to Spanish, register, find and
complete the Spanish course, download the Spanish certificate; an employer reading English opens the
verification link and sees the same status. Every page is audited with axe (WCAG 2.1 A/AA)."""

from __future__ import annotations

import io
import re

from tests.browser.conftest import correct_answers

COURSE = "alfabetizacion-en-ia-para-cada-trabajador"
TITLE = "Alfabetización en IA para cada trabajador"


def test_spanish_learner_journey_and_english_employer(live_server, phone, new_page, a11y):
    page = phone
    page.goto(live_server + "/")
    page.get_by_role("link", name="Español").first.click()  # the switcher: a plain link, no script
    assert page.locator("html").get_attribute("lang") == "es"
    a11y.check(page, "es-01-home")
    page.locator(".nav-menu > summary").click()
    page.get_by_role("link", name="Crear cuenta").click()
    page.get_by_label("Nombre completo").fill("Rosa Martínez")
    page.get_by_label("Correo electrónico").fill("rosa.es@example.org")
    page.get_by_label("Contraseña", exact=True).fill("cobre conducto interruptor 77")
    page.get_by_label("Repita la contraseña").fill("cobre conducto interruptor 77")
    a11y.check(page, "es-02-register")
    page.get_by_role("button", name="Crear cuenta").click()
    assert "Enviamos un mensaje a rosa.es@example.org" in page.content()
    page.get_by_label("Correo electrónico").fill("rosa.es@example.org")
    page.get_by_label("Contraseña").fill("cobre conducto interruptor 77")
    page.get_by_role("button", name="Iniciar sesión").click()
    assert "Hola de nuevo, Rosa Martínez." in page.content()

    page.get_by_role("navigation", name="Principal").get_by_role("link", name="Cursos").click()
    a11y.check(page, "es-03-catalog")
    page.get_by_role("link", name=TITLE).first.click()
    assert page.locator("h1").get_attribute("lang") is None  # a Spanish title on a Spanish page
    a11y.check(page, "es-04-course")
    page.get_by_role("button", name="Inscribirse gratis").click()
    a11y.check(page, "es-05-lesson")

    answers = correct_answers(COURSE)
    first_quiz = True
    for _ in range(80):  # every lesson and quiz, following the site's own next step
        if "/quiz" in page.url:
            page.get_by_role("button", name=re.compile("Comenzar el cuestionario|Intentar de nuevo")).click()
            page.locator("fieldset.question").first.wait_for()
            if first_quiz:
                a11y.check(page, "es-06-quiz")
            for fieldset in page.locator("fieldset.question").all():
                legend = " ".join(fieldset.locator("legend").inner_text().split())
                prompt = legend.split(". ", 1)[1].removesuffix(" Elija todas las que correspondan.")
                assert prompt in answers, legend
                labels = fieldset.locator("label")
                for i, text in enumerate(labels.all_inner_texts()):  # the choices' texts at once
                    if " ".join(text.split()) in answers[prompt]:
                        labels.nth(i).click()
            with page.expect_navigation():
                page.get_by_role("button", name="Enviar respuestas").click()
            assert "Aprobó" in page.content(), page.url
            if first_quiz:
                a11y.check(page, "es-07-result")
                first_quiz = False
            if "/done" in page.url:
                break
            page.get_by_role("link", name="Continuar").first.click()
        else:
            page.get_by_role("button", name="Marcar como completada y continuar").click()
    assert page.url.endswith(f"/courses/{COURSE}/done")
    assert "¡Felicitaciones" in page.content()
    a11y.check(page, "es-08-completed")

    # the certificate in Spanish
    page.get_by_role("link", name="Detalles del certificado").click()
    a11y.check(page, "es-09-certificate")
    share_url = page.get_by_label(re.compile("Enlace de verificación")).input_value()
    pdf = page.request.get(live_server + page.get_by_role("link", name="Descargar PDF").get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    from pypdf import PdfReader

    text = " ".join(PdfReader(io.BytesIO(pdf.body())).pages[0].extract_text().split())
    assert "Certificado de finalización" in text and "Se certifica que" in text and TITLE in text

    # an employer whose browser reads English opens the link: English words, the same status
    employer = new_page(width=1280, height=900)
    employer.set_extra_http_headers({"Accept-Language": "en-US,en;q=0.9"})
    employer.goto(share_url.replace("http://127.0.0.1:5000", live_server))
    assert employer.locator("html").get_attribute("lang") == "en"
    assert "✓ Valid" in employer.content() and "Rosa Martínez" in employer.content()
    assert employer.locator(f'span[lang="es"]:text-is("{TITLE}")').count() >= 1  # the Spanish title marked
    a11y.check(employer, "es-10-employer-verify")
    a11y.assert_clean()
