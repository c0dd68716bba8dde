"""Issue 18's rough edges of our own verifier, each with the input that showed it: the offline CLI's status
list matching, messages and malformed files; the verify API's content types; proof messages that blame the
right thing; the upload page's unverified claims; content negotiation on /verify/<id>."""

from __future__ import annotations

import io
import json

import pytest

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from credentials import keys, openbadges, vc
from credentials.ids import format_public_id
from credentials.models import RevocationReason, StatusList
from tests.factories import make_certificate, make_course, make_user


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
    return {c["check"]: c for c in body["checks"]}


def revoke(certificate) -> None:
    from credentials import services

    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    services.revoke(admin, certificate, reason=RevocationReason.OTHER, note="test", now=utcnow())
    db.session.commit()


def resign(app, credential: dict, *, key=None, method: str | None = None) -> dict:
    """The credential signed again (by our active key unless ``key`` is given), as a valid signed copy."""
    unsigned = {k: v for k, v in credential.items() if k != "proof"}
    with app.app_context():
        active = keys.active_key()
        issuer = openbadges.Issuer(app.config["ISSUER_URL"], app.config["ISSUER_NAME"])
        return vc.sign(
            unsigned,
            key or active.private,
            verification_method=method or f"{issuer.did}#{active.id}",
            created=openbadges.iso(utcnow()),
        )


# {certificate public_id: {file: text}}: what the files fixture downloaded for the module's prebuilt certificate
_DOWNLOADED: dict[str, dict[str, str]] = {}


@pytest.fixture
def files(client, certificate, tmp_path):
    """The credential, our DID document and the credential's own status lists, as a verifier downloads them.

    Every test starts from the same prebuilt rows (prebuilt_certificate), so the same four downloads (a signed
    credential and two signed status lists) are made once per certificate and written out again for each test."""
    paths = {"credential": tmp_path / "credential.json", "did": tmp_path / "did.json", "status": tmp_path / "s.json"}
    paths["suspension"] = tmp_path / "suspension.json"
    if certificate.public_id not in _DOWNLOADED:
        credential = credential_of(client, certificate)
        texts = {
            "credential": json.dumps(credential),
            "did": client.get("/.well-known/did.json").get_data(as_text=True),
        }
        for name, entry in zip(("status", "suspension"), credential["credentialStatus"], strict=True):
            url = entry["statusListCredential"]
            texts[name] = client.get(url[url.index("/credentials/") :]).get_data(as_text=True)
        _DOWNLOADED[certificate.public_id] = texts
    for name, text in _DOWNLOADED[certificate.public_id].items():
        paths[name].write_text(text)
    return paths


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["credentials", "verify", *map(str, args)])


# ---- 1 and 2: the offline status check ---------------------------------------------------------------


def test_a_revoked_credential_checked_against_another_genuine_list_is_not_valid(app, client, certificate, files):
    revoke(certificate)
    another = StatusList()
    db.session.add(another)
    db.session.commit()
    other = client.get(f"/credentials/status/{another.id}")
    assert other.status_code == 200  # a genuine list of ours, signed, where this credential's bit is clear
    files["status"].write_bytes(other.data)
    result = cli(app, files["credential"], "--did", files["did"], "--status-list", files["status"])
    assert result.exit_code == 1, result.output
    assert "Verdict: valid" not in result.output and "FAIL  status" in result.output
    assert f"credentials/status/{certificate.status_list_id}" in result.output  # names the list to fetch
    assert "Verdict: invalid (not verified)" in result.output and "revoked" not in result.output.lower()

    # the right list says revoked
    url = json.loads(files["credential"].read_text())["credentialStatus"][0]["statusListCredential"]
    files["status"].write_bytes(client.get(url[url.index("/credentials/") :]).data)
    right = cli(app, files["credential"], "--did", files["did"], "--status-list", files["status"])
    assert right.exit_code == 1 and "Verdict: revoked (not verified)" in right.output


def test_a_status_list_with_a_broken_signature_is_reported_as_such_not_as_revoked(app, client, certificate, files):
    status = json.loads(files["status"].read_text())
    encoded = status["credentialSubject"]["encodedList"]
    status["credentialSubject"]["encodedList"] = encoded[:-2] + ("A" if encoded[-2] != "A" else "B") + encoded[-1]
    files["status"].write_text(json.dumps(status))
    result = cli(app, files["credential"], "--did", files["did"], "--status-list", files["status"])
    assert result.exit_code == 1, result.output
    assert "status list's signature is invalid" in result.output
    assert "Verdict: invalid (not verified)" in result.output and "Revoked" not in result.output


def test_a_list_that_is_not_ours_is_named_as_the_failure_offline(app, client, certificate, files):
    credential = credential_of(client, certificate)
    credential["credentialStatus"][0]["statusListCredential"] = "https://evil.example/credentials/status/1"
    files["credential"].write_text(json.dumps(resign(app, credential)))
    result = cli(app, files["credential"], "--did", files["did"], "--status-list", files["status"])
    assert result.exit_code == 1 and "PASS  proof" in result.output
    assert "is not one of" in result.output and "Verdict: invalid (not verified)" in result.output


def test_without_a_status_list_the_cli_says_revocation_was_not_checked(app, client, certificate, files):
    revoke(certificate)  # the offline run cannot know: it must not call it valid
    result = cli(app, files["credential"], "--did", files["did"])
    assert "SKIP  status" in result.output and "Verdict: valid" not in result.output
    assert "status NOT fully checked" in result.output


# ---- 3: malformed files never print a traceback --------------------------------------------------------


def _status_with_list_subject(files) -> str:
    status = json.loads(files["status"].read_text())
    status["credentialSubject"] = [status["credentialSubject"]]
    return json.dumps(status)


@pytest.mark.parametrize(
    ("option", "content", "message"),
    [
        ("--did", "[]", "must be a JSON object"),
        ("--did", '{"id": "DID", "verificationMethod": ["x"]}', "must be an object with an id"),
        ("--did", '{"id": "DID", "verificationMethod": "x"}', "must be a list"),
        ("--did", '{"id": "DID", "verificationMethod": [{"id": "DID#key-1", "controller": "DID"}]}', "Multikey"),
        ("--did", '{"id": "did:web:evil.example"}', "not the issuer"),
        ("--did", "{not json", "is not valid JSON (line 1, column 2"),
        ("--did", None, "cannot be read"),
        ("--status-list", "[]", "must be a JSON object"),
        ("--status-list", '["x"]', "must be a JSON object"),
        ("--status-list", '"x"', "must be a JSON object"),
        ("--status-list", "LIST-SUBJECT", "not usable"),
        ("--status-list", "{}", "not usable"),
        ("--status-list", "[", "is not valid JSON"),
        ("--status-list", None, "cannot be read"),
        ("FILE", None, "cannot be read"),
        ("FILE", b"\xff\xfe", "neither UTF-8 JSON"),
    ],
)
def test_malformed_files_get_one_line_and_a_nonzero_exit(app, files, tmp_path, option, content, message):
    did = json.loads(files["did"].read_text())["id"]
    bad = tmp_path / "bad.json"
    if content == "LIST-SUBJECT":
        bad.write_text(_status_with_list_subject(files))
    elif isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content.replace("DID", did))
    args = {"FILE": [bad, "--did", files["did"]], "--did": [files["credential"], "--did", bad]}.get(
        option, [files["credential"], "--did", files["did"], "--status-list", bad]
    )
    result = cli(app, *args)
    assert isinstance(result.exception, SystemExit) and result.exit_code != 0, result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert "Traceback" not in result.output


def test_a_credential_with_a_list_valued_subject_fails_its_structure_check_cleanly(app, client, certificate, files):
    credential = credential_of(client, certificate)
    credential["credentialSubject"] = [credential["credentialSubject"]]
    files["credential"].write_text(json.dumps(credential))
    result = cli(app, files["credential"], "--did", files["did"], "--status-list", files["status"])
    assert isinstance(result.exception, SystemExit) and result.exit_code == 1
    assert "FAIL  structure" in result.output and "credentialSubject" in result.output


# ---- 4: the API takes what curl sends, and every media type its document lists -------------------------


def test_the_api_accepts_curls_default_form_content_type(client, certificate):
    credential = json.dumps(credential_of(client, certificate)).encode()
    response = api(client, credential, "application/x-www-form-urlencoded")
    assert response.status_code == 200 and response.json["verified"] is True, response.json


def test_every_media_type_the_openapi_document_lists_works(client, app, certificate):
    from credentials.storage import stored_pdf

    credential = json.dumps(credential_of(client, certificate)).encode()
    with app.test_request_context():
        pdf = stored_pdf(certificate, utcnow())
        db.session.commit()
    svg = client.get(f"/credentials/{format_public_id(certificate.public_id)}.svg").data
    png = client.get(f"/credentials/{format_public_id(certificate.public_id)}.png").data
    bodies = {
        "application/json": credential,
        "application/ld+json": credential,
        "application/vc+ld+json": credential,
        "application/x-www-form-urlencoded": credential,
        "application/pdf": pdf,
        "image/svg+xml": svg,
        "image/png": png,
    }
    listed = client.get("/api/v1/openapi.json").json["paths"]["/api/v1/verify"]["post"]["requestBody"]["content"]
    assert set(listed) == set(bodies) | {"multipart/form-data"}
    for media_type in listed:
        if media_type == "multipart/form-data":
            for name, data in (
                ("credential.json", credential),
                ("certificate.pdf", pdf),
                ("badge.svg", svg),
                ("badge.png", png),
            ):
                response = client.post(
                    "/api/v1/verify", data={"file": (io.BytesIO(data), name)}, content_type=media_type
                )
                assert response.json["verified"] is True, (media_type, name, response.json)
        else:
            response = api(client, bodies[media_type], media_type)
            assert response.status_code == 200 and response.json["verified"] is True, (media_type, response.json)


# ---- 5: proof messages that blame the right thing -----------------------------------------------------


def test_an_untouched_credential_signed_by_another_key_is_not_called_changed(client, app, certificate):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    credential = credential_of(client, certificate)
    stranger = Ed25519PrivateKey.generate()
    same_name = api(client, json.dumps(resign(app, credential, key=stranger)).encode()).json
    proof = checks(same_name)["proof"]
    assert proof["ok"] is False and "changed after signing" not in proof["message"]
    assert "different key" in proof["message"]
    did = json.loads(client.get("/.well-known/did.json").data)["id"]
    unknown = api(client, json.dumps(resign(app, credential, key=stranger, method=f"{did}#key-99")).encode()).json
    message = checks(unknown)["proof"]["message"]
    assert "changed after signing" not in message and "not one of the issuer's published keys" in message


def test_a_substituted_did_document_is_not_blamed_on_the_credential(app, client, certificate, files):
    import base58
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    did = json.loads(files["did"].read_text())
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    for method in did["verificationMethod"]:
        method["publicKeyMultibase"] = "z" + base58.b58encode(b"\xed\x01" + raw).decode()
    files["did"].write_text(json.dumps(did))
    result = cli(app, files["credential"], "--did", files["did"], "--status-list", files["status"])
    assert result.exit_code == 1 and "FAIL  proof" in result.output
    assert "changed after signing" not in result.output and "different key" in result.output


@pytest.mark.parametrize("value", ["z2", "z", "z11"])
def test_a_malformed_proof_value_is_called_malformed(client, certificate, value):
    credential = credential_of(client, certificate)
    credential["proof"]["proofValue"] = value
    proof = checks(api(client, json.dumps(credential).encode()).json)["proof"]
    assert proof["ok"] is False and "proofValue is malformed" in proof["message"]
    assert "changed after signing" not in proof["message"]


def test_an_achievement_credential_alias_verifies(client, app, certificate):
    credential = credential_of(client, certificate)
    credential["type"] = ["VerifiableCredential", "AchievementCredential"]
    body = api(client, json.dumps(resign(app, credential)).encode()).json
    assert body["verified"] is True and body["verdict"] == "valid", body
    assert "OpenBadgeCredential" not in checks(body)["structure"]["message"]
    neither = dict(credential, type=["VerifiableCredential"])
    assert checks(api(client, json.dumps(resign(app, neither)).encode()).json)["structure"]["ok"] is False


# ---- 6: the upload page --------------------------------------------------------------------------------


def upload(client, document: dict):
    token = client.csrf_token("/verify/credential")
    return client.post(
        "/verify/credential",
        data={"csrf_token": token, "file": (io.BytesIO(json.dumps(document).encode()), "credential.json")},
        content_type="multipart/form-data",
    )


def test_no_literal_none_for_a_credential_without_a_holder_name(client, app, certificate):
    credential = credential_of(client, certificate)
    credential["credentialSubject"].pop("name")
    response = upload(client, resign(app, credential))
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "None" not in html and "No holder name in the credential" in html


def test_unverified_claims_are_set_apart_under_their_own_label(client, app, certificate):
    revoke(certificate)
    html = upload(client, credential_of(client, certificate)).get_data(as_text=True)
    assert "✗ Revoked" in html
    banner, _, rest = html.partition('<ol class="checks">')
    assert "Lee Learner" not in banner  # not shown beside the verdict as if it were a fact
    checks_part, _, claims = rest.partition("Claims in this file (not verified)")
    assert claims and "Lee Learner" in claims and "Lee Learner" not in checks_part
    genuine = make_certificate(make_user(email="sam@example.org", name="Sam Sure"), make_course("ai-two"))
    ok = upload(client, credential_of(client, genuine)).get_data(as_text=True)
    assert "✓ Verified" in ok and "Sam Sure" in ok and "Claims in this file" not in ok


# ---- 7: content negotiation on /verify/<id> -------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "json_ld"),
    [
        ('application/ld+json; profile="https://purl.imsglobal.org/spec/ob/v3p0/schema/json/"', True),
        ('application/ld+json;profile="https://www.w3.org/ns/credentials/v2"', True),
        ("application/vc+ld+json; charset=utf-8", True),
        ('application/ld+json; profile="x", text/html;q=0.9', True),
        ('text/html, application/ld+json; profile="x";q=0.5', False),
        ("application/ld+json;q=0.5, text/*", False),
        ("*/*", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
    ],
)
def test_verify_answers_json_ld_to_media_types_with_parameters(client, certificate, accept, json_ld):
    response = client.get(f"/verify/{format_public_id(certificate.public_id)}", headers={"Accept": accept})
    assert response.status_code == 200
    assert (response.mimetype == "application/ld+json") is json_ld, response.mimetype
    assert "Accept" in response.vary
    if json_ld:
        assert response.json["id"].endswith(f"/credentials/{format_public_id(certificate.public_id)}")


def test_every_verify_answer_varies_on_accept(client, certificate):
    public = format_public_id(certificate.public_id)
    for url in (f"/verify/{public}", f"/verify/{public.lower()}", "/verify/" + "0" * 28, "/verify/nope"):
        response = client.get(url)
        assert response.status_code in (200, 301, 404) and "Accept" in response.vary, (url, response.status_code)
