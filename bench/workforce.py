"""Benchmark the workforce report of an organization holding all 10,000 generated learners (run by `make bench` after
bench/insights.py, or alone: `python -m tests.pgcluster -- python -m bench.workforce --generate`, which generates
the data first).

The organization has four cohorts of 2,500 members (1 in 20 of them left, so not counted); the shipped programs are
imported. Measures the report in process (computed, and from the cache; median of 5, with its query count), then
the page, the CSV and a chart under gunicorn: the first request after the data changed, alone (one request at a time)
and under load (wrk), against the bare Flask endpoint in the same run.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event, text

from bench.generate import database_url
from bench.insights import latency
from bench.pages import RPS_HEADER, WRK, login, rps, serve, wrk
from core.database import utcnow

ROOT = Path(__file__).resolve().parents[1]
OWNER_EMAIL, OWNER_PASSWORD = "bench-owner@bench.example", "bench owner password 2026"
ORG_SLUG = "bench-workforce-board"


def _cpu(pid: int) -> float:
    """CPU seconds used so far by a PostgreSQL backend on this machine (0 when /proc does not show it)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare():
    """Add the organization, its cohorts and members, and the programs; return (learners counted, timings)."""
    from accounts.services import register_user
    from bench.certificates import make_app
    from core.extensions import db
    from courses.catalog import CATALOG_DIR
    from courses.models import CourseStatus, Program
    from courses.programs import import_programs, program_files
    from insights.workforce import workforce_report
    from orgs.models import Organization

    app = make_app()
    with app.app_context():
        import_programs(program_files(CATALOG_DIR), now=utcnow(), status=CourseStatus.PUBLISHED)
        owner = db.session.execute(text("SELECT id FROM users WHERE email = :e"), {"e": OWNER_EMAIL}).scalar()
        if owner is None:
            owner = register_user(email=OWNER_EMAIL, name="Bench Owner", password=OWNER_PASSWORD, now=utcnow()).id
        db.session.commit()
        statements = [
            "DELETE FROM cohort_members",
            "DELETE FROM cohort_courses",
            "DELETE FROM cohorts",
            "DELETE FROM memberships WHERE organization_id IN (SELECT id FROM organizations WHERE slug = :slug)",
            "DELETE FROM organizations WHERE slug = :slug",
            """INSERT INTO organizations (slug, name, kind, status, website, contact_email, email_verified_at,
                   created_by_id, created_at, decision_note)
               VALUES (:slug, 'Bench Workforce Board', 'workforce_board', 'approved', '', :email, now(), :owner,
                       now(), '')""",
            """INSERT INTO memberships (organization_id, user_id, role, created_at)
               SELECT id, :owner, 'owner', now() FROM organizations WHERE slug = :slug""",
            """INSERT INTO cohorts (organization_id, name, starts_on, created_at)
               SELECT o.id, 'Cohort ' || g, current_date - 400, now()
               FROM organizations o CROSS JOIN generate_series(1, 4) AS g WHERE o.slug = :slug""",
            # every generated learner in one of the four cohorts; 1 in 20 has left since
            """INSERT INTO cohort_members (cohort_id, user_id, joined_at, consent_at, consent_text, left_at)
               SELECT c.id, u.id, now() - interval '400 days', now() - interval '400 days', 'bench consent',
                      CASE WHEN u.id % 20 = 0 THEN now() - interval '10 days' END
               FROM users u
               JOIN cohorts c ON c.name = 'Cohort ' || (u.id % 4 + 1)
               JOIN organizations o ON o.id = c.organization_id AND o.slug = :slug
               WHERE u.email LIKE 'learner%@bench.example'""",
            "ANALYZE",
        ]
        for statement in statements:
            db.session.execute(text(statement), {"slug": ORG_SLUG, "owner": owner, "email": OWNER_EMAIL})
        db.session.commit()
        # the generator and bench/insights write progress with bulk SQL, which the ORM hooks do not see
        from insights import learning_days

        started = time.perf_counter()
        day_rows = learning_days.rebuild()
        db.session.commit()
        db.session.execute(text("ANALYZE learning_days"))
        db.session.commit()
        rebuild_ms = (time.perf_counter() - started) * 1000
        print(f"learning_days rebuilt: {day_rows:,} day rows in {rebuild_ms:.0f} ms", flush=True)
        counted = db.session.execute(text("SELECT count(*) FROM cohort_members WHERE left_at IS NULL")).scalar()
        enrollments = db.session.execute(text("SELECT count(*) FROM enrollments")).scalar()
        org = db.session.execute(db.select(Organization).where(Organization.slug == ORG_SLUG)).scalar_one()
        program = db.session.execute(
            db.select(Program).where(Program.slug == "data-center-technician-pathway")
        ).scalar_one()
        now = utcnow()
        timings = {}
        from insights.report_cache import bump_all, cached_workforce_report

        def cached(org, **kwargs):
            report = cached_workforce_report(org, **kwargs)
            db.session.commit()
            return report

        # the cache starts empty; the first request of the run fills it (the computed method below is that cost)
        bump_all()
        db.session.commit()
        methods = [("computed (rollup, no cache)", workforce_report), ("cached (hit)", cached)]
        if os.environ.get("BENCH_REFERENCE", "1") == "1":
            # the method before the rollup, kept for the tests (tests/workforce_reference.py): the same run,
            # interleaved with the new one, so both see the same machine load
            from tests.workforce_reference import reference_report

            methods.append(("every lesson and attempt (before the rollup)", reference_report))
        scopes = [("whole organization, 365 days", {}), ("one program, 365 days", {"program": program})]
        runs = int(os.environ.get("BENCH_REPORT_RUNS", "5"))
        samples = {
            (scope, method): {"wall": [], "cpu": [], "queries": []} for scope, _ in scopes for method, _ in methods
        }
        for _ in range(runs):
            for scope, kwargs in scopes:
                for method, function in methods:
                    sample = samples[(scope, method)]
                    if method.startswith("every") and len(sample["wall"]) >= int(
                        os.environ.get("BENCH_REFERENCE_RUNS", "2")
                    ):
                        continue
                    statements_run = []

                    def count(*_args, statements_run=statements_run):
                        statements_run.append(1)

                    if method.startswith("cached") and not sample["wall"]:
                        # the first request fills the cache; what is timed here is the requests after it
                        function(org, start=(now - timedelta(days=364)).date(), end=now.date(), now=now, **kwargs)
                    backend = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
                    event.listen(db.engine, "before_cursor_execute", count)
                    server, client, started = _cpu(backend), time.process_time(), time.perf_counter()
                    report = function(org, start=(now - timedelta(days=364)).date(), end=now.date(), now=now, **kwargs)
                    took = (time.perf_counter() - started) * 1000
                    cpu = (time.process_time() - client + _cpu(backend) - server) * 1000
                    event.remove(db.engine, "before_cursor_execute", count)
                    sample["wall"].append(took)
                    sample["cpu"].append(cpu)
                    sample["queries"].append(len(statements_run))
                    sample["total"] = report.total
                    db.session.rollback()
        for (scope, method), sample in samples.items():
            wall, cpus = sample["wall"], sample["cpu"]
            timings[(scope, method)] = {
                "median": statistics.median(wall),
                "low": min(wall),
                "high": max(wall),
                "cpu": statistics.median(cpus),
                "queries": sample["queries"][0],
                "total": sample["total"],
                "runs": len(wall),
            }
            print(
                f"in process: {scope}, {method}: median {statistics.median(wall):.0f} ms "
                f"(cpu {statistics.median(cpus):.0f} ms), {sample['queries'][0]} statements",
                flush=True,
            )
        for scope, _ in scopes:
            # the cache judges at the start of the day, the others at `now`: same learners, same activity
            totals = [timing["total"].participants_served for key, timing in timings.items() if key[0] == scope]
            assert all(total == totals[0] for total in totals), f"the methods disagree on {scope}"
        timings["rebuild"] = {"ms": rebuild_ms, "rows": day_rows}
        return counted, enrollments, timings


def _outdate_cached_reports() -> None:
    from bench.certificates import make_app
    from core.extensions import db
    from insights.report_cache import bump_all

    with make_app().app_context():
        bump_all()
        db.session.commit()


def main() -> None:
    counted, enrollments, timings = prepare()
    env = {
        **os.environ,
        "FLASK_APP_ENV": "production",
        "FLASK_SECRET_KEY": "bench-" + "k" * 40,
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url(),
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_REMEMBER_COOKIE_SECURE": "false",
        "FLASK_ALLOW_OUTBOX_MAIL": "true",
        "FLASK_ALLOW_ANY_HOST": "true",  # loopback benchmark
        "FLASK_RATELIMIT_LOGIN": "1000 per minute",
        # a report over 10,000 learners on a shared machine can pass gunicorn's default 30 s: measure it, not kill it
        "GUNICORN_CMD_ARGS": os.environ.get("GUNICORN_CMD_ARGS", "--timeout 300"),
    }
    bare, bare_url = serve("bench.bare:app", env)
    try:
        baseline = wrk(bare_url + "/")
        bare_latency = latency(bare_url + "/")
    finally:
        bare.terminate()
        bare.wait()
    app, base = serve("wsgi:app", env)
    year_ago = (utcnow() - timedelta(days=364)).strftime("%Y-%m-%d")
    today = utcnow().strftime("%Y-%m-%d")
    path = f"/organizations/{ORG_SLUG}/reports/workforce?from={year_ago}&to={today}"
    pages = [
        ("report page, whole organization", path),
        ("CSV, whole organization", path + "&format=csv"),
        ("report page, one program", path + "&program=data-center-technician-pathway"),
        ("chart SVG (hours by course)", f"/organizations/{ORG_SLUG}/reports/workforce/hours.svg?from={year_ago}"),
    ]
    try:
        cookie = login(base, OWNER_EMAIL, OWNER_PASSWORD)
        rounds = int(os.environ.get("BENCH_ROUNDS", "10"))
        results = []
        for name, p in pages:
            # cold: the first request after the data changed (computes and stores); then alone and under load
            _outdate_cached_reports()
            started = time.perf_counter()
            latency(base + p, cookie, rounds=1)
            cold = (time.perf_counter() - started) * 1000
            results.append((name, cold, latency(base + p, cookie, rounds=rounds), wrk(base + p, cookie)))
    finally:
        app.terminate()
        app.wait()
    lines = [
        "",
        "## Workforce report (organizations)",
        "",
        f"One organization with {counted:,} counted learners (4 cohorts; the 1 in 20 who left are not counted) and "
        f"{enrollments:,} enrollments on the generated data set. Command: `python -m tests.pgcluster -- "
        "python -m bench.workforce` (or `make bench`).",
        "",
        "In process, the methods interleaved in the same run (same load): the report computed from the day rollup "
        "(what a request costs when the data changed since the last one), the cached report (insights/"
        "report_cache.py: two statements), and optionally the method before the rollup (BENCH_REFERENCE=1; every "
        "lesson and attempt summed per request; tests/workforce_reference.py). Wall time median with min–max; "
        "CPU = this process + its PostgreSQL backend (what the machine's load does not inflate much).",
        "",
        "| report | method | runs | wall: median | wall: min–max | CPU: median | statements | participants served |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rebuild = timings.pop("rebuild")
    for (scope, method), t in timings.items():
        lines.append(
            f"| {scope} | {method} | {t['runs']} | {t['median']:,.0f} ms | {t['low']:,.0f}–{t['high']:,.0f} ms "
            f"| {t['cpu']:,.0f} ms | {t['queries']} | {t['total'].participants_served:,} |"
        )
    lines += [
        "",
        f"Rebuilding the whole rollup from the raw rows (`flask reports rebuild-learning-days`): {rebuild['rows']:,} "
        f"day rows in {rebuild['ms']:,.0f} ms.",
    ]
    lines += [
        "",
        f"Over HTTP: alone = one request at a time ({os.environ.get('BENCH_ROUNDS', '10')} rounds); under load = wrk "
        f"{' '.join(WRK)} against the production gunicorn settings.",
        "",
        f"| page | first request after a change | alone: median | alone: p90 | under load: {RPS_HEADER} "
        "| ratio to bare Flask | p50 | p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| bare Flask endpoint | — | {bare_latency[0]:.1f} ms | {bare_latency[1]:.1f} ms | {rps(baseline)} | 1.00 "
        f"| {baseline['p50']} | {baseline['p99']} |",
    ]
    for name, cold, (median, p90), r in results:
        lines.append(
            f"| {name} | {cold:,.0f} ms | {median:.0f} ms | {p90:.0f} ms | {rps(r)} | {r['rps'] / baseline['rps']:.4f} "
            f"| {r['p50']} | {r['p99']} |"
        )
    out = "\n".join(lines) + "\n"
    if os.environ.get("BENCH_WRITE", "1") == "1":
        with (ROOT / "bench" / "RESULTS.md").open("a") as results_file:
            results_file.write(out)
    print(out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        from bench import generate

        generate.main()
    main()
