"""An employer brings learners in: create an organization, confirm the email, get approved, invite by CSV; a learner
joins with consent, completes a course, shows on the dashboard, leaves and disappears. Phone-sized, no JavaScript."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, arrange_progress, correct_answers, live_mail

COURSE = "data-center-technician-foundations"
COURSE_TITLE = "Data Center Technician Foundations: Power, Cooling & IT Hardware"


def register(page, base: str, name: str, email: str, password: str) -> None:
    page.goto(base + "/register")
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Repeat password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_load_state()  # count() does not wait for the page the POST leads to
    if page.get_by_role("button", name="Log in").count():  # registration leads to the login page
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()


def link(body: str, path: str) -> str:
    match = re.search(r"https?://\S+?(" + re.escape(path) + r"\S+)", body)
    assert match, body
    return match.group(1)


def complete_course(page, base: str, email: str) -> None:
    """Enroll, then finish the course in the browser: its last quiz, which completes it (the steps before it are
    taken on the server, arrange_progress; test_learner_journey walks this course's every page in the browser)."""
    page.goto(f"{base}/courses/{COURSE}")
    page.get_by_role("button", name="Enroll for free").click()
    arrange_progress(email, COURSE)
    page.goto(f"{base}/courses/{COURSE}/continue")  # "Continue" leads to the step left
    assert "/quiz" in page.url, page.url
    answers = correct_answers(COURSE)
    for _ in range(60):
        if "/quiz" in page.url:
            page.get_by_role("button", name=re.compile("Start the quiz|Try again")).click()
            page.locator("fieldset.question").first.wait_for()  # .all() does not wait for the attempt page
            for fieldset in page.locator("fieldset.question").all():
                legend = " ".join(fieldset.locator("legend").inner_text().split())
                prompt = legend.split(". ", 1)[1].removesuffix(" Choose all that apply.")
                labels = fieldset.locator("label")
                for i, text in enumerate(labels.all_inner_texts()):  # the choices' texts at once
                    if " ".join(text.split()) in answers[prompt]:
                        labels.nth(i).click()
            page.get_by_role("button", name="Submit answers").click()
            assert "You passed" in page.content(), page.url
            if "Congratulations" in page.content():
                return
            page.get_by_role("link", name="Continue").first.click()
        else:
            page.get_by_role("button", name="Mark complete and continue").click()
    raise AssertionError("the course did not finish")


def test_an_employer_brings_learners_in_and_follows_them(live_server, new_page, a11y):
    base = live_server
    employer = new_page()
    # a new employer signs up, then finds the page for employers in the footer
    register(employer, base, "Hana Hiring", "hana@acme-logistics.example.com", "pallet forklift dock 42")
    employer.get_by_role("link", name="For employers and programs").click()
    a11y.check(employer, "org-01-for-employers")
    employer.get_by_role("link", name="Create an organization").click()
    employer.get_by_label("Organization name").fill("Acme Logistics")
    employer.get_by_label("Kind of organization").select_option("employer")
    employer.get_by_label("Website").fill("https://acme-logistics.example.com")
    employer.get_by_label("Your work email").fill("hana@acme-logistics.example.com")
    a11y.check(employer, "org-02-create")
    employer.get_by_role("button", name="Create organization").click()
    assert "confirm your work email" in employer.content()
    a11y.check(employer, "org-03-pending")
    employer.goto(base + "/verify/bulk")
    assert "does not have permission" in employer.content()  # not before approval

    # (the site also welcomes the new account: take the organization's confirmation)
    mail = next(m for m in live_mail("hana@acme-logistics.example.com") if "/organizations/verify/" in m)
    employer.goto(base + link(mail, "/organizations/verify/"))
    assert "Email confirmed" in employer.content()
    a11y.check(employer, "org-04-email-confirmed")

    admin = new_page(width=1280, height=900)
    admin.goto(base + "/login")
    admin.get_by_label("Email").fill(ADMIN_EMAIL)
    admin.get_by_label("Password").fill(ADMIN_PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Organizations").click()
    a11y.check(admin, "org-05-admin-queue")
    admin.get_by_role("button", name="Approve Acme Logistics").click()
    assert "Acme Logistics is approved" in admin.content()

    # approved: a cohort on one course, due in two weeks
    employer.goto(base + "/organizations/acme-logistics")
    a11y.check(employer, "org-06-home")
    employer.get_by_role("link", name="New cohort").click()
    employer.get_by_label("Cohort name").fill("Dock crew, spring")
    today = datetime.now(UTC).date()
    employer.get_by_label("Start date").fill(today.isoformat())
    employer.get_by_label(re.compile("Due date")).fill((today + timedelta(days=14)).isoformat())
    employer.get_by_label(COURSE_TITLE).check()
    a11y.check(employer, "org-07-new-cohort")
    employer.get_by_role("button", name="Create cohort").click()
    assert "Invite people to Dock crew, spring" in employer.content()
    a11y.check(employer, "org-08-invite")
    # the cohort can be edited afterwards (its due date moved a week)
    invite_url = employer.url
    employer.goto(invite_url.removesuffix("/invite") + "/edit")
    a11y.check(employer, "org-08a-cohort-edit")
    employer.get_by_label(re.compile("Due date")).fill((today + timedelta(days=21)).isoformat())
    employer.get_by_role("button", name="Save cohort").click()
    assert "Cohort “Dock crew, spring” saved." in employer.content()
    employer.goto(invite_url)

    roster = "email,name\nluis.ortiz@example.org,Luis Ortiz\nkeisha.brown@example.org,Keisha Brown\n"
    employer.get_by_label("Roster (CSV)").set_input_files(
        files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": roster.encode()}]
    )
    employer.get_by_role("button", name="Check roster").click()
    assert "All 2 lines are valid" in employer.content() and "Nothing has been sent yet" in employer.content()
    a11y.check(employer, "org-09-roster-check")
    assert live_mail("luis.ortiz@example.org") == []
    employer.get_by_role("button", name="Send the invitations").click()
    assert "2 invitations sent" in employer.content()

    # Luis has no account: the invitation lets him create one and brings him back to agree
    learner = new_page()
    invitation = next(m for m in live_mail("luis.ortiz@example.org") if "/join/" in m)
    learner.goto(base + link(invitation, "/join/"))
    assert "What Acme Logistics will see" in learner.content()
    a11y.check(learner, "org-10-join-anonymous")
    learner.get_by_role("link", name="Create an account").click()
    assert learner.get_by_label("Email").input_value() == "luis.ortiz@example.org"
    learner.get_by_label("Full name").fill("Luis Ortiz")
    learner.get_by_label("Password", exact=True).fill("crate scanner aisle 19")
    learner.get_by_label("Repeat password").fill("crate scanner aisle 19")
    learner.get_by_role("button", name="Create account").click()
    learner.wait_for_load_state()
    if learner.get_by_role("button", name="Log in").count():  # registration leads to the login page, then back
        learner.get_by_label("Email").fill("luis.ortiz@example.org")
        learner.get_by_label("Password").fill("crate scanner aisle 19")
        learner.get_by_role("button", name="Log in").click()
    assert "your quiz attempts and best scores" in learner.content()
    a11y.check(learner, "org-11-consent")
    learner.get_by_role("button", name="I agree, join").click()
    assert "You joined Acme Logistics" in learner.content()
    a11y.check(learner, "org-12-my-organizations")

    # the program pages a learner reaches from the catalog
    learner.goto(base + "/programs")
    a11y.check(learner, "org-12a-programs")
    learner.goto(base + "/programs/data-center-technician-pathway")
    assert "Data-Center Technician" in learner.content()
    a11y.check(learner, "org-12b-program")

    complete_course(learner, base, "luis.ortiz@example.org")

    employer.goto(base + "/organizations/acme-logistics")
    employer.get_by_role("link", name="Dock crew, spring").click()
    dashboard = employer.content()
    assert "1 member" in dashboard and "Luis Ortiz" in dashboard and "Keisha" not in dashboard
    row = dashboard.split("Luis Ortiz")[1].split("</tr>")[0]
    assert "Completed" in row and "Certificate valid" in row and "100%" in row
    a11y.check(employer, "org-13-dashboard")
    employer.get_by_role("link", name="Luis Ortiz").click()
    assert "Quiz" in employer.content() and "Yes" in employer.content()
    a11y.check(employer, "org-14-member")

    # the workforce report counts him: one participant served, one exit by completion, one credential
    employer.goto(base + "/organizations/acme-logistics")
    employer.get_by_role("link", name="Workforce report").click()
    report = employer.content()
    assert "Participants served</dt><dd>1 (1 started in the period)" in report
    assert "1: 1 by completion" in report and "One row per participant" in report
    a11y.check(employer, "org-14a-workforce-report")

    # Luis leaves; the organization sees nothing further of him
    learner.goto(base + "/account/organizations")
    learner.get_by_role("button", name="Leave Acme Logistics").click()
    assert "You left Acme Logistics" in learner.content()
    employer.goto(base + "/organizations/acme-logistics")
    employer.get_by_role("link", name="Dock crew, spring").click()
    assert "Luis Ortiz" not in employer.content() and "Nobody has joined yet" in employer.content()
    a11y.check(employer, "org-15-dashboard-after-leaving")
    employer.goto(base + "/organizations/acme-logistics/reports/workforce")
    assert "Participants served</dt><dd>0 (0 started in the period)" in employer.content()
    a11y.assert_clean()
