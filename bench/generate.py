"""Generate the benchmark data set on PostgreSQL with set-based SQL (seconds, not hours).

    python -m bench.generate            # uses DATABASE_URL / TEST_DATABASE_URL

10,000 learners enrolled in every starter course; ~95% of lessons done (~1M lesson_progress
rows); a passed attempt for most quizzes; enrollments with every step done are completed.
Every bench learner's password is BENCH_PASSWORD.
"""

from __future__ import annotations

import os
import sys
import time

from flask_migrate import upgrade
from sqlalchemy import func, select, text

from accounts.passwords import hash_password
from core import create_app
from core.database import utcnow
from core.extensions import db
from courses.catalog import CATALOG_DIR, course_folders, import_folder
from courses.models import LessonProgress
from skills.services import load_framework_file

LEARNERS = int(os.environ.get("BENCH_LEARNERS", "10000"))
BENCH_PASSWORD = "bench password 2026"


def database_url() -> str:
    url = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if not url or "postgresql" not in url:
        sys.exit("set DATABASE_URL (or run under `python -m tests.pgcluster --`) to a PostgreSQL database")
    return url


def main() -> None:
    app = create_app({"APP_ENV": "test", "SECRET_KEY": "bench-" + "z" * 40, "SQLALCHEMY_DATABASE_URI": database_url()})
    started = time.perf_counter()
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        load_framework_file(now=utcnow())
        for folder in course_folders(CATALOG_DIR):
            import_folder(folder, now=utcnow())
        db.session.commit()
        params = {"n": LEARNERS, "hash": hash_password(BENCH_PASSWORD)}
        statements = [
            # learners who come back have confirmed their email address (the signed-in lane serves only them)
            """INSERT INTO users (email, name, legal_name, role, active, password_hash, session_version,
                                  created_at, updated_at, email_verified_at)
               SELECT 'learner' || g || '@bench.example', 'Bench Learner ' || g, 'Bench Learner ' || g, 'learner',
                      true, :hash, 1, now() - (g || ' minutes')::interval, now(), now()
               FROM generate_series(1, :n) AS g""",
            """INSERT INTO enrollments (user_id, course_id, enrolled_at, last_activity_at)
               SELECT u.id, c.id, now() - interval '30 days', now() - (u.id % 1000 || ' minutes')::interval
               FROM users u CROSS JOIN courses c WHERE u.email LIKE '%@bench.example'""",
            """INSERT INTO lesson_progress (enrollment_id, lesson_id, completed_at)
               SELECT e.id, l.id, now() - interval '1 day'
               FROM enrollments e JOIN modules m ON m.course_id = e.course_id JOIN lessons l ON l.module_id = m.id
               WHERE (e.id * 31 + l.id * 17) % 20 <> 0""",
            """INSERT INTO quiz_attempts (enrollment_id, quiz_id, attempt_no, layout, answers, score, passed,
                                          started_at, submitted_at)
               SELECT e.id, q.id, 1, '[]', '{}', 90, true, now() - interval '1 day', now() - interval '1 day'
               FROM enrollments e JOIN modules m ON m.course_id = e.course_id JOIN quizzes q ON q.module_id = m.id
               WHERE (e.id + q.id) % 7 <> 0""",
            """UPDATE enrollments e SET completed_at = now() - interval '12 hours'
               WHERE NOT EXISTS (SELECT 1 FROM modules m JOIN lessons l ON l.module_id = m.id
                                 WHERE m.course_id = e.course_id AND NOT EXISTS (
                                   SELECT 1 FROM lesson_progress p WHERE p.enrollment_id = e.id AND p.lesson_id = l.id))
                 AND NOT EXISTS (SELECT 1 FROM modules m JOIN quizzes q ON q.module_id = m.id
                                 WHERE m.course_id = e.course_id AND NOT EXISTS (
                                   SELECT 1 FROM quiz_attempts a WHERE a.enrollment_id = e.id AND a.quiz_id = q.id
                                   AND a.passed))""",
            "ANALYZE",
        ]
        for statement in statements:
            with db.engine.begin() as conn:
                conn.execute(text(statement), params)
        progress = db.session.scalar(select(func.count()).select_from(LessonProgress))
        print(f"generated {LEARNERS} learners, {progress} lesson_progress rows in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
