"""The insights dashboard at scale: generate N learners (default 1,000,000) on PostgreSQL and time the dashboard.

    make bench-insights-1m                  # 1,000,000 learners (BENCH_LEARNERS to change)
    python -m tests.pgcluster -- python -m bench.insights_scale

The data set is made for the dashboard: learners, enrollments and certificates (no lesson progress, which the
dashboard never reads). Each learner takes 1 to 4 of the starter courses (2.5 on average), starting on a day spread
over 400 days and enrolling in the next course 0-19 days after the previous one; 45% of enrollments are completed
0-60 days after enrolling, nine in ten completions have a certificate (1 in 50 revoked, 1 in 3 expiring 400 days
after award) and last activity follows. Rows are written with set-based INSERT ... SELECT over generate_series
with the rollup triggers off (session_replication_role = replica), then the rollups are rebuilt once
(insights/rollups.py), which is what a migration would do on an existing database.

Writes the section "## Insights at N learners" of bench/RESULTS.md (replacing an earlier one): generation time,
the dashboard alone (median and p90 of 30 requests, one at a time) and under load (wrk against two gunicorn workers)
next to a bare Flask endpoint in the same run, and the direct recomputation's time for comparison.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from datetime import timedelta
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import text

from accounts.passwords import hash_password
from bench.generate import BENCH_PASSWORD, database_url
from core import create_app
from core.database import utcnow
from core.extensions import db
from courses.catalog import CATALOG_DIR, course_folders, import_folder
from skills.services import load_framework_file

ROOT = Path(__file__).resolve().parents[1]
LEARNERS = int(os.environ.get("BENCH_LEARNERS", "1000000"))
ADMIN_EMAIL, ADMIN_PASSWORD = "bench-admin@bench.example", "bench admin password 2026"

STATEMENTS = [
    """INSERT INTO users (email, name, legal_name, role, active, password_hash, session_version, created_at,
                          updated_at)
       SELECT 'learner' || g || '@bench.example', 'Bench Learner ' || g, 'Bench Learner ' || g, 'learner', true,
              :hash, 1, now() - interval '410 days', now()
       FROM generate_series(1, :n) AS g""",
    # learner u takes courses (u*7 + j) mod N for j < 1 + u mod 4, the first one (u*7919 mod 400) days ago and each
    # next one 0-19 days after the previous (never in the future)
    """INSERT INTO enrollments (user_id, course_id, enrolled_at, last_activity_at)
       SELECT u.id, c.ids[1 + (u.id * 7 + j) % array_length(c.ids, 1)],
              least(now() - interval '1 hour',
                    now() - ((u.id::bigint * 7919) % 400) * interval '1 day'
                    + (j * ((u.id * 31 + j * 17) % 20)) * interval '1 day'
                    + ((u.id + j) % 24) * interval '1 hour' + ((u.id * 13) % 3600) * interval '1 second'),
              now()
       FROM users u
       CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM courses) c
       CROSS JOIN LATERAL generate_series(0, u.id % 4) AS j
       WHERE u.email LIKE 'learner%@bench.example'""",
    """UPDATE enrollments
       SET completed_at = least(now() - interval '1 minute',
                                enrolled_at + ((id * 31) % 600) * interval '144 minutes'
                                + (id % 97) * interval '1 minute')
       WHERE id % 20 < 9""",
    """UPDATE enrollments
       SET last_activity_at = least(now(),
                                    coalesce(completed_at, enrolled_at + ((id * 13) % 90) * interval '1 day'))""",
    """INSERT INTO certificates (public_id, user_id, course_id, enrollment_id, holder_name, course_title, course_slug,
           course_version, skills, goals, score, issuer_name, awarded_at, issued_at, expires_at, revision, revoked_at,
           revocation_reason, verification_count)
       SELECT upper(substr(md5(e.id::text) || md5('x' || e.id::text), 1, 28)), e.user_id, e.course_id, e.id,
              u.legal_name, c.title, c.slug, 1, '[]', '[]', 80 + e.id % 21, 'AI Workforce Academy', e.completed_at,
              e.completed_at, CASE WHEN e.id % 3 = 0 THEN e.completed_at + interval '400 days' END, 1,
              CASE WHEN e.id % 50 = 0 THEN e.completed_at + interval '5 days' END,
              CASE WHEN e.id % 50 = 0 THEN 'issued_in_error' END, 0
       FROM enrollments e JOIN users u ON u.id = e.user_id JOIN courses c ON c.id = e.course_id
       WHERE e.completed_at IS NOT NULL AND e.id % 10 <> 0""",
]


COUNTS = """SELECT 'learners', count(*) FROM users WHERE email LIKE 'learner%'
    UNION ALL SELECT 'enrollments', count(*) FROM enrollments
    UNION ALL SELECT 'certificates', count(*) FROM certificates
    UNION ALL SELECT 'enrollment day rows', count(*) FROM insights_enrollment_days
    UNION ALL SELECT 'certificate day rows', count(*) FROM insights_certificate_days
    UNION ALL SELECT 'people rows', count(*) FROM insights_people_days"""


def counts() -> dict:
    from bench.certificates import make_app

    with make_app().app_context():
        return dict(db.session.execute(text(COUNTS)).all())


def generate() -> tuple[float, dict]:
    """Build the data set; returns (seconds, row counts)."""
    from accounts.models import Role
    from accounts.services import register_user
    from insights import people, rollups

    app = create_app({"APP_ENV": "test", "SECRET_KEY": "bench-" + "z" * 40, "SQLALCHEMY_DATABASE_URI": database_url()})
    started = time.perf_counter()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        load_framework_file(now=utcnow())
        for folder in course_folders(CATALOG_DIR):
            import_folder(folder, now=utcnow())
        register_user(email=ADMIN_EMAIL, name="Bench Admin", password=ADMIN_PASSWORD, now=utcnow(), role=Role.ADMIN)
        db.session.commit()
        params = {"n": LEARNERS, "hash": hash_password(BENCH_PASSWORD)}
        for statement in STATEMENTS:
            with db.engine.begin() as conn:
                conn.execute(text("SET LOCAL session_replication_role = replica"))  # rollup triggers off
                conn.execute(text(statement), params)
        rollups.rebuild()
        db.session.commit()
        people.rebuild()
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started, counts()


def direct_and_rollup_seconds() -> tuple[float, float, bool]:
    """Seconds of reports.build from the rollups (median of 5) and directly (once), in-process, for the last 365
    days, and whether the two gave the same numbers."""
    from bench.certificates import make_app
    from insights import reports

    app = make_app()
    with app.app_context():
        now = utcnow()
        end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=365)
        took: dict[bool, list[float]] = {False: [], True: []}
        results = {}
        for direct in (False, False, False, False, False, True):
            begun = time.perf_counter()
            report = reports.build(start, end, window_days=180, now=now, direct=direct)
            took[direct].append(time.perf_counter() - begun)
            results[direct] = (report.overall.activity(), report.overall.attainment(), report.tables())
            db.session.rollback()
        return statistics.median(took[False]), statistics.median(took[True]), results[False] == results[True]


def main() -> None:
    from bench.insights import latency
    from bench.pages import RPS_HEADER, WRK, login, rps, serve, wrk

    if os.environ.get("BENCH_REUSE"):  # measure a data set generated earlier (BENCH_GENERATED_SECONDS: its time)
        seconds, rows = float(os.environ.get("BENCH_GENERATED_SECONDS", "nan")), counts()
    else:
        seconds, rows = generate()
    print(f"generated {rows} in {seconds:.0f}s", flush=True)
    fast, direct, same = direct_and_rollup_seconds()
    print(f"in-process: rollups {fast * 1000:.0f} ms, direct {direct * 1000:.0f} ms, same numbers: {same}", flush=True)
    env = {
        **os.environ,
        "FLASK_APP_ENV": "production",
        "FLASK_SECRET_KEY": "bench-" + "k" * 40,
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url(),
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_REMEMBER_COOKIE_SECURE": "false",
        "FLASK_ALLOW_ANY_HOST": "true",  # loopback benchmark
        "FLASK_ALLOW_OUTBOX_MAIL": "true",
        "BENCH_SECONDS": os.environ.get("BENCH_SECONDS", "10"),
    }
    bare, bare_url = serve("bench.bare:app", env)
    try:
        baseline = wrk(bare_url + "/")
        bare_latency = latency(bare_url + "/")
    finally:
        bare.terminate()
        bare.wait()
    app, base = serve("wsgi:app", env)
    try:
        cookie = login(base, ADMIN_EMAIL, ADMIN_PASSWORD)
        year_ago = (utcnow() - timedelta(days=365)).strftime("%Y-%m-%d")
        pages = [
            ("dashboard, default (last 90 days)", "/admin/insights"),
            ("dashboard, last 365 days", f"/admin/insights?from={year_ago}"),
            ("chart SVG (by course), 365 days", f"/admin/insights/charts/course.svg?from={year_ago}"),
        ]
        results = [(name, latency(base + path, cookie), wrk(base + path, cookie)) for name, path in pages]
    finally:
        app.terminate()
        app.wait()
    lines = [
        "",
        f"## Insights at {rows['learners']:,} learners",
        "",
        f"Generated by `make bench-insights-1m` (BENCH_LEARNERS={LEARNERS}) in {seconds:.0f} s on this machine: "
        f"{rows['learners']:,} learners, {rows['enrollments']:,} enrollments over 400 days (45% completed), "
        f"{rows['certificates']:,} certificates; the rollups hold {rows['enrollment day rows']:,} enrollment day, "
        f"{rows['certificate day rows']:,} certificate day and {rows['people rows']:,} people rows. Load average "
        f"while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is shared).",
        "",
        f"`reports.build` in-process, last 365 days: from the rollups {fast * 1000:.0f} ms (median of 5), the direct "
        f"recomputation {direct * 1000:.0f} ms (once); same numbers: {'yes' if same else 'NO'}.",
        "",
        f"Alone: one request at a time (30 rounds). Under load: wrk with {' '.join(WRK)} against two gunicorn workers.",
        "",
        f"| page | alone: median | alone: p90 | under load: {RPS_HEADER} | ratio to bare Flask | p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| bare Flask endpoint | {bare_latency[0]:.1f} ms | {bare_latency[1]:.1f} ms | {rps(baseline)} | 1.00 "
        f"| {baseline['p50']} | {baseline['p99']} |",
    ]
    for name, (median, p90), r in results:
        lines.append(
            f"| {name} | {median:.0f} ms | {p90:.0f} ms | {rps(r)} | {r['rps'] / baseline['rps']:.4f} "
            f"| {r['p50']} | {r['p99']} |"
        )
    section = "\n".join(lines) + "\n"
    print(section)
    results_file = ROOT / "bench" / "RESULTS.md"
    previous = results_file.read_text() if results_file.exists() else ""
    pattern = re.compile(rf"\n## Insights at {rows['learners']:,} learners\n.*?(?=\n## |\Z)", flags=re.S)
    updated = pattern.sub(lambda _: section.rstrip("\n"), previous, count=1)
    if updated == previous:
        updated = previous.rstrip("\n") + "\n" + section
    results_file.write_text(updated)


if __name__ == "__main__":
    main()
