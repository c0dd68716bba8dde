"""Benchmark `POST /api/v1/verify` for other issuers' credentials and for our CLR record (issue 18, Displayer).

    python -m bench.displayer        # prints medians; nothing is written

A temporary SQLite database, Flask's test client (the full request path), ROUNDS interleaved rounds of:
- ours: one of our course credentials (baseline, 1.0);
- did:key: another issuer's badge, its key in its DID, no status list (nothing fetched);
- did:web: another issuer's badge whose DID document and two status lists (revocation, suspension) are served by
  a loopback HTTP server (test configuration), i.e. three strict fetches and four signatures per verification;
- CLR: our learning record of 10 course credentials (the whole record's proof, then each credential on its own).
CPU is the process's CPU time (the loopback server's threads included, they are cheap); wall is per request.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

ROUNDS = 15


def main() -> None:
    from flask_migrate import upgrade
    from sqlalchemy import select

    from core import create_app
    from core.database import utcnow
    from core.extensions import db
    from courses.catalog import CATALOG_DIR, course_folders, import_folder
    from credentials import clr, identity, keys, openbadges
    from credentials.models import Certificate
    from skills.services import load_framework_file
    from tests.factories import complete_course, make_user
    from tests.test_displayer import Handler, Issuer, Routes, entry

    folder = Path(tempfile.mkdtemp(prefix="awa-displayer-bench-"))
    app = create_app(
        {
            "APP_ENV": "test",
            "SECRET_KEY": "bench-" + "d" * 40,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'displayer.db'}",
            "SIGNING_KEY_FILE": str(folder / "keys.json"),
            "RATELIMIT_VERIFY": "100000 per minute",  # one client sends every request
            "PRERENDER_PDF": False,
            "DID_FETCH_ALLOW_LOOPBACK": True,
            "MAIL_OUTBOX_DIR": str(folder / "outbox"),
        }
    )
    routes = Routes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("BenchHandler", (Handler,), {"routes": routes}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port
    with app.app_context():
        upgrade()
        keys.generate(rotate=False)
        load_framework_file(now=utcnow())
        courses = [import_folder(path, now=utcnow())[0] for path in course_folders(CATALOG_DIR)[:10]]
        db.session.commit()
        user = make_user(email="bench@example.org", name="Bench Learner")
        for course in courses:
            complete_course(user, course)
        issuer = identity.issuer()
        certificates = list(db.session.scalars(select(Certificate).where(Certificate.user_id == user.id)))
        ours = openbadges.signed_credential(certificates[0], issuer, now=utcnow())
        record = clr.signed_record(user, issuer, now=utcnow())
        db.session.commit()

        by_key = Issuer().credential()
        web = Issuer(f"did:web:127.0.0.1%3A{port}:bench")
        routes.json("/bench/did.json", web.did_document())
        base = f"http://127.0.0.1:{port}/bench/status"
        routes.json("/bench/status/r", web.status_list(f"{base}/r", "revocation"))
        routes.json("/bench/status/s", web.status_list(f"{base}/s", "suspension"))
        by_web = web.credential(statuses=[entry(f"{base}/r", "revocation", 11), entry(f"{base}/s", "suspension", 11)])
        db.session.remove()

    client = app.test_client()
    cases = {"ours": ours, "did:key": by_key, "did:web + 2 lists": by_web, "CLR of 10": record}
    bodies = {name: json.dumps(document).encode() for name, document in cases.items()}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    wall: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, body in bodies.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            answer = client.post("/api/v1/verify", data=body, content_type="application/json")
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
            assert answer.status_code == 200 and answer.get_json()["verified"] is True, (name, answer.get_json())
    server.shutdown()
    baseline = statistics.median(cpu["ours"])
    print(f"POST /api/v1/verify, medians of {ROUNDS} interleaved rounds (SQLite, test client)")
    print(f"{'credential':<20} {'bytes':>8} {'CPU ms':>8} {'wall ms':>8} {'CPU ratio':>9}")
    for name in cases:
        median_cpu = statistics.median(cpu[name])
        print(
            f"{name:<20} {len(bodies[name]):>8} {median_cpu * 1000:>8.1f} {statistics.median(wall[name]) * 1000:>8.1f}"
            f" {median_cpu / baseline:>8.1f}x"
        )


if __name__ == "__main__":
    main()
