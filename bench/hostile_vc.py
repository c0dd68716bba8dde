"""CPU time of verifying hostile credentials (issue 12, item 1): the work must stay under ~50 ms per input.

    .venv/bin/python -m bench.hostile_vc

Each figure is the median CPU time (process time, so it counts every thread) of ROUNDS requests to
POST /api/v1/verify through the Flask test client, on a temporary SQLite database with one certificate.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

ROUNDS = 15


def main() -> None:
    from flask_migrate import upgrade

    from core import create_app
    from core.extensions import db
    from credentials import vc
    from credentials.ids import format_public_id
    from tests.factories import load_test_framework, make_certificate, make_course, make_user
    from tests.test_verification_bounds import clique, moved_valid_until, with_clique

    folder = Path(tempfile.mkdtemp(prefix="awa-hostile-vc-"))
    app = create_app(
        {
            "APP_ENV": "test",
            "SECRET_KEY": "bench-" + "h" * 40,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'vc.db'}",
            "SIGNING_KEY_FILE": str(folder / "keys.json"),
            "RATELIMIT_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
        from credentials import keys

        keys.generate(rotate=False)
        load_test_framework()
        certificate = make_certificate(make_user(email="b@example.org", name="Bench Learner"), make_course("bench"))
        db.session.commit()
        client = app.test_client()
        genuine = client.get(f"/credentials/{format_public_id(certificate.public_id)}.json").json

    widest = json.loads(json.dumps(genuine))  # the largest shape we accept: 40 look-alike alignments
    widest["credentialSubject"]["achievement"]["alignment"] = [
        {"type": ["Alignment"], "targetName": "x" * 150, "targetUrl": "https://x.example/" + "y" * 200}
    ] * 40
    inputs = {
        "genuine credential (valid)": genuine,
        "8-node blank-node clique, genuine proof": with_clique(genuine, 8),
        "7-node blank-node clique, genuine proof": with_clique(genuine, 7),
        "expired-style moved-IRI validUntil": moved_valid_until(genuine),
        "widest accepted shape (40 alignments, long strings)": widest,
    }
    rows = []
    for label, document in inputs.items():
        body = json.dumps(document).encode()
        times, verdict = [], None
        for _ in range(ROUNDS):
            started = time.process_time()
            response = client.post("/api/v1/verify", data=body, content_type="application/json")
            times.append(time.process_time() - started)
            verdict = response.json["verdict"]
        rows.append((label, len(body), statistics.median(times) * 1000, max(times) * 1000, verdict))

    # the canonicalization budget on its own, with no shape check in front of it
    bare = {k: v for k, v in genuine.items() if k != "proof"}
    bare["https://example.org/knows"] = clique(8)
    times = []
    for _ in range(ROUNDS):
        started = time.process_time()
        try:
            vc.canonize(bare)
            outcome = "canonicalized"
        except vc.CanonicalizationRefused:
            outcome = "refused"
        times.append(time.process_time() - started)
    rows.append(
        (
            "8-node clique, canonize() directly (no shape check)",
            0,
            statistics.median(times) * 1000,
            max(times) * 1000,
            outcome,
        )
    )

    print(f"CPU time per input, median and max of {ROUNDS} (POST /api/v1/verify, test client)\n")
    print("| input | bytes | median CPU | max CPU | verdict |")
    print("|---|---:|---:|---:|---|")
    for label, size, median, worst, verdict in rows:
        print(f"| {label} | {size or '—'} | {median:.1f} ms | {worst:.1f} ms | {verdict} |")


if __name__ == "__main__":
    main()
