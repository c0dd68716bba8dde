"""Verifying submitted credentials: JSON, the certificate PDF, baked SVG, the API, the page and the offline CLI."""

from __future__ import annotations

import copy
import io
import json

import pytest

from accounts.models import Role
from core.extensions import db
from credentials.ids import format_public_id
from credentials.openbadges import CREDENTIAL_SCHEMA
from tests.factories import make_user, sign_in


@pytest.fixture
def certificate(prebuilt_certificate, app, tmp_path):
    app.config["CERTIFICATE_DIR"] = str(tmp_path / "pdfs")
    yield prebuilt_certificate()
    app.config["CERTIFICATE_DIR"] = None


def credential_of(client, certificate) -> dict:
    return json.loads(client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").data)


def api(client, data: bytes, content_type="application/json"):
    return client.post("/api/v1/verify", data=data, content_type=content_type)


def checks(body) -> dict:
    return {c["check"]: c["ok"] for c in body["checks"]}


def test_a_genuine_credential_passes_every_check_in_order(client, certificate):
    body = api(client, json.dumps(credential_of(client, certificate)).encode()).json
    assert body["verified"] is True and body["verdict"] == "valid"
    assert [c["check"] for c in body["checks"]] == ["structure", "proof", "status", "validity", "record"]
    assert all(c["ok"] for c in body["checks"])
    assert body["credential"]["holder_name"] == "Lee Learner"


def test_the_certificate_pdf_verifies_by_itself(client, certificate):
    sign_in(client, "lee@example.org")
    pdf = client.get(f"/certificates/{format_public_id(certificate.public_id)}.pdf").data
    from pypdf import PdfReader

    assert list(PdfReader(io.BytesIO(pdf)).attachments) == ["credential.json"]
    body = api(client, pdf, "application/pdf").json
    assert body["verified"] is True


def test_the_baked_svg_badge_verifies(client, certificate):
    svg = client.get(f"/credentials/{format_public_id(certificate.public_id)}.svg")
    assert svg.mimetype == "image/svg+xml" and b"<openbadges:credential>" in svg.data
    assert api(client, svg.data, "image/svg+xml").json["verified"] is True


def test_revoked_and_expired_credentials_are_reported(client, certificate):
    from core.database import utcnow
    from credentials import services
    from credentials.models import RevocationReason

    credential = json.dumps(credential_of(client, certificate)).encode()
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    services.revoke(admin, certificate, reason=RevocationReason.OTHER, note="test", now=utcnow())
    db.session.commit()
    body = api(client, credential).json
    assert body["verdict"] == "revoked" and checks(body)["status"] is False and checks(body)["proof"] is True


@pytest.mark.parametrize(
    ("tamper", "failing"),
    [
        (lambda c: c["credentialSubject"].update(name="Pat Impostor"), "proof"),
        (lambda c: c.update(validUntil="2000-01-01T00:00:00Z"), "proof"),
        (lambda c: c["credentialStatus"][0].update(statusListCredential="https://evil.example/status/1"), "proof"),
        (lambda c: c["credentialStatus"][1].update(statusPurpose="revocation"), "proof"),
        (lambda c: c.pop("credentialSubject"), "structure"),
        (lambda c: c.update({"@context": [c["@context"][0], "https://evil.example/ctx.jsonld"]}), "structure"),
        (lambda c: c["proof"].update(verificationMethod="did:web:evil.example#key-1"), "proof"),
        (lambda c: c["issuer"].update(id="did:web:evil.example"), "proof"),
        (lambda c: c.pop("credentialSchema"), "proof"),  # the schema's id is signed
        (lambda c: c.update({"@context": c["@context"][:2]}), "proof"),  # its type is undefined without extensions
        (
            lambda c: c.update(credentialSchema=[{**CREDENTIAL_SCHEMA[0], "id": "https://evil.example/s.json"}]),
            "structure",
        ),
        (lambda c: c.update(credentialSchema=[{**CREDENTIAL_SCHEMA[0], "type": "JsonSchema"}]), "structure"),
    ],
)
def test_tampered_credentials_get_a_precise_verdict(client, certificate, tamper, failing):
    credential = credential_of(client, certificate)
    tamper(credential)
    response = api(client, json.dumps(credential).encode())
    assert response.status_code == 200
    body = response.json
    assert body["verified"] is False and checks(body)[failing] is False, body


def test_our_credentials_name_the_ob30_schema_with_the_context_that_defines_its_type(client, certificate):
    """OB 3.0's credentialSchema type 1EdTechJsonSchemaValidator2019 is defined only by OB 3.0's extensions
    context; jsonld.js in safe mode (Digital Bazaar's and the DCC's verifiers) refuses it without that context."""
    from credentials import vc

    credential = credential_of(client, certificate)
    assert credential["credentialSchema"] == CREDENTIAL_SCHEMA
    assert credential["@context"] == [vc.VC_V2, vc.OB_V3, vc.OB_EXTENSIONS]
    # signed as a full IRI, not left out as an undefined relative type
    nquads = vc.canonize({k: v for k, v in credential.items() if k != "proof"})
    assert "<https://purl.imsglobal.org/spec/vccs/v1p0/context.json#1EdTechJsonSchemaValidator2019>" in nquads
    body = api(client, json.dumps(credential).encode()).json
    assert body["verified"] is True and all(checks(body).values())


@pytest.mark.parametrize(
    "older",
    [
        # as signed before this session: the schema without the extensions context (its type left unsigned)
        lambda c: c.update({"@context": c["@context"][:2]}),
        # as signed before the schema and the suspension list: one revocation entry, no schema
        lambda c: (c.update(credentialStatus=c["credentialStatus"][0]), c.pop("credentialSchema")),
    ],
)
def test_credentials_signed_in_the_earlier_shapes_still_verify(client, app, certificate, older):
    from core.database import utcnow
    from credentials import openbadges
    from credentials.identity import issuer as our_issuer

    issuer = our_issuer()
    other = openbadges.build_credential(certificate, issuer)
    older(other)
    signed = openbadges._sign(copy.deepcopy(other), issuer, utcnow())
    # building may create the certificate's suspension list (flushed, not committed, as services do); the API
    # request reads in its own transaction on PostgreSQL, so commit as issuance does
    db.session.commit()
    body = api(client, json.dumps(signed).encode()).json
    assert body["verified"] is True and all(checks(body).values()), body


def test_foreign_contexts_are_refused_without_fetching(client, certificate):
    credential = credential_of(client, certificate)
    credential["@context"].append("https://evil.example/extra.jsonld")
    body = api(client, json.dumps(credential).encode()).json
    assert checks(body)["proof"] is False
    assert "not one we ship" in body["checks"][1]["message"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe\x00", "neither"),
        (b"[" * 10000 + b"]" * 10000, "nested too deeply"),
        (b"{}" + b" " * 300_000, "larger than"),
        (b'{"a": "' + b"x" * 200_000 + b'"}', "larger than 128 KB; only a learning record (CLR) may be larger"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not a baked"),
        (b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>", "could not be read safely"),
        (b"%PDF-1.7 garbage", "could not be read"),
    ],
)
def test_unreadable_uploads_get_a_clear_400(client, certificate, data, message):
    response = api(client, data)
    assert response.status_code == 400, response.data[:300]
    assert message in response.json["message"]


def test_pdfs_without_a_credential_are_refused(client, app, certificate):
    from credentials.pdf import render_pdf
    from credentials.presenters import certificate_data

    with app.test_request_context():
        from core.database import utcnow

        bare = render_pdf(certificate_data(certificate, utcnow()))
    response = api(client, bare, "application/pdf")
    assert response.status_code == 400 and "carries no credential" in response.json["message"]


def test_the_verify_page_accepts_an_upload(client, certificate):
    credential = json.dumps(credential_of(client, certificate)).encode()
    token = client.csrf_token("/verify/credential")
    response = client.post(
        "/verify/credential",
        data={"csrf_token": token, "file": (io.BytesIO(credential), "credential.json")},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "✓ Verified" in html and "Proof:</strong> ✓ passed" in html
    bad = client.post(
        "/verify/credential",
        data={"csrf_token": token, "file": (io.BytesIO(b"nope"), "x.json")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "not valid JSON" in bad.get_data(as_text=True)


def test_offline_cli_needs_only_public_keys(app, client, certificate, tmp_path, monkeypatch):
    public = format_public_id(certificate.public_id)
    credential_file = tmp_path / "credential.json"
    credential_file.write_text(json.dumps(credential_of(client, certificate)))
    did_file = tmp_path / "did.json"
    did_file.write_text(client.get("/.well-known/did.json").get_data(as_text=True))
    status_files = []
    for entry in json.loads(credential_file.read_text())["credentialStatus"]:
        status_files += ["--status-list", str(tmp_path / f"{entry['statusPurpose']}.json")]
        listing = client.get(entry["statusListCredential"].replace("http://127.0.0.1:5000", ""))
        (tmp_path / f"{entry['statusPurpose']}.json").write_text(listing.get_data(as_text=True))

    # no database: any query would fail loudly
    from sqlalchemy.orm import Session

    monkeypatch.setattr(Session, "execute", lambda *a, **k: (_ for _ in ()).throw(AssertionError("database used")))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["credentials", "verify", str(credential_file), "--did", str(did_file), *status_files])
    assert result.exit_code == 0, result.output
    assert "PASS  proof" in result.output and "PASS  status" in result.output and "Verdict: valid" in result.output
    offline = runner.invoke(args=["credentials", "verify", str(credential_file), "--did", str(did_file)])
    assert offline.exit_code == 0 and "SKIP  status" in offline.output
    tampered = json.loads(credential_file.read_text())
    tampered["name"] = "Something else"
    credential_file.write_text(json.dumps(tampered))
    failed = runner.invoke(args=["credentials", "verify", str(credential_file), "--did", str(did_file)])
    assert failed.exit_code == 1 and "FAIL  proof" in failed.output
    assert public


def test_a_signed_credential_whose_status_list_points_elsewhere_fails_the_status_check(client, app, certificate):
    from core.database import utcnow
    from credentials import keys, openbadges, vc

    credential = credential_of(client, certificate)
    credential.pop("proof")
    credential["credentialStatus"][0]["statusListCredential"] = "https://evil.example/credentials/status/1"
    with app.app_context():
        key = keys.active_key()
        issuer = openbadges.Issuer(app.config["ISSUER_URL"], app.config["ISSUER_NAME"])
        signed = vc.sign(
            credential, key.private, verification_method=f"{issuer.did}#{key.id}", created=openbadges.iso(utcnow())
        )
    body = api(client, json.dumps(signed).encode()).json
    assert checks(body)["proof"] is True and checks(body)["status"] is False
    assert "is not one of" in body["checks"][2]["message"] and body["verified"] is False


def test_pdfs_with_several_json_attachments_are_refused(client, app, certificate):
    from weasyprint import HTML, Attachment

    attachments = [Attachment(file_obj=io.BytesIO(b"{}"), name=f"credential-{n}.json") for n in range(2)]
    pdf = HTML(string="<p>two credentials</p>").write_pdf(attachments=attachments)
    response = api(client, pdf, "application/pdf")
    assert response.status_code == 400 and "carries 2 JSON attachments" in response.json["message"]
