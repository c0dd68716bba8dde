"""The Spanish courses are the English ones in Spanish: same structure, answer keys, tags, cited pages, and no harder
to read (issue 16, "Courses in Spanish")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from core.database import utcnow
from core.extensions import db
from courses.catalog import CATALOG_DIR, TRUE_FALSE_WORDS, apply_spec, quiz_balance, quiz_warnings, read_folder
from courses.citations import CITATION, check_course, course_quotes, parse_pages
from courses.models import CourseStatus
from courses.readability import (
    MIN_AVERAGE_EASE_ES,
    MIN_LESSON_EASE_ES,
    TRANSLATIONS,
    WORKER_AUDIENCE,
    course_readability,
    fernandez_huerta,
    reading_ease,
)
from credentials import keys, vc
from credentials.ids import format_public_id
from tests.factories import course_spec, load_test_framework, make_certificate, make_user, sign_in

PAIRS = sorted(TRANSLATIONS.items())
IDS = [spanish for spanish, _ in PAIRS]


@pytest.fixture
def framework(shipped_framework):
    """The shipped skills framework, loaded (once per session, copied back for each test: tests/conftest.py)."""


@pytest.fixture
def pair(framework, request):
    spanish, english = request.param
    return read_folder(CATALOG_DIR / spanish), read_folder(CATALOG_DIR / english)


@pytest.mark.nodb
def test_both_worker_courses_ship_in_spanish():
    assert TRANSLATIONS == {
        "alfabetizacion-en-ia-para-cada-trabajador": "ai-literacy-for-every-worker",
        "ia-en-el-trabajo-atencion-al-cliente-y-oficina": "ai-at-work-customer-service-office",
    }
    for spanish, english in PAIRS:
        assert (CATALOG_DIR / spanish / "course.yaml").is_file() and (CATALOG_DIR / english / "course.yaml").is_file()
        assert {spanish, english} <= WORKER_AUDIENCE


@pytest.mark.parametrize("pair", PAIRS, ids=IDS, indirect=True)
def test_language_tags_and_course_facts_match_the_original(pair):
    es, en = pair
    assert (es.language, en.language) == ("es", "en")
    assert es.slug != en.slug and es.title != en.title
    assert (es.skills, es.goals, es.occupations) == (en.skills, en.goals, en.occupations)
    assert (es.estimated_minutes, es.validity_months) == (en.estimated_minutes, en.validity_months)


@pytest.mark.parametrize("pair", PAIRS, ids=IDS, indirect=True)
def test_structure_and_answer_keys_are_identical(pair):
    es, en = pair
    assert len(es.modules) == len(en.modules)
    for m_es, m_en in zip(es.modules, en.modules, strict=True):
        assert (m_es.skills, m_es.goals) == (m_en.skills, m_en.goals), m_en.slug
        assert [(lesson.minutes, lesson.review_by) for lesson in m_es.lessons] == [
            (lesson.minutes, lesson.review_by) for lesson in m_en.lessons
        ], m_en.slug
        q_es, q_en = m_es.quiz, m_en.quiz
        assert (q_es is None) == (q_en is None)
        if q_en is None:
            continue
        rules = ("pass_mark", "max_attempts", "cooldown_minutes", "failure_cooldown_minutes")
        assert [getattr(q_es, r) for r in rules] == [getattr(q_en, r) for r in rules], m_en.slug
        # kind, number of options and which options are correct, in order: the same answer key
        assert [(q.kind, [c.correct for c in q.choices]) for q in q_es.questions] == [
            (q.kind, [c.correct for c in q.choices]) for q in q_en.questions
        ], m_en.slug


@pytest.mark.parametrize("pair", PAIRS, ids=IDS, indirect=True)
def test_spanish_quizzes_are_in_spanish_and_balanced(pair):
    es, en = pair
    for module in es.modules:
        assert module.quiz.title.startswith("Compruebe lo que aprendió: ")
        for question in module.quiz.questions:
            if question.kind == "true_false":
                assert tuple(c.text for c in question.choices) == TRUE_FALSE_WORDS["es"]
    assert quiz_warnings(es) == []
    # the Spanish words count as True: the balance is the original's
    assert quiz_balance(es).keyed_true == quiz_balance(en).keyed_true > 0
    assert quiz_balance(es).true_false == quiz_balance(en).true_false


def _cited_pages(folder: Path) -> list[tuple[str, list[int]]]:
    """Each lesson file and quiz file in course order, with the plan pages it cites."""
    course = yaml.safe_load((folder / "course.yaml").read_text(encoding="utf-8"))
    files = []
    for module in course["modules"]:
        files += [lesson["file"] for lesson in module["lessons"]]
        files.append(module["quiz"]["file"])
    found = []
    for name in files:
        pages: set[int] = set()
        for m in CITATION.finditer((folder / name).read_text(encoding="utf-8")):
            pages.update(parse_pages(m.group(1) or m.group(2)))
        found.append((name, sorted(pages)))
    return found


@pytest.mark.parametrize(("spanish", "english"), PAIRS, ids=IDS)
@pytest.mark.nodb
def test_every_lesson_and_quiz_cites_the_same_plan_pages(spanish, english):
    es, en = _cited_pages(CATALOG_DIR / spanish), _cited_pages(CATALOG_DIR / english)
    assert len(es) == len(en)
    assert [pages for _, pages in es] == [pages for _, pages in en], [
        (a, b) for a, b in zip(es, en, strict=True) if a[1] != b[1]
    ]
    assert sum(bool(pages) for _, pages in es) >= 5


@pytest.mark.parametrize(("spanish", "english"), PAIRS, ids=IDS)
@pytest.mark.nodb
def test_plan_quotes_stay_english_and_are_on_the_cited_page(spanish, english):
    checked, problems = check_course(CATALOG_DIR / spanish)
    assert [str(p) for p in problems] == [] and checked >= 20
    # every sentence the English course quotes from the plan is quoted, in English, in the Spanish one too
    # (a one- to three-word term such as "dislocated worker" is put in Spanish instead)
    quoted_es = {q.phrase.strip(" .,") for q in course_quotes(CATALOG_DIR / spanish)}
    quoted_en = {q.phrase.strip(" .,") for q in course_quotes(CATALOG_DIR / english)}
    assert {p for p in quoted_en if len(p.split()) >= 4} <= quoted_es


@pytest.mark.parametrize("pair", PAIRS, ids=IDS, indirect=True)
def test_spanish_lessons_read_no_harder_than_the_english(pair):
    es, en = pair
    reading = course_readability(es, original=en)
    assert reading.spanish and reading.worker_audience and reading.original_slug == en.slug
    assert len(reading.lessons) == sum(len(m.lessons) for m in en.modules)
    for g in reading.lessons:
        assert g.original is not None and g.grade >= g.original, g
        assert g.grade >= MIN_LESSON_EASE_ES, g
    assert reading.average >= max(MIN_AVERAGE_EASE_ES, reading.original_average)
    assert reading.problems() == []


@pytest.mark.nodb
def test_spanish_measure_rewards_short_words_and_sentences():
    plain = "Lea el texto. Revise los datos. Pregunte si no sabe. La IA se equivoca a veces."
    heavy = (
        "La implementación responsable de herramientas de inteligencia artificial generativa requiere "
        "verificaciones sistemáticas, documentación exhaustiva y supervisión institucional permanente."
    )
    assert fernandez_huerta(plain) > 80 > 30 > fernandez_huerta(heavy)
    # the same text measured as English would be scored with English syllable rules: a different number
    assert reading_ease("Read the text. Check the facts.") > 80


def test_a_spanish_lesson_harder_than_its_original_is_reported(framework):
    es = read_folder(CATALOG_DIR / "alfabetizacion-en-ia-para-cada-trabajador")
    en = read_folder(CATALOG_DIR / "ai-literacy-for-every-worker")
    assert course_readability(es, original=en).problems() == []
    # too hard for any worker course, whatever the original
    es.modules[0].lessons[0].body = (
        "La implementación responsable de herramientas de inteligencia artificial generativa requiere "
        "verificaciones sistemáticas, documentación exhaustiva, supervisión institucional permanente y "
        "evaluaciones independientes de confiabilidad."
    )
    # easy enough on its own, but harder than an English original made very easy
    es.modules[0].lessons[1].body = "Revise la respuesta de la herramienta antes de enviarla al cliente."
    en.modules[0].lessons[1].body = "Read it. Check it. Then send it."
    reading = course_readability(es, original=en)
    assert reading.lessons[1].grade >= MIN_LESSON_EASE_ES
    problems = reading.problems()
    assert len(problems) == 2, problems
    assert problems[0].startswith("Lesson 1.1 (por-que-importan-las-habilidades-de-ia) reads at Fernández-Huerta")
    assert "(at least 50)" in problems[0]
    assert problems[1].startswith("Lesson 1.2 (como-funciona-la-ia-generativa)")
    assert "harder than its English original (ai-literacy-for-every-worker, Flesch reading ease" in problems[1]
    # measured alone (no original at hand), only the absolute limits apply
    assert len(course_readability(es).problems()) == 1


# ---- the catalog: a language filter, and the reader's language first ---------------------------------------------


def _course(slug: str, title: str, language: str = "en"):
    spec = course_spec(slug, title=title)
    spec.language = language
    course, _ = apply_spec(spec, now=utcnow(), status=CourseStatus.PUBLISHED)
    db.session.commit()
    return course


@pytest.fixture
def mixed_catalog(ctx):
    load_test_framework()
    # by title alone the Spanish course sits between the two English ones
    _course("ai-basics", "AI Basics")
    _course("working-with-ai", "Working with AI")
    _course("uso-de-la-ia", "Uso de la IA en el trabajo", "es")


def titles_in_order(html: str) -> list[str]:
    found = {t: html.find(t) for t in ("AI Basics", "Working with AI", "Uso de la IA en el trabajo")}
    return [t for t, at in sorted(found.items(), key=lambda kv: kv[1]) if at >= 0]


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({"Accept-Language": "en-US,en;q=0.9"}, "", ["AI Basics", "Working with AI", "Uso de la IA en el trabajo"]),
        ({"Accept-Language": "es-MX,es;q=0.9"}, "", ["Uso de la IA en el trabajo", "AI Basics", "Working with AI"]),
        ({}, "?lang=es", ["Uso de la IA en el trabajo", "AI Basics", "Working with AI"]),
        ({"Accept-Language": "es"}, "?lang=en", ["AI Basics", "Working with AI", "Uso de la IA en el trabajo"]),
    ],
)
def test_readers_see_courses_in_their_language_first(client, mixed_catalog, headers, query, expected):
    response = client.get(f"/courses{query}", headers=headers)
    assert response.status_code == 200
    assert titles_in_order(response.get_data(as_text=True)) == expected


@pytest.mark.parametrize(
    ("language", "expected"),
    [("es", ["Uso de la IA en el trabajo"]), ("en", ["AI Basics", "Working with AI"]), ("", None)],
)
def test_catalog_filters_by_language(client, mixed_catalog, language, expected):
    html = client.get(f"/courses?language={language}").get_data(as_text=True)
    assert titles_in_order(html) == (expected or ["AI Basics", "Working with AI", "Uso de la IA en el trabajo"])
    if expected:
        assert f"{len(expected)} course" in html and "(1 set)" in html  # the filters stay open, showing one is set
        assert f'<option lang="{language}" selected value="{language}">' in html
    # each language named in itself and marked as that language, so a screen reader says "Español" right
    assert '<option lang="es" ' in html and ">Español</option>" in html and ">English</option>" in html


def test_an_unknown_language_finds_nothing_and_is_not_an_error(client, mixed_catalog):
    response = client.get("/courses?language=xx-evil%27")
    assert response.status_code == 200
    assert titles_in_order(response.get_data(as_text=True)) == []


def test_the_catalog_filter_works_without_javascript_and_keeps_other_filters(client, mixed_catalog):
    html = client.get("/courses?language=en&q=working").get_data(as_text=True)
    assert titles_in_order(html) == ["Working with AI"]


# ---- certificates and credentials of a Spanish course ---------------------------------------------------------------


def test_a_spanish_course_certificate_and_credential_are_in_spanish_and_verify(client, app, ctx):
    load_test_framework()
    course = _course("uso-de-la-ia", "Uso de la IA en el trabajo", "es")
    certificate = make_certificate(make_user(email="ana@example.org", name="Ana Pérez"), course)
    assert certificate.language == "es"
    public = format_public_id(certificate.public_id)
    credential = json.loads(client.get(f"/credentials/{public}.json", headers={"Accept-Language": "en"}).data)
    achievement = credential["credentialSubject"]["achievement"]
    assert achievement["inLanguage"] == "es" and achievement["name"] == "Uso de la IA en el trabajo"
    assert achievement["description"].startswith("Finalización del curso «Uso de la IA en el trabajo» (versión 1)")
    assert achievement["criteria"]["narrative"].startswith("Completar todas las lecciones del curso")
    assert achievement["resultDescription"][0]["name"] == "Puntuación final"
    published = keys.public_keys()
    assert vc.verify(credential, lambda method: published.get(method.split("#", 1)[1]))
    body = client.post("/api/v1/verify", data=json.dumps(credential), content_type="application/json").json
    assert body["verified"] is True and body["verdict"] == "valid", body


def test_an_english_course_credential_says_english(client, ctx):
    load_test_framework()
    certificate = make_certificate(make_user(email="lee@example.org"), _course("ai-basics", "AI Basics"))
    assert certificate.language == "en"
    public = format_public_id(certificate.public_id)
    credential = json.loads(client.get(f"/credentials/{public}.json", headers={"Accept-Language": "es"}).data)
    achievement = credential["credentialSubject"]["achievement"]
    assert achievement["inLanguage"] == "en"
    # signed in the course's language, not the language of whoever asked first
    assert achievement["description"].startswith("Completion of the course “AI Basics” (version 1)")
    assert achievement["resultDescription"][0]["name"] == "Final score"


@pytest.mark.nodb
def test_studio_question_text_reads_verdadero_falso_as_true_false():
    from courses.studio import parse_questions

    (question,) = parse_questions("? La IA nunca se equivoca.\n- Verdadero\n* Falso\n> Se equivoca a veces.")
    assert question.kind == "true_false"
    assert [(c.text, c.correct) for c in question.choices] == [("Verdadero", False), ("Falso", True)]
    (other,) = parse_questions("? ¿Cuál?\n* Sí\n- No\n> Porque sí.")
    assert other.kind == "single"


def test_a_spanish_course_certificate_pdf_is_in_spanish_whoever_downloads_it(client, app, ctx, tmp_path):
    import io

    from pypdf import PdfReader

    load_test_framework()
    app.config["CERTIFICATE_DIR"] = str(tmp_path / "pdfs")
    try:
        course = _course("uso-de-la-ia", "Uso de la IA en el trabajo", "es")
        certificate = make_certificate(make_user(email="ana@example.org", name="Ana Pérez"), course)
        sign_in(client, "ana@example.org")
        # the reader's language is English: the certificate still speaks the course's language
        response = client.get(
            f"/certificates/{format_public_id(certificate.public_id)}.pdf", headers={"Accept-Language": "en"}
        )
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)
        assert "Certificado de finalización" in text and "completó con éxito" in text
        assert "Uso de la IA en el trabajo" in text and "Certificate of Completion" not in text
    finally:
        app.config["CERTIFICATE_DIR"] = None


def test_spanish_content_is_marked_spanish_on_english_pages_and_the_reverse(client, mixed_catalog):
    english_page = client.get("/courses", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="en">' in english_page
    assert re.search(r'lang="es"[^>]*>Uso de la IA en el trabajo<', english_page)
    assert not re.search(r'lang="en"[^>]*>AI Basics<', english_page)  # same language as the page: no attribute
    spanish_page = client.get("/courses?lang=es").get_data(as_text=True)
    assert '<html lang="es">' in spanish_page
    assert re.search(r'lang="en"[^>]*>AI Basics<', spanish_page)
    assert not re.search(r'lang="es"[^>]*>Uso de la IA en el trabajo<', spanish_page)
    course_page = client.get("/courses/uso-de-la-ia", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert re.search(r'<h1 lang="es">Uso de la IA en el trabajo</h1>', course_page)
