"""Organization, report, admin, studio and notification pages in Spanish: words, validator and service messages,
dates and numbers in the viewer's language, and mail in the recipient's language (not the sender's)."""

from __future__ import annotations

import email.policy
from datetime import date, timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from sqlalchemy import select

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from core.i18n import LANG_COOKIE
from tests.factories import (
    join_cohort,
    load_test_framework,
    make_cohort,
    make_course,
    make_employer,
    make_user,
    sign_in,
)


def outbox(app, to: str) -> list[str]:
    """Plain-text bodies of the mail to ``to``, read as bytes (tests.test_orgs.outbox reads text, which garbles
    non-ASCII 8-bit parts)."""
    folder = Path(app.config["MAIL_OUTBOX_DIR"])
    mails = [message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted(folder.iterdir())]
    return [m.get_body(("plain",)).get_content() for m in mails if m["To"] == to]


@pytest.fixture
def world(prebuilt_rows):
    return prebuilt_rows(build_world)  # built once per module, copied back for each test (tests/conftest.py)


def build_world() -> dict:
    load_test_framework()
    course = make_course("ai-basics", title="AI Basics")
    manager, org = make_employer("hr@acme.example.com", name="Hana Manager", org_name="Acme")
    cohort = make_cohort(org, [course], name="Warehouse crew", starts_on=date(2026, 3, 2), due_on=date(2026, 12, 7))
    return {"course": course, "manager": manager, "org": org, "cohort": cohort}


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def test_organization_pages_speak_spanish_with_spanish_dates(client, world):
    join_cohort(world["cohort"], make_user(email="ana@example.org", name="Ana Ruiz"))
    sign_in(client, "hr@acme.example.com")
    client.set_cookie(LANG_COOKIE, "es")
    home = page(client, "/organizations/acme")
    assert "Grupos" in home and "Informe de la fuerza laboral" in home and "Usted es propietario/a" in home
    assert "2 mar 2026" in home  # Babel's medium date in Spanish, not 2026-03-02
    cohort = page(client, f"/organizations/acme/cohorts/{world['cohort'].id}")
    assert (
        "1 participante" in cohort
        and 'empieza el <time datetime="2026-03-02">2 mar 2026</time>' in cohort
        and "Sin empezar" in cohort
    )
    assert "Todas las personas" in cohort and "Avisos" in cohort
    # English stays the default for the same pages
    client.set_cookie(LANG_COOKIE, "en")
    assert "1 member" in page(client, f"/organizations/acme/cohorts/{world['cohort'].id}")


def test_form_labels_choices_and_validator_messages_are_spanish(client, ctx):
    make_user(email="rosa@example.org")
    sign_in(client, "rosa@example.org")
    client.set_cookie(LANG_COOKIE, "es")
    form = page(client, "/organizations/new")
    assert "Nombre de la organización" in form and "Sindicato" in form and "Junta de desarrollo laboral" in form
    response = client.submit(
        "/organizations/new", {"name": "", "kind": "union", "website": "nope", "contact_email": "x"}
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Escriba el nombre de la organización." in html
    assert "Escriba una dirección completa, como https://example.org." in html


def test_service_errors_and_flashes_are_spanish(client, world):
    sign_in(client, "hr@acme.example.com")
    client.set_cookie(LANG_COOKIE, "es")
    url = "/organizations/acme/cohorts/new"
    form = {"name": "Turno noche", "starts_on": "2027-01-10", "ends_on": "2027-01-01", "course_ids": world["course"].id}
    refused = client.submit(url, form)
    assert refused.status_code == 422
    assert "La fecha de fin es anterior a la fecha de inicio." in refused.get_data(as_text=True)
    created = client.submit(url, {**form, "ends_on": "2027-03-01"})
    assert created.status_code == 303
    assert "Se creó el grupo «Turno noche». Ahora invite a las personas." in page(client, created.headers["Location"])


def test_reminders_go_out_in_each_members_language_not_the_managers(app, client, world):
    cohort = world["cohort"]
    cohort.starts_on = (utcnow() - timedelta(days=30)).date()
    cohort.due_on = (utcnow() - timedelta(days=1)).date()
    spanish = make_user(email="lucia@example.org", name="Lucía")
    spanish.locale = "es"
    db.session.commit()
    join_cohort(cohort, spanish)
    join_cohort(cohort, make_user(email="bob@example.org", name="Bob"))
    sign_in(client, "hr@acme.example.com")
    client.set_cookie(LANG_COOKIE, "es")  # the manager reads Spanish
    url = f"/organizations/acme/cohorts/{cohort.id}"
    assert client.submit(url + "/remind", page=url).status_code == 303
    [to_lucia] = [b for b in outbox(app, "lucia@example.org") if "Acme" in b]
    [to_bob] = [b for b in outbox(app, "bob@example.org") if "Acme" in b]
    assert "Hola, Lucía:" in to_lucia and "le pide que siga avanzando" in to_lucia and "Lleva un 0\xa0%" in to_lucia
    assert "Hello Bob," in to_bob and "asks you to keep going" in to_bob  # no preference: English
    assert "Se envió un recordatorio a 2 participantes atrasados/as." in page(client, url)


def test_invitations_use_the_invitees_language_or_else_the_managers(app, client, world):
    invitee = make_user(email="ana@example.org", name="Ana")
    invitee.locale = "en"
    db.session.commit()
    sign_in(client, "hr@acme.example.com")
    client.set_cookie(LANG_COOKIE, "es")
    url = f"/organizations/acme/cohorts/{world['cohort'].id}/invite"
    for address in ("ana@example.org", "new.person@example.org"):
        assert client.submit(url, {"email": address, "name": ""}, page=url).status_code == 303
    assert "Acme invites you to join" in outbox(app, "ana@example.org")[-1]
    assert "Acme le invita a unirse a «Warehouse crew»" in outbox(app, "new.person@example.org")[-1]


def test_the_workforce_report_and_its_charts_are_spanish(client, world):
    sign_in(client, "hr@acme.example.com")
    client.set_cookie(LANG_COOKIE, "es")
    html = page(client, "/organizations/acme/reports/workforce?from=2026-01-01&to=2026-06-30")
    assert "Informe de la fuerza laboral" in html and "Cómo se calcula cada cifra" in html
    assert (
        'Del <time datetime="2026-01-01">1 de enero de 2026</time> al '
        '<time datetime="2026-06-30">30 de junio de 2026</time>'
    ) in html
    assert "CSV (nombres de los campos del ETA-9171, en inglés)" in html
    svg = client.get("/organizations/acme/reports/workforce/hours.svg?from=2026-01-01&to=2026-06-30")
    assert "Horas declaradas" in svg.get_data(as_text=True)
    # the CSV keeps the ETA-9171 item names whatever the viewer's language
    csv_text = client.get("/organizations/acme/reports/workforce?from=2026-01-01&to=2026-06-30&format=csv")
    assert "Total Number of Participants Served" in csv_text.get_data(as_text=True)


def test_admin_studio_and_email_pages_are_spanish(client, ctx):
    load_test_framework()
    make_course("ai-basics", title="AI Basics")
    admin = make_user(email="admin@example.org")
    admin.role = Role.ADMIN
    db.session.commit()
    sign_in(client, "admin@example.org")
    client.set_cookie(LANG_COOKIE, "es")
    expected = {
        "/admin/organizations": "Aprobar automáticamente",
        "/admin/jobs/": "Tareas en segundo plano",
        "/admin/audit/": "Registro de auditoría",
        "/admin/insights": "Obtención de credenciales",
        "/studio/": "Estudio de cursos",
        "/studio/programs": "Todavía no hay programas.",
        "/studio/ai-basics": "Habilidades, objetivos y ocupaciones",
        "/account/notifications": "Preferencias de correo",
        f"/admin/learners/{admin.id}": "Cursos y progreso",
        "/admin/users/": "Buscar por nombre o correo",
        "/admin/certificates": "Buscar por ID, titular, correo o curso",
        "/admin/name-corrections": "No se ha pedido ninguna corrección de nombre.",
        "/admin/branding": "Firmante autorizado/a: cargo",
    }
    for url, words in expected.items():
        assert words in page(client, url), url
    assert "Lowercase letters" not in client.submit("/studio/new", {"slug": "Bad Slug"}).get_data(as_text=True)


def test_insights_show_a_fractional_median_in_words(client, ctx):
    """The median (a float, in tenths of a day) picks its plural from a whole number (gettext refuses a float)."""
    from courses.models import Enrollment
    from tests.factories import complete_course

    load_test_framework()
    course = make_course("ai-basics", title="AI Basics")
    for hours in (36, 60):  # the lower middle of 1.5 and 2.5 days
        learner = make_user()
        complete_course(learner, course)
        enrollment = db.session.scalar(select(Enrollment).where(Enrollment.user_id == learner.id))
        enrollment.completed_at = enrollment.enrolled_at + timedelta(hours=hours)
    db.session.commit()
    admin = make_user(email="admin@example.org")
    admin.role = Role.ADMIN
    db.session.commit()
    sign_in(client, "admin@example.org")
    html = page(client, "/admin/insights")
    assert "1.5 days" in html
    client.set_cookie(LANG_COOKIE, "es")
    assert "1,5 días" in page(client, "/admin/insights")
