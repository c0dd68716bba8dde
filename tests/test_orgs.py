"""Organizations: self-serve creation, email verification, approval, shared candidates, staff-only pages."""

from __future__ import annotations

import email.policy
import os
import re
from email import message_from_string
from pathlib import Path

from sqlalchemy import func, select

from accounts.models import Role, User
from core.database import utcnow
from core.extensions import db
from orgs.models import AutoApproveDomain, Membership, Organization, OrgRole, OrgStatus, SavedCandidate
from tests.factories import (
    add_staff,
    load_test_framework,
    make_certificate,
    make_course,
    make_employer,
    make_org,
    make_user,
    sign_in,
)


def outbox(app, to: str | None = None) -> list[str]:
    """Bodies of the mails sent so far (to one address, if given)."""
    folder = app.config["MAIL_OUTBOX_DIR"]
    mails = [
        message_from_string(Path(folder, n).read_text(encoding="utf-8"), policy=email.policy.default)
        for n in sorted(os.listdir(folder))
    ]
    # every message has a plain-text and an HTML part; the text part is the body read here
    return [m.get_body(("plain",)).get_content() for m in mails if to is None or m["To"] == to]


def link_in(body: str, path: str) -> str:
    match = re.search(r"https?://[^/\s]+(" + re.escape(path) + r"\S+)", body)
    assert match, body
    return match.group(1)


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


CREATE = {"name": "Riverside Job Center", "kind": "workforce_board", "website": "https://jobs.example.gov"}


def create_org(client, email="case.manager@jobs.example.gov", **fields):
    return client.submit("/organizations/new", {**CREATE, "contact_email": email, **fields})


# ---- creation, verification, approval ------------------------------------------------------------------------


def test_anyone_reads_the_page_for_employers_and_programs(client):
    html = client.get("/organizations").get_data(as_text=True)
    assert "For employers and programs" in html
    assert "Create an organization" in html and "exactly what the organization will see" in html


def test_creating_an_organization_needs_a_verified_email_then_approval(app, client, other_client, ctx):
    make_user(email="rosa@example.org", name="Rosa Rivera")
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "rosa@example.org")
    response = create_org(client)
    assert response.status_code == 303 and response.headers["Location"] == "/organizations/riverside-job-center"
    org = db.session.scalar(select(Organization))
    assert org.status is OrgStatus.PENDING and org.email_verified_at is None
    assert org.contact_email == "case.manager@jobs.example.gov"
    membership = db.session.scalar(select(Membership))
    assert membership.role is OrgRole.OWNER and membership.user.email == "rosa@example.org"
    home = client.get("/organizations/riverside-job-center").get_data(as_text=True)
    assert "confirm your work email" in home and "case.manager@jobs.example.gov" in home

    # before approval: one-at-a-time verification like anyone, nothing more
    assert client.get("/verify/bulk").status_code == 403
    assert client.get("/organizations/riverside-job-center/candidates").status_code == 403
    assert client.get("/organizations/riverside-job-center/cohorts/new").status_code == 403
    assert client.get("/verify").status_code == 200

    # an admin cannot approve before the email is confirmed
    sign_in(other_client, "admin@example.org")
    queue = other_client.get("/admin/organizations").get_data(as_text=True)
    assert "Riverside Job Center" in queue and "Not confirmed" in queue
    refused = other_client.submit(
        f"/admin/organizations/{org.id}/decide", {"approve": "Approve"}, page="/admin/organizations"
    )
    assert refused.status_code == 303
    db.session.refresh(org)
    assert org.status is OrgStatus.PENDING

    (mail,) = outbox(app, "case.manager@jobs.example.gov")
    link = link_in(mail, "/organizations/verify/")
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert client.get(tampered).status_code == 400
    confirmed = client.get(link)
    assert confirmed.status_code == 200 and "Email confirmed" in confirmed.get_data(as_text=True)
    assert client.get(link).status_code == 200  # a second click changes nothing
    db.session.refresh(org)
    assert org.email_verified_at is not None and org.status is OrgStatus.PENDING
    assert "Waiting for approval" in client.get("/organizations/riverside-job-center").get_data(as_text=True)

    approved = other_client.submit(
        f"/admin/organizations/{org.id}/decide", {"approve": "Approve", "note": "Checked"}, page="/admin/organizations"
    )
    assert approved.status_code == 303
    db.session.refresh(org)
    assert org.status is OrgStatus.APPROVED and org.decision_note == "Checked"
    assert client.get("/verify/bulk").status_code == 200
    assert client.get("/organizations/riverside-job-center/candidates").status_code == 200


def test_an_expired_or_foreign_verification_link_is_refused(app, client, ctx, monkeypatch):
    from itsdangerous import timed

    from orgs import services

    make_user(email="rosa@example.org")
    sign_in(client, "rosa@example.org")
    create_org(client)
    org = db.session.scalar(select(Organization))
    with app.test_request_context():
        real = services.email_verification_token(org)
        monkeypatch.setattr(timed.TimestampSigner, "get_timestamp", lambda self: 1_000_000_000)
        old = services.email_verification_token(org)
    monkeypatch.undo()
    response = client.get(f"/organizations/verify/{old}")
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    # the address changed since the link was sent
    org.contact_email = "someone.else@example.org"
    db.session.commit()
    assert client.get(f"/organizations/verify/{real}").status_code == 400
    db.session.refresh(org)
    assert org.email_verified_at is None


def test_listed_domains_are_approved_as_soon_as_the_email_is_verified(app, client, other_client, ctx):
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(other_client, "admin@example.org")
    added = other_client.submit(
        "/admin/organizations/domains", {"domain": "@Jobs.Example.GOV"}, page="/admin/organizations"
    )
    assert added.status_code == 303
    assert db.session.scalar(select(AutoApproveDomain.domain)) == "jobs.example.gov"
    make_user(email="rosa@example.org")
    sign_in(client, "rosa@example.org")
    create_org(client)
    create_org(client, email="hr@elsewhere.example.com", name="Elsewhere Inc", kind="employer")
    for mail in outbox(app):
        client.get(link_in(mail, "/organizations/verify/"))
    statuses = dict(db.session.execute(select(Organization.name, Organization.status)).all())
    assert statuses == {"Riverside Job Center": OrgStatus.APPROVED, "Elsewhere Inc": OrgStatus.PENDING}


def test_create_form_refuses_bad_input_and_writes_nothing(client, ctx):
    make_user(email="rosa@example.org")
    sign_in(client, "rosa@example.org")
    for fields in (
        {"contact_email": "not-an-email"},
        {"name": ""},
        {"kind": "cartel"},
        {"website": "javascript:alert(1)"},
    ):
        response = create_org(client, **fields)
        assert response.status_code == 422, fields
    assert count(Organization) == 0


def test_anonymous_visitors_are_sent_to_log_in_before_creating(client):
    response = client.get("/organizations/new")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_admins_decline_and_the_owner_sees_it(client, other_client, ctx):
    owner = make_user(email="rosa@example.org")
    org = make_org(owner, status=OrgStatus.PENDING)
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(other_client, "admin@example.org")
    other_client.submit(
        f"/admin/organizations/{org.id}/decide",
        {"decline": "Decline", "note": "Not a real company"},
        page="/admin/organizations",
    )
    sign_in(client, "rosa@example.org")
    html = client.get(f"/organizations/{org.slug}").get_data(as_text=True)
    assert "Not approved" in html and "Not a real company" in html
    assert client.get("/verify/bulk").status_code == 403


# ---- candidates shared by the staff --------------------------------------------------------------------------


def test_saved_candidates_belong_to_the_organization_and_all_its_staff_see_them(client, other_client, ctx):
    from credentials.ids import format_public_id

    load_test_framework()
    certificate = make_certificate(make_user(name="Val Valid"), make_course("one"))
    public = format_public_id(certificate.public_id)
    owner, org = make_employer("hr@example.org")
    colleague = make_user(email="colleague@example.org")
    add_staff(org, colleague, OrgRole.VIEWER)
    sign_in(client, "hr@example.org")
    verify_page = client.get(f"/verify/{public}").get_data(as_text=True)
    assert "Save to Acme Staffing’s candidates" in verify_page
    saved = client.submit(
        f"/organizations/{org.slug}/candidates",
        {"certificate_id": public, "note": "Forklift"},
        page=f"/verify/{public}",
    )
    assert saved.status_code == 303
    row = db.session.scalar(select(SavedCandidate))
    assert row.organization_id == org.id and row.added_by_id == owner.id
    sign_in(other_client, "colleague@example.org")
    shared = other_client.get(f"/organizations/{org.slug}/candidates").get_data(as_text=True)
    assert "Val Valid" in shared and "Forklift" in shared and "Remove" not in shared  # viewers read only
    assert "Save to" not in other_client.get(f"/verify/{public}").get_data(as_text=True)
    token = other_client.csrf_token(f"/organizations/{org.slug}/candidates")
    refused = other_client.post(f"/organizations/{org.slug}/candidates/{row.id}/remove", data={"csrf_token": token})
    assert refused.status_code == 403 and count(SavedCandidate) == 1
    csv_text = client.get(f"/organizations/{org.slug}/candidates?format=csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].endswith("added_by") and "Forklift" in csv_text


def test_saving_an_unknown_certificate_is_404(client, ctx):
    _, org = make_employer("hr@example.org")
    sign_in(client, "hr@example.org")
    url = f"/organizations/{org.slug}/candidates"
    assert client.submit(url, {"certificate_id": "0000-" * 6 + "0000"}, page=url).status_code == 404


def test_owners_manage_the_staff_and_keep_an_owner(client, other_client, ctx):
    owner, org = make_employer("hr@example.org")
    make_user(email="mo@example.org", name="Mo Manager")
    sign_in(client, "hr@example.org")
    home = f"/organizations/{org.slug}"
    assert (
        client.submit(f"{home}/staff", {"email": "nobody@example.org", "role": "manager"}, page=home).status_code == 303
    )
    assert "No account has that email" in client.get(home).get_data(as_text=True)
    client.submit(f"{home}/staff", {"email": "MO@example.org", "role": "manager"}, page=home)
    mo = db.session.scalar(select(Membership).join(User).where(User.email == "mo@example.org"))
    assert mo.role is OrgRole.MANAGER
    # a manager works with cohorts but does not manage the staff
    sign_in(other_client, "mo@example.org")
    assert other_client.get(f"{home}/cohorts/new").status_code == 200
    token = other_client.csrf_token(home)
    assert (
        other_client.post(
            f"{home}/staff", data={"csrf_token": token, "email": "x@example.org", "role": "owner"}
        ).status_code
        == 403
    )
    mine = db.session.scalar(select(Membership).where(Membership.user_id == owner.id))
    assert other_client.post(f"{home}/staff/{mine.id}/remove", data={"csrf_token": token}).status_code == 403
    # the last owner cannot demote or remove themselves
    client.submit(f"{home}/staff", {"email": "hr@example.org", "role": "viewer"}, page=home)
    assert "at least one owner" in client.get(home).get_data(as_text=True)
    db.session.refresh(mine)
    assert mine.role is OrgRole.OWNER
    client.submit(f"{home}/staff/{mo.id}/remove", page=home)
    assert count(Membership) == 1
    assert other_client.get(home).status_code == 404  # gone from the staff, gone from the pages


# ---- the command line ------------------------------------------------------------------------------------------


def test_cli_creates_an_approved_organization_and_lists_it(app, ctx):
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["orgs", "create", "Acme", "--kind", "employer", "--owner", "nobody@example.org"])
    assert missing.exit_code != 0 and "No account has the email" in missing.output
    make_user(email="owner@example.org")
    result = runner.invoke(
        args=["orgs", "create", "Acme Staffing", "--kind", "employer", "--owner", "Owner@Example.org"]
    )
    assert result.exit_code == 0, result.output
    org = db.session.scalar(select(Organization))
    assert org.status is OrgStatus.APPROVED and org.slug == "acme-staffing" and org.email_verified_at is not None
    assert db.session.scalar(select(Membership.role)) is OrgRole.OWNER
    again = runner.invoke(args=["orgs", "create", "Acme Staffing", "--owner", "owner@example.org"])
    assert again.exit_code == 0 and "acme-staffing-2" in again.output
    listing = runner.invoke(args=["orgs", "list"])
    assert listing.exit_code == 0
    assert re.search(r"acme-staffing\s+approved\s+employer\s+1\s+0\s+0\s+Acme Staffing", listing.output), listing.output
    bad_kind = runner.invoke(args=["orgs", "create", "X", "--kind", "cartel", "--owner", "owner@example.org"])
    assert bad_kind.exit_code != 0


# ---- the old employer role, migrated ------------------------------------------------------------------------


def test_migration_turns_employer_accounts_into_organizations_with_their_candidates(app, ctx):
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    load_test_framework()
    course_id = make_course("one").id
    holder_id = make_user(email="lee@example.org").id
    hr_id = make_user(email="hr@acme.example.com", name="Hana HR").id
    db.session.remove()
    # no certificate yet: later migrations rebuild that table on the way down, which SQLite refuses while rows
    # elsewhere point at it
    downgrade(revision="0017_review_by")
    try:
        with db.engine.begin() as conn:
            now = utcnow().replace(tzinfo=None)
            conn.execute(text("UPDATE users SET role = 'employer' WHERE id = :id"), {"id": hr_id})
            certificate_id = conn.execute(
                text(
                    "INSERT INTO certificates (public_id, user_id, course_id, holder_name, course_title, course_slug, "
                    "course_version, skills, goals, score, issuer_name, awarded_at, issued_at, revision, "
                    "verification_count) VALUES ('A' || :p, :u, :c, 'Lee', 'One', 'one', 1, '[]', '[]', 90, 'I', "
                    ":at, :at, 1, 0) RETURNING id"
                ),
                {"p": "B" * 27, "u": holder_id, "c": course_id, "at": now},
            ).scalar_one()
            conn.execute(
                text(
                    "INSERT INTO saved_candidates (employer_id, certificate_id, note, added_at) "
                    "VALUES (:e, :c, 'shortlist', :at)"
                ),
                {"e": hr_id, "c": certificate_id, "at": now},
            )
    finally:
        upgrade()
    org = db.session.scalar(select(Organization))
    assert org.status is OrgStatus.APPROVED and org.contact_email == "hr@acme.example.com"
    assert org.name == "Hana HR (acme.example.com)"
    assert db.session.execute(select(Membership.user_id, Membership.role)).one() == (hr_id, OrgRole.OWNER)
    row = db.session.scalar(select(SavedCandidate))
    assert (row.organization_id, row.added_by_id, row.note) == (org.id, hr_id, "shortlist")
    user = db.session.get(User, hr_id)
    assert user.role is Role.LEARNER and user.session_version == 2
