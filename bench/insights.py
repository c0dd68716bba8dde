"""Benchmark the admin dashboard and reports on the generated data set (run by `make bench` after the others).

Measures /admin/insights, a chart and one item-analysis page under gunicorn against the bare Flask endpoint in the same
run, and records the PostgreSQL plan of the slowest query the dashboard runs.
"""

from __future__ import annotations

import os
import re
import statistics
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from bench.generate import database_url
from bench.pages import RPS_HEADER, USER_AGENT, WRK, login, rps, serve, wrk
from core.database import utcnow

ROOT = Path(__file__).resolve().parents[1]
ADMIN_EMAIL, ADMIN_PASSWORD = "bench-admin@bench.example", "bench admin password 2026"


RESHAPE = [
    # enrollments over 400 days; 45% completed 0-60 days after enrolling; last activity follows
    """UPDATE enrollments
       SET enrolled_at = now() - ((id * 7919) % 400) * interval '1 day' - (id % 24) * interval '1 hour'""",
    """UPDATE enrollments
       SET completed_at = enrolled_at + ((id * 31) % 60) * interval '1 day' + (id % 20) * interval '1 hour'
       WHERE completed_at IS NOT NULL OR id % 5 < 2""",
    """UPDATE enrollments
       SET last_activity_at = coalesce(completed_at, enrolled_at + ((id * 13) % 90) * interval '1 day')""",
    "DELETE FROM certificate_events",
    "DELETE FROM certificates",
    # 30,000 certificates for completed enrollments: 1 in 50 revoked, 1 in 3 expiring 400 days after award
    """INSERT INTO certificates (public_id, user_id, course_id, holder_name, course_title, course_slug, course_version,
           skills, goals, score, issuer_name, awarded_at, issued_at, expires_at, revision, revoked_at,
           revocation_reason, verification_count)
       SELECT upper(substr(md5(e.id::text) || md5('x' || e.id::text), 1, 28)), e.user_id, e.course_id, u.legal_name,
              c.title, c.slug, 1, '[]', '[]', 80 + e.id % 21, 'AI Workforce Academy', e.completed_at, e.completed_at,
              CASE WHEN e.id % 3 = 0 THEN e.completed_at + interval '400 days' END, 1,
              CASE WHEN e.id % 50 = 0 THEN e.completed_at + interval '5 days' END,
              CASE WHEN e.id % 50 = 0 THEN 'issued_in_error' END, 0
       FROM enrollments e JOIN users u ON u.id = e.user_id JOIN courses c ON c.id = e.course_id
       WHERE e.completed_at IS NOT NULL ORDER BY e.id LIMIT 30000""",
]


def prepare():
    """Reshape the generated data for reports (dates spread over 400 days, 30,000 certificates), add an admin and
    quiz answers for item analysis, and capture the plan of the slowest query the dashboard runs."""
    from sqlalchemy import event

    from accounts.models import Role
    from accounts.services import register_user
    from bench.certificates import make_app
    from core.database import utcnow
    from core.extensions import db
    from insights import reports

    app = make_app()
    with app.app_context():
        from insights import people, rollups

        # rewriting every enrollment in one transaction with the rollup triggers on would update the same few
        # day rows tens of thousands of times (PostgreSQL keeps every version until commit): triggers off, then
        # the rollups rebuilt once
        db.session.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in RESHAPE:
            db.session.execute(text(statement))
        rollups.rebuild()
        people.rebuild()
        if not db.session.execute(text("SELECT 1 FROM users WHERE email = :e"), {"e": ADMIN_EMAIL}).first():
            register_user(email=ADMIN_EMAIL, name="Bench Admin", password=ADMIN_PASSWORD, now=utcnow(), role=Role.ADMIN)
        db.session.commit()
        quiz_id = db.session.execute(text("SELECT min(id) FROM quizzes")).scalar()
        # one answer row per question for the first 20,000 attempts at that quiz: right 70% of the time
        db.session.execute(
            text("""
            INSERT INTO attempt_answers (attempt_id, question_id, choice_id, question_correct)
            SELECT a.id, q.id, c.id, (a.id + q.id) % 10 < 7
            FROM (SELECT id FROM quiz_attempts WHERE quiz_id = :quiz ORDER BY id LIMIT 20000) a
            JOIN questions q ON q.quiz_id = :quiz
            JOIN choices c ON c.question_id = q.id AND c.correct = ((a.id + q.id) % 10 < 7)
                AND c.position = (SELECT min(position) FROM choices c2 WHERE c2.question_id = q.id
                                  AND c2.correct = ((a.id + q.id) % 10 < 7))"""),
            {"quiz": quiz_id},
        )
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        counts = db.session.execute(
            text("SELECT (SELECT count(*) FROM enrollments), (SELECT count(*) FROM certificates)")
        ).one()

        statements = []

        def capture(conn, cursor, statement, parameters, context, executemany):
            statements.append((statement, parameters))

        now = utcnow()
        # the dashboard's own period: whole UTC days, so the enrollment and certificate counts come from the rollups
        end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            reports.build(end - timedelta(days=366), end, window_days=180, now=now)
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
        plans = []
        raw = db.session.connection().connection.driver_connection
        for statement, parameters in statements:
            with raw.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
                lines = [row[0] for row in cursor.fetchall()]
            took = float(lines[-1].split(":")[1].split()[0])  # "Execution Time: 12.345 ms"
            plans.append((took, "\n".join(lines)))
        db.session.rollback()
        times = ", ".join(f"{took:.1f}" for took, _ in plans)
        slowest = max(plans)
        return quiz_id, counts, times, slowest[1]


def latency(url: str, cookie: str | None = None, rounds: int = 30) -> tuple[float, float]:
    """Median and 90th percentile (ms) of one request at a time: what an admin waits for the page."""
    headers = {"User-Agent": USER_AGENT, **({"Cookie": cookie} if cookie else {})}
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 (our own loopback URL)
        with urllib.request.urlopen(request) as response:  # noqa: S310
            response.read()
            assert response.status == 200
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return statistics.median(took), took[int(rounds * 0.9) - 1]


def main() -> None:
    quiz_id, counts, times, plan = prepare()
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
            ("dashboard, last 365 days", f"/admin/insights?from={year_ago}"),
            ("chart SVG (by course)", f"/admin/insights/charts/course.svg?from={year_ago}"),
            (
                "CSV: attainment by occupation",
                f"/admin/insights?from={year_ago}&table=attainment-occupation&format=csv",
            ),
            ("item analysis (20,000 attempts)", f"/admin/insights/quizzes/{quiz_id}"),
        ]
        results = [(name, wrk(base + path, cookie), latency(base + path, cookie)) for name, path in pages]
    finally:
        app.terminate()
        app.wait()
    lines = [
        "",
        "## Insights (admin dashboard and reports)",
        "",
        f"On the generated data set reshaped for reports: 10,000 learners, {counts[0]:,} enrollments started over "
        f"400 days (~45% completed), ~1M lesson progress rows, {counts[1]:,} certificates. Each dashboard request "
        "computes every number on the page with seven aggregate queries (constant in the number of learners): "
        "enrollment and certificate counts from the per-day rollups, people from one pass over enrollments.",
        "",
        "Alone: one request at a time (30 rounds), what an admin waits for. Under load: wrk with "
        f"{' '.join(WRK)} against two gunicorn workers.",
        "",
        f"| page | alone: median | alone: p90 | under load: {RPS_HEADER} | ratio to bare Flask | p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| bare Flask endpoint | {bare_latency[0]:.1f} ms | {bare_latency[1]:.1f} ms | {rps(baseline)} | 1.00 "
        f"| {baseline['p50']} | {baseline['p99']} |",
    ]
    for name, r, (median, p90) in results:
        lines.append(
            f"| {name} | {median:.0f} ms | {p90:.0f} ms | {rps(r)} | {r['rps'] / baseline['rps']:.4f} "
            f"| {r['p50']} | {r['p99']} |"
        )
    lines += [
        "",
        f"EXPLAIN ANALYZE execution times of the dashboard's queries (ms, 365 days): {times}. Plan of the slowest "
        "(people per course set, for active learners and attainment):",
        "",
        "```",
        plan,
        "```",
    ]
    out = "\n".join(lines) + "\n"
    # `make bench` writes RESULTS.md afresh and appends this; `make bench-insights` replaces this section only
    results_file = ROOT / "bench" / "RESULTS.md"
    previous = results_file.read_text() if results_file.exists() else ""
    pattern = re.compile(r"\n## Insights \(admin dashboard and reports\)\n.*?(?=\n## |\Z)", flags=re.S)
    updated = pattern.sub(lambda _: out.rstrip("\n"), previous, count=1)
    results_file.write_text(updated if updated != previous else previous + out)
    print(out)


if __name__ == "__main__":
    from bench import generate

    generate.main()  # the 10,000-learner data set of `make bench`, then this benchmark alone
    main()
