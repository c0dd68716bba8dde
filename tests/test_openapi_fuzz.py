"""Schemathesis against /api/v1/openapi.json, in process (the WSGI app, no network).

Every operation the document describes is called with generated valid and invalid input; the answers must
never be server errors and must match the document (status codes, content types, headers, body schemas).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from accounts.models import Role
from core.database import utcnow
from core.extensions import db, limiter
from credentials import services
from credentials.ids import format_public_id
from credentials.models import RevocationReason
from tests.factories import load_test_framework, make_certificate, make_course, make_user

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
    assert set(operations(load_schema(app))) == {"GET /api/v1/certificates/{id}", "POST /api/v1/verify"}


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


def fuzz(app, operation, mode: GenerationMode) -> None:
    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        limiter.reset()  # the rate limit is documented (429) but would hide everything after it
        raw = case.media_type in RAW_BODIES
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
