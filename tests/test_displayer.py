"""Verifying other issuers' Open Badges 3.0 credentials (the Displayer role): did:key issuers, did:web issuers served
by a loopback HTTP server (test configuration only), their Bitstring status lists, the strict fetcher's refusals,
hostile DID documents, what the page, the API and the CLI show, and our own CLR learning record."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st
from pyld import jsonld

from credentials import dids, fetcher, keys, openbadges, vc
from tests.factories import load_test_framework, make_certificate, make_course, make_user, sign_in

PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005"
        "0001ff5a2d8e1a0000000049454e44ae426082"
    )
).decode()
CREATED = "2026-01-05T10:00:00Z"


# ---- a loopback server for did:web documents and status lists ------------------------------------------------


class Routes:
    """path -> (status, headers, body bytes); "stall" sends headers and then one byte every 0.5 s, forever."""

    def __init__(self) -> None:
        self.table: dict[str, tuple[int, dict, bytes | str]] = {}
        self.hits: list[str] = []

    def json(self, path: str, document: object) -> None:
        self.table[path] = (200, {"Content-Type": "application/json"}, json.dumps(document).encode())


class Handler(BaseHTTPRequestHandler):
    routes: Routes

    def do_GET(self) -> None:
        self.routes.hits.append(self.path)
        status, headers, body = self.routes.table.get(self.path, (404, {}, b"not here"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if body == "stall":
            self.end_headers()
            try:
                for _ in range(20):  # ends on its own after 10 s whatever the client does
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def web():
    """One threaded HTTP server on 127.0.0.1 for the whole module: (routes, port)."""
    routes = Routes()
    handler = type("BoundHandler", (Handler,), {"routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield routes, server.server_port
    server.shutdown()
    server.server_close()


# ---- another issuer, signing with our own signing code under its own key --------------------------------------


class Issuer:
    def __init__(self, did: str | None = None, *, port: int | None = None, path: str | None = None) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.multibase = keys.encode_public(self.key.public_key())
        if did is None:
            did = f"did:key:{self.multibase}"
            self.method = f"{did}#{self.multibase}"
        else:
            self.method = f"{did}#key-1"
        self.did = did
        self.port, self.path = port, path

    def did_document(self, **changes) -> dict:
        method = {"id": self.method, "type": "Multikey", "controller": self.did, "publicKeyMultibase": self.multibase}
        document = {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "id": self.did,
            "verificationMethod": [method],
            "assertionMethod": [self.method],
        }
        return {**document, **changes}

    def sign(self, document: dict, *, key=None, method=None) -> dict:
        return vc.sign(document, key or self.key, verification_method=method or self.method, created=CREATED)

    def credential(self, *, statuses: list[dict] | None = None, image: str | None = None, **changes) -> dict:
        achievement = {
            "id": f"urn:uuid:{uuid.uuid4()}",
            "type": ["Achievement"],
            "name": "Forklift Safety",
            "description": "Operates a forklift safely in a warehouse.",
            "criteria": {"narrative": "Passed the practical test on site."},
        }
        if image is not None:
            achievement["image"] = {"id": image, "type": "Image"}
        credential = {
            "@context": [vc.VC_V2, vc.OB_V3],
            "id": f"urn:uuid:{uuid.uuid4()}",
            "type": ["VerifiableCredential", "OpenBadgeCredential"],
            "issuer": {"id": self.did, "type": ["Profile"], "name": "Harbor Training Center"},
            "validFrom": "2026-01-05T00:00:00Z",
            "name": "Forklift Safety badge",
            "credentialSubject": {"type": ["AchievementSubject"], "name": "Ana Ruiz", "achievement": achievement},
            **changes,
        }
        if statuses:
            credential["credentialStatus"] = statuses
        return self.sign(credential)

    def status_list(self, url: str, purpose: str, set_bits: tuple[int, ...] = ()) -> dict:
        bits = bytearray(openbadges.LIST_SIZE // 8)
        for index in set_bits:
            bits[index // 8] |= 0x80 >> (index % 8)
        return self.sign(
            {
                "@context": [vc.VC_V2],
                "id": url,
                "type": ["VerifiableCredential", "BitstringStatusListCredential"],
                "issuer": self.did,
                "validFrom": "2026-01-01T00:00:00Z",
                "credentialSubject": {
                    "id": f"{url}#list",
                    "type": "BitstringStatusList",
                    "statusPurpose": purpose,
                    "encodedList": openbadges.encode_bits(bytes(bits)),
                },
            }
        )


def entry(url: str, purpose: str, index: int) -> dict:
    return {
        "id": f"{url}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": url,
    }


def web_issuer(web, name: str) -> Issuer:
    """A did:web issuer at http://127.0.0.1:PORT/<name>/did.json, its document served."""
    routes, port = web
    issuer = Issuer(f"did:web:127.0.0.1%3A{port}:{name}", port=port, path=name)
    routes.json(f"/{name}/did.json", issuer.did_document())
    return issuer


def api(client, document) -> dict:
    response = client.post("/api/v1/verify", data=json.dumps(document), content_type="application/json")
    assert response.status_code == 200, response.data[:300]
    return response.json


def checks(body) -> dict:
    return {c["check"]: c["ok"] for c in body["checks"]}


def message(body, name: str) -> str:
    return next(c["message"] for c in body["checks"] if c["check"] == name)


# ---- did:key ---------------------------------------------------------------------------------------------------


def test_a_did_key_issuers_credential_verifies_and_shows_its_displayer_fields(client):
    issuer = Issuer()
    credential = issuer.credential(image=f"data:image/png;base64,{PNG_1PX}")
    body = api(client, credential)
    assert body["verified"] is True and body["verdict"] == "valid", body
    assert body["issued_by_us"] is False and body["issuer_did"] == issuer.did
    assert [c["check"] for c in body["checks"]] == ["structure", "proof", "status", "validity"]
    assert checks(body)["status"] is None and "no status list" in message(body, "status")
    shown = body["credential"]
    assert shown["issuer"] == issuer.did  # the DID is what was checked; the name is a claim, apart
    assert shown["issuer_name_claimed"] == "Harbor Training Center"
    assert shown["achievement"]["name"] == "Forklift Safety"
    assert shown["achievement"]["description"] == "Operates a forklift safely in a warehouse."
    assert shown["achievement"]["criteria"]["narrative"] == "Passed the practical test on site."
    assert shown["image"] == {"data": f"data:image/png;base64,{PNG_1PX}"}
    assert shown["holder_name"] == "Ana Ruiz" and shown["validFrom"] == "2026-01-05T00:00:00Z"

    tampered = json.loads(json.dumps(credential))
    tampered["credentialSubject"]["achievement"]["name"] = "Crane Operator"
    body = api(client, tampered)
    assert body["verified"] is False and body["verdict"] == "invalid"
    assert checks(body)["proof"] is False and "signature does not verify" in message(body, "proof")
    assert body["credential"] is None  # nothing of an unverified file is given as a fact


def test_images_that_are_not_safe_embedded_rasters_are_never_shown(client):
    issuer = Issuer()
    svg = base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>").decode()
    cases = [
        (f"data:image/svg+xml;base64,{svg}", None),
        (f"data:image/png;base64,{base64.b64encode(b'GIF89a not a png').decode()}", None),  # bytes lie about type
        ("https://images.example.org/badge.png", {"link": "https://images.example.org/badge.png"}),
        ("javascript:alert(1)", None),
    ]
    for image, shown in cases:
        body = api(client, issuer.credential(image=image))
        assert body["verified"] is True, (image, body)
        assert body["credential"]["image"] == shown, image


def test_signed_by_another_key_or_claiming_another_issuer_fails_with_the_reason(client):
    issuer, intruder = Issuer(), Issuer()
    forged = issuer.credential()
    forged = intruder.sign({k: v for k, v in forged.items() if k != "proof"}, method=issuer.method)
    body = api(client, forged)
    assert checks(body)["proof"] is False and "signature does not verify" in message(body, "proof")
    # signed with the intruder's own did:key method, naming the victim as issuer
    claimed = intruder.sign({k: v for k, v in issuer.credential().items() if k != "proof"})
    body = api(client, claimed)
    assert body["verdict"] == "invalid" and f"not a key of the issuer {issuer.did}" in message(body, "proof")


def test_issuers_with_other_did_methods_cannot_be_checked(client):
    issuer = Issuer()
    for did in ("did:ion:EiAnKD8", "https://badges.example.org/issuer", "did:jwk:eyJrdHkiOiJPS1AifQ"):
        credential = issuer.credential()
        credential["issuer"] = {"id": did, "type": ["Profile"], "name": "Someone"}
        body = api(client, credential)
        assert body["verified"] is False and body["verdict"] == "unchecked", did
        assert "We can only check did:key and did:web issuers" in message(body, "proof")
        assert checks(body)["proof"] is None


# ---- did:web on loopback, status lists ---------------------------------------------------------------------------


def test_a_did_web_issuer_with_revocation_and_suspension_lists(client, web):
    routes, port = web
    issuer = web_issuer(web, "harbor")
    base = f"http://127.0.0.1:{port}/harbor/status"
    routes.json("/harbor/status/r", issuer.status_list(f"{base}/r", "revocation", set_bits=(7,)))
    routes.json("/harbor/status/s", issuer.status_list(f"{base}/s", "suspension", set_bits=(9,)))

    def with_bits(revocation: int, suspension: int) -> dict:
        return issuer.credential(
            statuses=[entry(f"{base}/r", "revocation", revocation), entry(f"{base}/s", "suspension", suspension)]
        )

    good = api(client, with_bits(1, 1))
    assert good["verified"] is True and good["verdict"] == "valid", good
    assert checks(good)["status"] is True and checks(good)["proof"] is True
    assert f"{issuer.did}#key-1" in message(good, "proof")
    revoked = api(client, with_bits(7, 1))
    assert revoked["verdict"] == "revoked" and "Revoked" in message(revoked, "status")
    suspended = api(client, with_bits(1, 9))
    assert suspended["verdict"] == "suspended" and suspended["verified"] is False
    both = api(client, with_bits(7, 9))
    assert both["verdict"] == "revoked"  # revocation wins

    # a list nobody serves: "could not be checked", never "valid"
    missing = issuer.credential(statuses=[entry(f"{base}/gone", "revocation", 1)])
    body = api(client, missing)
    assert body["verified"] is False and body["verdict"] == "unchecked"
    assert "Status could not be checked" in message(body, "status") and "HTTP 404" in message(body, "status")


def test_status_lists_that_are_not_the_issuers_list_for_the_entry_cannot_vouch(client, web):
    routes, port = web
    issuer, other = web_issuer(web, "lists"), Issuer()
    base = f"http://127.0.0.1:{port}/lists"
    routes.json(
        "/lists/forged",
        other.sign({**issuer.status_list(f"{base}/forged", "revocation"), "proof": None}, method=issuer.method),
    )
    routes.json("/lists/elsewhere", issuer.status_list(f"{base}/real", "revocation"))  # signed for another URL
    routes.json("/lists/purpose", issuer.status_list(f"{base}/purpose", "suspension"))
    routes.json("/lists/foreign", other.status_list(f"{base}/foreign", "revocation"))
    routes.table["/lists/junk"] = (200, {}, b"\x00not json")
    cases = {
        "forged": "signature",
        "elsewhere": "not the list",
        "purpose": "is a suspension list",
        "foreign": "not issued by the credential's issuer",
        "junk": "is not JSON",
    }
    for name, reason in cases.items():
        body = api(client, issuer.credential(statuses=[entry(f"{base}/{name}", "revocation", 3)]))
        assert body["verdict"] == "unchecked", (name, body)
        assert reason in message(body, "status"), (name, message(body, "status"))


def test_hostile_did_documents_are_refused_with_the_reason(client, web):
    routes, port = web
    wrong_id = web_issuer(web, "wrongid")
    routes.json("/wrongid/did.json", wrong_id.did_document(id="did:web:evil.example"))
    auth_only = web_issuer(web, "authonly")
    routes.json("/authonly/did.json", auth_only.did_document(assertionMethod=[], authentication=[auth_only.method]))
    huge = web_issuer(web, "huge")
    routes.json("/huge/did.json", huge.did_document(service=[{"id": "#x", "padding": "x" * 120_000}]))
    other_controller = web_issuer(web, "controller")
    document = other_controller.did_document()
    document["verificationMethod"][0]["controller"] = "did:web:evil.example"
    routes.json("/controller/did.json", document)
    bad_key = web_issuer(web, "badkey")
    document = bad_key.did_document()
    document["verificationMethod"][0]["publicKeyMultibase"] = "zNotAKey"
    routes.json("/badkey/did.json", document)
    routes.table["/redirect/did.json"] = (302, {"Location": f"http://127.0.0.1:{port}/harbor/did.json"}, b"")
    redirect = Issuer(f"did:web:127.0.0.1%3A{port}:redirect")
    routes.table["/slow/did.json"] = (200, {"Content-Type": "application/json"}, "stall")
    slow = Issuer(f"did:web:127.0.0.1%3A{port}:slow")
    nobody = Issuer(f"did:web:127.0.0.1%3A{port}:nobody")

    cases = [
        (wrong_id, "is for 'did:web:evil.example', not for the issuer"),
        (auth_only, "not listed under assertionMethod"),
        (huge, "larger than 100 KB"),
        (other_controller, "is not in the issuer's DID document"),
        (bad_key, "is not an Ed25519 key"),
        (redirect, "redirects are not followed"),
        (nobody, "HTTP 404"),
    ]
    for issuer, reason in cases:
        body = api(client, issuer.credential())
        assert body["verified"] is False and checks(body)["proof"] is False, (issuer.did, body)
        assert reason in message(body, "proof"), (issuer.did, message(body, "proof"))
    started = time.monotonic()
    body = api(client, slow.credential())
    assert time.monotonic() - started < 4  # the 2-second deadline holds against a server that trickles bytes
    assert "did not arrive within 2 seconds" in message(body, "proof"), message(body, "proof")


# ---- the fetcher's rules -------------------------------------------------------------------------------------


@pytest.mark.nodb
def test_the_fetcher_refuses_non_public_addresses_and_plain_http_outside_tests(app, web, monkeypatch):
    routes, port = web
    routes.json("/ok.json", {"ok": True})
    with app.test_request_context():
        assert fetcher.fetch_json(f"http://127.0.0.1:{port}/ok.json", what="The test document") == {"ok": True}
        for url, reason in [
            ("https://10.1.2.3/did.json", "10.1.2.3 is a private or reserved address"),
            ("https://169.254.169.254/latest/meta-data", "link-local"),
            ("https://[::ffff:192.168.0.1]/x", "192.168.0.1 is a private or reserved address"),
            ("https://224.0.0.1/x", "multicast"),
            ("https://0.0.0.0/x", "private or reserved"),
            ("https://user:pw@example.org/x", "must be at an https:// address"),
            ("ftp://example.org/x", "must be at an https:// address"),
            (f"http://192.0.2.1:{port}/x", "private or reserved"),
        ]:
            with pytest.raises(fetcher.FetchRefused, match=reason):
                fetcher.fetch_json(url, what="The test document")
        # production rules: loopback and plain http are refused before any connection is made
        monkeypatch.setitem(app.config, "DID_FETCH_ALLOW_LOOPBACK", False)
        hits = len(routes.hits)
        for url, reason in [
            (f"http://127.0.0.1:{port}/ok.json", "must be at an https:// address"),
            (f"https://127.0.0.1:{port}/ok.json", "127.0.0.1 is a loopback address"),
            (f"https://localhost:{port}/ok.json", "loopback address"),
            (f"https://[::1]:{port}/ok.json", "loopback address"),
        ]:
            with pytest.raises(fetcher.FetchRefused, match=reason):
                fetcher.fetch_json(url, what="The test document")
        assert len(routes.hits) == hits  # nothing reached the server
        assert dids.web_url(f"did:web:127.0.0.1%3A{port}:a:b") == f"https://127.0.0.1:{port}/a/b/did.json"
        assert dids.web_url("did:web:example.org") == "https://example.org/.well-known/did.json"


@pytest.mark.nodb
def test_the_loopback_setting_is_refused_outside_tests(tmp_path):
    from core import create_app
    from core.config import ConfigError

    with pytest.raises(ConfigError, match="DID_FETCH_ALLOW_LOOPBACK is for tests only"):
        create_app(
            {
                "APP_ENV": "production",
                "SECRET_KEY": "s" * 40,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
                "TRUSTED_HOSTS": ["academy.example.org"],
                "MAIL_BACKEND": "smtp",
                "DID_FETCH_ALLOW_LOOPBACK": "true",
            }
        )


def test_a_closed_port_is_a_clear_refusal(client):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    issuer = Issuer(f"did:web:127.0.0.1%3A{port}")
    body = api(client, issuer.credential())
    assert checks(body)["proof"] is False and "could not be fetched" in message(body, "proof")


# ---- the surfaces: page, CLI, and our own credential beside another issuer's -------------------------------------


@pytest.fixture
def ours(ctx, app, tmp_path):
    load_test_framework()
    return make_certificate(make_user(email="lee@example.org", name="Lee Learner"), make_course("ai-basics"))


def upload(client, document: dict):
    from tests.conftest import CSRF_RE

    page = client.get("/verify/credential").get_data(as_text=True)
    token = next(group for group in CSRF_RE.search(page).groups() if group)
    return client.post(
        "/verify/credential",
        data={"csrf_token": token, "file": (__import__("io").BytesIO(json.dumps(document).encode()), "badge.json")},
        content_type="multipart/form-data",
    )


def test_the_verify_page_marks_our_issuer_and_sets_another_issuers_name_apart(client, ours):
    from credentials.ids import format_public_id

    mine = json.loads(client.get(f"/credentials/{format_public_id(ours.public_id)}.json").data)
    page = upload(client, mine).get_data(as_text=True)
    assert "Issued by AI Workforce Academy — verified" in page

    issuer = Issuer()
    response = upload(client, issuer.credential(image=f"data:image/png;base64,{PNG_1PX}"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f"Issued by {issuer.did} — not us" in page
    assert "Harbor Training Center" in page and "name the issuer gives itself (a claim" in page
    assert "Forklift Safety" in page and "Passed the practical test on site." in page
    assert f'src="data:image/png;base64,{PNG_1PX}"' in page

    unknown = issuer.credential()
    unknown["issuer"] = "did:ion:EiAnKD8"
    page = upload(client, unknown).get_data(as_text=True)
    assert "Cannot be checked" in page and "We can only check did:key and did:web issuers" in page


def test_the_cli_gives_the_same_verdict_for_another_issuer(app, ctx, web, tmp_path):
    routes, port = web
    issuer = web_issuer(web, "cli")
    base = f"http://127.0.0.1:{port}/cli/status"
    routes.json("/cli/status/r", issuer.status_list(f"{base}/r", "revocation", set_bits=(5,)))
    runner = app.test_cli_runner()
    good, revoked = tmp_path / "good.json", tmp_path / "revoked.json"
    good.write_text(json.dumps(issuer.credential(statuses=[entry(f"{base}/r", "revocation", 4)])))
    revoked.write_text(json.dumps(issuer.credential(statuses=[entry(f"{base}/r", "revocation", 5)])))
    result = runner.invoke(args=["credentials", "verify", str(good)])
    assert result.exit_code == 0, result.output
    assert f"Issued by {issuer.did} — not us" in result.output and "Verdict: valid" in result.output
    assert "Harbor Training Center (the issuer's own claim)" in result.output
    result = runner.invoke(args=["credentials", "verify", str(revoked)])
    assert result.exit_code == 1 and "Verdict: revoked (not verified)" in result.output
    unknown = issuer.credential()
    unknown["issuer"] = "did:ion:x"
    (tmp_path / "ion.json").write_text(json.dumps(unknown))
    result = runner.invoke(args=["credentials", "verify", str(tmp_path / "ion.json")])
    assert result.exit_code == 1 and "Verdict: unchecked (not verified)" in result.output
    assert "We can only check did:key and did:web issuers" in result.output and "Traceback" not in result.output


# ---- our own learning record (CLR 2.0) ---------------------------------------------------------------------------


def test_our_learning_record_verifies_as_a_whole_and_credential_by_credential(client, ctx, app, tmp_path):
    from core.database import utcnow
    from credentials.models import RevocationReason
    from credentials.services import revoke

    load_test_framework()
    user = make_user(email="rec@example.org", name="Rec Learner")
    first = make_certificate(user, make_course("alpha", title="Course alpha"))
    make_certificate(user, make_course("bravo", title="Course bravo"))
    sign_in(client, "rec@example.org")
    response = client.get("/certificates/record.json")
    assert response.status_code == 200
    record = json.loads(response.data)
    client.post("/logout")

    body = api(client, record)
    assert body["verified"] is True and body["verdict"] == "valid", body["checks"][1]
    assert [c["check"] for c in body["checks"]] == ["structure", "proof", "status", "validity", "credentials"]
    assert body["issued_by_us"] is True
    assert [part["verdict"] for part in body["credentials"]] == ["valid", "valid"]
    assert sorted(part["credential"]["name"] for part in body["credentials"]) == ["Course alpha", "Course bravo"]

    saved = tmp_path / "record.json"
    saved.write_bytes(response.data)
    result = app.test_cli_runner().invoke(args=["credentials", "verify", str(saved)])
    # offline: the signatures and dates hold; the status lists were not given, and the CLI says so
    assert result.exit_code == 0 and "status NOT fully checked" in result.output, result.output
    assert "Issued by AI Workforce Academy — verified" in result.output
    assert "- Course alpha: valid (status not checked)" in result.output
    assert "- Course bravo: valid (status not checked)" in result.output

    tampered = json.loads(json.dumps(record))
    tampered["credentialSubject"]["verifiableCredential"][0]["name"] = "Course omega"
    body = api(client, tampered)
    assert body["verdict"] == "invalid" and checks(body)["proof"] is False

    revoke(user, first, reason=RevocationReason.ISSUED_IN_ERROR, note="Test.", now=utcnow())
    from core.extensions import db

    db.session.commit()
    body = api(client, record)  # the record as signed still holds; one credential in it is revoked now
    assert body["verified"] is False and body["verdict"] == "revoked"
    assert checks(body)["proof"] is True and checks(body)["credentials"] is False
    assert sorted(part["verdict"] for part in body["credentials"]) == ["revoked", "valid"]
    assert "1 of the 2 credentials in the record do not verify now" in message(body, "credentials")


@pytest.mark.nodb
def test_the_size_cap_lets_a_learning_record_through_and_no_single_credential_over_128_kb(app):
    from credentials.verification import SubmissionError, read_submission

    padding = "x" * (600 * 1024)
    with app.test_request_context():
        record = read_submission(json.dumps({"type": ["VerifiableCredential", "ClrCredential"], "p": padding}).encode())
        assert record["p"] == padding
        with pytest.raises(SubmissionError, match="larger than 128 KB"):
            read_submission(
                json.dumps({"type": ["VerifiableCredential", "OpenBadgeCredential"], "p": padding}).encode()
            )
        with pytest.raises(SubmissionError, match="larger than 1024 KB"):
            read_submission(json.dumps({"type": ["ClrCredential"], "p": padding * 2}).encode())


# ---- interoperability: credentials another issuer signed with the Digital Bazaar libraries -------------------------


def unsigned_badge(contexts: list[str]) -> dict:
    return {
        "@context": contexts,
        "id": f"urn:uuid:{uuid.uuid4()}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"type": ["Profile"], "name": "JS Issuer"},
        "validFrom": "2026-02-01T00:00:00Z",
        "name": "Welding basics badge",
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "urn:uuid:4d0f6e2c-1111-4a5b-9c0d-0123456789ab",
                "type": ["Achievement"],
                "name": "Welding basics",
                "description": "Knows the basics of MIG welding.",
                "criteria": {"narrative": "Completed 20 hours of supervised practice."},
            },
        },
    }


@pytest.fixture(scope="module")
def js_signed():
    """Two badges signed by another issuer (a did:key the JS harness makes) with Digital Bazaar's libraries:
    eddsa-rdfc-2022 and Ed25519Signature2020. Node runs once for the module."""
    from tests.test_wallet_js import run_harness

    results = run_harness(
        "http://127.0.0.1:9",  # nothing is fetched: signing needs only the shipped contexts
        [
            {
                "name": "eddsa",
                "do": "sign",
                "suite": "eddsa-rdfc-2022",
                "credential": unsigned_badge([vc.VC_V2, vc.OB_V3]),
            },
            {
                "name": "ed2020",
                "do": "sign",
                "suite": "Ed25519Signature2020",
                "credential": unsigned_badge([vc.VC_V2, vc.OB_V3, "https://w3id.org/security/suites/ed25519-2020/v1"]),
            },
        ],
    )
    return results


@pytest.mark.parametrize("suite", ["eddsa", "ed2020"])
def test_badges_signed_by_the_javascript_libraries_verify_here_and_tampered_copies_fail(client, js_signed, suite):
    result = js_signed[suite]
    assert result["verified"] is True  # the libraries accept what they signed
    credential = result["signed"]
    assert credential["issuer"]["id"] == result["did"] and result["did"].startswith("did:key:z6Mk")
    body = api(client, credential)
    assert body["verified"] is True and body["verdict"] == "valid", body["checks"]
    assert body["issued_by_us"] is False and body["credential"]["issuer"] == result["did"]
    assert body["credential"]["achievement"]["name"] == "Welding basics"
    assert body["credential"]["issuer_name_claimed"] == "JS Issuer"

    tampered = json.loads(json.dumps(credential))
    tampered["credentialSubject"]["achievement"]["criteria"]["narrative"] = "Completed 2 hours."
    body = api(client, tampered)
    assert body["verified"] is False and checks(body)["proof"] is False
    assert "signature does not verify" in message(body, "proof")


def test_a_baked_png_from_another_issuer_verifies_and_the_openapi_document_says_what_comes_back(client):
    from credentials.preview import bake_png

    issuer = Issuer()
    png = bake_png(base64.b64decode(PNG_1PX), issuer.credential())
    response = client.post("/api/v1/verify", data=png, content_type="image/png")
    assert response.status_code == 200 and response.json["verified"] is True
    assert response.json["issued_by_us"] is False and response.json["issuer_did"] == issuer.did

    report = client.get("/api/v1/openapi.json").json["paths"]["/api/v1/verify"]["post"]["responses"]["200"]
    schema = report["content"]["application/json"]["schema"]
    assert "unchecked" in schema["properties"]["verdict"]["enum"]
    assert {"issued_by_us", "issuer_did"} <= set(schema["required"])
    shown = schema["properties"]["credential"]["properties"]
    assert {"achievement", "image", "issuer_name_claimed", "awardedDate", "description"} <= set(shown)
    assert "credentials" in schema["properties"]["checks"]["items"]["properties"]["check"]["enum"]


def test_another_issuers_validity_dates_are_read_from_the_signed_data(client):
    issuer = Issuer()
    expired = api(client, issuer.credential(validFrom="2025-01-01T00:00:00Z", validUntil="2025-12-31T00:00:00Z"))
    assert expired["verdict"] == "expired" and "Expired on 2025-12-31T00:00:00Z" in message(expired, "validity")
    early = api(client, issuer.credential(validFrom="2099-01-01T00:00:00Z"))
    assert early["verified"] is False and "Not valid before 2099-01-01T00:00:00Z" in message(early, "validity")
    later = api(client, issuer.credential(validUntil="2099-01-01T00:00:00Z"))
    assert later["verified"] is True and later["credential"]["validUntil"] == "2099-01-01T00:00:00Z"


# st.text()'s default alphabet, spelled out: characters(codec="utf-8") is every code point but the surrogates (Cs),
# the same set and the same draws, but on a fresh clone (no .hypothesis/ yet) Hypothesis learns it by encoding all
# 1.1 million code points, ~2.5 s of CPU once per process
TEXT = st.characters(exclude_categories=("Cs",))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(TEXT, max_size=40),
    st.sampled_from(["did:web:10.0.0.1", "did:key:z6Mk", "_:b0", "data:image/png;base64,AAAA", "https://x.example/"]),
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(TEXT, max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def test_hostile_changes_to_another_issuers_credential_never_make_a_server_error(client):
    from hypothesis import HealthCheck, given, settings

    issuer = Issuer()
    genuine = issuer.credential(statuses=[entry("https://10.9.8.7/list", "revocation", 3)])
    paths = [path for path in _paths(genuine) if path]

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(path=st.sampled_from(paths), value=JSON_VALUES, resign=st.booleans())
    def changed(path, value, resign):
        document = json.loads(json.dumps(genuine))
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        if resign and path[0] != "proof":
            # signed as changed, so only the other checks stand in the way (not JSON-LD one can sign: old proof)
            with contextlib.suppress(jsonld.JsonLdError, vc.ContextRefused, vc.CanonicalizationRefused, ValueError):
                document = issuer.sign(document)
        response = client.post("/api/v1/verify", data=json.dumps(document), content_type="application/json")
        assert response.status_code in (200, 400), response.data[:300]
        if response.status_code == 200:
            body = response.json
            assert body["verdict"] in ("valid", "invalid", "unchecked", "expired", "revoked", "suspended")
            # the status list lives at a private address: nothing that still points to it can come out "valid"
            if body["verified"]:
                assert "10.9.8.7" not in json.dumps(document.get("credentialStatus"))

    changed()


def test_a_forged_record_is_refused_before_any_json_ld_work(client):
    from credentials import clr, identity

    with client.application.test_request_context():
        ours = identity.issuer().did
    record = {
        "@context": [vc.VC_V2, clr.CLR_V2, vc.OB_V3],
        "id": "urn:uuid:2c4b3c1e-0000-4000-8000-000000000001",
        "type": ["VerifiableCredential", "ClrCredential"],
        "issuer": {"id": ours, "type": ["Profile"]},
        "validFrom": "2026-01-01T00:00:00Z",
        "credentialSubject": {"type": ["ClrSubject"], "verifiableCredential": [{"@graph": [{"x": 1}] * 50}]},
    }
    body = api(client, record)
    assert checks(body)["structure"] is False and "credential 1 of the record" in message(body, "structure")
    record["credentialSubject"]["verifiableCredential"] = [{}] * 51
    body = api(client, record)
    assert "more than 50 credentials" in message(body, "structure") and body["verdict"] == "invalid"
    record["issuer"] = {"id": "did:key:z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi"}
    record["credentialSubject"]["verifiableCredential"] = []
    body = api(client, record)
    assert body["verdict"] == "unchecked" and "We check learning records (CLR) issued by" in message(body, "proof")
