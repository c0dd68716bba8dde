"""Wallet issuance over a VC-API exchange (issue 18): "Add to wallet", the single-use challenge, the exchange's
refusals, and the learner's record as CLR 2.0.

Presentations here are signed in Python (the two suites' published algorithm: canonical proof options and
presentation, hashed, signed with Ed25519) to drive every refusal cheaply; tests/test_wallet_js.py plays the real
wallet with the Digital Bazaar libraries over loopback.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import base58
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select, update

from core.database import utcnow
from core.extensions import db
from credentials import didauth, keys, vc
from credentials.ids import format_public_id
from credentials.models import CertificateEvent, WalletExchange
from credentials.services import revoke
from tests.factories import load_test_framework, make_certificate, make_user, sign_in

DOMAIN = "127.0.0.1:5000"  # the test app's ISSUER_URL host


def did_key(private: Ed25519PrivateKey) -> str:
    return "did:key:" + keys.encode_public(private.public_key())


def presentation(
    private: Ed25519PrivateKey,
    challenge: str,
    *,
    suite: str = "Ed25519Signature2020",
    domain: str | None = None,
    holder: str | None = None,
    signer: Ed25519PrivateKey | None = None,
    method: str | None = None,
) -> dict:
    """A DIDAuth presentation as the wallet builds it (VC 1.1 context for Ed25519Signature2020, VC 2.0 for
    eddsa-rdfc-2022). ``signer`` signs instead of ``private`` (a key that is not the holder's)."""
    holder = holder or did_key(private)
    if suite == "Ed25519Signature2020":
        document = {
            "@context": [didauth.VC_V1, didauth.ED25519_2020],
            "type": ["VerifiablePresentation"],
            "holder": holder,
        }
        proof = {"type": "Ed25519Signature2020"}
    else:
        document = {"@context": [vc.VC_V2], "type": ["VerifiablePresentation"], "holder": holder}
        proof = {"type": "DataIntegrityProof", "cryptosuite": "eddsa-rdfc-2022"}
    proof |= {
        "created": "2026-12-07T04:00:00Z",
        "verificationMethod": method or f"{holder}#{holder.removeprefix('did:key:')}",
        "proofPurpose": "authentication",
        "challenge": challenge,
    }
    if domain is not None:
        proof["domain"] = domain
    hashed, _ = vc._hash_data(document, proof, didauth.loader())
    signature = (signer or private).sign(hashed)
    return {**document, "proof": {**proof, "proofValue": "z" + base58.b58encode(signature).decode()}}


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


@pytest.fixture
def holder_key(ctx) -> Ed25519PrivateKey:
    load_test_framework()
    return Ed25519PrivateKey.generate()


def open_offer(client, certificate) -> tuple[WalletExchange, str]:
    """Press "Add to wallet" on the certificate page; return the exchange and the QR page's HTML."""
    display_id = format_public_id(certificate.public_id)
    response = client.submit(f"/certificates/{display_id}/wallet", page=f"/certificates/{display_id}")
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    exchange = db.session.scalar(select(WalletExchange).order_by(WalletExchange.id.desc()))
    return exchange, page.get_data(as_text=True)


def test_add_to_wallet_shows_a_qr_code_and_the_lcw_deep_link_bound_to_a_fresh_challenge(
    client, other_client, holder_key
):
    certificate = make_certificate()
    sign_in(client, certificate.user.email)
    exchange, html = open_offer(client, certificate)

    assert exchange.user_id == certificate.user_id and exchange.certificate_id == certificate.id
    assert exchange.redeemed_at is None
    assert exchange.expires_at - exchange.created_at == timedelta(minutes=15)
    # ≥128 random bits each: 24 bytes of secrets.token_urlsafe
    assert len(exchange.challenge) == 32 and len(exchange.public_id) == 32 and exchange.challenge != exchange.public_id
    link = re.search(r'href="(https://lcw\.app/request\.html\?[^"]+)"', html).group(1).replace("&amp;", "&")
    query = parse_qs(urlsplit(link).query)
    assert query["auth_type"] == ["bearer"]
    assert query["challenge"] == [exchange.challenge]
    assert query["issuer"] == ["http://127.0.0.1:5000"]
    assert query["vc_request_url"] == [f"http://127.0.0.1:5000/wallet/exchanges/{exchange.public_id}"]
    assert 'src="data:image/svg+xml' in html and "QR code" in html
    assert f"/wallet/interactions/{exchange.public_id}?iuv=1" in html

    # the offer page is the holder's alone
    other = make_user(email="other@example.org")
    sign_in(other_client, other.email)
    assert other_client.get(f"/certificates/wallet/{exchange.public_id}").status_code == 404


def test_only_the_holder_of_a_valid_certificate_opens_an_exchange(client, other_client, holder_key):
    certificate = make_certificate()
    display_id = format_public_id(certificate.public_id)
    other = make_user(email="other@example.org")
    sign_in(other_client, other.email)
    response = other_client.submit(f"/certificates/{display_id}/wallet", page="/certificates")
    assert response.status_code == 404

    revoke(make_user(email="admin@example.org"), certificate, reason=_reason(), note="Test revocation.", now=utcnow())
    db.session.commit()
    sign_in(client, certificate.user.email)
    response = client.submit(f"/certificates/{display_id}/wallet", page="/certificates")
    assert response.status_code == 409
    assert "Only a valid certificate can be added to a wallet." in response.get_data(as_text=True)
    assert count(WalletExchange) == 0


def _reason():
    from credentials.models import RevocationReason

    return RevocationReason.ISSUED_IN_ERROR


def post_json(client, exchange: WalletExchange, body) -> tuple[int, dict]:
    response = client.post(
        f"/wallet/exchanges/{exchange.public_id}", data=json.dumps(body), content_type="application/json"
    )
    return response.status_code, response.get_json()


@pytest.mark.parametrize("suite", ["Ed25519Signature2020", "eddsa-rdfc-2022"])
def test_lcw_flow_returns_the_credential_bound_to_the_holder_did_and_signed_now(
    client, other_client, holder_key, suite
):
    certificate = make_certificate()
    sign_in(client, certificate.user.email)
    exchange, _ = open_offer(client, certificate)
    wallet = other_client  # the wallet has no session

    status, credential = post_json(wallet, exchange, presentation(holder_key, exchange.challenge, suite=suite))

    assert status == 200, credential
    assert credential["credentialSubject"]["id"] == did_key(holder_key)
    assert credential["id"].endswith(format_public_id(certificate.public_id))
    assert [e["statusListIndex"] for e in credential["credentialStatus"]] == [str(certificate.status_list_index)] * 2
    issuer_keys = keys.public_keys()
    method = vc.verify(credential, lambda m: issuer_keys.get(m.rpartition("#")[2]))
    assert method.endswith("#key-1")
    db.session.expire_all()
    exchange = db.session.get(WalletExchange, exchange.id)
    assert exchange.redeemed_at is not None
    assert (exchange.holder_did, exchange.suite) == (did_key(holder_key), suite)
    events = db.session.scalars(select(CertificateEvent).where(CertificateEvent.action == "wallet")).all()
    assert [e.detail for e in events] == [{"holder": did_key(holder_key), "suite": suite}]

    # an employer given the wallet's copy checks it on our verifier like any of our credentials
    checked = wallet.post("/api/v1/verify", data=json.dumps(credential), content_type="application/json").get_json()
    assert (checked["verdict"], checked["verified"]) == ("valid", True), checked

    # the same presentation again: refused, nothing issued twice
    status, body = post_json(wallet, exchange, presentation(holder_key, exchange.challenge, suite=suite))
    assert status == 409
    assert "already used" in body["error"]
    assert count(CertificateEvent, CertificateEvent.action == "wallet") == 1


def test_vc_api_flow_asks_for_didauth_then_answers_with_a_presentation(client, other_client, holder_key):
    certificate = make_certificate()
    sign_in(client, certificate.user.email)
    exchange, _ = open_offer(client, certificate)
    wallet = other_client  # the wallet has no session

    interaction = wallet.get(f"/wallet/interactions/{exchange.public_id}?iuv=1", headers={"Accept": "application/json"})
    assert interaction.status_code == 200
    assert "Accept" in interaction.headers["Vary"].split(", ")
    protocols = interaction.get_json()["protocols"]
    assert protocols["vcapi"] == f"http://127.0.0.1:5000/wallet/exchanges/{exchange.public_id}"
    assert protocols["lcw"].startswith("https://lcw.app/request.html?")
    page = wallet.get(f"/wallet/interactions/{exchange.public_id}?iuv=1")
    assert page.status_code == 200 and "Open in Learner Credential Wallet" in page.get_data(as_text=True)

    status, request = post_json(wallet, exchange, {})
    assert status == 200
    vpr = request["verifiablePresentationRequest"]
    assert vpr["query"][0]["type"] == "DIDAuthentication"
    assert {"method": "key"} in vpr["query"][0]["acceptedMethods"]
    assert (vpr["challenge"], vpr["domain"]) == (exchange.challenge, DOMAIN)
    assert vpr["interact"]["service"][0]["serviceEndpoint"] == protocols["vcapi"]

    # the VC-API request named our domain: a presentation without it is refused
    bare = presentation(holder_key, vpr["challenge"], suite="eddsa-rdfc-2022")
    status, body = post_json(wallet, exchange, {"verifiablePresentation": bare})
    assert status == 403 and "another domain" in body["error"]

    signed = presentation(holder_key, vpr["challenge"], suite="eddsa-rdfc-2022", domain=vpr["domain"])
    status, body = post_json(wallet, exchange, {"verifiablePresentation": signed})
    assert status == 200, body
    (credential,) = body["verifiablePresentation"]["verifiableCredential"]
    assert credential["credentialSubject"]["id"] == did_key(holder_key)


def test_hostile_presentations_are_refused_with_a_precise_message_and_nothing_is_issued(
    client, other_client, holder_key
):
    certificate = make_certificate()
    sign_in(client, certificate.user.email)
    exchange, _ = open_offer(client, certificate)
    wallet = other_client  # the wallet has no session
    challenge = exchange.challenge
    intruder = Ed25519PrivateKey.generate()
    good = presentation(holder_key, challenge)
    tampered = json.loads(json.dumps(good))
    tampered["holder"] = did_key(intruder)  # claims another holder under the first holder's signature
    cases = [
        (presentation(holder_key, challenge, domain="evil.example"), 403, "another domain"),
        (presentation(holder_key, "not-the-challenge"), 403, "another challenge"),
        (presentation(holder_key, challenge, signer=intruder), 403, "does not verify"),
        (
            presentation(holder_key, challenge, method=f"{did_key(intruder)}#{did_key(intruder)[8:]}"),
            403,
            "not the holder",
        ),
        (tampered, 403, "not the holder"),
        ({**good, "holder": "did:web:evil.example"}, 400, "did:key"),
        ({**good, "proof": {**good["proof"], "proofPurpose": "assertionMethod"}}, 400, "authentication"),
        ({**good, "proof": {**good["proof"], "type": "RsaSignature2018"}}, 400, "unsupported proof"),
        ({**good, "proof": {**good["proof"], "proofValue": "z1"}}, 400, "64 bytes"),
        ({**good, "proof": {**good["proof"], "proofValue": 7}}, 400, "base58btc"),
        ({**good, "verifiableCredential": [{"id": "x"}]}, 400, "no credentials"),
        ({**good, "@context": ["https://example.org/ctx"]}, 400, "@context"),
        ({**good, "@context": [didauth.VC_V1, "https://evil.example/ctx"]}, 400, "not one we ship"),
        ({**good, "type": "Nope"}, 400, "VerifiablePresentation"),
        ({**good, "proof": [good["proof"], good["proof"]]}, 400, "exactly one proof"),
        ({**good, "holder": ["x"]}, 400, "holder"),
    ]
    for body, status, words in cases:
        got, answer = post_json(wallet, exchange, body)
        assert (got, words in answer["error"]) == (status, True), (words, answer)
        assert "Nothing was issued" in answer["error"]
    for raw, status, words in [
        (b"not json", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b"{" + b'"a":"' + b"x" * (70 * 1024) + b'"}', 413, "larger than 64 KB"),
    ]:
        response = wallet.post(f"/wallet/exchanges/{exchange.public_id}", data=raw, content_type="application/json")
        assert response.status_code == status and words in response.get_json()["error"]
    assert wallet.post("/wallet/exchanges/unknown", json=good).status_code == 404

    db.session.expire_all()
    assert db.session.get(WalletExchange, exchange.id).redeemed_at is None
    assert count(CertificateEvent, CertificateEvent.action == "wallet") == 0
    # the genuine presentation still works afterwards: refusals did not spend the challenge
    assert post_json(wallet, exchange, good)[0] == 200


def test_an_expired_exchange_or_a_revoked_certificate_issues_nothing(client, ctx, holder_key):
    certificate = make_certificate()
    sign_in(client, certificate.user.email)
    exchange, _ = open_offer(client, certificate)
    db.session.execute(update(WalletExchange).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    status, body = post_json(client, exchange, presentation(holder_key, exchange.challenge))
    assert status == 410 and "expired" in body["error"]
    assert post_json(client, exchange, {})[0] == 410
    page = client.get(f"/certificates/wallet/{exchange.public_id}")
    assert "This offer has ended" in page.get_data(as_text=True)

    second, _ = open_offer(client, certificate)
    revoke(make_user(email="admin@example.org"), certificate, reason=_reason(), note="Test revocation.", now=utcnow())
    db.session.commit()
    status, body = post_json(client, second, presentation(holder_key, second.challenge))
    assert status == 409 and "no longer valid" in body["error"]
    db.session.expire_all()
    assert count(WalletExchange, WalletExchange.redeemed_at.is_not(None)) == 0
    assert count(CertificateEvent, CertificateEvent.action == "wallet") == 0


def test_deeply_nested_bodies_are_refused_before_any_parsing_work(client, other_client, holder_key):
    certificate = make_certificate()
    sign_in(client, certificate.user.email)
    exchange, _ = open_offer(client, certificate)
    for raw in (b"[" * 20_000 + b"]" * 20_000, json.dumps({"holder": [[[[[[[[[[[[["x"]]]]]]]]]]]]]}).encode()):
        response = other_client.post(
            f"/wallet/exchanges/{exchange.public_id}", data=raw, content_type="application/json"
        )
        assert response.status_code == 400
        assert "nests deeper than a DIDAuth presentation" in response.get_json()["error"]


def test_the_record_download_is_a_signed_clr_of_every_valid_credential_with_program_associations(client, ctx):
    from credentials import clr
    from credentials.models import Certificate
    from tests.test_wallet_js import learner_with_a_record

    user, certificates = learner_with_a_record()
    charlie = certificates["charlie"]
    revoke(make_user(email="admin@example.org"), charlie, reason=_reason(), note="Test revocation.", now=utcnow())
    db.session.commit()
    sign_in(client, user.email)

    response = client.get("/certificates/record.json")

    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="learning-record-clr.json"'
    assert response.headers["Cache-Control"] == "private, no-store"
    record = json.loads(response.get_data())
    assert record["@context"] == [vc.VC_V2, clr.CLR_V2, vc.OB_V3]
    assert record["type"] == ["VerifiableCredential", "ClrCredential"]
    assert record["name"] == "Learning record of Pat Learner"
    subject = record["credentialSubject"]
    assert "id" not in subject  # a download is bound to no wallet; the email is hashed, never shown
    assert subject["identifier"][0]["identityHash"].startswith("sha256$") and user.email not in response.get_data(True)
    held = [certificates[k] for k in ("alpha", "bravo", "program")]  # charlie is revoked: left out
    db.session.expire_all()
    stored = [json.loads(db.session.get(Certificate, c.id).signed_credential) for c in held]
    assert sorted(subject["verifiableCredential"], key=lambda c: c["id"]) == sorted(stored, key=lambda c: c["id"])
    achievements = {a["id"] for a in subject["achievement"]}
    base = "http://127.0.0.1:5000"
    assert achievements == {
        f"{base}/courses/alpha#achievement",
        f"{base}/courses/bravo#achievement",
        f"{base}/programs/pathway#achievement",
    }
    assert subject["association"] == [
        {
            "type": "Association",
            "associationType": "isParentOf",
            "sourceId": f"{base}/programs/pathway#achievement",
            "targetId": f"{base}/courses/{slug}#achievement",
        }
        for slug in ("alpha", "bravo")
    ]
    # the proof: eddsa-rdfc-2022 by our key over the whole record (tests/test_wallet_js.py checks it with jsonld.js)
    proof = record["proof"]
    assert (proof["cryptosuite"], proof["proofPurpose"]) == ("eddsa-rdfc-2022", "assertionMethod")
    unsigned = {k: v for k, v in record.items() if k != "proof"}
    config = {k: v for k, v in proof.items() if k != "proofValue"} | {"@context": record["@context"]}
    load = clr.loader()
    hashed = hashlib.sha256(clr._canonize(config, load).encode()).digest()
    hashed += hashlib.sha256(clr._canonize(unsigned, load).encode()).digest()
    keys.public_keys()["key-1"].verify(base58.b58decode(proof["proofValue"][1:]), hashed)
    tampered = json.loads(json.dumps(unsigned))
    tampered["credentialSubject"]["association"].pop()
    with pytest.raises(InvalidSignature):
        keys.public_keys()["key-1"].verify(
            base58.b58decode(proof["proofValue"][1:]),
            hashed[:32] + hashlib.sha256(clr._canonize(tampered, load).encode()).digest(),
        )


def test_a_suspended_certificate_is_left_out_of_the_record_until_the_suspension_ends(client, holder_key):
    from datetime import timedelta as days_delta

    from credentials import clr
    from credentials.services import suspend

    certificate = make_certificate()
    admin = make_user(email="admin@example.org")
    suspend(admin, certificate, reason="Under review.", until=utcnow() + days_delta(days=2), now=utcnow())
    db.session.commit()
    assert clr.record_certificates(certificate.user, utcnow()) == []
    assert clr.record_certificates(certificate.user, utcnow() + days_delta(days=3)) == [certificate]


def test_a_learner_without_a_valid_certificate_has_no_record_to_add(client, ctx):
    user = make_user(email="new@example.org")
    sign_in(client, user.email)
    assert "Your whole record" not in client.get("/certificates").get_data(as_text=True)
    response = client.submit("/certificates/record/wallet", page="/certificates/name-correction")
    assert response.status_code == 409
    assert "Your record is empty" in response.get_data(as_text=True)
    assert count(WalletExchange) == 0
    assert client.get("/certificates/record.json").status_code == 200  # an empty record is still a true one


def test_a_record_exchange_whose_certificates_were_all_revoked_since_issues_nothing(client, other_client, holder_key):
    certificate = make_certificate()
    sign_in(client, certificate.user.email)
    response = client.submit("/certificates/record/wallet", page="/certificates")
    assert response.status_code == 303
    exchange = db.session.scalar(select(WalletExchange))
    assert exchange.certificate_id is None
    revoke(make_user(email="admin@example.org"), certificate, reason=_reason(), note="Test revocation.", now=utcnow())
    db.session.commit()
    status, body = post_json(other_client, exchange, presentation(holder_key, exchange.challenge))
    assert status == 409 and "holds no valid certificate" in body["error"]
    db.session.expire_all()
    assert db.session.get(WalletExchange, exchange.id).redeemed_at is None


def test_two_wallets_racing_with_one_challenge_get_one_credential(app, client, holder_key):
    """The same presentation posted twice at once to the app on loopback (threads, real connections): the
    conditional UPDATE lets exactly one through; the other gets 409 and nothing is issued for it."""
    import threading
    import urllib.error
    import urllib.request

    from credentials import wallet as wallet_service
    from tests.test_wallet_js import served

    with served(app):
        certificate = make_certificate()
        exchange = wallet_service.open_exchange(certificate.user, certificate, now=utcnow())
        db.session.commit()
        url = wallet_service.exchange_url(exchange)
        body = json.dumps(presentation(holder_key, exchange.challenge)).encode()
        db.session.remove()
        start, answers = threading.Barrier(2), []

        def post() -> None:
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})  # noqa: S310
            start.wait()
            try:
                with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (loopback)
                    answers.append(response.status)
            except urllib.error.HTTPError as error:
                answers.append(error.code)

        racers = [threading.Thread(target=post) for _ in range(2)]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join()
    assert sorted(answers) == [200, 409]
    assert count(CertificateEvent, CertificateEvent.action == "wallet") == 1
    assert count(WalletExchange, WalletExchange.redeemed_at.is_not(None)) == 1


def test_the_exchange_is_rate_limited_per_client(app, client, other_client, holder_key, monkeypatch):
    certificate = make_certificate()
    sign_in(client, certificate.user.email)
    exchange, _ = open_offer(client, certificate)
    monkeypatch.setitem(app.config, "RATELIMIT_VERIFY", "3 per minute")
    statuses = [post_json(other_client, exchange, {})[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    db.session.expire_all()
    assert db.session.get(WalletExchange, exchange.id).redeemed_at is None
