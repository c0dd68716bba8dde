"""Suspension: a second Bitstring Status List (statusPurpose "suspension"), the admin's suspend and lift, and every
surface that says "Suspended" (verify page, JSON API, submitted-credential check, bulk check, the holder's pages,
the PDF stamp, the offline CLI). Revoke, suspend, lift and reinstate are each checked in both decoded lists."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from accounts.models import Role
from core.audit import AuditEvent
from core.database import utcnow
from core.extensions import db
from credentials import openbadges, services, vc
from credentials.ids import format_public_id
from credentials.models import Certificate, CertificateEvent, StatusList
from tests.factories import load_test_framework, make_certificate, make_course, make_user, sign_in

BASE = "http://127.0.0.1:5000"


@pytest.fixture
def certificate(ctx, app, tmp_path, prebuilt_certificate):
    app.config["CERTIFICATE_DIR"] = str(tmp_path / "pdfs")
    # the test framework, ai-basics and Lee's certificate, built once per module (tests/conftest.py)
    yield prebuilt_certificate(email="lee@example.org", name="Lee Learner")
    app.config["CERTIFICATE_DIR"] = None


@pytest.fixture
def admin(client):
    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")


def credential_of(client, certificate) -> dict:
    return json.loads(client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").data)


def served_bits(client, url: str) -> tuple[str, bytes]:
    """(statusPurpose, bits) of a status list as a verifier downloads it, after checking its signature."""
    listing = json.loads(client.get(url.replace(BASE, "")).data)
    from credentials.keys import public_keys

    published = public_keys()
    assert vc.verify(listing, lambda method: published.get(method.split("#", 1)[1]))
    subject = listing["credentialSubject"]
    return subject["statusPurpose"], openbadges.decode_bits(subject["encodedList"])


def both_bits(client, credential) -> dict[str, bool]:
    """{purpose: is this credential's bit set} for each of its status entries, from the served lists."""
    found = {}
    for entry in credential["credentialStatus"]:
        purpose, bits = served_bits(client, entry["statusListCredential"])
        assert purpose == entry["statusPurpose"]
        found[purpose] = openbadges.bit_is_set(bits, int(entry["statusListIndex"]))
        assert sum(bin(b).count("1") for b in bits) == int(found[purpose])  # nothing else set
    return found


def api_verdict(client, credential) -> dict:
    return client.post("/api/v1/verify", data=json.dumps(credential), content_type="application/json").json


def detail_url(certificate) -> str:
    return f"/admin/certificates/{format_public_id(certificate.public_id)}"


def suspend(client, certificate, reason="Under review: a complaint about the quiz", until=""):
    url = detail_url(certificate)
    return client.submit(url + "/suspend", {"suspension_reason": reason, "suspended_until": until}, page=url)


def test_revoke_suspend_lift_reinstate_each_shows_in_both_lists_before_the_request_returns(client, certificate, admin):
    credential = credential_of(client, certificate)
    public = format_public_id(certificate.public_id)
    url = detail_url(certificate)
    assert both_bits(client, credential) == {"revocation": False, "suspension": False}

    until = (utcnow() + timedelta(days=30)).date()
    response = suspend(client, certificate, until=until.isoformat())
    assert response.status_code == 303 and response.headers["Location"].endswith(url)
    assert both_bits(client, credential) == {"revocation": False, "suspension": True}
    page = client.get(f"/verify/{public}").get_data(as_text=True)
    assert "Suspended" in page and f'datetime="{until.isoformat()}"' in page
    assert "complaint" not in page  # the reason is for the holder and the issuer, not the public
    facts = client.get(f"/api/v1/certificates/{public}").json
    assert facts["status"] == "suspended" and facts["suspended_until"].startswith(until.isoformat())
    body = api_verdict(client, credential)
    assert body["verified"] is False and body["verdict"] == "suspended"
    assert f"Suspended until {until.isoformat()}" in body["checks"][2]["message"]
    upload = client.post(
        "/verify/credential",
        data={
            "csrf_token": client.csrf_token("/verify/credential"),
            "file": (io.BytesIO(json.dumps(credential).encode()), "c.json"),
        },
        content_type="multipart/form-data",
    ).get_data(as_text=True)
    assert 'class="status-banner status-suspended"' in upload and "Suspended until" in upload

    assert client.submit(url + "/lift-suspension", page=url).status_code == 303
    assert both_bits(client, credential) == {"revocation": False, "suspension": False}
    assert client.get(f"/api/v1/certificates/{public}").json["status"] == "valid"
    assert api_verdict(client, credential)["verdict"] == "valid"

    assert suspend(client, certificate).status_code == 303  # no end date: until lifted
    assert both_bits(client, credential) == {"revocation": False, "suspension": True}
    assert "until further notice" in client.get(f"/verify/{public}").get_data(as_text=True)
    assert client.get(f"/api/v1/certificates/{public}").json["suspended_until"] is None

    # revoking ends the suspension: only the revocation bit is set, and reinstating gives a valid certificate
    client.submit(url + "/revoke", {"reason": "issued_in_error", "note": "wrong person"}, page=url)
    assert both_bits(client, credential) == {"revocation": True, "suspension": False}
    assert api_verdict(client, credential)["verdict"] == "revoked"
    client.submit(url + "/reinstate", page=url)
    assert both_bits(client, credential) == {"revocation": False, "suspension": False}
    assert api_verdict(client, credential)["verdict"] == "valid"

    actions = db.session.scalars(
        select(CertificateEvent.action).where(CertificateEvent.certificate_id == certificate.id)
    ).all()
    assert sorted(actions) == sorted(["issued", "suspended", "suspension_lifted", "suspended", "revoked", "reinstated"])
    audit = db.session.scalars(select(AuditEvent.action).where(AuditEvent.target_id == certificate.public_id)).all()
    assert audit.count("certificate.suspended") == 2 and audit.count("certificate.suspension_lifted") == 1


def test_a_double_submitted_suspension_writes_once_and_says_so(client, certificate, admin):
    first = suspend(client, certificate)
    second = suspend(client, certificate)
    assert first.status_code == second.status_code == 303
    page = client.get(second.headers["Location"]).get_data(as_text=True)
    assert "already suspended" in page
    events = db.session.scalar(
        select(func.count()).where(
            CertificateEvent.certificate_id == certificate.id, CertificateEvent.action == "suspended"
        )
    )
    assert events == 1
    url = detail_url(certificate)
    assert client.submit(url + "/lift-suspension", page=url).status_code == 303
    again = client.submit(url + "/lift-suspension", page=url)
    assert again.status_code == 303 and "not suspended" in client.get(again.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(
    ("reason", "until", "message"),
    [
        ("", "", "Explain the suspension."),
        ("x" * 1001, "", "Field cannot be longer than 1000 characters."),
        ("Review", "2020-01-01", "The end of the suspension must be in the future."),
        ("Review", "2099-01-01", "within ten years"),
        ("Review", "31/12/2027", "Not a valid date value."),
    ],
)
def test_bad_suspensions_get_a_clear_422_and_write_nothing(client, certificate, admin, reason, until, message):
    response = suspend(client, certificate, reason=reason, until=until)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db.session.refresh(certificate)
    assert certificate.suspended_at is None
    assert not db.session.scalar(select(func.count()).where(AuditEvent.action == "certificate.suspended"))


def test_suspend_and_lift_refuse_what_does_not_apply(client, certificate, admin):
    url = detail_url(certificate)
    lifted = client.submit(url + "/lift-suspension", page=url)
    assert "not suspended" in client.get(lifted.headers["Location"]).get_data(as_text=True)
    client.submit(url + "/revoke", {"reason": "other", "note": "fraud"}, page=url)
    refused = suspend(client, certificate)
    assert refused.status_code == 303
    assert "cannot be suspended" in client.get(refused.headers["Location"]).get_data(as_text=True)
    assert client.post(url + "/suspend", data={"suspension_reason": "x"}).status_code == 400  # no CSRF token
    db.session.refresh(certificate)
    assert certificate.suspended_at is None


def test_a_suspension_past_its_end_no_longer_counts_in_the_list_or_on_the_page(
    client, other_client, certificate, admin, monkeypatch
):
    """Computed at read: once the end has passed, the served list (re-signed then) and the verify page agree."""
    from credentials import document_views, lane, status_cache, views

    credential = credential_of(client, certificate)
    public = format_public_id(certificate.public_id)
    until = (utcnow() + timedelta(days=2)).date()
    suspend(client, certificate, until=until.isoformat())
    # a visitor without cookies: the second fetch is answered by the fast lane (credentials/lane.py) from the kept copy
    assert both_bits(other_client, credential)["suspension"] is True
    assert both_bits(other_client, credential)["suspension"] is True

    later = utcnow() + timedelta(days=3)  # the clock moves past the end; nothing is written meanwhile
    monkeypatch.setattr(document_views, "utcnow", lambda: later)
    monkeypatch.setattr(status_cache, "utcnow", lambda: later)
    monkeypatch.setattr(lane, "utcnow", lambda: later)
    monkeypatch.setattr(views, "utcnow", lambda: later)
    assert both_bits(other_client, credential) == {"revocation": False, "suspension": False}
    assert other_client.get(f"/api/v1/certificates/{public}").json["status"] == "valid"
    assert "✓" in other_client.get(f"/verify/{public}").get_data(as_text=True)
    assert api_verdict(client, credential)["verdict"] == "valid"


def test_credentials_signed_before_the_suspension_list_still_verify_and_are_resigned_with_both(
    client, app, certificate, admin
):
    from credentials.identity import issuer as our_issuer

    issuer = our_issuer()
    older = openbadges.build_credential(certificate, issuer)
    older["credentialStatus"] = older["credentialStatus"][0]  # as signed before: revocation only
    older.pop("credentialSchema")
    older["@context"] = older["@context"][:2]
    signed = openbadges._sign(older, issuer, utcnow())
    certificate.signed_credential, certificate.signed_revision = json.dumps(signed), certificate.revision
    db.session.commit()

    assert api_verdict(client, signed)["verdict"] == "valid"
    served = credential_of(client, certificate)  # the stored copy predates the list: signed again with both
    assert [e["statusPurpose"] for e in served["credentialStatus"]] == ["revocation", "suspension"]
    suspend(client, certificate)
    body = api_verdict(client, signed)  # its own entries cannot say so; our records do
    assert body["verdict"] == "suspended" and "predates" in body["checks"][2]["message"]
    assert api_verdict(client, served)["verdict"] == "suspended"


def test_the_holder_bulk_check_and_pdf_say_suspended(client, other_client, app, certificate, admin):
    from pypdf import PdfReader

    from credentials import bulk

    public = format_public_id(certificate.public_id)
    until = (utcnow() + timedelta(days=10)).date()
    suspend(client, certificate, reason="Identity check pending.", until=until.isoformat())
    db.session.refresh(certificate)

    rows = bulk.bulk_verify([(1, public, None)], now=utcnow())
    assert rows[0].status == "suspended" and rows[0].message.startswith("Suspended until ")
    header, table = bulk.bulk_table(rows)
    assert table[0][header.index("status")] == "suspended"
    page = client.submit("/verify/bulk", {"ids": public, "show": "1"}).get_data(as_text=True)
    assert "1 suspended" in page and "Suspended until" in page

    sign_in(other_client, "lee@example.org")
    mine = other_client.get("/certificates").get_data(as_text=True)
    assert "suspended until" in mine and "does not count now" in mine
    own = other_client.get(f"/certificates/{public}").get_data(as_text=True)
    assert "Suspended until" in own and "Identity check pending." in own
    pdf = other_client.get(f"/certificates/{public}.pdf").data
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "SUSPENDED" in text and "until" in text
    db.session.refresh(certificate)
    assert certificate.pdf_stamp.startswith("SUSPENDED")


def test_admin_list_filters_suspended_and_the_detail_page_offers_lift(client, certificate, admin):
    suspend(client, certificate)
    listing = client.get("/admin/certificates?status=suspended").get_data(as_text=True)
    assert format_public_id(certificate.public_id) in listing
    assert format_public_id(certificate.public_id) not in client.get("/admin/certificates?status=valid").get_data(
        as_text=True
    )
    detail = client.get(detail_url(certificate)).get_data(as_text=True)
    assert "Lift suspension" in detail and "Under review: a complaint about the quiz" in detail
    assert 'action="' + detail_url(certificate) + '/suspend"' not in detail


def test_offline_cli_checks_both_lists(app, client, certificate, admin, tmp_path):
    credential = credential_of(client, certificate)
    suspend(client, certificate)
    paths = {"credential": tmp_path / "credential.json", "did": tmp_path / "did.json"}
    paths["credential"].write_text(json.dumps(credential))
    paths["did"].write_text(client.get("/.well-known/did.json").get_data(as_text=True))
    for entry in credential["credentialStatus"]:
        paths[entry["statusPurpose"]] = tmp_path / f"{entry['statusPurpose']}.json"
        paths[entry["statusPurpose"]].write_bytes(client.get(entry["statusListCredential"].replace(BASE, "")).data)

    def cli(*args):
        return app.test_cli_runner().invoke(args=["credentials", "verify", *map(str, args)])

    both = cli(
        paths["credential"],
        "--did",
        paths["did"],
        "--status-list",
        paths["revocation"],
        "--status-list",
        paths["suspension"],
    )
    assert both.exit_code == 1 and "Verdict: suspended (not verified)" in both.output, both.output
    revocation_only = cli(paths["credential"], "--did", paths["did"], "--status-list", paths["revocation"])
    assert revocation_only.exit_code == 0 and "SKIP  status" in revocation_only.output
    assert "Suspension NOT checked" in revocation_only.output and "Verdict: valid" not in revocation_only.output
    # the suspension list handed in as if it were the revocation list: named, not read as "revoked"
    wrong = cli(paths["credential"], "--did", paths["did"], "--status-list", paths["suspension"])
    assert wrong.exit_code == 1 and "Not checked against the right list" in wrong.output
    assert "Verdict: invalid (not verified)" in wrong.output


def test_the_suspension_list_is_created_once_and_shares_the_slot(ctx):
    load_test_framework()
    certificate = make_certificate(make_user(), make_course("ai-basics"))
    first = openbadges.suspension_list_id(certificate.status_list_id)
    assert openbadges.suspension_list_id(certificate.status_list_id) == first
    row = db.session.get(StatusList, first)
    assert row.purpose == "suspension" and row.revocation_list_id == certificate.status_list_id
    # a new certificate never takes its slot in a suspension list
    other = make_certificate(make_user(), make_course("ai-two"))
    assert db.session.get(StatusList, other.status_list_id).purpose == "revocation"
    assert openbadges.list_ids_of(certificate) == [certificate.status_list_id, first]
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 2


def test_a_suspended_certificate_is_left_out_of_the_learners_record(ctx):
    from credentials import clr

    load_test_framework()
    learner = make_user(name="Pat Learner")
    kept = make_certificate(learner, make_course("ai-basics"))
    held = make_certificate(learner, make_course("ai-two"))
    admin = make_user(role=Role.ADMIN)
    now = utcnow()
    services.suspend(admin, held, reason="Review.", until=now + timedelta(days=3), now=now)
    assert [c.id for c in clr.record_certificates(learner, now)] == [kept.id]
    assert [c.id for c in clr.record_certificates(learner, now + timedelta(days=4))] == [kept.id, held.id]
