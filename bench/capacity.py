"""CPU per request of the app AND of PostgreSQL, per kind of request: the figures docs/SCALING.md rests on.

    python -m tests.pgcluster -- sh -c 'python -m bench.generate && python -m bench.capacity'

bench.cpu measures the app process alone; sizing the database needs its share too. Each kind of request runs
REQUESTS times through Flask's test client in this process (production config, content cache on, warm), and the
figure per request is (a) this process's CPU time (``time.process_time``) and (b) the CPU time of this database's
PostgreSQL backends (utime + stime from /proc/<pid>/stat; the cluster runs on this machine). CPU time, unlike
wall time, hardly moves with the machine's load, so the figures hold on a shared machine. A PDF render (the
worker's job) is measured the same way. Prints a Markdown section; nothing is written.
"""

from __future__ import annotations

import os
import re
import secrets
import statistics
import time
import traceback

os.environ.setdefault("BENCH_CERTIFICATES", "2000")

from bench.generate import BENCH_PASSWORD, database_url

REQUESTS = int(os.environ.get("BENCH_CAPACITY_REQUESTS", "200"))
BATCHES = 4
RENDERS = int(os.environ.get("BENCH_CAPACITY_RENDERS", "8"))
COURSE = "/courses/ai-literacy-for-every-worker"
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def make_app():
    from core import create_app

    return create_app(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "bench-" + "k" * 40,
            "SQLALCHEMY_DATABASE_URI": database_url(),
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": False,
            "ALLOW_ANY_HOST": True,
            "ALLOW_OUTBOX_MAIL": True,
            "RATELIMIT_LOGIN": "1000 per minute",
            "RATELIMIT_VERIFY": "1000000 per minute",  # the bench is one client; production limits per client
            "PRERENDER_PDF": False,
            "QUEUE_URL": "immediate",
        }
    )


def backend_ms(app) -> float:
    """Summed CPU milliseconds of every PostgreSQL backend connected to this database (from /proc)."""
    from sqlalchemy import text

    from core.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        pids = conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars()
        pids = list(pids)
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) * TICK_MS  # utime, stime (fields 14 and 15 of stat)
    return total


def measure(app, label: str, call, n: int = REQUESTS) -> tuple[str, list[float], list[float]]:
    """(label, app ms per request per batch, PostgreSQL ms per request per batch)."""
    for _ in range(5):
        call()
    per_batch = max(1, n // BATCHES)
    app_ms, db_ms = [], []
    for _ in range(BATCHES):
        db_before = backend_ms(app)
        start = time.process_time()
        for _ in range(per_batch):
            call()
        app_ms.append((time.process_time() - start) * 1000 / per_batch)
        db_ms.append((backend_ms(app) - db_before) / per_batch)
    return label, app_ms, db_ms


def login(app, email: str):
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": BENCH_PASSWORD})
    assert response.status_code in (302, 303), f"login failed: {response.status_code}"
    return client


def getter(client, paths: list[str]):
    state = {"i": 0}

    def call():
        path = paths[state["i"] % len(paths)]
        state["i"] += 1
        response = client.get(path)
        assert response.status_code == 200, f"{path} answered {response.status_code}"

    return call


def completion_figures(app, learners: int) -> tuple[str, list[float], list[float]]:
    """Lessons marked complete (POST), each one not done before: progress row, xAPI statement, and for the last
    step of a course the completion and the certificate's issuance (with its jobs, run in-process here)."""
    from sqlalchemy import text

    from core.extensions import db

    with app.app_context():
        pending = db.session.execute(
            text(
                """SELECT u.email, c.slug, m.slug, l.slug FROM users u
                   JOIN enrollments e ON e.user_id = u.id JOIN courses c ON c.id = e.course_id
                   JOIN modules m ON m.course_id = c.id JOIN lessons l ON l.module_id = m.id
                   WHERE u.email LIKE 'learner%@bench.example' AND NOT EXISTS (
                     SELECT 1 FROM lesson_progress p WHERE p.enrollment_id = e.id AND p.lesson_id = l.id)
                   ORDER BY u.id, c.id, m.position, l.position"""
            )
        ).all()
        db.session.remove()
    emails = list(dict.fromkeys(email for email, *_ in pending))[:learners]
    clients = {email: login(app, email) for email in emails}
    posts = [(email, f"/courses/{c}/{m}/{lesson}") for email, c, m, lesson in pending if email in clients]
    tokens = {}
    for email, path in posts:
        if email not in tokens:  # the lesson page's form: its token serves every POST of that session
            html = clients[email].get(path).get_data(as_text=True)
            tokens[email] = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)
    queue = iter(posts)

    def call():
        email, path = next(queue)
        response = clients[email].post(path + "/complete", data={"csrf_token": tokens[email]})
        assert response.status_code in (302, 303), f"{path} answered {response.status_code}"

    return measure(app, "learner: lesson marked complete (write)", call, n=min(REQUESTS, len(posts) - 5))


def row_bytes(app) -> dict[str, float]:
    """Average stored size of one row (heap tuple, without indexes) of the tables that grow per learner."""
    from sqlalchemy import text

    from core.extensions import db

    sizes = {}
    with app.app_context():
        for table in ("users", "enrollments", "lesson_progress", "quiz_attempts", "xapi_statements", "certificates"):
            # names from this list, not input
            sizes[table] = float(db.session.scalar(text(f"SELECT avg(pg_column_size(t.*)) FROM {table} t")) or 0)  # noqa: S608
        db.session.remove()
    return sizes


def render_figures(app, ids: list[str]) -> tuple[str, list[float], list[float]]:
    """A certificate PDF rendered and stored, as the worker's job does it (signing included)."""
    from sqlalchemy import select

    from core.database import utcnow
    from core.extensions import db
    from credentials.models import Certificate
    from credentials.openbadges import allocate_status_slot
    from credentials.storage import stored_pdf

    with app.app_context():
        # bench.certificates inserts bare rows; issuance would have given each a status slot and subject salt
        for public_id in ids:
            certificate = db.session.scalar(select(Certificate).where(Certificate.public_id == public_id))
            certificate.subject_salt = certificate.subject_salt or secrets.token_hex(16)
            allocate_status_slot(certificate)
        db.session.commit()
    queue = iter(ids)

    def call():
        with app.app_context():
            certificate = db.session.scalar(select(Certificate).where(Certificate.public_id == next(queue)))
            stored_pdf(certificate, utcnow())
            db.session.commit()

    return measure(app, "certificate PDF render + store (worker job)", call, n=RENDERS)


def cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


def main() -> None:
    import tempfile

    from bench.certificates import generate_certificates
    from credentials.ids import format_public_id

    app = make_app()
    app.config["CERTIFICATE_DIR"] = tempfile.mkdtemp(prefix="awa-capacity-")
    app.config["SIGNING_KEYS"] = _keys()
    ids = generate_certificates(app)
    visitor, learner = app.test_client(), login(app, "learner1@bench.example")
    sample = [format_public_id(i) for i in ids[: min(len(ids), 500)]]
    kinds = [
        ("visitor: catalog", lambda: measure(app, "visitor: catalog", getter(visitor, ["/courses"]))),
        ("visitor: course page", lambda: measure(app, "visitor: course page", getter(visitor, [COURSE]))),
        (
            "learner: lesson page",
            lambda: measure(
                app, "learner: lesson page", getter(learner, [COURSE + "/what-ai-is/how-generative-ai-works"])
            ),
        ),
        ("learner: dashboard", lambda: measure(app, "learner: dashboard", getter(learner, ["/dashboard"]))),
        (
            "verification JSON (500 IDs)",
            lambda: measure(
                app, "verification JSON (500 IDs)", getter(visitor, [f"/api/v1/certificates/{i}" for i in sample])
            ),
        ),
        (
            "verification page (500 IDs)",
            lambda: measure(app, "verification page (500 IDs)", getter(visitor, [f"/verify/{i}" for i in sample])),
        ),
        ("learner: lesson marked complete (write)", lambda: completion_figures(app, learners=40)),
        ("certificate PDF render + store (worker job)", lambda: render_figures(app, ids[-(RENDERS + 5 * 1) :])),
    ]
    rows, failures = [], []
    for label, run in kinds:
        try:  # one kind failing (e.g. data the generator does not make) must not lose the others' figures
            rows.append(run())
        except Exception as error:
            traceback.print_exc()
            failures.append(f"{label}: not measured ({type(error).__name__}: {error})")
    sizes = row_bytes(app)
    lines = [
        "## CPU per request, app and PostgreSQL (bench/capacity.py)",
        "",
        f"Each kind of request {REQUESTS} times ({BATCHES} batches; PDF renders: {RENDERS}) through Flask's test "
        "client in one process, production config, content cache on and warm; median batch with the lowest and "
        "highest in brackets. App = this process's CPU time; PostgreSQL = the CPU time of the database's backends "
        "(/proc). Data: `bench.generate` (BENCH_LEARNERS learners × every course) plus "
        f"{len(ids)} certificates. Rerun: `python -m tests.pgcluster -- sh -c 'python -m bench.generate && "
        "python -m bench.capacity'`.",
        "",
        "| request | app CPU ms | PostgreSQL CPU ms | total |",
        "|---|---:|---:|---:|",
    ]
    for label, app_ms, db_ms in rows:
        total = statistics.median(app_ms) + statistics.median(db_ms)
        lines.append(f"| {label} | {cell(app_ms)} | {cell(db_ms)} | {total:.2f} |")
    lines += [f"| {failure} | – | – | – |" for failure in failures]
    lines += [
        "",
        "Average row size (heap tuple, `pg_column_size`, indexes not included): "
        + ", ".join(f"{table} {size:.0f} B" for table, size in sizes.items())
        + ".",
    ]
    print("\n".join(lines))


def _keys() -> dict:
    from tests.conftest import TEST_SIGNING_KEYS

    return TEST_SIGNING_KEYS


if __name__ == "__main__":
    main()
