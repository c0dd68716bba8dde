"""CPU per request of the app's ordinary Flask path: what every request that reaches Flask pays (issue 17, 13).

    python -m tests.pgcluster -- python -m bench.requestpath     # PostgreSQL (make bench: after bench.generate)
    python -m bench.requestpath                                  # a throwaway SQLite database
    python -m bench.requestpath --against /tmp/base              # before/after: another tree of this repository

``--against DIR`` compares this tree with another one (e.g. ``git worktree add /tmp/base <commit>``, or a
``git archive`` of it with the compiled catalogs copied in): one worker process per tree, each with its own app,
database copy and clients, and the rows measured batch by batch in turn (A B B A …), so that whatever else the
shared machine does falls on both sides alike. The baseline tree is run with this file copied into it. On
PostgreSQL it also reports the database server's share: the CPU time of the cluster's client backends per request
(``/proc/PID/schedstat``; what BEGIN, ROLLBACK and the statements cost the server), batch by batch as well.

The lanes answer most GETs in front of Flask; what they do not answer (every POST, every page of a signed-in
admin or organization member, every error page, every form page a visitor opens) pays the app's own request
path: the before/after request hooks, the session, the user loader, CSRF, the base template and site header.
Each row is one such request, sent REQUESTS times through Flask's test client in this process (BATCHES batches,
the median batch with the lowest and highest in brackets), as CPU time of this process per request
(time.process_time: the database server's share is left out). The signed-in lane is off (SIGNED_IN_LANE false)
so the signed-in pages take the Flask path. "app endpoint" is a route added to the app here that returns a
constant: the hooks alone. The generic cost is that row minus the bare Flask row of the same run.

On a database without the bench's data (bench.generate) the few rows needed are made here: the framework and the
shipped courses, a learner enrolled in every course, an admin. This is a benchmark, not a test: nothing fails on
a figure, the numbers are read (but every request's status is checked, so a row measures what it says).
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parents[1]
REQUESTS = int(os.environ.get("BENCH_CPU_REQUESTS", "300"))
BATCHES = 5
PASSWORD = "bench password 2026"  # bench.generate's BENCH_PASSWORD
LEARNER = "learner1@bench.example"
ADMIN = "admin@bench.example"
BARE_PATH = "/__bench_bare"
TOKEN_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

# (name, who, method, path, form data or None, expected status)
ROWS = [
    ("app endpoint, visitor (the hooks alone)", "visitor", "GET", BARE_PATH, None, 200),
    ("app endpoint, signed in (hooks + session)", "learner", "GET", BARE_PATH, None, 200),
    ("login page (visitor)", "visitor", "GET", "/login", None, 200),
    ("404 page (visitor)", "visitor", "GET", "/no-such-page", None, 404),
    ("404 page (signed in)", "learner", "GET", "/no-such-page", None, 404),
    ("help page (signed in)", "learner", "GET", "/help", None, 200),
    ("dashboard (signed in, lane off)", "learner", "GET", "/dashboard", None, 200),
    ("account page (signed in)", "learner", "GET", "/account", None, 200),
    ("studio list (admin)", "admin", "GET", "/studio/", None, 200),
    ("POST failing validation (account, empty name)", "learner", "POST", "/account", {"name": ""}, 422),
    ("POST that redirects (language switch)", "learner", "POST", "/language/en", {"next": "/help"}, 303),
]


def database_url() -> str:
    url = os.environ.get("DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if url and "postgresql" in url:
        return url
    # BENCH_SQLITE_DIR: keep the SQLite files there, and reuse them next time (the world is made once)
    folder = os.environ.get("BENCH_SQLITE_DIR") or tempfile.mkdtemp(prefix="awa-bench-requestpath-")
    return "sqlite:///" + os.path.join(folder, "bench.db")


def make_app(url: str) -> Flask:
    from core import create_app

    app = create_app(
        {
            "APP_ENV": "production",
            "SECRET_KEY": "bench-" + "k" * 40,
            "SQLALCHEMY_DATABASE_URI": url,
            "SESSION_COOKIE_SECURE": False,
            "REMEMBER_COOKIE_SECURE": False,
            "ALLOW_ANY_HOST": True,
            "ALLOW_OUTBOX_MAIL": True,
            "RATELIMIT_LOGIN": "1000000 per minute",
            "SIGNED_IN_LANE": False,
        }
    )
    app.add_url_rule(BARE_PATH, "bench_bare", lambda: "ok")
    return app


def ensure_world(app: Flask) -> None:
    """The framework, the shipped courses, the learner (enrolled in every course) and an admin, where missing."""
    from flask_migrate import upgrade
    from sqlalchemy import func, inspect, select

    from accounts.models import Role, User
    from accounts.passwords import hash_password
    from core.database import utcnow
    from core.extensions import db
    from courses.catalog import CATALOG_DIR, course_folders, import_folder
    from courses.models import Course, Enrollment
    from skills.services import load_framework_file

    with app.app_context():
        if not inspect(db.engine).has_table("users"):
            upgrade(directory=str(ROOT / "migrations"))
        now = utcnow()
        if not db.session.scalar(select(func.count()).select_from(Course)):
            load_framework_file(now=now)
            for folder in course_folders(CATALOG_DIR):
                import_folder(folder, now=now)
            db.session.commit()
        for email, role in ((LEARNER, Role.LEARNER), (ADMIN, Role.ADMIN)):
            if db.session.scalar(select(User).where(User.email == email)) is None:
                db.session.add(
                    User(
                        email=email,
                        name="Bench " + role.value,
                        legal_name="Bench " + role.value,
                        role=role,
                        password_hash=hash_password(PASSWORD),
                        email_verified_at=now,
                    )
                )
        db.session.flush()
        learner = db.session.scalar(select(User).where(User.email == LEARNER))
        enrolled = set(db.session.scalars(select(Enrollment.course_id).where(Enrollment.user_id == learner.id)))
        for course_id in db.session.scalars(select(Course.id)):
            if course_id not in enrolled:
                db.session.add(Enrollment(user_id=learner.id, course_id=course_id, enrolled_at=now))
        db.session.commit()
        db.session.remove()


def login(app: Flask, email: str):
    client = app.test_client()
    token = TOKEN_RE.search(client.get("/login").get_data(as_text=True)).group(1)
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
    assert response.status_code in (302, 303), f"login of {email} failed: {response.status_code}"
    client.get("/help")  # the welcome message is shown (and leaves the session)
    return client


def csrf_token(client) -> str:
    return TOKEN_RE.search(client.get("/account").get_data(as_text=True)).group(1)


def cpu_per_request(client, method: str, path: str, data: dict | None, status: int) -> list[float]:
    """CPU milliseconds per request of each batch, after a few warm-up requests whose status is checked."""
    send = client.get if method == "GET" else client.post
    if data is not None:
        data = {"csrf_token": csrf_token(client), **data}
    for _ in range(5):
        response = send(path, data=data)
        assert response.status_code == status, f"{method} {path} answered {response.status_code}, not {status}"
    per_batch = max(1, REQUESTS // BATCHES)
    batches = []
    for _ in range(BATCHES):
        start = time.process_time()
        for _ in range(per_batch):
            send(path, data=data)
        batches.append((time.process_time() - start) * 1000 / per_batch)
    assert send(path, data=data).status_code == status
    return batches


def bare_figure() -> list[float]:
    from bench.bare import app as bare

    client = bare.test_client()
    return cpu_per_request(client, "GET", "/", None, 200)


def measure() -> dict[str, list[float]]:
    url = database_url()
    app = make_app(url)
    ensure_world(app)
    clients = {"visitor": app.test_client(), "learner": login(app, LEARNER), "admin": login(app, ADMIN)}
    results = {"bare Flask endpoint": bare_figure()}
    for name, who, method, path, data, status in ROWS:
        results[name] = cpu_per_request(clients[who], method, path, data, status)
    with app.app_context():
        from core.extensions import db

        db.engine.dispose()
    return results


def cell(batches: list[float]) -> str:
    return f"{statistics.median(batches):.3f} ({min(batches):.3f}–{max(batches):.3f})"


def table(results: dict[str, list[float]]) -> str:
    bare = statistics.median(results["bare Flask endpoint"])
    lines = ["| request | CPU ms per request | minus bare Flask |", "|---|---:|---:|"]
    for name, batches in results.items():
        lines.append(f"| {name} | {cell(batches)} | {statistics.median(batches) - bare:.3f} |")
    return "\n".join(lines) + "\n"


def worker(url: str) -> None:
    """``--worker URL``: set up, then measure one batch per line read from stdin ("row index", "-1" for bare
    Flask), answering the CPU milliseconds per request on stdout."""
    import json
    import sys

    app = make_app(url)
    ensure_world(app)
    clients = {"visitor": app.test_client(), "learner": login(app, LEARNER), "admin": login(app, ADMIN)}
    from bench.bare import app as bare

    prepared = {-1: (bare.test_client().get, "/", None, 200)}
    for index, (_, who, method, path, data, status) in enumerate(ROWS):
        client = clients[who]
        if data is not None:
            data = {"csrf_token": csrf_token(client), **data}
        prepared[index] = (client.get if method == "GET" else client.post, path, data, status)
    for send, path, data, status in prepared.values():
        for _ in range(5):
            assert send(path, data=data).status_code == status, f"{path}: not {status}"
    print("ready", flush=True)
    per_batch = max(1, REQUESTS // BATCHES)
    backends = DatabaseBackends(url)
    for line in sys.stdin:
        send, path, data, status = prepared[int(line)]
        server = backends.cpu_seconds()
        start = time.process_time()
        for _ in range(per_batch):
            send(path, data=data)
        took = (time.process_time() - start) * 1000 / per_batch
        server_took = backends.cpu_seconds() - server if server is not None else None
        assert send(path, data=data).status_code == status
        print(json.dumps([took, server_took * 1000 / per_batch if server_took is not None else None]), flush=True)


class DatabaseBackends:
    """CPU time of the PostgreSQL server's client backends (``/proc/PID/schedstat``, nanoseconds): what the
    database spends on this worker's statements, BEGINs and ROLLBACKs. Both workers' backends are summed, but
    the sides take turns, so the idle side's add nothing but noise. None on SQLite or without /proc."""

    def __init__(self, url: str) -> None:
        self.url = url if url.startswith("postgresql") and os.path.exists("/proc/self/schedstat") else None

    def cpu_seconds(self) -> float | None:
        if self.url is None:
            return None
        import psycopg

        with psycopg.connect(self.url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            mine = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            pids = [
                pid for (pid,) in conn.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'")
            ]
        total = 0
        for pid in pids:
            if pid == mine:
                continue
            try:
                with open(f"/proc/{pid}/schedstat") as stat:
                    total += int(stat.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return total / 1e9


def against(baseline: str, rounds: int) -> str:
    """Before (``baseline``, a tree of this repository) and after (this tree), batch by batch in turn."""
    import json
    import shutil
    import subprocess
    import sys

    shutil.copy(__file__, Path(baseline) / "bench" / "requestpath.py")
    url = database_url()
    sides = {}
    for side, tree in (("before", baseline), ("after", str(ROOT))):
        side_url = url if url.startswith("postgresql") else url.replace("bench.db", f"{side}.db")
        sides[side] = subprocess.Popen(
            [sys.executable, "-m", "bench.requestpath", "--worker", side_url],
            cwd=tree,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": tree},
        )
        if url.startswith("postgresql"):  # one database: the first worker fills it, then the second starts
            _ready(sides[side], side)
    for side, process in sides.items():
        if not url.startswith("postgresql"):
            _ready(process, side)
    names = ["bare Flask endpoint"] + [row[0] for row in ROWS]
    results: dict[str, dict[str, list[float]]] = {side: {name: [] for name in names} for side in sides}
    servers: dict[str, dict[str, list[float]]] = {side: {name: [] for name in names} for side in sides}
    order = list(sides)
    for _ in range(rounds * BATCHES):
        for index, name in enumerate(names, start=-1):
            for side in order:
                sides[side].stdin.write(f"{index}\n")
                sides[side].stdin.flush()
                took, server = json.loads(sides[side].stdout.readline())
                results[side][name].append(took)
                if server is not None:
                    servers[side][name].append(server)
        order.reverse()
    for process in sides.values():
        process.stdin.close()
        process.wait()
    text = compare(results["before"], results["after"])
    if servers["before"]["bare Flask endpoint"]:
        text += "\nPostgreSQL's client backends, CPU ms per request (/proc/PID/schedstat):\n\n"
        text += compare(servers["before"], servers["after"], bare=False)
    return text


def _ready(process, side: str) -> None:
    while process.stdout.readline().strip() != "ready":
        if process.poll() is not None:
            raise SystemExit(f"the {side} worker stopped")


def compare(before: dict[str, list[float]], after: dict[str, list[float]], bare: bool = True) -> str:
    if not bare:  # the database server's CPU: no bare Flask figure to subtract
        lines = ["| request | before, CPU ms | after, CPU ms | change |", "|---|---:|---:|---:|"]
        for name in before:
            x, y = statistics.median(before[name]), statistics.median(after[name])
            change = f"{y / x - 1:+.0%}" if x > 0 else "–"
            lines.append(f"| {name} | {cell(before[name])} | {cell(after[name])} | {change} |")
        return "\n".join(lines) + "\n"
    bare_before = statistics.median(before["bare Flask endpoint"])
    bare_after = statistics.median(after["bare Flask endpoint"])
    lines = [
        "| request | before, CPU ms | after, CPU ms | change | before − bare Flask | after − bare Flask | change |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in before:
        x, y = statistics.median(before[name]), statistics.median(after[name])
        gx, gy = x - bare_before, y - bare_after
        generic = f"{gy / gx - 1:+.0%}" if name != "bare Flask endpoint" and gx > 0 else "–"
        lines.append(
            f"| {name} | {cell(before[name])} | {cell(after[name])} | {y / x - 1:+.0%} | {gx:.3f} | {gy:.3f} "
            f"| {generic} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """`make bench`: this tree's rows appended to bench/RESULTS.md."""
    text = (
        "\n## The Flask request path (CPU per request, this run)\n\n"
        f"Each request {REQUESTS} times through Flask's test client in one process ({BATCHES} batches; median batch, "
        "lowest and highest in brackets), the signed-in lane off. Rerun: `python -m tests.pgcluster -- python -m "
        "bench.requestpath` (or `make bench`); before/after: `python -m bench.requestpath --against DIR`.\n\n"
        + table(measure())
    )
    with (ROOT / "bench" / "RESULTS.md").open("a") as out:
        out.write(text)
    print(text)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2])
    elif sys.argv[1:2] == ["--against"]:
        print(against(sys.argv[2], int(os.environ.get("BENCH_ROUNDS", "3"))))
    else:
        print(table(measure()))
