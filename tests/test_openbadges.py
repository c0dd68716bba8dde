"""Open Badges 3.0 credentials, did:web, issuer profile, Bitstring Status Lists, keys."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import pytest
from sqlalchemy import select

from accounts.models import Role
from core.database import utcnow
from core.extensions import db
from credentials import keys, openbadges, vc
from credentials.ids import format_public_id
from credentials.models import Certificate
from tests.factories import load_test_framework, make_certificate, make_course, make_user, sign_in

BASE = "http://127.0.0.1:5000"
DID = "did:web:127.0.0.1%3A5000"


@pytest.fixture
def certificate(prebuilt_certificate):
    return prebuilt_certificate(email="Lee.Private@example.org", title="AI Basics")


def resolver(app):
    with app.app_context():
        published = keys.public_keys()
    return lambda method: published.get(method.split("#", 1)[1]) if method.startswith(DID + "#") else None


def test_did_document_and_issuer_profile(client, app):
    did = client.get("/.well-known/did.json")
    assert did.status_code == 200 and did.mimetype == "application/did+json"
    document = did.json
    assert document["@context"][0] == "https://www.w3.org/ns/did/v1" and document["id"] == DID
    (method,) = document["verificationMethod"]
    assert method == {
        "id": f"{DID}#key-1",
        "type": "Multikey",
        "controller": DID,
        "publicKeyMultibase": "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2",
    }
    assert document["assertionMethod"] == [f"{DID}#key-1"]
    profile = json.loads(client.get("/issuer").data)
    assert profile["id"] == DID and profile["type"] == ["Profile"] and profile["url"] == BASE


def test_credential_has_the_open_badges_fields_and_verifies(client, app, certificate):
    public = format_public_id(certificate.public_id)
    response = client.get(f"/credentials/{public}.json")
    assert response.status_code == 200 and response.mimetype == "application/ld+json"
    credential = json.loads(response.data)
    assert credential["@context"] == [vc.VC_V2, vc.OB_V3, vc.OB_EXTENSIONS]
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["id"] == f"{BASE}/credentials/{public}" and credential["name"] == "AI Basics"
    assert credential["issuer"]["id"] == DID and credential["issuer"]["url"] == BASE
    assert credential["validFrom"].endswith("Z") and credential["validUntil"] > credential["validFrom"]
    assert credential["awardedDate"] == openbadges.iso(certificate.awarded_at)
    subject = credential["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"] and subject["name"] == "Lee Learner"
    identity = subject["identifier"][0]
    assert identity["hashed"] is True and identity["identityType"] == "emailAddress"
    assert "lee.private" not in response.get_data(as_text=True).lower()
    import hashlib

    assert (
        identity["identityHash"]
        == "sha256$" + hashlib.sha256(("lee.private@example.org" + identity["salt"]).encode()).hexdigest()
    )
    achievement = subject["achievement"]
    assert achievement["achievementType"] == "Certificate" and achievement["criteria"]["narrative"]
    assert achievement["alignment"] == [
        {
            "type": ["Alignment"],
            "targetName": "AI Foundations",
            "targetUrl": f"{BASE}/skills/AIL-01",
            "targetCode": "AIL-01",
            "targetFramework": openbadges.FRAMEWORK_NAME,
        }
    ]
    assert subject["result"][0]["value"] == "90"
    assert subject["result"][0]["resultDescription"] == achievement["resultDescription"][0]["id"]
    revocation, suspension = credential["credentialStatus"]
    for status, purpose in ((revocation, "revocation"), (suspension, "suspension")):
        assert status["type"] == "BitstringStatusListEntry" and status["statusPurpose"] == purpose
        assert status["statusListIndex"].isdigit() and status["id"] != status["statusListCredential"]
    # one slot, two lists: the suspension bit sits at the revocation bit's index of another list
    assert revocation["statusListIndex"] == suspension["statusListIndex"]
    assert revocation["statusListCredential"] != suspension["statusListCredential"]
    assert credential["credentialSchema"] == [
        {
            "id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json",
            "type": "1EdTechJsonSchemaValidator2019",
        }
    ]
    proof = credential["proof"]
    assert proof["cryptosuite"] == "eddsa-rdfc-2022" and proof["verificationMethod"] == f"{DID}#key-1"
    assert vc.verify(credential, resolver(app)) == f"{DID}#key-1"


def test_verify_url_negotiates_the_credential(client, certificate):
    public = format_public_id(certificate.public_id)
    html = client.get(f"/verify/{public}")
    assert html.mimetype == "text/html"
    for accept in ("application/ld+json", "application/vc+ld+json"):
        response = client.get(f"/verify/{public}", headers={"Accept": accept})
        assert response.mimetype == "application/ld+json" and json.loads(response.data)["id"].endswith(public)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c["credentialSubject"].update(name="Pat Impostor"),
        lambda c: c.update(validUntil="2099-01-01T00:00:00Z"),
        lambda c: c["credentialSubject"]["achievement"]["alignment"][0].update(targetCode="AIS-01"),
        lambda c: c["credentialStatus"][0].update(statusListIndex="7"),
        lambda c: c["credentialStatus"][1].update(statusListIndex="7"),
        # which list is the revocation list is signed: swapping the purposes breaks the proof
        lambda c: (
            c["credentialStatus"][0].update(statusPurpose="suspension"),
            c["credentialStatus"][1].update(statusPurpose="revocation"),
        ),
    ],
)
def test_changing_a_signed_field_fails_verification(client, app, certificate, tamper):
    credential = json.loads(client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").data)
    tamper(credential)
    with pytest.raises(vc.ProofError):
        vc.verify(credential, resolver(app))


def status_bits(client, url: str) -> bytes:
    listing = json.loads(client.get(url.replace(BASE, "")).data)
    return openbadges.decode_bits(listing["credentialSubject"]["encodedList"]), listing


def test_revocation_flips_the_bit_in_a_signed_list_before_the_request_returns(client, app, certificate):
    credential = json.loads(client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").data)
    entry = credential["credentialStatus"][0]
    index = int(entry["statusListIndex"])
    bits, listing = status_bits(client, entry["statusListCredential"])
    assert len(bits) == 16384 and not openbadges.bit_is_set(bits, index)
    assert listing["issuer"] == DID and listing["credentialSubject"]["statusPurpose"] == "revocation"
    assert listing["credentialSubject"]["encodedList"].startswith("u")
    assert vc.verify(listing, resolver(app))

    make_user(email="admin@example.org", role=Role.ADMIN)
    sign_in(client, "admin@example.org")
    detail = f"/admin/certificates/{format_public_id(certificate.public_id)}"
    client.submit(detail + "/revoke", {"reason": "issued_in_error", "note": "wrong person"}, page=detail)
    from credentials.models import StatusList

    stored = db.session.get(StatusList, certificate.status_list_id)
    db.session.refresh(stored)
    assert openbadges.bit_is_set(
        openbadges.decode_bits(json.loads(stored.signed_credential)["credentialSubject"]["encodedList"]), index
    )
    bits, listing = status_bits(client, entry["statusListCredential"])
    assert openbadges.bit_is_set(bits, index) and sum(bin(b).count("1") for b in bits) == 1
    assert vc.verify(listing, resolver(app))
    client.submit(detail + "/reinstate", page=detail)
    bits, _ = status_bits(client, entry["statusListCredential"])
    assert not openbadges.bit_is_set(bits, index)


def test_status_slots_are_unique_and_random(ctx):
    load_test_framework()
    course = make_course("ai-basics")
    certificates = [make_certificate(make_user(), course) for _ in range(20)]
    slots = [(c.status_list_id, c.status_list_index) for c in certificates]
    assert len(set(slots)) == 20 and all(s[1] is not None for s in slots)
    assert sorted(s[1] for s in slots) != [s[1] for s in slots] or len({s[1] for s in slots}) == 20
    assert max(s[1] for s in slots) > 20  # spread over the list, not handed out in order


def test_reissue_keeps_id_and_awarded_date_with_newer_valid_from(client, app, certificate):
    from credentials import services

    url = f"/credentials/{format_public_id(certificate.public_id)}.json"
    client.get(url)
    db.session.refresh(certificate)  # the request stored the signed copy
    certificate.issued_at = certificate.issued_at - timedelta(days=3)  # make the first validFrom clearly older
    certificate.signed_credential = None
    db.session.commit()
    first = json.loads(client.get(url).data)
    services.reissue(None, certificate, now=utcnow(), holder_name="Lee Ngọc Learner")  # an approved correction
    db.session.commit()
    second = json.loads(client.get(url).data)
    assert second["id"] == first["id"] and second["awardedDate"] == first["awardedDate"]
    assert second["validFrom"] > first["validFrom"] and second["credentialSubject"]["name"] == "Lee Ngọc Learner"
    assert vc.verify(second, resolver(app))


def test_missing_signing_key_gives_a_clear_503_and_verification_continues(client, app, certificate):
    app.config["SIGNING_KEYS"] = None
    app.config["SIGNING_KEY_FILE"] = "/nonexistent/keys.json"
    try:
        public = format_public_id(certificate.public_id)
        response = client.get(f"/credentials/{public}.json")
        assert response.status_code == 503 and "signing key is not configured" in response.json["message"]
        assert client.get(f"/verify/{public}").status_code == 200
        assert client.get(f"/api/v1/certificates/{public}").json["status"] == "valid"
    finally:
        from tests.conftest import TEST_SIGNING_KEYS

        app.config.update(SIGNING_KEYS=TEST_SIGNING_KEYS, SIGNING_KEY_FILE=None)


def test_keygen_and_rotation_keep_old_keys_published(app, client, tmp_path, certificate):
    from tests.conftest import TEST_SIGNING_KEYS

    key_file = tmp_path / "keys" / "signing-keys.json"
    app.config.update(SIGNING_KEYS=None, SIGNING_KEY_FILE=str(key_file))
    try:
        runner = app.test_cli_runner()
        assert runner.invoke(args=["credentials", "keygen"]).exit_code == 0
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        assert runner.invoke(args=["credentials", "keygen"]).exit_code != 0  # never overwrites
        old = json.loads(client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").data)
        result = runner.invoke(args=["credentials", "rotate-key"])
        assert result.exit_code == 0 and "key-2" in result.output
        did = client.get("/.well-known/did.json").json
        assert [m["id"].split("#")[1] for m in did["verificationMethod"]] == ["key-1", "key-2"]
        assert vc.verify(old, resolver(app)) == f"{DID}#key-1"  # signed before rotation, still verifies
        db.session.refresh(certificate)
        certificate.signed_credential = None
        db.session.commit()
        new = json.loads(client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").data)
        assert new["proof"]["verificationMethod"] == f"{DID}#key-2" and vc.verify(new, resolver(app))
    finally:
        app.config.update(SIGNING_KEYS=TEST_SIGNING_KEYS, SIGNING_KEY_FILE=None)
    assert db.session.scalar(select(Certificate.id)) == certificate.id
