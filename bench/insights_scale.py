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

Writes the section "## Insights at N learners" of bench/RESULTS.md (replacing an earlier one): generation time;
the report in-process (from the rollups, from the cache, and the direct recomputation, with whether the numbers are
the same); the dashboard page alone (bare Flask, the app as deployed with its cache, and the app with
FLASK_INSIGHTS_CACHE=false taking turns for 30 rounds: median, p10-p90, ratio to bare) and under load (wrk against
two gunicorn workers). Generating 1,000,000 learners takes ~30 min here: keep the database outside git and measure
it again with

    BENCH_REUSE=1 BENCH_LEARNERS=1000000 DATABASE_URL=postgresql+psycopg://... python -m bench.insights_scale

(the migrations added since are applied first).
"""

from __future__ import annotations

import os
import re
import statistics
import time
import urllib.request
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


def _spread(values: list[float]) -> tuple[float, float, float]:
    """Median, 10th and 90th percentile."""
    ordered = sorted(values)
    return statistics.median(ordered), ordered[len(ordered) // 10], ordered[-1 - len(ordered) // 10]


def in_process() -> dict:
    """The dashboard's report in-process for its default period (the last 90 days, window 180): built from the
    rollups (what a cache miss costs; wall and this process's CPU, 7 runs), served from the cache (20 runs), and the
    direct recomputation once, with whether it gave the same numbers."""
    from bench.certificates import make_app
    from insights import dashboard_cache, reports

    app = make_app()
    with app.test_request_context():
        now = utcnow()
        end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        start = end - timedelta(days=90)
        miss_wall, miss_cpu, hit_wall = [], [], []
        for _ in range(7):
            wall, cpu = time.perf_counter(), time.process_time()
            built = reports.build(start, end, window_days=180, now=now)
            miss_wall.append((time.perf_counter() - wall) * 1000)
            miss_cpu.append((time.process_time() - cpu) * 1000)
            db.session.rollback()
        dashboard_cache.report(start, end, window_days=180, now=utcnow())  # fills this process's entry
        db.session.rollback()
        for _ in range(20):
            wall = time.perf_counter()
            dashboard_cache.report(start, end, window_days=180, now=utcnow())
            hit_wall.append((time.perf_counter() - wall) * 1000)
            db.session.rollback()
        horizon = dashboard_cache.horizon(now)
        wall = time.perf_counter()
        direct = reports.build(start, end, window_days=180, now=now, direct=True)
        direct_ms = (time.perf_counter() - wall) * 1000
        db.session.rollback()

        def numbers(report):
            return report.overall.activity(), report.overall.attainment(), report.tables()

        return {
            "miss": _spread(miss_wall),
            "miss_cpu": _spread(miss_cpu),
            "hit": _spread(hit_wall),
            "direct": direct_ms,
            "same": numbers(built) == numbers(direct),
            "horizon_s": None if horizon is None else (horizon - now).total_seconds(),
        }


def alone(urls: dict[str, tuple[str, str | None]], rounds: int = 30) -> dict[str, tuple[float, float, float]]:
    """One request at a time, the URLs taking turns in each round (so a change in the machine's load hits them
    alike): median, p10 and p90 in ms per URL."""
    from bench.pages import USER_AGENT

    took: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(rounds):
        for name, (url, cookie) in urls.items():
            headers = {"User-Agent": USER_AGENT, **({"Cookie": cookie} if cookie else {})}
            request = urllib.request.Request(url, headers=headers)  # noqa: S310 (our own loopback URL)
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                response.read()
                assert response.status == 200 and response.geturl() == url, name
            took[name].append((time.perf_counter() - started) * 1000)
    return {name: _spread(values) for name, values in took.items()}


def main() -> None:
    from bench.pages import RPS_HEADER, WRK, login, rps, serve, wrk

    if os.environ.get("BENCH_REUSE"):  # measure a data set generated earlier (BENCH_GENERATED_SECONDS: its time)
        from bench.certificates import make_app

        with make_app().app_context():
            upgrade()  # migrations added since it was generated
        seconds, rows = float(os.environ.get("BENCH_GENERATED_SECONDS", "nan")), counts()
    else:
        seconds, rows = generate()
    print(f"generated {rows} in {seconds:.0f}s", flush=True)
    measured = in_process()
    print(f"in-process: {measured}", flush=True)
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
    servers = [
        serve("bench.bare:app", env),
        serve("wsgi:app", env),
        serve("wsgi:app", {**env, "FLASK_INSIGHTS_CACHE": "false"}),  # every request computes the report
    ]
    (_, bare), (_, cached), (_, uncached) = servers
    try:
        cookie = login(cached, ADMIN_EMAIL, ADMIN_PASSWORD)  # one session, valid on both app servers
        page = "/admin/insights"
        load = os.getloadavg()[0]
        latencies = alone(
            {
                "bare": (bare + "/", None),
                "cached": (cached + page, cookie),
                "uncached": (uncached + page, cookie),
            }
        )
        print(f"alone: {latencies}", flush=True)
        baseline = wrk(bare + "/")
        under_load = {"cached": wrk(cached + page, cookie)}
        if LEARNERS <= 100_000:  # at 1M a report per request cannot keep up with wrk's 8 connections
            under_load["uncached"] = wrk(uncached + page, cookie)
        load = max(load, os.getloadavg()[0])
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait()

    def ms(spread):
        return f"{spread[0]:.1f} ms ({spread[1]:.1f}–{spread[2]:.1f})"

    b = latencies["bare"][0]
    horizon = measured["horizon_s"]
    lines = [
        "",
        f"## Insights at {rows['learners']:,} learners",
        "",
        f"Generated by `make bench-insights-1m` (BENCH_LEARNERS={LEARNERS}) in {seconds:.0f} s on this machine: "
        f"{rows['learners']:,} learners, {rows['enrollments']:,} enrollments over 400 days (45% completed), "
        f"{rows['certificates']:,} certificates; the rollups hold {rows['enrollment day rows']:,} enrollment day, "
        f"{rows['certificate day rows']:,} certificate day and {rows['people rows']:,} people rows. Measured "
        f"{utcnow():%Y-%m-%d %H:%M} UTC, load average up to {load:.1f} on {os.cpu_count()} cores (the machine is "
        "shared). Rerun on a kept data set: `BENCH_REUSE=1 DATABASE_URL=... python -m bench.insights_scale`.",
        "",
        "The dashboard's default period (last 90 days, credential window 180 days). *Cached*: the app as deployed, "
        "the report kept per process while no write changed it and until time alone could (insights/"
        "dashboard_cache.py); *computed*: the same app with FLASK_INSIGHTS_CACHE=false, every request building the "
        "report from the rollups (what a request after a write costs).",
        "",
        "In-process, `reports.build` from the rollups: "
        f"{ms(measured['miss'])} wall, {ms(measured['miss_cpu'])} CPU of this process (median, p10–p90 of 7); "
        f"from the cache {ms(measured['hit'])} (of 20); the direct recomputation {measured['direct']:.0f} ms "
        f"(once); same numbers: {'yes' if measured['same'] else 'NO'}. Time alone would first change a number "
        + ("never" if horizon is None else f"{horizon:.0f} s after the moment measured")
        + " (the earliest activity leaving the 30 days, or an expiry).",
        "",
        "Alone: one request at a time, the three servers taking turns (30 rounds); median (p10–p90) and the ratio "
        f"of medians to bare Flask in the same run. Under load: wrk {' '.join(WRK)} against two gunicorn workers.",
        "",
        f"| page | alone: median (p10–p90) | ratio to bare | under load: {RPS_HEADER} | ratio to bare | p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| bare Flask endpoint | {ms(latencies['bare'])} | 1 | {rps(baseline)} | 1.00 "
        f"| {baseline['p50']} | {baseline['p99']} |",
    ]
    for name, label in (("cached", "dashboard, cached"), ("uncached", "dashboard, computed every request")):
        r = under_load.get(name)
        load_cells = f"{rps(r)} | {r['rps'] / baseline['rps']:.4f} | {r['p50']} | {r['p99']}" if r else "not run | | |"
        lines.append(f"| {label} | {ms(latencies[name])} | {latencies[name][0] / b:.0f}× | {load_cells} |")
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
