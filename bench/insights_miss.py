"""The insights dashboard under steady writes: what a request costs right after a write (a cache miss).

    DATABASE_URL=postgresql+psycopg://.../insights10k python -m bench.insights_miss   # a bench.insights_scale set

Each round commits one write through the app's own session (so its commit hooks run as in production), then asks
each server for the dashboard once, the servers taking turns; kinds of write take turns too:

- *activity*: a learner's first activity of the day (an enrollment last active days ago, active now);
- *enrollment*: a learner enrolls in a course they were not in;
- *revocation*: a certificate revoked (reinstated again at the end);
- *none*: no write (a hit, when the server caches).

After the page, the two chart images it shows are asked for (timed apart). Servers
(one gunicorn worker each, so that the request after a write is that worker's first since the write):
bare Flask, this tree as deployed, this tree with FLASK_INSIGHTS_CACHE=false (every request computes everything),
and, with BENCH_BASELINE=<commit>, that commit of the repository as deployed (extracted by ``git archive`` into a
temporary folder, run with the same virtualenv) — before and after in the same run. Every write is undone at the end.

Before the timing, the report this process serves after each kind of write is compared with the direct
recomputation (``reports.build(direct=True)``). Prints median and p10–p90 per server and kind of write, and appends
(or replaces) "## Insights under steady writes at N learners" in bench/RESULTS.md with the command to rerun it.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text

from bench.certificates import _children, _cpu_seconds, make_app
from bench.generate import database_url
from bench.insights_scale import ADMIN_EMAIL, ADMIN_PASSWORD, _spread
from bench.pages import USER_AGENT, free_port, login
from core.database import utcnow
from core.extensions import db

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "12"))
KINDS = ("none", "activity", "enrollment", "revocation")
PAGE = "/admin/insights"
CHARTS = ("/admin/insights/charts/course.svg", "/admin/insights/charts/attainment-course.svg")


def cpu_ms(server: subprocess.Popen, name: str) -> float:
    """CPU milliseconds so far of a server's gunicorn worker and of its PostgreSQL backends (found by the
    application_name its database URL gives them): what its requests cost the machine, whatever else runs."""
    import psycopg

    workers = sum(_cpu_seconds(pid) for pid in _children(server.pid))
    url = database_url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as connection:
        pids = [row[0] for row in connection.execute(APPS_SQL, (_app_name(name),))]
    return 1000 * (workers + sum(_cpu_seconds(pid) for pid in pids))


APPS_SQL = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"


def _app_name(name: str) -> str:
    return "insights-miss-" + re.sub(r"[^a-z0-9]+", "-", name.lower())


def serve(app: str, env: dict, cwd: Path, name: str) -> tuple[subprocess.Popen, str]:
    url = env["FLASK_SQLALCHEMY_DATABASE_URI"]
    env = {
        **env,
        "FLASK_SQLALCHEMY_DATABASE_URI": url + ("&" if "?" in url else "?") + "application_name=" + _app_name(name),
    }
    port = free_port()
    # --threads 1: in the repository gunicorn reads gunicorn.conf.py (threads = 2), which would make "sync" gthread
    args = ["--workers", "1", "--worker-class", "sync", "--threads", "1", "--log-level", "warning"]
    args += ["--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", *args, app], cwd=cwd, env=env)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            return process, f"http://127.0.0.1:{port}"
        except urllib.error.HTTPError:
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{app} did not start")


class Writer:
    """One write of each kind per call, through the app's session; ``undo`` puts every row back."""

    def __init__(self, app) -> None:
        self.app = app
        self.activity: list[tuple[int, object]] = []  # (enrollment id, last_activity_at before)
        self.enrolled: list[int] = []
        self.revoked: list[int] = []

    def write(self, kind: str) -> None:
        from courses.models import Course, Enrollment
        from credentials.models import Certificate, RevocationReason

        if kind == "none":
            return
        with self.app.app_context():
            now = utcnow()
            if kind == "activity":
                enrollment = db.session.scalar(
                    select(Enrollment)
                    .where(Enrollment.last_activity_at < now - timedelta(days=3))
                    .order_by(Enrollment.id.desc())
                    .offset(len(self.activity))
                    .limit(1)
                )
                self.activity.append((enrollment.id, enrollment.last_activity_at))
                enrollment.last_activity_at = now
            elif kind == "enrollment":
                user_id, course_id = db.session.execute(
                    text(
                        "SELECT u.id, c.id FROM users u CROSS JOIN courses c WHERE u.email LIKE 'learner%' "
                        "AND NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.user_id = u.id AND e.course_id = c.id) "
                        "ORDER BY u.id DESC, c.id LIMIT 1"
                    )
                ).one()
                enrollment = Enrollment(user_id=user_id, course_id=course_id, enrolled_at=now, last_activity_at=now)
                db.session.add(enrollment)
                db.session.flush()
                self.enrolled.append(enrollment.id)
                assert db.session.get(Course, course_id) is not None
            elif kind == "revocation":
                certificate = db.session.scalar(
                    select(Certificate)
                    .where(Certificate.revoked_at.is_(None), Certificate.id.not_in(self.revoked or [0]))
                    .order_by(Certificate.id.desc())
                    .limit(1)
                )
                certificate.revoked_at, certificate.revocation_reason = now, RevocationReason.OTHER
                self.revoked.append(certificate.id)
            db.session.commit()

    def undo(self) -> None:
        from courses.models import Enrollment
        from credentials.models import Certificate

        with self.app.app_context():
            for enrollment_id, before in self.activity:
                db.session.get(Enrollment, enrollment_id).last_activity_at = before
            for enrollment_id in self.enrolled:
                db.session.delete(db.session.get(Enrollment, enrollment_id))
            for certificate_id in self.revoked:
                certificate = db.session.get(Certificate, certificate_id)
                certificate.revoked_at = certificate.revocation_reason = None
            db.session.commit()


def same_numbers(app, writer: Writer) -> bool:
    """After each kind of write: the report this process's cache gives equals the direct recomputation."""
    from insights import dashboard_cache, reports

    def numbers(report):
        return report.overall.activity(), report.overall.attainment(), report.tables()

    same = True
    for kind in KINDS:
        writer.write(kind)
        with app.test_request_context():
            now = utcnow()
            end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            start = end - timedelta(days=90)
            served = dashboard_cache.report(start, end, window_days=180, now=now)
            direct = reports.build(start, end, window_days=180, now=now, direct=True)
            db.session.rollback()
            same = same and numbers(served) == numbers(direct)
    return same


def main() -> None:
    app = make_app()
    with app.app_context():
        learners = db.session.scalar(text("SELECT count(*) FROM users WHERE email LIKE 'learner%'"))
    writer = Writer(app)
    env = {
        **os.environ,
        "FLASK_APP_ENV": "production",
        "FLASK_SECRET_KEY": "bench-" + "k" * 40,
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url(),
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_REMEMBER_COOKIE_SECURE": "false",
        "FLASK_ALLOW_ANY_HOST": "true",  # loopback benchmark
        "FLASK_ALLOW_OUTBOX_MAIL": "true",
    }
    baseline = os.environ.get("BENCH_BASELINE")
    servers: dict[str, tuple[subprocess.Popen, str]] = {}
    with tempfile.TemporaryDirectory(prefix="insights-baseline-") as folder:
        try:
            same = same_numbers(app, writer)
            print(f"same numbers as the direct recomputation after each kind of write: {same}", flush=True)
            servers["bare"] = serve("bench.bare:app", env, ROOT, "bare")
            if baseline:
                archive = subprocess.run(["git", "archive", baseline], cwd=ROOT, capture_output=True, check=True)
                with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                    tar.extractall(folder, filter="data")
                name = f"baseline {baseline[:7]}"
                servers[name] = serve("wsgi:app", env, Path(folder), name)
            servers["as deployed"] = serve("wsgi:app", env, ROOT, "as deployed")
            servers["computed every request"] = serve(
                "wsgi:app", {**env, "FLASK_INSIGHTS_CACHE": "false"}, ROOT, "computed every request"
            )
            cookies = {
                name: login(base, ADMIN_EMAIL, ADMIN_PASSWORD) for name, (_, base) in servers.items() if name != "bare"
            }
            took: dict[tuple[str, str], list[float]] = {}
            spent: dict[tuple[str, str], list[float]] = {}  # server CPU ms (app worker + its PostgreSQL backends)
            charts: dict[tuple[str, str], list[float]] = {}  # both chart images, one after the other
            load = os.getloadavg()[0]
            for name, (_, base) in servers.items():  # a first request each: imports, connection pools, templates
                _get(base + (PAGE if name != "bare" else "/"), cookies.get(name))
            for round_number in range(ROUNDS):
                for kind in KINDS:
                    writer.write(kind)
                    order = list(servers.items())
                    if round_number % 2:
                        order.reverse()
                    for name, (process, base) in order:
                        url = base + (PAGE if name != "bare" else "/")
                        cpu = cpu_ms(process, name)
                        started = time.perf_counter()
                        _get(url, cookies.get(name))
                        took.setdefault((name, kind), []).append((time.perf_counter() - started) * 1000)
                        spent.setdefault((name, kind), []).append(cpu_ms(process, name) - cpu)
                        if name != "bare":  # then its two chart images, as a browser asks for them
                            started = time.perf_counter()
                            for chart in CHARTS:
                                _get(base + chart, cookies.get(name))
                            charts.setdefault((name, kind), []).append((time.perf_counter() - started) * 1000)
                load = max(load, os.getloadavg()[0])
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait()
            writer.undo()

    def cell(values):
        median, low, high = _spread(values)
        return f"{median:.1f} ({low:.1f}–{high:.1f})"

    names = list(servers)
    lines = [
        "",
        f"## Insights under steady writes at {learners:,} learners",
        "",
        f"`bench/insights_miss.py`, measured {utcnow():%Y-%m-%d %H:%M} UTC, load average up to {load:.1f} on "
        f"{os.cpu_count()} cores (shared machine). {ROUNDS} rounds; in each, one write of each kind is committed "
        "through the app's session and then every server is asked for the dashboard once (default period), the "
        "servers taking turns in alternating order; one gunicorn worker per server, so the request after a write "
        "is that worker's first since it. Milliseconds over HTTP, median (p10–p90). *activity*: a learner's first "
        "activity of the day; *enrollment*: a new enrollment; *revocation*: a certificate revoked; *none*: no "
        "write. Report served after each kind of write equal to the direct recomputation: "
        f"{'yes' if same else 'NO'}. Rerun: `DATABASE_URL=... "
        + (f"BENCH_BASELINE={baseline} " if baseline else "")
        + "python -m bench.insights_miss`.",
        "",
        "| server | " + " | ".join(KINDS) + " |",
        "|---|" + "---:|" * len(KINDS),
    ]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(cell(took[(name, kind)]) for kind in KINDS) + " |")
    lines += [
        "",
        "Server CPU per request (the app's gunicorn worker and its PostgreSQL backends, from /proc: 10 ms ticks, "
        "so the mean of the rounds), milliseconds:",
        "",
        "| server | " + " | ".join(KINDS) + " |",
        "|---|" + "---:|" * len(KINDS),
    ]
    for name in names:
        values = [sum(spent[(name, kind)]) / len(spent[(name, kind)]) for kind in KINDS]
        lines.append(f"| {name} | " + " | ".join(f"{value:.1f}" for value in values) + " |")
    lines += [
        "",
        "Then the page's two chart images, one after the other (after the page: what a browser asks for next), "
        "milliseconds for both over HTTP, median (p10–p90):",
        "",
        "| server | " + " | ".join(KINDS) + " |",
        "|---|" + "---:|" * len(KINDS),
    ]
    for name in names[1:]:
        lines.append(f"| {name} | " + " | ".join(cell(charts[(name, kind)]) for kind in KINDS) + " |")
    section = "\n".join(lines) + "\n"
    print(section)
    results = ROOT / "bench" / "RESULTS.md"
    previous = results.read_text() if results.exists() else ""
    pattern = re.compile(rf"\n## Insights under steady writes at {learners:,} learners\n.*?(?=\n## |\Z)", flags=re.S)
    updated = pattern.sub(lambda _: section.rstrip("\n") + "\n", previous, count=1)  # a blank line before the next
    if updated == previous:
        updated = previous.rstrip("\n") + "\n" + section
    results.write_text(updated)


def _get(url: str, cookie: str | None) -> None:
    headers = {"User-Agent": USER_AGENT, **({"Cookie": cookie} if cookie else {})}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (our own loopback URL)
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
        response.read()
        assert response.status == 200 and response.geturl() == url, url


if __name__ == "__main__":
    main()
