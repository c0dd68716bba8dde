"""A learner on a phone, without JavaScript: register, find a course by occupation, complete it."""

from __future__ import annotations

import re

import yaml

from courses.catalog import CATALOG_DIR
from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, shot

COURSE = "data-center-technician-foundations"


def correct_answers() -> dict[str, set[str]]:
    """{question prompt: texts of its correct choices}, read from the shipped course files."""
    answers = {}
    for quiz in (CATALOG_DIR / COURSE).glob("*/quiz.yaml"):
        for q in yaml.safe_load(quiz.read_text(encoding="utf-8"))["questions"]:
            answers[" ".join(q["prompt"].split())] = {
                " ".join(c["text"].split()) for c in q["choices"] if c.get("correct")
            }
    return answers


def test_learner_completes_a_course_on_a_phone_without_javascript(live_server, phone, new_page):
    page = phone
    page.goto(live_server + "/")
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Full name").fill("Rosa Electrician")
    page.get_by_label("Email").fill("rosa@example.org")
    page.get_by_label("Password", exact=True).fill("copper conduit breaker 77")
    page.get_by_label("Repeat password").fill("copper conduit breaker 77")
    shot(page, "01-register")
    page.get_by_role("button", name="Create account").click()
    assert "Welcome, Rosa Electrician" in page.content()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Courses").click()
    page.get_by_label("Occupation").select_option("47-2111.00")
    page.get_by_role("button", name="Show courses").click()
    shot(page, "02-catalog-electricians")
    assert "Data Center Technician Foundations" in page.content()
    assert "Spotting Synthetic Media" not in page.content()
    page.get_by_role("link", name=re.compile("Data Center Technician Foundations")).click()
    page.get_by_role("button", name="Enroll for free").click()
    assert page.url.endswith(f"/courses/{COURSE}/inside-an-ai-data-center/ai-buildout-and-your-role")
    shot(page, "03-first-lesson")

    answers = correct_answers()
    for _ in range(60):  # every lesson and quiz of the course, following the site's own next step
        if "/quiz" in page.url:
            page.get_by_role("button", name=re.compile("Start the quiz|Try again")).click()
            for fieldset in page.locator("fieldset.question").all():
                legend = " ".join(fieldset.locator("legend").inner_text().split())
                prompt = legend.split(". ", 1)[1].removesuffix(" Choose all that apply.")
                assert prompt in answers, legend
                for label in fieldset.locator("label").all():
                    if " ".join(label.inner_text().split()) in answers[prompt]:
                        label.click()
            page.get_by_role("button", name="Submit answers").click()
            assert "You passed" in page.content(), page.url
            if "Congratulations" in page.content():
                break
            page.get_by_role("link", name="Continue").first.click()
        else:
            page.get_by_role("button", name="Mark complete and continue").click()
    shot(page, "04-quiz-result")
    page.goto(live_server + f"/courses/{COURSE}")
    assert "Completed" in page.content() and "100% complete" in page.content()
    page.goto(live_server + "/dashboard")
    shot(page, "05-dashboard")
    dashboard = page.content()
    assert "Data Center Electrical Power Systems" in dashboard  # skills profile
    assert "Electricians" in dashboard

    # the certificate: view it, download the PDF, and copy the share link
    page.goto(live_server + f"/courses/{COURSE}")
    page.get_by_role("link", name="View certificate").click()
    shot(page, "06-certificate")
    assert page.get_by_role("link", name="Add to LinkedIn profile").count() == 1
    share_url = page.get_by_label(re.compile("Verification link")).input_value()
    pdf = page.request.get(live_server + page.get_by_role("link", name="Download PDF").get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]
    verify_path = share_url.split("://", 1)[1].split("/", 1)[1]

    # an employer with no account opens the QR link and sees "Valid"
    employer = new_page(width=1280, height=900)
    employer.goto(f"{live_server}/{verify_path}")
    shot(employer, "07-verify-valid")
    assert "✓ Valid" in employer.content() and "Rosa Electrician" in employer.content()
    assert "rosa@example.org" not in employer.content()

    # an admin revokes it; the employer reloads and sees "Revoked"
    admin = new_page(width=1280, height=900)
    admin.goto(live_server + "/login")
    admin.get_by_label("Email").fill(ADMIN_EMAIL)
    admin.get_by_label("Password").fill(ADMIN_PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.get_by_role("link", name="Certificates", exact=True).click()
    admin.get_by_label(re.compile("Search by ID")).fill("rosa@example.org")
    admin.get_by_role("button", name="Search").click()
    admin.locator("table a").first.click()
    admin.get_by_label("Reason").select_option("identity_mismatch")
    admin.get_by_label(re.compile("Note")).fill("Holder could not show ID at the interview.")
    admin.get_by_role("button", name="Revoke certificate").click()
    shot(admin, "08-admin-revoked")
    assert "The certificate is revoked" in admin.content()
    employer.reload()
    shot(employer, "09-verify-revoked")
    assert "✗ Revoked" in employer.content() and "Identity could not be confirmed" in employer.content()
