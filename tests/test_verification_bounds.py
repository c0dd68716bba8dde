"""Issue 12, items 1 and 2: verification does bounded work, and every check reads what was signed.

Item 1: a genuine credential (its proof names our key) carrying 8 blank nodes that all link to each other
cost 66 s of CPU in pyld's hash-N-degree step. Item 2: moving ``validUntil`` to its expanded IRI key gives
the same quads, so the proof held and the expiry was never read. The CPU time of the clique request is
measured by ``bench/hostile_vc.py`` (timed unit tests are not allowed here).
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from core.database import utcnow
from core.extensions import db
from credentials import shape, vc, verification
from credentials.ids import format_public_id
from tests.factories import load_test_framework, make_certificate, make_course, make_user

KNOWS = "https://example.org/knows"
VALID_UNTIL_IRI = "https://www.w3.org/2018/credentials#validUntil"
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"


def clique(n: int) -> list[dict]:
    """n blank nodes, each linking to every other: all alike, so URDNA2015 tries every permutation."""
    return [{"id": f"_:b{i}", KNOWS: [{"id": f"_:b{j}"} for j in range(n) if j != i]} for i in range(n)]


def with_clique(credential: dict, n: int = 8) -> dict:
    attacked = json.loads(json.dumps(credential))
    attacked[KNOWS] = clique(n)  # the genuine proof stays: it names our published key
    return attacked


def moved_valid_until(credential: dict) -> dict:
    moved = {k: v for k, v in credential.items() if k != "validUntil"}
    moved[VALID_UNTIL_IRI] = {"@value": credential["validUntil"], "@type": XSD_DATETIME}
    return moved


@pytest.fixture
def genuine(prebuilt_certificate, client):
    certificate = prebuilt_certificate()
    return client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").json


@pytest.fixture
def expired(ctx, client):
    """A genuine credential of a certificate issued three years ago (valid 24 months): expired."""
    load_test_framework()
    certificate = make_certificate(
        make_user(email="old@example.org", name="Olga Old"),
        make_course("old-course"),
        now=utcnow() - timedelta(days=3 * 365),
    )
    assert certificate.expires_at is not None and certificate.expires_at < utcnow()
    return client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").json


def api(client, data: bytes, content_type: str = "application/json"):
    return client.post("/api/v1/verify", data=data, content_type=content_type)


def checks(body: dict) -> dict:
    return {c["check"]: c for c in body["checks"]}


# ---- item 1: bounded work -----------------------------------------------------------------------------


def test_the_8_node_clique_credential_is_refused_before_canonicalization(client, genuine):
    response = api(client, json.dumps(with_clique(genuine)).encode())
    assert response.status_code == 200
    body = response.json
    assert body["verified"] is False and body["verdict"] == "invalid"
    structure = checks(body)["structure"]
    assert structure["ok"] is False and "unexpected property 'https://example.org/knows'" in structure["message"]
    assert checks(body)["proof"]["ok"] is None  # never reached


def test_canonicalization_itself_refuses_the_clique_within_its_budget(genuine):
    """Even without the shape check in front, the bounded URDNA2015 gives up instead of trying 8! paths."""
    for n in (5, 6, 8):
        with pytest.raises(vc.CanonicalizationRefused):
            vc.canonize(with_clique({k: v for k, v in genuine.items() if k != "proof"}, n))


def test_the_proof_check_reports_a_refused_canonicalization(app, genuine, monkeypatch):
    from credentials import openbadges
    from credentials.keys import public_keys

    monkeypatch.setattr(shape, "problems", lambda document, spec=None: [])  # as if the shape check let it in
    with app.test_request_context():
        issuer = openbadges.Issuer(app.config["ISSUER_URL"], app.config["ISSUER_NAME"])
        report = verification.check_credential(
            with_clique(genuine), issuer=issuer, keys=public_keys(), status_bits=None, now=utcnow()
        )
    assert report.verdict == "invalid" and report.checks[1].ok is False
    assert "blank nodes" in report.checks[1].message


def test_our_own_credentials_fit_the_budget(genuine):
    """A genuine credential never needs hash-N-degree: the limits cost it nothing."""
    assert shape.problems(genuine) == []
    quads = vc.canonize({k: v for k, v in genuine.items() if k != "proof"})
    assert "_:c14n0" in quads


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("credentialStatus", 0, "id"), "_:b0", "blank node"),
        (("credentialStatus", 1, "statusListIndex"), 7, "must be a string"),
        (("credentialSubject", "@id"), "_:b0", "unexpected property"),
        (("@graph",), [], "unexpected property"),
        (("credentialSubject", "achievement", "alignment"), [{"type": ["Alignment"]}] * 41, "at most 40"),
        (("credentialSubject", "name"), "x" * 501, "longer than 500"),
        (("credentialSubject", "result", 0, "value"), 90, "must be a string"),
        (("issuer", "id"), "not an iri", "absolute IRI"),
    ],
)
def test_shapes_we_never_issue_are_refused_with_a_precise_message(client, genuine, path, value, message):
    document = json.loads(json.dumps(genuine))
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    body = api(client, json.dumps(document).encode()).json
    assert body["verified"] is False and checks(body)["structure"]["ok"] is False
    assert message in checks(body)["structure"]["message"]


def test_the_clique_is_refused_through_svg_pdf_and_the_cli(client, app, genuine, tmp_path):
    from weasyprint import HTML, Attachment

    from credentials.verification import bake_svg

    attacked = with_clique(genuine)
    svg = bake_svg(attacked, title="Badge").encode()
    body = api(client, svg, "image/svg+xml").json
    assert body["verified"] is False and checks(body)["structure"]["ok"] is False

    attachment = Attachment(file_obj=io.BytesIO(json.dumps(attacked).encode()), name="credential.json")
    pdf = HTML(string="<p>certificate</p>").write_pdf(attachments=[attachment])
    body = api(client, pdf, "application/pdf").json
    assert body["verified"] is False and checks(body)["structure"]["ok"] is False

    path = tmp_path / "attacked.json"
    path.write_text(json.dumps(attacked))
    result = app.test_cli_runner().invoke(args=["credentials", "verify", str(path)])
    assert result.exit_code == 1 and "FAIL  structure" in result.output and "Verdict: invalid" in result.output


# ---- item 2: the checks read the signed data ---------------------------------------------------------------


def test_an_expired_credential_with_validUntil_moved_to_its_iri_is_not_valid(client, expired):
    genuine_body = api(client, json.dumps(expired).encode()).json
    assert genuine_body["verdict"] == "expired" and checks(genuine_body)["proof"]["ok"] is True

    body = api(client, json.dumps(moved_valid_until(expired)).encode()).json
    assert body["verified"] is False and body["verdict"] != "valid"
    assert (
        "unexpected property 'https://www.w3.org/2018/credentials#validUntil'" in checks(body)["structure"]["message"]
    )


def test_validity_is_read_from_the_signed_quads_even_if_the_shape_check_were_bypassed(app, expired, monkeypatch):
    """The second line of defence: the same quads, so the proof holds, and the expiry is read from them."""
    from credentials import openbadges
    from credentials.keys import public_keys

    monkeypatch.setattr(shape, "problems", lambda document, spec=None: [])
    moved = moved_valid_until(expired)
    with app.test_request_context():
        issuer = openbadges.Issuer(app.config["ISSUER_URL"], app.config["ISSUER_NAME"])
        report = verification.check_credential(moved, issuer=issuer, keys=public_keys(), status_bits=None, now=utcnow())
    assert report.checks[1].ok is True  # the signature cannot tell the two spellings apart
    assert report.verdict == "expired"
    assert report.facts.valid_until == expired["validUntil"]
    assert report.summary()["credential"]["validUntil"] == expired["validUntil"]


@pytest.mark.nodb
def test_two_signed_expiry_dates_are_not_one_clear_fact():
    c, cred = "<https://x.example/c>", "https://www.w3.org/2018/credentials#"
    nquads = "".join(
        line + " .\n"
        for line in (
            f"{c} <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <{cred}VerifiableCredential>",
            f'{c} <https://schema.org/name> "Course"',
            f"{c} <{cred}issuer> <did:web:x.example>",
            f"{c} <{cred}credentialSubject> _:s",
            '_:s <https://schema.org/name> "Lee"',
            f'{c} <{cred}validFrom> "2020-01-01T00:00:00Z"^^<{XSD_DATETIME}>',
            f'{c} <{cred}validUntil> "2021-01-01T00:00:00Z"^^<{XSD_DATETIME}>',
        )
    )
    assert verification.signed_facts(nquads).valid_until == "2021-01-01T00:00:00Z"
    second = nquads + f'{c} <{cred}validUntil> "2999-01-01T00:00:00Z"^^<{XSD_DATETIME}> .\n'
    with pytest.raises(verification.FactsError, match="2 values for validUntil"):
        verification.signed_facts(second)


def test_a_credential_for_a_reissued_certificate_no_longer_matches_our_record(client, ctx, genuine):
    from accounts.models import Role
    from credentials import services
    from credentials.models import Certificate

    certificate = db.session.query(Certificate).one()
    admin = make_user(email="admin@example.org", role=Role.ADMIN)
    services.reissue(admin, certificate, now=utcnow(), holder_name="Lee Q. Learner")  # an approved correction
    db.session.commit()
    body = api(client, json.dumps(genuine).encode()).json
    assert checks(body)["proof"]["ok"] is True and checks(body)["record"]["ok"] is False
    assert "holder name differ" in checks(body)["record"]["message"] and body["verified"] is False


def test_a_signed_credential_naming_no_certificate_of_ours_fails_the_record_check(client, app, genuine):
    from credentials import keys, openbadges

    unsigned = {k: v for k, v in genuine.items() if k != "proof"}
    unsigned["id"] = unsigned["id"][:-4] + "ZZZZ"
    with app.app_context():
        key = keys.active_key()
        issuer = openbadges.Issuer(app.config["ISSUER_URL"], app.config["ISSUER_NAME"])
        signed = vc.sign(
            unsigned, key.private, verification_method=f"{issuer.did}#{key.id}", created=openbadges.iso(utcnow())
        )
    body = api(client, json.dumps(signed).encode()).json
    assert checks(body)["proof"]["ok"] is True and checks(body)["record"]["ok"] is False
    assert body["verified"] is False and "no certificate" in checks(body)["record"]["message"]
