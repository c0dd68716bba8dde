"""The wallet exchange and every credential type we issue, checked "the way the wallet does it": tests/js/wallet.mjs
builds DIDAuth presentations and verifies credentials with the Digital Bazaar libraries (pinned in
tests/js/package-lock.json, installed by `make test`), against the app served on loopback. Node runs once.
"""

from __future__ import annotations

import json
import subprocess
import threading
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from core.database import utcnow
from core.extensions import db
from courses.models import CourseStatus
from courses.programs import ProgramSpec, apply_program, enroll_program
from credentials import clr, identity, openbadges, wallet
from credentials.models import Certificate, CertificateEvent, RevocationReason, WalletExchange
from credentials.services import revoke, suspend
from tests.factories import complete_course, load_test_framework, make_course, make_user

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "js"


@contextmanager
def served(app):
    """The app on a loopback port, as the issuer at that address (its did:web and links name it)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    saved = app.config["ISSUER_URL"]
    app.config["ISSUER_URL"] = base
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        server.shutdown()
        thread.join()
        app.config["ISSUER_URL"] = saved


def run_harness(base: str, steps: list[dict]) -> dict[str, dict]:
    if not (HARNESS / "node_modules" / "@digitalbazaar" / "vc").is_dir():
        pytest.fail("the JS harness is not installed: run `make test`, or `npm ci --prefix tests/js`")
    plan = {"base": base, "contextsDir": str(ROOT / "credentials" / "contexts"), "steps": steps}
    done = subprocess.run(
        ["node", str(HARNESS / "wallet.mjs")], input=json.dumps(plan), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    results = {r["name"]: r for r in json.loads(done.stdout)}
    crashed = {name: r["crashed"] for name, r in results.items() if "crashed" in r}
    assert not crashed, crashed
    return results


def learner_with_a_record():
    """A learner with two course certificates stacked into a program certificate, and a third course's."""
    load_test_framework()
    courses = [make_course(slug, title=f"Course {slug}") for slug in ("alpha", "bravo", "charlie")]
    spec = ProgramSpec(
        slug="pathway",
        title="Test Pathway",
        purpose="Get ready for the work.",
        audience="Jobseekers.",
        normal_weeks=4,
        occupations=["43-4051.00"],
        courses=["alpha", "bravo"],
    )
    program, _ = apply_program(spec, now=utcnow(), status=CourseStatus.PUBLISHED)
    user = make_user(name="Pat Learner", email="pat@example.org")
    enroll_program(user, program, now=utcnow())
    db.session.commit()
    for course in courses:
        complete_course(user, course)
    certificates = {
        (c.course.slug if c.course else "program"): c
        for c in db.session.scalars(select(Certificate).where(Certificate.user_id == user.id))
    }
    return user, certificates


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def test_the_wallet_libraries_receive_verify_and_refuse_as_the_wallet_does(app, ctx, client):
    with served(app) as base:
        user, certificates = learner_with_a_record()
        alpha, bravo, program = certificates["alpha"], certificates["bravo"], certificates["program"]
        other = make_user(email="sam@example.org")
        complete_course(other, alpha.course)
        revoked = db.session.scalar(select(Certificate).where(Certificate.user_id == other.id))
        revoke(other, revoked, reason=RevocationReason.ISSUED_IN_ERROR, note="Test.", now=utcnow())
        complete_course(other, bravo.course)
        suspended = db.session.scalar(
            select(Certificate).where(Certificate.user_id == other.id, Certificate.course_id == bravo.course_id)
        )
        suspend(other, suspended, reason="Under review.", until=utcnow() + timedelta(days=5), now=utcnow())
        now = utcnow()
        issuer = identity.issuer()
        exchanges = {
            name: wallet.open_exchange(user, certificate, now=now)
            for name, certificate in [
                ("lcw", alpha),
                ("vcapi", bravo),
                ("program", program),
                ("expired", alpha),
                ("domain", alpha),
                ("other-key", alpha),
                ("forged", alpha),
                ("record", None),
            ]
        }
        unbound = {
            "course": openbadges.signed_credential(alpha, issuer, now=now),
            "program": openbadges.signed_credential(program, issuer, now=now),
            "revoked": openbadges.signed_credential(revoked, issuer, now=now),
            "suspended": openbadges.signed_credential(suspended, issuer, now=now),
        }
        for certificate in (revoked, suspended):  # as the admin's request does before it answers
            for list_id in openbadges.list_ids_of(certificate):
                openbadges.signed_status_list(list_id, issuer, now=now)
        db.session.execute(
            update(WalletExchange)
            .where(WalletExchange.id == exchanges["expired"].id)
            .values(expires_at=now - timedelta(seconds=1))
        )
        db.session.commit()
        record = clr.signed_record(user, issuer, now=now)
        db.session.commit()
        links = {name: wallet.lcw_deep_link(e) for name, e in exchanges.items()}
        interactions = {name: wallet.interaction_url(e) for name, e in exchanges.items()}
        ids = {name: e.id for name, e in exchanges.items()}
        db.session.remove()  # the server's threads write; hold no transaction open meanwhile

        results = run_harness(
            base,
            [
                {"name": "lcw", "do": "lcw", "deepLink": links["lcw"], "suite": "Ed25519Signature2020"},
                {"name": "replay", "do": "replay", "of": "lcw"},
                {"name": "vcapi", "do": "vcapi", "interactionUrl": interactions["vcapi"], "suite": "eddsa-rdfc-2022"},
                {"name": "program", "do": "lcw", "deepLink": links["program"], "suite": "eddsa-rdfc-2022"},
                {"name": "expired", "do": "lcw", "deepLink": links["expired"], "suite": "Ed25519Signature2020"},
                {
                    "name": "domain",
                    "do": "vcapi",
                    "interactionUrl": interactions["domain"],
                    "suite": "Ed25519Signature2020",
                    "domain": "evil.example",
                },
                {
                    "name": "other-key",
                    "do": "lcw",
                    "deepLink": links["other-key"],
                    "suite": "Ed25519Signature2020",
                    "signer": "intruder",
                },
                {
                    "name": "forged",
                    "do": "lcw",
                    "deepLink": links["forged"],
                    "suite": "eddsa-rdfc-2022",
                    "signer": "intruder",
                    "method": "holder",
                },
                {"name": "huge", "do": "huge", "url": f"{base}/wallet/exchanges/x", "bytes": 3 * 1024 * 1024},
                {"name": "huge-64k", "do": "huge", "url": wallet_url(links["forged"]), "bytes": 65 * 1024},
                {
                    "name": "record",
                    "do": "vcapi",
                    "interactionUrl": interactions["record"],
                    "suite": "Ed25519Signature2020",
                },
                {"name": "course-credential", "do": "verify", "credential": unbound["course"]},
                {"name": "program-credential", "do": "verify", "credential": unbound["program"]},
                {"name": "revoked-credential", "do": "verify", "credential": unbound["revoked"]},
                {"name": "suspended-credential", "do": "verify", "credential": unbound["suspended"]},
                {"name": "clr-download", "do": "verify", "credential": record},
            ],
        )

    # the wallet-bound credentials: issued, bound to the wallet's did:key, verified; a tampered copy fails
    for name, credential_of in [
        ("lcw", lambda r: r["body"]),
        ("vcapi", lambda r: r["body"]["verifiablePresentation"]["verifiableCredential"][0]),
        ("program", lambda r: r["body"]),
        ("record", lambda r: r["body"]["verifiablePresentation"]["verifiableCredential"][0]),
    ]:
        result = results[name]
        assert result["status"] == 200, (name, result["body"])
        credential = credential_of(result)
        assert credential["credentialSubject"]["id"] == result["holder"], name
        assert result["check"]["verified"] is True, (name, result["check"]["errors"])
        assert result["check"]["tamperedVerified"] is False, name
    assert results["vcapi"]["request"]["domain"] == base.removeprefix("http://")
    record_subject = results["record"]["body"]["verifiablePresentation"]["verifiableCredential"][0]["credentialSubject"]
    assert len(record_subject["verifiableCredential"]) == 4

    # refusals, each with its reason, as the wallet sees them
    assert results["replay"]["status"] == 409 and "already used" in results["replay"]["body"]["error"]
    assert results["expired"]["status"] == 410 and "expired" in results["expired"]["body"]["error"]
    assert results["domain"]["status"] == 403 and "another domain" in results["domain"]["body"]["error"]
    assert results["other-key"]["status"] == 403 and "not the holder" in results["other-key"]["body"]["error"]
    assert results["forged"]["status"] == 403 and "does not verify" in results["forged"]["body"]["error"]
    assert results["huge"]["status"] == 413
    assert results["huge-64k"]["status"] == 413 and "64 KB" in results["huge-64k"]["body"]["error"]

    # the credentials anyone downloads, and the record: verified; tampered copies and a revoked one are not
    for name in ("course-credential", "program-credential", "clr-download"):
        assert results[name]["check"]["verified"] is True, (name, results[name]["check"]["errors"])
        assert results[name]["check"]["tamperedVerified"] is False, name
    revoked_check = results["revoked-credential"]["check"]
    assert revoked_check["verified"] is True  # the signature and the status list check out ...
    assert {"purpose": "revocation", "verified": True, "set": True} in revoked_check["statuses"]  # ... its bit is set
    for name in ("course-credential", "program-credential", "lcw", "program"):
        assert {"purpose": "revocation", "verified": True, "set": False} in results[name]["check"]["statuses"], name
        assert {"purpose": "suspension", "verified": True, "set": False} in results[name]["check"]["statuses"], name
    # a suspended one: both entries checked against their lists (credentialSchema and its context accepted)
    suspended_check = results["suspended-credential"]["check"]
    assert suspended_check["verified"] is True, suspended_check["errors"]
    assert sorted(suspended_check["statuses"], key=lambda s: s["purpose"]) == [
        {"purpose": "revocation", "verified": True, "set": False},
        {"purpose": "suspension", "verified": True, "set": True},
    ]
    assert unbound["suspended"]["credentialSchema"][0]["type"] == "1EdTechJsonSchemaValidator2019"

    # nothing was issued for a refused request: only the four good exchanges are spent
    spent = set(db.session.scalars(select(WalletExchange.id).where(WalletExchange.redeemed_at.is_not(None))))
    assert spent == {ids["lcw"], ids["vcapi"], ids["program"], ids["record"]}
    assert count(CertificateEvent, CertificateEvent.action == "wallet") == 3


def wallet_url(deep_link: str) -> str:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(deep_link).query)["vc_request_url"][0]
