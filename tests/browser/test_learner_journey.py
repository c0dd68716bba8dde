"""A learner on a phone, without JavaScript: register, find a course by occupation, complete it."""

from __future__ import annotations

import re

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, correct_answers

COURSE = "data-center-technician-foundations"


def test_learner_completes_a_course_on_a_phone_without_javascript(live_server, phone, new_page, a11y):
    """Every page on the way is checked with axe (WCAG 2.1 A/AA) as it was shown."""
    page = phone
    page.goto(live_server + "/")
    a11y.check(page, "01-home")
    page.locator(".nav-menu > summary").click()  # on a phone, Sign up is in the menu
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Full name").fill("Rosa Electrician")
    page.get_by_label("Email").fill("rosa@example.org")
    page.get_by_label("Password", exact=True).fill("copper conduit breaker 77")
    page.get_by_label("Repeat password").fill("copper conduit breaker 78")
    a11y.check(page, "02-register")
    page.get_by_role("button", name="Create account").click()
    a11y.check(page, "02-register-errors")  # the error state: messages tied to their fields
    assert page.get_by_label("Repeat password").get_attribute("aria-invalid") == "true"
    page.get_by_label("Password", exact=True).fill("copper conduit breaker 77")
    page.get_by_label("Repeat password").fill("copper conduit breaker 77")
    page.get_by_role("button", name="Create account").click()
    # the same answer as for an email that already has an account (issue 12, item 6): then log in
    assert "We have sent a message to rosa@example.org" in page.content()
    a11y.check(page, "03-registered")
    page.get_by_label("Email").fill("rosa@example.org")
    page.get_by_label("Password").fill("copper conduit breaker 77")
    page.get_by_role("button", name="Log in").click()
    assert "Welcome back, Rosa Electrician" in page.content()
    a11y.check(page, "03-welcome")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Courses").click()
    page.locator("details.filters-disclosure > summary").click()  # the pickers fold away on a phone
    page.get_by_label("Occupation").select_option("47-2111.00")
    page.get_by_role("button", name="Show courses").click()
    a11y.check(page, "04-catalog-electricians")
    assert "Data Center Technician Foundations" in page.content()
    assert "Spotting Synthetic Media" not in page.content()
    page.get_by_role("link", name=re.compile("Data Center Technician Foundations")).click()
    a11y.check(page, "05-course")
    page.get_by_role("button", name="Enroll for free").click()
    assert page.url.endswith(f"/courses/{COURSE}/inside-an-ai-data-center/ai-buildout-and-your-role")
    a11y.check(page, "06-first-lesson")

    answers = correct_answers(COURSE)
    first_quiz = True
    for _ in range(60):  # every lesson and quiz of the course, following the site's own next step
        if "/quiz" in page.url:
            if first_quiz:
                a11y.check(page, "07-quiz")
            page.get_by_role("button", name=re.compile("Start the quiz|Try again")).click()
            if first_quiz:
                a11y.check(page, "08-quiz-questions")
            page.locator("fieldset.question").first.wait_for()  # .all() does not wait for the attempt page
            for fieldset in page.locator("fieldset.question").all():
                legend = " ".join(fieldset.locator("legend").inner_text().split())
                prompt = legend.split(". ", 1)[1].removesuffix(" Choose all that apply.")
                assert prompt in answers, legend
                labels = fieldset.locator("label")
                for i, text in enumerate(labels.all_inner_texts()):  # the choices' texts at once
                    if " ".join(text.split()) in answers[prompt]:
                        labels.nth(i).click()
            with page.expect_navigation():
                page.get_by_role("button", name="Submit answers").click()
            assert "You passed" in page.content(), page.url
            if first_quiz:
                a11y.check(page, "09-quiz-result")
                first_quiz = False
            if "Congratulations" in page.content():
                break
            page.get_by_role("link", name="Continue").first.click()
        else:
            page.get_by_role("button", name="Mark complete and continue").click()
    assert page.url.endswith(f"/courses/{COURSE}/done")  # the last quiz lands on the completion page
    a11y.check(page, "10-completion")
    page.goto(live_server + f"/courses/{COURSE}")
    assert "Completed" in page.content() and "100% complete" in page.content()
    a11y.check(page, "11-course-completed")
    page.goto(live_server + "/dashboard")
    a11y.check(page, "12-dashboard")
    dashboard = page.content()
    assert "Data Center Electrical Power Systems" in dashboard  # skills profile
    assert "Electricians" in dashboard
    page.locator(".nav-menu > summary").click()  # a phone's navigation: Courses, and the rest in a menu
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Framework").click()
    a11y.check(page, "12-framework")
    page.goto(live_server + "/account")
    a11y.check(page, "12-account")

    # the certificate: view it, download the PDF, and copy the share link
    page.goto(live_server + f"/courses/{COURSE}")
    page.get_by_role("link", name="View certificate").click()
    a11y.check(page, "13-certificate")
    assert page.get_by_role("link", name="Add to LinkedIn profile").count() == 1
    share_url = page.get_by_label(re.compile("Verification link")).input_value()
    pdf = page.request.get(live_server + page.get_by_role("link", name="Download PDF").get_attribute("href"))
    assert pdf.ok and pdf.body().startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]
    verify_path = share_url.split("://", 1)[1].split("/", 1)[1]
    page.locator(".nav-menu > summary").click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My certificates").click()
    a11y.check(page, "14-my-certificates")

    # an employer with no account opens the QR link and sees "Valid"
    employer = new_page(width=1280, height=900)
    employer.goto(f"{live_server}/verify")
    a11y.check(employer, "15-verify-form")
    employer.goto(f"{live_server}/courses/no-such-course")
    a11y.check(employer, "15-not-found")
    employer.goto(f"{live_server}/{verify_path}")
    a11y.check(employer, "15-verify-valid")
    assert "✓ Valid" in employer.content() and "Rosa Electrician" in employer.content()
    assert "rosa@example.org" not in employer.content()

    # an admin revokes it; the employer reloads and sees "Revoked"
    admin = new_page(width=1280, height=900)
    admin.goto(live_server + "/login")
    a11y.check(admin, "16-login")
    admin.get_by_label("Email").fill(ADMIN_EMAIL)
    admin.get_by_label("Password").fill(ADMIN_PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.get_by_role("link", name="Certificates", exact=True).click()
    admin.get_by_label(re.compile("Search by ID")).fill("rosa@example.org")
    admin.get_by_role("button", name="Search").click()
    a11y.check(admin, "17-admin-certificates")
    admin.locator("table a").first.click()
    a11y.check(admin, "18-admin-certificate")
    admin.get_by_label("Reason").select_option("identity_mismatch")
    admin.get_by_label(re.compile("Note")).fill("Holder could not show ID at the interview.")
    with admin.expect_navigation():  # content() does not wait for the answer to the POST
        admin.get_by_role("button", name="Revoke certificate").click()
    assert "The certificate is revoked" in admin.content()
    a11y.check(admin, "19-admin-revoked")
    employer.reload()
    assert "✗ Revoked" in employer.content() and "Identity could not be confirmed" in employer.content()
    a11y.check(employer, "20-verify-revoked")

    # the insights dashboard now counts Rosa's enrollment and certificate
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Insights").click()
    a11y.check(admin, "21-admin-insights")
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    a11y.check(admin, "22-admin-users")
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    a11y.check(admin, "23-admin-audit-log")

    a11y.assert_clean()
