"""Benchmark the wallet exchange round trip and the CLR 2.0 record (issue 18).

    python -m bench.wallet      # writes its own section of bench/RESULTS.md (replacing an earlier one)

A temporary SQLite database; one learner who completed 10 shipped courses (10 course credentials). Everything runs
in one process through Flask's test client (the full request path: routing, rate limit, JSON, database, commit),
interleaved with the baseline it is compared to: building and signing one course credential.

- exchange round trip: what a VC-API wallet does after scanning: GET the interaction URL, POST {} (the request for
  DIDAuth), POST the signed presentation, receive the holder-bound credential; the wallet's own signing of its
  presentation (done on the phone) is timed apart.
- CLR: build and sign the record of 10 credentials, when the 10 credentials are already signed (the usual case:
  each is signed once when first shown) and when none is (the first download after issuance or a key rotation).
"""

from __future__ import annotations

import json
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
ROUNDS = 21
HEADING = "## Wallet exchange and CLR 2.0 (bench/wallet.py)"


def main() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from flask_migrate import upgrade
    from sqlalchemy import select, update

    from core import create_app
    from core.database import utcnow
    from core.extensions import db
    from courses.catalog import CATALOG_DIR, course_folders, import_folder
    from credentials import clr, identity, keys, openbadges, wallet
    from credentials.models import Certificate
    from skills.services import load_framework_file
    from tests.factories import complete_course, make_user
    from tests.test_wallet import presentation

    folder = Path(tempfile.mkdtemp(prefix="awa-wallet-bench-"))
    app = create_app(
        {
            "APP_ENV": "test",
            "SECRET_KEY": "bench-" + "w" * 40,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'wallet.db'}",
            "SIGNING_KEY_FILE": str(folder / "keys.json"),
            "RATELIMIT_VERIFY": "100000 per minute",  # one client sends every request
            "PRERENDER_PDF": False,
        }
    )
    with app.app_context():
        upgrade()
        keys.generate(rotate=False)
        load_framework_file(now=utcnow())
        courses = []
        for path in course_folders(CATALOG_DIR)[:10]:
            course, _ = import_folder(path, now=utcnow())
            courses.append(course)
        db.session.commit()
        user = make_user(email="bench@example.org", name="Bench Learner")
        for course in courses:
            complete_course(user, course)
        certificates = list(db.session.scalars(select(Certificate).where(Certificate.user_id == user.id)))
        assert len(certificates) == 10, len(certificates)
        issuer = identity.issuer()
        first = certificates[0]
        holder = Ed25519PrivateKey.generate()
        client = app.test_client()

        sign_one, wallet_sign, round_trip, clr_warm, clr_cold = [], [], [], [], []
        for _ in range(ROUNDS):
            # baseline: build and sign one course credential
            first.signed_credential = None
            started = time.perf_counter()
            openbadges.signed_credential(first, issuer, now=utcnow())
            sign_one.append(time.perf_counter() - started)
            db.session.commit()

            # the exchange, as a VC-API wallet runs it
            exchange = wallet.open_exchange(user, first, now=utcnow())
            db.session.commit()
            exchange_path = f"/wallet/exchanges/{exchange.public_id}"
            started = time.perf_counter()
            protocols = client.get(
                f"/wallet/interactions/{exchange.public_id}?iuv=1", headers={"Accept": "application/json"}
            ).get_json()["protocols"]
            assert protocols["vcapi"].endswith(exchange_path)
            request = client.post(exchange_path, json={}).get_json()["verifiablePresentationRequest"]
            phone = time.perf_counter()
            signed = presentation(holder, request["challenge"], suite="eddsa-rdfc-2022", domain=request["domain"])
            phone = time.perf_counter() - phone
            answer = client.post(exchange_path, json={"verifiablePresentation": signed})
            round_trip.append(time.perf_counter() - started - phone)
            wallet_sign.append(phone)
            assert answer.status_code == 200, answer.get_data(as_text=True)
            bound = answer.get_json()["verifiablePresentation"]["verifiableCredential"][0]

            # the record of 10 already-signed credentials, then of 10 to sign
            started = time.perf_counter()
            record = clr.signed_record(user, issuer, now=utcnow())
            clr_warm.append(time.perf_counter() - started)
            db.session.commit()
            db.session.execute(update(Certificate).values(signed_credential=None))
            db.session.commit()
            started = time.perf_counter()
            clr.signed_record(user, issuer, now=utcnow())
            clr_cold.append(time.perf_counter() - started)
            db.session.commit()
        record_size = len(json.dumps(record, ensure_ascii=False).encode())
        bound_size = len(json.dumps(bound, ensure_ascii=False).encode())

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.1f} ms"

    def p90(values: list[float]) -> str:
        return f"{statistics.quantiles(values, n=10)[-1] * 1000:.1f} ms"

    baseline = statistics.median(sign_one)
    rows = [
        ("build + sign one course credential (baseline)", sign_one),
        (
            "exchange round trip, server side: GET interaction, POST {}, POST presentation → bound credential",
            round_trip,
        ),
        ("the wallet signing its DIDAuth presentation (phone side, apart)", wallet_sign),
        ("CLR of 10 credentials already signed: build + sign", clr_warm),
        ("CLR of 10 credentials none signed yet: sign 10 + build + sign", clr_cold),
    ]
    lines = [
        "",
        HEADING,
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {platform.machine()}, "
        f"{len(__import__('os').sched_getaffinity(0))} CPUs, Python {platform.python_version()}; SQLite; "
        f"one process, Flask test client. {ROUNDS} interleaved rounds; a learner with 10 course credentials "
        "from the shipped catalog. Load average during the run: "
        f"{__import__('os').getloadavg()[0]:.1f} (the machine is shared: read the ratios, not the times).",
        "",
        "| measure | median | p90 | ratio to baseline |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {ms(v)} | {p90(v)} | {statistics.median(v) / baseline:.1f} |" for name, v in rows),
        "",
        f"Holder-bound credential: {bound_size / 1024:.1f} KiB; "
        f"the CLR of 10 credentials: {record_size / 1024:.1f} KiB.",
        "",
    ]
    text = "\n".join(lines)
    previous = RESULTS.read_text() if RESULTS.exists() else ""
    previous = re.sub(rf"\n{re.escape(HEADING)}\n.*?(?=\n## |\Z)", "", previous, flags=re.S)
    RESULTS.write_text(previous.rstrip("\n") + "\n" + text)
    print(text)


if __name__ == "__main__":
    main()
