"""Load test: Locust against gunicorn on PostgreSQL, then a consistency check of the database.

    make load                     # LOAD_SECONDS=300 by default; not part of `make test`
    make load LOAD_SECONDS=30     # a short trial

Runs under `python -m tests.pgcluster --` (a throwaway PostgreSQL). Steps: generate the data set
(bench.generate with LOAD_LEARNERS learners; their completed enrollments get their certificates), add
LOAD_POOL learners per virtual user (enrolled in most courses, at different stages), start gunicorn with the
production config (the repository's gunicorn.conf.py, read from the working directory, as production does;
LOAD_WORKERS, LOAD_WORKER_CLASS, LOAD_THREADS and LOAD_GUNICORN_ARGS override it for a trial; rate limits raised:
every user comes from 127.0.0.1), run Locust headless (bench/locustfile.py, from its own virtualenv .venv-load)
with LOAD_USERS users and no think time, then check the database against every action the server acknowledged.
Figures and verdicts go into bench/RESULTS.md ("## Load test"); the exit status is non-zero if any check fails.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import re
import runpy
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text

from bench.generate import BENCH_PASSWORD, database_url
from bench.pages import free_port

ROOT = Path(__file__).resolve().parents[1]
SECONDS = int(os.environ.get("LOAD_SECONDS", "300"))
USERS = int(os.environ.get("LOAD_USERS", "24"))
POOL = int(os.environ.get("LOAD_POOL", "8"))  # learners per virtual user, used one after another
LEARNERS = int(os.environ.get("LOAD_LEARNERS", "2000"))
# the server's settings are the repository's gunicorn.conf.py (read from the working directory: what production
# runs); these override it for a trial: LOAD_WORKERS, LOAD_WORKER_CLASS (sync | gthread), LOAD_THREADS, and
# LOAD_GUNICORN_ARGS (any further flags, e.g. "--keep-alive 0" or "--config python:bench.gunicorn_probe")
GUNICORN = ["--log-level", "warning"]
for _flag, _variable in (
    ("--workers", "LOAD_WORKERS"),
    ("--worker-class", "LOAD_WORKER_CLASS"),
    ("--threads", "LOAD_THREADS"),
):
    if os.environ.get(_variable):
        GUNICORN += [_flag, os.environ[_variable]]
GUNICORN += shlex.split(os.environ.get("LOAD_GUNICORN_ARGS", ""))
LOCUST = os.environ.get("LOCUST", str(ROOT / ".venv-load" / "bin" / "locust"))
LOAD_DOMAIN = "load.example"
LOAD_PARAMS = {"load_users": f"%@{LOAD_DOMAIN}"}  # bound as :load_users
SECRET = "load-" + "q" * 40


def describe(flags: list[str] | None = None) -> str:
    """The server's settings in a report: the repository's gunicorn.conf.py and the flags that override it."""
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    keys = ("worker_class", "workers", "threads", "keepalive", "timeout", "preload_app")
    settings = ", ".join(f"{k}={conf[k]}" for k in keys if k in conf)
    hooks = [h for h in ("on_starting", "when_ready", "post_fork", "post_worker_init") if h in conf]
    if hooks:
        settings += ", hooks " + " ".join(hooks)
    return f"gunicorn.conf.py ({settings}) {' '.join(flags if flags is not None else GUNICORN)}".rstrip()


def log(message: str) -> None:
    print(f"load: {message}", flush=True)


# ---- data -------------------------------------------------------------------------------------------


def make_app(url: str, folder: Path):
    from core import create_app

    return create_app(
        {
            "APP_ENV": "test",
            "SECRET_KEY": SECRET,
            "SQLALCHEMY_DATABASE_URI": url,
            "SIGNING_KEY_FILE": str(folder / "signing-keys.json"),
        }
    )


CERTIFICATES_FOR_GENERATED = """
INSERT INTO certificates (public_id, user_id, course_id, enrollment_id, holder_name, course_title, course_slug,
                          course_version, skills, goals, score, issuer_name, awarded_at, issued_at, revision,
                          verification_count)
SELECT upper(substr(md5(e.id::text) || md5('load' || e.id::text), 1, 28)), e.user_id, e.course_id, e.id, u.legal_name,
       c.title, c.slug, c.version, '[]', '[]', 90, 'AI Workforce Academy', e.completed_at, e.completed_at, 1, 0
FROM enrollments e JOIN users u ON u.id = e.user_id JOIN courses c ON c.id = e.course_id
WHERE e.completed_at IS NOT NULL"""


def prepare(app) -> dict:
    """Certificates for the generated completions, one learner per virtual user, and the users' fixture."""
    from accounts.models import User
    from accounts.passwords import hash_password
    from core.database import utcnow
    from core.extensions import db
    from courses import services
    from courses.models import (
        Choice,
        Course,
        Enrollment,
        LessonProgress,
        course_goals,
        course_occupations,
        course_skills,
    )
    from credentials.ids import format_public_id
    from credentials.keys import generate
    from credentials.models import Certificate
    from skills.models import OCCUPATION_GROUPS
    from tests.factories import passed_attempt

    with app.app_context():
        generate(rotate=False)  # the run's own issuer key, as `flask credentials keygen` makes it
        db.session.execute(text(CERTIFICATES_FOR_GENERATED))
        now = utcnow()
        password_hash = hash_password(BENCH_PASSWORD)
        users = [
            User(
                email=f"load{i}@{LOAD_DOMAIN}",
                name=f"Load Learner {i}",
                legal_name=f"Load Learner {i}",
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
            )
            for i in range(1, USERS * POOL + 1)
        ]
        db.session.add_all(users)
        db.session.flush()
        slugs = list(db.session.scalars(select(Course.slug).order_by(Course.slug)))
        courses = [services.load_course(slug) for slug in slugs]
        enrolled: dict[str, list[str]] = {}
        for u, user in enumerate(users):
            enrolled[user.email] = []
            for c, course in enumerate(courses):
                draw = random.Random(u * 100 + c)  # the same data set on every run
                if draw.random() < 0.25:
                    continue  # the user enrolls during the run
                enrollment = Enrollment(user_id=user.id, course_id=course.id, enrolled_at=now, last_activity_at=now)
                db.session.add(enrollment)
                db.session.flush()
                enrolled[user.email].append(course.slug)
                # stages: nothing done, half the modules, all but the last module, all but the last quiz
                stage = draw.randrange(4)
                done = [0, len(course.modules) // 2, len(course.modules) - 1, len(course.modules)][stage]
                last_quiz = [m.quiz for m in course.modules if m.quiz is not None][-1]
                for module in course.modules[:done]:
                    db.session.add_all(
                        LessonProgress(enrollment_id=enrollment.id, lesson_id=lesson.id, completed_at=now)
                        for lesson in module.lessons
                    )
                    if module.quiz is not None and not (stage == 3 and module.quiz is last_quiz):
                        db.session.add(passed_attempt(enrollment, module.quiz, now=now))
        db.session.commit()

        def distinct(column, limit: int = 12) -> list[str]:
            return list(db.session.scalars(select(column).distinct().order_by(column).limit(limit)))

        filters = ["", "q=ai", "q=safety data", "q=grid"]
        filters += [f"goal={g}" for g in distinct(course_goals.c.goal_id)]
        filters += [f"skill={s}" for s in distinct(course_skills.c.skill_id)]
        filters += [f"occupation={o}" for o in distinct(course_occupations.c.occupation_code)]
        filters += [f"audience={a}" for a in OCCUPATION_GROUPS]
        public_ids = list(db.session.scalars(select(Certificate.public_id)))
        fixture = {
            "pools": [[u.email for u in users[i * POOL : (i + 1) * POOL]] for i in range(USERS)],
            "password": BENCH_PASSWORD,
            "courses": slugs,
            "enrolled": enrolled,
            "filters": filters,
            "certificates": [format_public_id(p) for p in random.sample(public_ids, min(2000, len(public_ids)))],
            "correct_choices": list(db.session.scalars(select(Choice.id).where(Choice.correct.is_(True)))),
        }
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        log(f"{len(public_ids)} certificates for generated completions; {len(users)} load learners")
        return fixture


def answer_key(url: str) -> dict[str, list[str]]:
    """The quizzes' correct answers by choice text, as bench/locustfile.py reads an attempt page (plain SQL, so
    bench/load_compare.py can read the baseline's database with it too)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    prompts: dict[int, str] = {}
    choices: dict[int, list[tuple[str, bool]]] = {}
    with engine.connect() as connection:
        for question_id, prompt in connection.execute(text("SELECT id, prompt FROM questions")):
            prompts[question_id] = " ".join(prompt.split())
        for question_id, choice, correct in connection.execute(text("SELECT question_id, text, correct FROM choices")):
            choices.setdefault(question_id, []).append((" ".join(choice.split()), bool(correct)))
    engine.dispose()
    key: dict[str, list[str]] = {}
    for question_id, options in choices.items():
        name = "\x1f".join([prompts[question_id], *sorted(t for t, _ in options)])
        key[name] = [t for t, correct in options if correct]
    return key


# ---- server and load --------------------------------------------------------------------------------


def serve(
    url: str,
    folder: Path,
    *,
    python: str = sys.executable,
    cwd: Path = ROOT,
    gunicorn: list[str] | None = None,
    log_name: str = "gunicorn.log",
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, str]:
    """gunicorn with the production config on a free port (``python``/``cwd``: another checkout's, for the A/B
    comparison in bench/load_compare.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "FLASK_APP_ENV": "production",
        "FLASK_SECRET_KEY": SECRET,
        "FLASK_SQLALCHEMY_DATABASE_URI": url,
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_REMEMBER_COOKIE_SECURE": "false",
        # production refuses to start without a host list, or with outbox mail, unless told it is meant
        "FLASK_TRUSTED_HOSTS": '["127.0.0.1"]',
        "FLASK_ALLOW_OUTBOX_MAIL": "true",
        # the task queue's production default is a SQLite file in instance/; the run keeps its own
        "FLASK_QUEUE_URL": f"sqlite:///{folder / 'queue.db'}",
        # every virtual user comes from 127.0.0.1: the per-address limits would throttle the test itself
        "FLASK_RATELIMIT_LOGIN": "100000 per minute",
        "FLASK_RATELIMIT_VERIFY": "1000000 per minute",
        "FLASK_MAIL_OUTBOX_DIR": str(folder / "outbox"),
        "FLASK_CERTIFICATE_DIR": str(folder / "certificates"),
        "FLASK_UPLOAD_DIR": str(folder / "uploads"),
        "FLASK_SIGNING_KEY_FILE": str(folder / "signing-keys.json"),
        **(extra_env or {}),
    }
    port = free_port()
    with (folder / log_name).open("w") as out:
        proc = subprocess.Popen(
            [python, "-m", "gunicorn", *(gunicorn or GUNICORN), "--bind", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gunicorn did not start: " + (folder / log_name).read_text()[-3000:])


def run_locust(
    base: str,
    folder: Path,
    fixture_path: Path,
    actions_path: Path,
    *,
    seconds: int = SECONDS,
    csv: str = "locust",
    measure: int = 0,
) -> None:
    """``measure``: stop that many seconds after the last login instead of at ``seconds`` (then only a cap)."""
    if not Path(LOCUST).exists():
        sys.exit(f"{LOCUST} not found: run `make load` (it creates .venv-load with Locust)")
    command = [
        LOCUST,
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "--users",
        str(USERS),
        "--spawn-rate",
        str(USERS),
        "--run-time",
        f"{seconds}s",
        "--host",
        base,
        "--csv",
        str(folder / csv),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    env = {
        **os.environ,
        "LOAD_FIXTURE": str(fixture_path),
        "LOAD_ACTIONS": str(actions_path),
        "LOAD_MEASURE_SECONDS": str(measure),
    }
    code = subprocess.call(command, cwd=ROOT, env=env)
    if code not in (0, 1):  # 1: some requests failed, which the checks below report
        sys.exit(f"locust exited with {code}")


# ---- checks -----------------------------------------------------------------------------------------

# enrollments with every lesson done and every quiz passed in the current cycle (after a renewal, if any) but
# not completed, and completed ones with a step left
COMPLETION_RULE = """
SELECT count(*) FILTER (WHERE completed_at IS NULL AND done),
       count(*) FILTER (WHERE completed_at IS NOT NULL AND NOT done)
FROM (SELECT e.completed_at,
             NOT EXISTS (SELECT 1 FROM modules m JOIN lessons l ON l.module_id = m.id
                         WHERE m.course_id = e.course_id AND NOT EXISTS (
                           SELECT 1 FROM lesson_progress p WHERE p.enrollment_id = e.id AND p.lesson_id = l.id))
             AND NOT EXISTS (SELECT 1 FROM modules m JOIN quizzes q ON q.module_id = m.id
                             WHERE m.course_id = e.course_id AND NOT EXISTS (
                               SELECT 1 FROM quiz_attempts a WHERE a.enrollment_id = e.id AND a.quiz_id = q.id
                               AND a.passed
                               AND (e.renewal_started_at IS NULL OR a.submitted_at >= e.renewal_started_at))) AS done
      FROM enrollments e) s"""
COUNTS = {
    "completed_without_certificate": """
        SELECT count(*) FROM enrollments e WHERE e.completed_at IS NOT NULL AND NOT EXISTS (
          SELECT 1 FROM certificates c WHERE c.user_id = e.user_id AND c.course_id = e.course_id)""",
    # a renewal under way keeps its certificate while the quizzes are taken again
    "incomplete_with_certificate": """
        SELECT count(*) FROM enrollments e WHERE e.completed_at IS NULL AND e.renewal_started_at IS NULL AND EXISTS (
          SELECT 1 FROM certificates c WHERE c.user_id = e.user_id AND c.course_id = e.course_id)""",
    "duplicate_certificates": """
        SELECT count(*) FROM (SELECT 1 FROM certificates GROUP BY user_id, course_id HAVING count(*) > 1) d""",
    "certificates_without_enrollment": """
        SELECT count(*) FROM certificates c WHERE NOT EXISTS (
          SELECT 1 FROM enrollments e WHERE e.user_id = c.user_id AND e.course_id = c.course_id)""",
    "progress_without_enrollment": """
        SELECT count(*) FROM lesson_progress p LEFT JOIN enrollments e ON e.id = p.enrollment_id WHERE e.id IS NULL""",
    "attempts_without_enrollment": """
        SELECT count(*) FROM quiz_attempts a LEFT JOIN enrollments e ON e.id = a.enrollment_id WHERE e.id IS NULL""",
    "progress_for_another_course": """
        SELECT count(*) FROM lesson_progress p JOIN enrollments e ON e.id = p.enrollment_id
        JOIN lessons l ON l.id = p.lesson_id JOIN modules m ON m.id = l.module_id WHERE m.course_id <> e.course_id""",
    "attempts_for_another_course": """
        SELECT count(*) FROM quiz_attempts a JOIN enrollments e ON e.id = a.enrollment_id
        JOIN quizzes q ON q.id = a.quiz_id JOIN modules m ON m.id = q.module_id WHERE m.course_id <> e.course_id""",
    "certificates_without_user_or_course": """
        SELECT count(*) FROM certificates c LEFT JOIN users u ON u.id = c.user_id
        LEFT JOIN courses k ON k.id = c.course_id WHERE u.id IS NULL OR k.id IS NULL""",
    "load_certificates_not_issued_once": """
        SELECT count(*) FROM certificates c JOIN users u ON u.id = c.user_id WHERE u.email LIKE :load_users
        AND (SELECT count(*) FROM certificate_events v WHERE v.certificate_id = c.id AND v.action = 'issued') <> 1""",
    "completed_enrollments": "SELECT count(*) FROM enrollments WHERE completed_at IS NOT NULL",
    "certificates": "SELECT count(*) FROM certificates",
    "load_completions": """
        SELECT count(*) FROM enrollments e JOIN users u ON u.id = e.user_id
        WHERE u.email LIKE :load_users AND e.completed_at IS NOT NULL""",
}


def read_actions(path: Path) -> tuple[dict[str, list[dict]], Counter]:
    actions: dict[str, list[dict]] = {"lesson": [], "quiz": [], "enroll": [], "verify": [], "warmup": []}
    statuses: Counter = Counter()
    for line in path.read_text().splitlines():
        action = json.loads(line)
        if action["kind"] == "statuses":
            statuses.update(action["counts"])
        else:
            actions[action.pop("kind")].append(action)
    return actions, statuses


def check(url: str, actions: dict[str, list[dict]], statuses: Counter) -> tuple[list[tuple[str, bool, str]], dict]:
    """The database at ``url`` against every action the server acknowledged (plain SQL: the A/B comparison runs
    it on the baseline's schema too)."""
    from sqlalchemy import create_engine

    results: list[tuple[str, bool, str]] = []
    engine = create_engine(url)
    with engine.connect() as connection:
        lessons = Counter(
            tuple(row)
            for row in connection.execute(
                text("""SELECT u.email, c.slug, m.slug, l.slug FROM lesson_progress p
                    JOIN enrollments e ON e.id = p.enrollment_id JOIN users u ON u.id = e.user_id
                    JOIN lessons l ON l.id = p.lesson_id JOIN modules m ON m.id = l.module_id
                    JOIN courses c ON c.id = m.course_id WHERE u.email LIKE :load_users"""),
                LOAD_PARAMS,
            )
        )
        attempts = {
            (row.email, row.course, row.module, row.attempt_no): row
            for row in connection.execute(
                text("""SELECT u.email, c.slug AS course, m.slug AS module, a.attempt_no, a.score, a.passed,
                           a.submitted_at FROM quiz_attempts a
                    JOIN enrollments e ON e.id = a.enrollment_id JOIN users u ON u.id = e.user_id
                    JOIN quizzes q ON q.id = a.quiz_id JOIN modules m ON m.id = q.module_id
                    JOIN courses c ON c.id = m.course_id WHERE u.email LIKE :load_users"""),
                LOAD_PARAMS,
            )
        }
        enrollments = Counter(
            tuple(row)
            for row in connection.execute(
                text("""SELECT u.email, c.slug FROM enrollments e JOIN users u ON u.id = e.user_id
                    JOIN courses c ON c.id = e.course_id WHERE u.email LIKE :load_users"""),
                LOAD_PARAMS,
            )
        )
        counts = {name: connection.scalar(text(sql), LOAD_PARAMS) for name, sql in COUNTS.items()}
        counts["done_not_completed"], counts["completed_not_done"] = connection.execute(text(COMPLETION_RULE)).one()
    engine.dispose()

    acked = {(a["user"], a["course"], a["module"], a["lesson"]) for a in actions["lesson"]}
    wrong = [key for key in acked if lessons[key] != 1]
    results.append(
        (
            "every acknowledged lesson completion recorded exactly once (lesson_progress)",
            not wrong,
            f"{len(acked)} acknowledged, {len(acked) - len(wrong)} found once"
            + (f"; not once: {wrong[:5]}" if wrong else ""),
        )
    )
    bad_quiz = []
    for a in actions["quiz"]:
        row = attempts.get((a["user"], a["course"], a["module"], a["attempt"]))
        if row is None or row.submitted_at is None or row.score != a["score"] or bool(row.passed) != a["passed"]:
            bad_quiz.append(a)
    passed = sum(a["passed"] for a in actions["quiz"])
    results.append(
        (
            "every acknowledged quiz submission graded once, as the client expected",
            not bad_quiz,
            f"{len(actions['quiz'])} acknowledged ({passed} passed, {len(actions['quiz']) - passed} failed)"
            + (f"; wrong: {bad_quiz[:3]}" if bad_quiz else ""),
        )
    )
    bad_enroll = [a for a in actions["enroll"] if enrollments[(a["user"], a["course"])] != 1]
    results.append(
        (
            "every acknowledged enrollment recorded exactly once",
            not bad_enroll,
            f"{len(actions['enroll'])} acknowledged" + (f"; wrong: {bad_enroll[:3]}" if bad_enroll else ""),
        )
    )
    results.append(
        (
            "every enrollment with all steps done is completed, and only those",
            counts["done_not_completed"] == 0 and counts["completed_not_done"] == 0,
            f"{counts['completed_enrollments']} completed ({counts['load_completions']} during the run); "
            f"done but not completed: {counts['done_not_completed']}; "
            f"completed but not done: {counts['completed_not_done']}",
        )
    )
    results.append(
        (
            "exactly one certificate per completed enrollment, none for incomplete ones",
            not any(
                counts[k]
                for k in (
                    "completed_without_certificate",
                    "incomplete_with_certificate",
                    "duplicate_certificates",
                    "certificates_without_enrollment",
                    "load_certificates_not_issued_once",
                )
            ),
            f"{counts['certificates']} certificates; completed without: {counts['completed_without_certificate']}; "
            f"incomplete with: {counts['incomplete_with_certificate']}; duplicates: {counts['duplicate_certificates']}"
            f"; without enrollment: {counts['certificates_without_enrollment']}; "
            f"issued during the run but not exactly one 'issued' event: {counts['load_certificates_not_issued_once']}",
        )
    )
    orphans = {
        k: counts[k]
        for k in (
            "progress_without_enrollment",
            "attempts_without_enrollment",
            "certificates_without_user_or_course",
            "progress_for_another_course",
            "attempts_for_another_course",
        )
    }
    results.append(("no orphan rows", not any(orphans.values()), ", ".join(f"{k}: {v}" for k, v in orphans.items())))
    server_errors = sum(n for status, n in statuses.items() if status.startswith("5"))
    results.append(
        (
            "zero 5xx responses and zero connection errors",
            server_errors == 0 and statuses["connection error"] == 0 and bool(statuses),
            f"5xx: {server_errors}; connection errors: {statuses['connection error']}; "
            + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
        )
    )
    return results, counts


# ---- report -----------------------------------------------------------------------------------------


def stats_rows(folder: Path, name: str = "locust") -> list[dict]:
    with (folder / f"{name}_stats.csv").open() as f:
        return list(csv.DictReader(f))


def server_log_check(gunicorn_log: str) -> tuple[str, bool, str]:
    problems = {k: gunicorn_log.count(k) for k in ("Traceback", "ERROR", "WORKER TIMEOUT", "was sent SIG")}
    return (
        "no traceback, error, worker timeout or killed worker in the server log",
        not any(problems.values()),
        ", ".join(f"{k}: {v}" for k, v in problems.items()),
    )


def report(rows: list[dict], results, actions, statuses: Counter, gunicorn_log: str) -> str:
    total = next(r for r in rows if r["Name"] == "Aggregated")
    server_errors = sum(n for status, n in statuses.items() if status.startswith("5"))
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    version = subprocess.run([LOCUST, "--version"], capture_output=True, text=True).stdout.split()
    locust_version = " ".join(version[:2])
    if actions["warmup"]:
        w = actions["warmup"][0]
        logins = w["logins"]
        warmup = (
            f"Warm-up: the {len(logins)} logins (an Argon2 password check each, all at once) took {w['seconds']:.1f} s "
            f"(login p50 {1000 * logins[len(logins) // 2]:.0f} ms, max {1000 * logins[-1]:.0f} ms); the figures below "
            f"cover the {SECONDS - w['seconds']:.0f} s after it."
        )
    else:
        warmup = "Warm-up: not every user had logged in by the end; the figures below include the logins."
    lines = [
        "## Load test",
        "",
        f"`make load LOAD_SECONDS={SECONDS}`, run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPU "
        f"({cpu}), Python {platform.python_version()}; {locust_version} (FastHttpUser) on the same machine; "
        f"load average before the run {LOAD_AVERAGE[0]:.1f} (other work on the machine slows every figure).",
        f"Server: gunicorn {describe()}, production config, PostgreSQL 15 (throwaway cluster, fsync off). "
        f"Data: {LEARNERS:,} generated learners × 8 courses plus {USERS * POOL} load learners.",
        f"Load: {USERS} virtual users, each logged in as its own learner (a user whose learner has finished every "
        f"course logs out and in as the next of its {POOL}), no think time (closed loop: the rate is "
        f"what the machine sustains), {SECONDS} s. Mix per user: study the next step of a course (lesson marked "
        "complete, or quiz started and submitted, 3 in 4 attempts all right, the rest guessing) 6, catalog "
        "(filtered list + course page) 3, verification HTML 2, JSON 2; 1 in 20 study steps, or when every course "
        "enrolled in is done, enrolls in a further course instead.",
        "",
        warmup,
        "",
        f"**{int(total['Request Count']):,} requests, {float(total['Requests/s']):.0f} req/s, "
        f"{server_errors} responses 5xx, {statuses['connection error']} connection errors.**",
        "",
        "| endpoint | requests | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["Request Count"] == "0":
            continue  # the logins, when all of them fell in the warm-up
        name = "**all**" if r["Name"] == "Aggregated" else f"{r['Type']} `{r['Name']}`"
        lines.append(
            f"| {name} | {int(r['Request Count']):,} | {r['Failure Count']} | {float(r['Requests/s']):.1f} "
            f"| {r['50%']} | {r['95%']} | {r['99%']} | {float(r['Max Response Time']):.0f} |"
        )
    lines += [
        "",
        "Status codes seen by the clients: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(statuses.items())) + ".",
        f"Acknowledged actions: {len(actions['lesson']):,} lesson completions, {len(actions['quiz']):,} quiz "
        f"submissions, {len(actions['enroll']):,} enrollments, {len(actions['verify']):,} verifications.",
        "",
        "| consistency check (database after the run) | verdict | detail |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {'pass' if ok else '**FAIL**'} | {detail} |" for name, ok, detail in results]
    return "\n".join(lines) + "\n"


def write_results(section: str) -> None:
    path = ROOT / "bench" / "RESULTS.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    # replace an earlier load test section, keep everything else
    current = re.sub(r"\n## Load test\n.*?(?=\n## |\Z)", "", current, flags=re.S).rstrip("\n")
    path.write_text(current + "\n\n" + section)


LOAD_AVERAGE = os.getloadavg()


def main() -> int:
    global LOAD_AVERAGE
    url = database_url()
    folder = Path(tempfile.mkdtemp(prefix="awa-load-"))
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bench.generate"],
        cwd=ROOT,
        env={**os.environ, "BENCH_LEARNERS": str(LEARNERS)},
        check=True,
    )
    app = make_app(url, folder)
    fixture = prepare(app)
    fixture["answer_key"] = answer_key(url)
    fixture_path, actions_path = folder / "fixture.json", folder / "actions.jsonl"
    fixture_path.write_text(json.dumps(fixture))
    actions_path.write_text("")
    log(f"data ready in {time.perf_counter() - started:.0f}s; {USERS} users for {SECONDS}s; gunicorn {describe()}")
    LOAD_AVERAGE = os.getloadavg()
    server, base = serve(url, folder)
    try:
        run_locust(base, folder, fixture_path, actions_path)
    finally:
        server.terminate()
        server.wait(timeout=30)
    actions, statuses = read_actions(actions_path)
    results, _ = check(url, actions, statuses)
    gunicorn_log = (folder / "gunicorn.log").read_text()
    results.append(server_log_check(gunicorn_log))
    section = report(stats_rows(folder), results, actions, statuses, gunicorn_log)
    write_results(section)
    print(section)
    failed = [name for name, ok, _ in results if not ok]
    if failed:
        log(f"FAILED: {'; '.join(failed)} (files in {folder})")
        return 1
    shutil.rmtree(folder, ignore_errors=True)
    log("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
