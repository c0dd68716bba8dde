"""Public verification (page, JSON, OpenAPI), bulk CSV checks for employers, verification counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from accounts.models import Role, User
from core.database import utcnow
from core.extensions import db
from credentials import services
from credentials.counter import verification_counter
from credentials.ids import format_public_id
from credentials.models import Certificate, RevocationReason
from tests.factories import load_test_framework, make_certificate, make_employer, make_org, make_user, sign_in


@pytest.fixture
def certificate(prebuilt_certificate):
    return prebuilt_certificate(email="lee.private@example.org", title="AI Basics")


def test_valid_certificate_shows_status_first_and_never_the_email(client, certificate):
    public = format_public_id(certificate.public_id)
    response = client.get(f"/verify/{public}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    main = html[html.index("<main") :]
    assert main.index("✓ Valid") < main.index("Lee Learner") < main.index("AI Basics")
    assert "lee.private@example.org" not in html
    assert "AI Foundations" in html and "AI Workforce Academy" in html


def test_typed_ids_are_forgiving(client, certificate):
    public = format_public_id(certificate.public_id)
    for typed in (public.lower(), certificate.public_id, public.replace("-", " ")):
        response = client.get(f"/verify/{typed}")
        assert response.status_code == 301 and response.headers["Location"] == f"/verify/{public}"
    form = client.get(f"/verify?id={public.lower().replace('-', '')}")
    assert form.status_code == 302 and form.headers["Location"] == f"/verify/{public}"


def test_expired_and_revoked_certificates_say_so_with_dates(client, certificate):
    public = format_public_id(certificate.public_id)
    certificate.issued_at = certificate.awarded_at = utcnow() - timedelta(days=900)
    certificate.expires_at = utcnow() - timedelta(days=30)
    db.session.commit()
    html = client.get(f"/verify/{public}").get_data(as_text=True)
    assert "Expired" in html and certificate.expires_at.strftime("%B %-d, %Y") in html
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    services.revoke(
        admin, certificate, reason=RevocationReason.ACADEMIC_MISCONDUCT, note="shared answers", now=utcnow()
    )
    db.session.commit()
    response = client.get(f"/verify/{public}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200  # never a bare 404 for a revoked certificate
    assert "✗ Revoked" in html and "Academic misconduct" in html and "shared answers" not in html


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("NOT-A-REAL-ID", "is not a certificate ID"),
        ("0000-" * 6 + "0000", "No certificate has the ID"),
        ("x" * 300, "is not"),
    ],
)
def test_unknown_and_malformed_ids_get_a_clear_not_found(client, certificate, typed, message):
    response = client.get(f"/verify/{typed}")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Not found" in html and message in html


def test_bad_input_in_the_lookup_form(client, certificate):
    response = client.get("/verify?id=" + "A" * 100)
    assert response.status_code == 422 and "too long" in response.get_data(as_text=True)
    response = client.get("/verify?id=hello")
    assert response.status_code == 422 and "not a certificate ID" in response.get_data(as_text=True)
    assert client.get("/verify").status_code == 200


def test_each_verification_is_counted_without_storing_who(client, certificate):
    public = format_public_id(certificate.public_id)
    for n in range(3):
        client.get(f"/verify/{public}", environ_base={"REMOTE_ADDR": f"10.0.0.{n}"})
    client.get(f"/api/v1/certificates/{public}", environ_base={"REMOTE_ADDR": "10.0.1.1"})
    # the redirect itself is not a second count
    client.get(f"/verify/{public.lower()}", environ_base={"REMOTE_ADDR": "10.0.2.1"})
    db.session.refresh(certificate)
    assert certificate.verification_count == 4 and certificate.last_verified_at is not None
    columns = {c.name for c in Certificate.__table__.columns}
    assert not {"ip", "last_verified_ip", "verifier"} & columns


def test_json_api(client, certificate):
    public = format_public_id(certificate.public_id)
    response = client.get(f"/api/v1/certificates/{public.lower()}")
    assert response.status_code == 200 and response.is_json
    body = response.json
    assert body["status"] == "valid" and body["id"] == public and body["holder_name"] == "Lee Learner"
    assert body["skills"] == [{"id": "AIL-01", "name": "AI Foundations"}] and "email" not in str(body)
    assert client.get("/api/v1/certificates/" + "0" * 28).json["status"] == "not_found"
    bad = client.get("/api/v1/certificates/nope")
    assert bad.status_code == 400 and bad.json["status"] == "invalid_id"


def test_openapi_description(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    operation = spec["paths"]["/api/v1/certificates/{id}"]["get"]
    assert set(operation["responses"]) >= {"200", "400", "404", "429"}
    status = operation["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["status"]
    assert status["enum"] == ["valid", "expired", "revoked", "suspended"]


def test_verification_is_rate_limited_per_client(client, certificate, app):
    public = format_public_id(certificate.public_id)
    app.config["RATELIMIT_VERIFY"] = "3 per minute"
    try:
        statuses = [client.get(f"/verify/{public}").status_code for _ in range(4)]
        other_client = [client.get(f"/verify/{public}", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code]
    finally:
        app.config["RATELIMIT_VERIFY"] = "60 per minute"
    assert statuses == [200, 200, 200, 429] and other_client == [200]


# ---- bulk ------------------------------------------------------------------------------------


@pytest.fixture
def employer(client, certificate):
    make_employer("hr@example.org")
    sign_in(client, "hr@example.org")


def upload(client, content: bytes, *, download: bool = False):
    from io import BytesIO

    token = client.csrf_token("/verify/bulk")
    data = {"csrf_token": token, "file": (BytesIO(content), "ids.csv")}
    data["download" if download else "show"] = "1"
    return client.post("/verify/bulk", data=data, content_type="multipart/form-data")


def test_bulk_check_reports_each_line_and_flags_name_mismatches(client, certificate, employer):
    public = format_public_id(certificate.public_id)
    content = (
        f"certificate id,name\n{public},Lee Learner\n{public.lower()},LEE  learner.\n{public},Pat Impostor\n"
        f"{'0' * 28}\nnot-an-id\n\n"
    ).encode()
    response = upload(client, content)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "6 rows" not in html and "5 rows" in html
    assert "3 valid" in html and "2 not found or malformed" in html and "1 name mismatches" in html
    assert "Given: Pat Impostor" in html and "No certificate has this ID" in html and "Not a certificate ID" in html


def test_bulk_csv_download_neutralises_formulas(client, certificate, employer):
    public = format_public_id(certificate.public_id)
    response = upload(client, f"{public},=HYPERLINK(\"http://evil\")\n=cmd|' /C calc'!A0\n".encode(), download=True)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data(as_text=True)
    assert "'=HYPERLINK" in body and "'=cmd" in body
    lines = body.strip().splitlines()
    assert lines[0].startswith("line,certificate_id,status") and len(lines) == 3
    assert ",valid,Lee Learner,AI Basics," in lines[1] and lines[1].endswith(
        "does not match the name on the certificate."
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("Zertifikat,Name\n".encode("utf-16"), "not UTF-8"),
        (b"a,b,c\n", "expected 1 or 2 columns"),
        (b"", "no certificate IDs"),
        (b"\n\n", "no certificate IDs"),
        (("\n".join(["A" * 28] * 5001)).encode(), "more than 5,000 rows"),
        (b"PK\x03\x04\x00\x00binary", "not CSV text"),
    ],
)
def test_bulk_check_bad_files_get_clear_messages(client, certificate, employer, content, message):
    response = upload(client, content)
    assert response.status_code == 422, response.get_data(as_text=True)[-500:]
    assert message in response.get_data(as_text=True)


def test_bulk_check_takes_5000_rows(client, certificate, employer):
    public = format_public_id(certificate.public_id)
    response = upload(client, ("\n".join([public] * 5000)).encode())
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "5000 rows" in html
    # each row names the first 20 lines, not all 5000 (which made every row 25 kB long and the page 100+ MB)
    assert html.count("Listed 5000 times (lines " + ", ".join(map(str, range(1, 21))) + ", …).") == 5000
    assert len(html) < 5_000_000


def test_bulk_check_is_for_members_of_approved_organizations_and_admins(client, certificate):
    from orgs.models import OrgStatus

    make_user(email="learner@example.org")
    sign_in(client, "learner@example.org")
    assert client.get("/verify/bulk").status_code == 403
    # a pending organization verifies one at a time, like anyone
    make_org(db.session.scalar(select(User).where(User.email == "learner@example.org")), status=OrgStatus.PENDING)
    assert client.get("/verify/bulk").status_code == 403
    assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1


def test_verification_counts_are_batched_and_flushed(client, certificate, app):
    public = format_public_id(certificate.public_id)
    app.config.update(VERIFY_COUNT_BATCH=3, VERIFY_COUNT_SECONDS=3600)
    try:
        for n in range(2):
            client.get(f"/verify/{public}", environ_base={"REMOTE_ADDR": f"10.0.0.{n}"})
        db.session.refresh(certificate)
        assert certificate.verification_count == 0  # not yet written
        client.get(f"/api/v1/certificates/{public}", environ_base={"REMOTE_ADDR": "10.0.0.2"})
        db.session.refresh(certificate)
        assert certificate.verification_count == 3
        client.get(f"/verify/{public}", environ_base={"REMOTE_ADDR": "10.0.0.3"})
        verification_counter.flush()
        db.session.refresh(certificate)
        assert certificate.verification_count == 4
    finally:
        app.config.update(VERIFY_COUNT_BATCH=1, VERIFY_COUNT_SECONDS=5.0)


def test_right_to_left_names_keep_their_direction(client, ctx):
    load_test_framework()
    certificate = make_certificate(make_user(name="ليلى حداد"))
    html = client.get(f"/verify/{format_public_id(certificate.public_id)}").get_data(as_text=True)
    assert '<dd class="holder-name" dir="auto">ليلى حداد</dd>' in html
