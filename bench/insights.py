"""Benchmark the admin dashboard and reports on the generated data set (run by `make bench` after the others).

Measures /admin/insights and one item-analysis page under gunicorn against the bare Flask endpoint in the same
run, and records the PostgreSQL plan of the slowest report query (credential attainment by occupation).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from bench.generate import database_url
from bench.pages import login, serve, wrk

ROOT = Path(__file__).resolve().parents[1]
ADMIN_EMAIL, ADMIN_PASSWORD = "bench-admin@bench.example", "bench admin password 2026"


def prepare():
    """An admin account, and quiz answers for item analysis, on the generated data."""
    from accounts.models import Role
    from accounts.services import register_user
    from bench.certificates import make_app
    from core.database import utcnow
    from core.extensions import db

    app = make_app()
    with app.app_context():
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
        start = utcnow() - timedelta(days=365)
        plan = db.session.execute(
            text("""EXPLAIN (ANALYZE, BUFFERS)
            SELECT occupations.code, occupations.title, count(DISTINCT enrollments.user_id),
                   count(DISTINCT CASE WHEN enrollments.completed_at IS NOT NULL THEN enrollments.user_id END),
                   count(DISTINCT CASE WHEN certificates.id IS NOT NULL AND certificates.awarded_at
                         <= enrollments.enrolled_at + make_interval(0, 0, 0, 180) THEN enrollments.user_id END)
            FROM enrollments
            LEFT OUTER JOIN certificates ON certificates.user_id = enrollments.user_id
                 AND certificates.course_id = enrollments.course_id
            JOIN course_occupations ON course_occupations.course_id = enrollments.course_id
            JOIN occupations ON occupations.code = course_occupations.occupation_code
            WHERE enrollments.enrolled_at >= :start
            GROUP BY occupations.code, occupations.title ORDER BY occupations.title"""),
            {"start": start},
        ).scalars()
        return quiz_id, "\n".join(plan)


def main() -> None:
    quiz_id, plan = prepare()
    env = {
        **os.environ,
        "FLASK_APP_ENV": "production",
        "FLASK_SECRET_KEY": "bench-" + "k" * 40,
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url(),
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_REMEMBER_COOKIE_SECURE": "false",
        "BENCH_SECONDS": os.environ.get("BENCH_SECONDS", "10"),
    }
    bare, bare_url = serve("bench.bare:app", env)
    try:
        baseline = wrk(bare_url + "/")
    finally:
        bare.terminate()
        bare.wait()
    app, base = serve("wsgi:app", env)
    try:
        cookie = login(base, ADMIN_EMAIL, ADMIN_PASSWORD)
        pages = [
            ("dashboard, 365 days", "/admin/insights?from=2025-11-01"),
            (
                "dashboard CSV: attainment by occupation",
                "/admin/insights?from=2025-11-01&table=attainment-occupation&format=csv",
            ),
            ("item analysis (20,000 attempts)", f"/admin/insights/quizzes/{quiz_id}"),
        ]
        results = [(name, path, wrk(base + path, cookie)) for name, path in pages]
    finally:
        app.terminate()
        app.wait()
    lines = [
        "",
        "## Insights (admin dashboard and reports)",
        "",
        "On the same data set (10,000 learners, ~1M progress rows, the 100,000 certificates of the certificate "
        "bench); each request computes every report of the page with aggregate SQL.",
        "",
        "| page | req/s | ratio to bare Flask | p50 | p99 |",
        "|---|---:|---:|---:|---:|",
        f"| bare Flask endpoint | {baseline['rps']:.0f} | 1.00 | {baseline['p50']} | {baseline['p99']} |",
    ]
    for name, _path, r in results:
        lines.append(f"| {name} | {r['rps']:.1f} | {r['rps'] / baseline['rps']:.4f} | {r['p50']} | {r['p99']} |")
    lines += [
        "",
        "Plan of the slowest report query (credential attainment by occupation, 365 days):",
        "",
        "```",
        plan,
        "```",
    ]
    out = "\n".join(lines) + "\n"
    with (ROOT / "bench" / "RESULTS.md").open("a") as results_file:
        results_file.write(out)
    print(out)


if __name__ == "__main__":
    main()
