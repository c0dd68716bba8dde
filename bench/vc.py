"""Benchmark signing and verifying Open Badges credentials, and regenerating a status list.

    python -m bench.vc      # also run by `make bench`; appends to bench/RESULTS.md

Uses a temporary SQLite database with one shipped course and one learner; keys are generated fresh.
"""

from __future__ import annotations

import json
import secrets
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 50


def main() -> None:
    from flask_migrate import upgrade

    from core import create_app
    from core.database import utcnow
    from core.extensions import db
    from courses.catalog import CATALOG_DIR, course_folders, import_folder
    from credentials import keys, openbadges, vc
    from skills.services import load_framework_file
    from tests.factories import complete_course, make_user

    folder = Path(tempfile.mkdtemp(prefix="awa-vc-bench-"))
    app = create_app(
        {
            "APP_ENV": "test",
            "SECRET_KEY": "bench-" + "v" * 40,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'vc.db'}",
            "SIGNING_KEY_FILE": str(folder / "keys.json"),
        }
    )
    with app.app_context():
        upgrade()
        keys.generate(rotate=False)
        load_framework_file(now=utcnow())
        course, _ = import_folder(course_folders(CATALOG_DIR)[0], now=utcnow())
        db.session.commit()
        user = make_user(email="bench@example.org", name="Bench Learner")
        complete_course(user, course)
        from sqlalchemy import select

        from credentials.models import Certificate

        certificate = db.session.scalar(select(Certificate))
        issuer = openbadges.Issuer(app.config["ISSUER_URL"], app.config["ISSUER_NAME"])
        published = keys.public_keys()

        def resolve(method: str):
            return published.get(method.split("#", 1)[1])

        sign_times, verify_times = [], []
        for _ in range(ROUNDS):
            certificate.signed_credential = None
            started = time.perf_counter()
            signed = openbadges.signed_credential(certificate, issuer, now=utcnow())
            sign_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            vc.verify(signed, resolve)
            verify_times.append(time.perf_counter() - started)
        size = len(json.dumps(signed, ensure_ascii=False).encode())

        # a full list: 131,072 slots with 1% revoked, packed, compressed and signed
        bits = bytearray(openbadges.LIST_SIZE // 8)
        for index in secrets.SystemRandom().sample(range(openbadges.LIST_SIZE), openbadges.LIST_SIZE // 100):
            bits[index // 8] |= 0x80 >> (index % 8)
        import base64
        import gzip

        regen = []
        for _ in range(10):
            started = time.perf_counter()
            encoded = "u" + base64.urlsafe_b64encode(gzip.compress(bytes(bits), 9, mtime=0)).decode().rstrip("=")
            document = {
                "@context": [vc.VC_V2],
                "id": issuer.status_list_url(1),
                "type": ["VerifiableCredential", "BitstringStatusListCredential"],
                "issuer": issuer.did,
                "validFrom": openbadges.iso(utcnow()),
                "credentialSubject": {
                    "id": issuer.status_list_url(1) + "#list",
                    "type": "BitstringStatusList",
                    "statusPurpose": "revocation",
                    "encodedList": encoded,
                },
            }
            key = keys.active_key()
            status_list = vc.sign(
                document, key.private, verification_method=f"{issuer.did}#{key.id}", created=openbadges.iso(utcnow())
            )
            regen.append(time.perf_counter() - started)
        list_size = len(json.dumps(status_list).encode())

    lines = [
        "",
        "## Open Badges credentials (eddsa-rdfc-2022)",
        "",
        f"{ROUNDS} rounds on one certificate of a shipped course; times include URDNA2015 canonicalization of the "
        "credential and the proof options with the bundled contexts.",
        "",
        "| measure | median | p90 |",
        "|---|---:|---:|",
        f"| build + sign one credential | {statistics.median(sign_times) * 1000:.1f} ms | "
        f"{statistics.quantiles(sign_times, n=10)[-1] * 1000:.1f} ms |",
        f"| verify one credential (target ≤ 20 ms) | {statistics.median(verify_times) * 1000:.1f} ms | "
        f"{statistics.quantiles(verify_times, n=10)[-1] * 1000:.1f} ms |",
        f"| regenerate + sign a 131,072-entry status list (1% revoked) | {statistics.median(regen) * 1000:.1f} ms | "
        f"{max(regen) * 1000:.1f} ms (max) |",
        "",
        f"Signed credential size: {size / 1024:.1f} KiB; signed status list size: {list_size / 1024:.1f} KiB.",
    ]
    text = "\n".join(lines) + "\n"
    with (ROOT / "bench" / "RESULTS.md").open("a") as results:
        results.write(text)
    print(text)


if __name__ == "__main__":
    main()
