"""Schemathesis against /api/v1/openapi.json, in process (the WSGI app, no network).

Every operation the document describes is called with generated valid and invalid input; the answers must
never be server errors and must match the document (status codes, content types, headers, body schemas).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.specs.openapi.checks import ignored_auth
from sqlalchemy import select, update

from accounts.models import Role
from core.database import utcnow
from core.extensions import db, limiter
from courses.models import Course
from courses.programs import enroll_program
from credentials import services
from credentials.ids import format_public_id
from credentials.models import Certificate, CertificateEvent, RevocationReason, WalletExchange
from tests.factories import complete_course, load_test_framework, login, make_certificate, make_course, make_user
from tests.test_programs import make_program
from tests.test_wallet import DOMAIN, did_key, presentation

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def load_schema(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    assert schemathesis.__version__.startswith("4.")  # the API below is Schemathesis 4's
    return schema


def operations(schema) -> dict[str, object]:
    found = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # an operation the document describes badly fails here
        found[operation.label] = operation
    return found


@pytest.mark.nodb
def test_the_document_describes_the_public_api(app):
    assert set(operations(load_schema(app))) == {
        "GET /api/v1/certificates/{id}",
        "POST /api/v1/verify",
        "POST /wallet/exchanges/{exchange_id}",
        "GET /wallet/interactions/{exchange_id}",
        "GET /certificates/record.json",
    }


# Bodies a schema can only call "any bytes": random ones are schema-valid yet carry no credential, and the
# documented answer to them is 400 "unreadable" (its body is still checked against the document). JSON bodies
# keep the full check: any JSON object gets a 200 report.
RAW_BODIES = {
    "application/pdf",
    "image/svg+xml",
    "image/png",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
}


def fuzz(app, operation, mode: GenerationMode, *, path: dict | None = None, signed: bool = False) -> None:
    """``path``: fixed path parameters (a real exchange). ``signed``: bodies the schema can describe but only a
    signature makes acceptable (a DIDAuth presentation), so positive data may get 400/403, as documented."""

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        limiter.reset()  # the rate limit is documented (429) but would hide everything after it
        if path:
            case.path_parameters = dict(path)
        raw = case.media_type in RAW_BODIES or signed
        case.call_and_validate(excluded_checks=[positive_data_acceptance] if raw else None)

    check()


def test_certificate_lookup_conforms_for_generated_ids(app, ctx):
    load_test_framework()
    make_certificate()
    operation = operations(load_schema(app))["GET /api/v1/certificates/{id}"]
    fuzz(app, operation, GenerationMode.POSITIVE)
    fuzz(app, operation, GenerationMode.NEGATIVE)


def test_credential_verification_conforms_for_generated_bodies(app, ctx):
    operation = operations(load_schema(app))["POST /api/v1/verify"]
    fuzz(app, operation, GenerationMode.POSITIVE)
    fuzz(app, operation, GenerationMode.NEGATIVE)


def test_real_certificates_in_every_state_conform(app, ctx):
    """Random IDs never hit a certificate: valid, expired and revoked ones are checked against the document."""
    load_test_framework()
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    valid = make_certificate(make_user(name="Val Id"), make_course("valid-course"))
    no_expiry = make_certificate(make_user(name="Nora Never"), make_course("forever", title="Forever"))
    no_expiry.expires_at = None
    revoked = make_certificate(make_user(name="Rex Voked"), make_course("revoked-course"))
    services.revoke(admin, revoked, reason=RevocationReason.IDENTITY_MISMATCH, note="not them", now=utcnow())
    expired = make_certificate(
        make_user(name="Ex Pired"), make_course("expired-course"), now=utcnow() - timedelta(days=1000)
    )
    db.session.commit()
    schema = load_schema(app)
    operation = operations(schema)["GET /api/v1/certificates/{id}"]
    seen = set()
    for certificate in (valid, no_expiry, revoked, expired):
        limiter.reset()
        case = operation.Case(path_parameters={"id": format_public_id(certificate.public_id)})
        response = case.call_and_validate()
        assert response.status_code == 200
        seen.add(response.json()["status"])
    assert seen == {"valid", "revoked", "expired"}

    # suspended, and a program certificate revoked by the cascade (revocation_reason "stacked_revoked")
    suspended = make_certificate(make_user(name="Sue Spended"), make_course("suspended-course"))
    services.suspend(admin, suspended, reason="Review.", until=None, now=utcnow())
    learner = make_user(name="Pro Gram")
    program = make_program("path", course_slugs=("valid-course", "forever"))
    enroll_program(learner, program, now=utcnow())
    db.session.commit()

    for slug in ("valid-course", "forever"):
        complete_course(learner, db.session.scalar(select(Course).where(Course.slug == slug)))
    part = db.session.scalar(
        select(Certificate).where(Certificate.user_id == learner.id, Certificate.course_id.is_not(None))
    )
    services.revoke(admin, part, reason=RevocationReason.OTHER, note="x", now=utcnow())
    db.session.commit()
    stacked = db.session.scalar(select(Certificate).where(Certificate.program_id == program.id))
    found = {}
    for certificate in (suspended, stacked):
        limiter.reset()
        case = operation.Case(path_parameters={"id": format_public_id(certificate.public_id)})
        response = case.call_and_validate()
        found[certificate.id] = response.json()
    assert found[suspended.id]["status"] == "suspended" and found[suspended.id]["suspended_until"] is None
    assert found[stacked.id]["status"] == "revoked" and found[stacked.id]["revocation_reason"] == "stacked_revoked"


# ---- wallets: the exchange, the interaction URL, the record (credentials/wallet_views.py) -------------------


def test_wallet_endpoints_conform_for_generated_input(app, ctx):
    """Unknown exchanges and a signed-out record download: every answer as documented (404s, redirect to login)."""
    schema = operations(load_schema(app))
    for label in ("POST /wallet/exchanges/{exchange_id}", "GET /wallet/interactions/{exchange_id}"):
        fuzz(app, schema[label], GenerationMode.POSITIVE)
        fuzz(app, schema[label], GenerationMode.NEGATIVE)
    limiter.reset()
    response = schema["GET /certificates/record.json"].Case().call_and_validate()
    assert response.status_code == 302 and "/login?next=" in response.headers["location"][0]


def test_a_real_exchange_answers_generated_presentations_as_documented_and_issues_nothing(app, ctx, client):
    """Forged, malformed and hostile presentations against a live exchange: 4xx as documented, the challenge
    stays unused; then the real flows (VC-API and LCW, a replay, an expired one) match the document too."""
    from sqlalchemy import select

    from credentials.models import WalletExchange
    from tests.factories import login

    load_test_framework()
    certificate = make_certificate(make_user(email="lee@example.org"))
    login(client, "lee@example.org")
    display = format_public_id(certificate.public_id)

    def open_exchange() -> WalletExchange:
        response = client.submit(f"/certificates/{display}/wallet", page=f"/certificates/{display}")
        assert response.status_code == 303
        return db.session.scalar(select(WalletExchange).order_by(WalletExchange.id.desc()))

    exchange = open_exchange()
    schema = operations(load_schema(app))
    operation = schema["POST /wallet/exchanges/{exchange_id}"]
    fuzz(app, operation, GenerationMode.POSITIVE, path={"exchange_id": exchange.public_id}, signed=True)
    fuzz(app, operation, GenerationMode.NEGATIVE, path={"exchange_id": exchange.public_id}, signed=True)
    db.session.expire_all()
    assert db.session.get(WalletExchange, exchange.id).redeemed_at is None
    assert db.session.scalar(select(CertificateEvent).where(CertificateEvent.action == "wallet")) is None

    def call(exchange_id: str, body) -> object:
        limiter.reset()
        case = operation.Case(path_parameters={"exchange_id": exchange_id}, body=body, media_type="application/json")
        return case.call_and_validate(excluded_checks=[positive_data_acceptance])

    key = Ed25519PrivateKey.generate()
    asked = call(exchange.public_id, {})  # VC-API: the request, then the answer inside a presentation
    assert asked.status_code == 200 and asked.headers["cache-control"] == ["no-store"]
    challenge = asked.json()["verifiablePresentationRequest"]["challenge"]
    signed = presentation(key, challenge, suite="eddsa-rdfc-2022", domain=DOMAIN)
    answered = call(exchange.public_id, {"verifiablePresentation": signed})
    assert answered.status_code == 200 and answered.headers["cache-control"] == ["no-store"]
    (credential,) = answered.json()["verifiablePresentation"]["verifiableCredential"]
    assert credential["credentialSubject"]["id"] == did_key(key)
    replay = call(exchange.public_id, {"verifiablePresentation": signed})
    assert replay.status_code == 409 and "already used" in replay.json()["error"]

    lcw = open_exchange()  # the Learner Credential Wallet posts the presentation itself
    bare = call(lcw.public_id, presentation(key, lcw.challenge))
    assert bare.status_code == 200 and bare.json()["credentialSubject"]["id"] == did_key(key)

    late = open_exchange()
    db.session.execute(update(WalletExchange).where(WalletExchange.id == late.id).values(expires_at=utcnow()))
    db.session.commit()
    assert call(late.public_id, presentation(key, late.challenge)).status_code == 410

    interaction = schema["GET /wallet/interactions/{exchange_id}"]
    for accept in ("application/json", "text/html"):
        limiter.reset()
        case = interaction.Case(path_parameters={"exchange_id": lcw.public_id}, headers={"Accept": accept})
        assert case.call_and_validate().status_code == 200


def test_the_record_download_conforms_when_signed_in(app, ctx, client):
    load_test_framework()
    certificate = make_certificate(make_user(email="lee@example.org"))
    # Flask-Login's strong session protection ties the session to the client's address and User-Agent
    client.environ_base["HTTP_USER_AGENT"] = "wallet-test"
    login(client, "lee@example.org")
    cookie = client.get_cookie("session")
    operation = operations(load_schema(app))["GET /certificates/record.json"]
    limiter.reset()
    case = operation.Case(cookies={"session": cookie.value}, headers={"User-Agent": "wallet-test"})
    # ignored_auth probes again without the cookie, but the in-process client keeps it in its jar (so the probe is
    # still signed in); the signed-out answer is checked above (302 to the login page)
    response = case.call_and_validate(environ_base={"REMOTE_ADDR": "127.0.0.1"}, excluded_checks=[ignored_auth])
    assert response.status_code == 200
    record = response.json()
    (held,) = record["credentialSubject"]["verifiableCredential"]
    assert held["id"].endswith(format_public_id(certificate.public_id))
