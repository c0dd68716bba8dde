"""The insights dashboard right after a write, in process: CPU of the view and of its PostgreSQL backend, and
its statements (a bench.insights_scale data set, as bench/insights_miss.py uses; no HTTP, so no per-request
hooks, session or login: the view function alone).

    DATABASE_URL=postgresql+psycopg://.../insights10k python -m bench.insights_miss_cpu

Each round commits one write of each kind (bench.insights_miss.Writer: a first activity of the day, an
enrollment, a revocation, none) through the app's session, then calls the dashboard view once as a signed-in
admin. Prints per kind: median wall, median and mean CPU of this process during the view, mean CPU of its
PostgreSQL backend (/proc, 10 ms ticks), the statements and their summed time; ``BENCH_STATEMENTS=1`` lists
each statement's median time. Every write is undone at the end.

Before and after in one run: extract the older commit (``git archive <commit> | tar -x -C /tmp/base``) and run
this file from that folder with the same virtualenv (it imports the tree it is run from), taking turns with
this tree: ``cd /tmp/base && DATABASE_URL=... <venv>/bin/python <this tree>/bench/insights_miss_cpu.py``.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.getcwd())  # the tree run from (an extracted older commit, for a before/after)

from sqlalchemy import event, select

from bench.certificates import make_app
from bench.insights_miss import KINDS, Writer
from bench.insights_scale import ADMIN_EMAIL
from core.extensions import db

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "12"))


def _ticks_ms(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) * 10


def main() -> None:
    from flask_login import login_user

    from accounts.models import User
    from insights import views

    app = make_app()
    writer = Writer(app)
    statements: list[tuple[str, float]] = []

    def before(conn, _cursor, _statement, _parameters, _context, _many) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn, _cursor, statement, _parameters, _context, _many) -> None:
        statements.append((statement, time.perf_counter() - conn.info["bench_started"]))

    results: dict[str, list[tuple]] = defaultdict(list)

    def one(kind: str, record: bool) -> None:
        writer.write(kind)
        with app.test_request_context("/admin/insights"):
            login_user(db.session.scalar(select(User).where(User.email == ADMIN_EMAIL)))
            backend = db.session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
            statements.clear()
            pg, wall, cpu = _ticks_ms(backend), time.perf_counter(), time.process_time()
            views.dashboard()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            pg = _ticks_ms(backend) - pg
            db.session.rollback()
        if record:
            results[kind].append((wall * 1000, cpu * 1000, pg, list(statements)))

    try:
        with app.app_context():
            event.listen(db.engine, "before_cursor_execute", before)
            event.listen(db.engine, "after_cursor_execute", after)
        for kind in KINDS:  # a first call each: imports, templates, the content cache
            one(kind, False)
        for _ in range(ROUNDS):
            for kind in KINDS:
                one(kind, True)
    finally:
        writer.undo()
    print(f"{os.getcwd()}: {ROUNDS} rounds, load average {os.getloadavg()[0]:.1f}")
    for kind in KINDS:
        rows = results[kind]
        cpu = [row[1] for row in rows]
        print(
            f"{kind:11s} wall {statistics.median(row[0] for row in rows):6.1f}  app CPU {statistics.median(cpu):5.1f}"
            f" (mean {statistics.mean(cpu):5.1f})  PostgreSQL CPU mean {statistics.mean(row[2] for row in rows):5.1f}"
            f"  statements {statistics.median(len(row[3]) for row in rows):3.0f}"
            f" taking {statistics.median(sum(t for _, t in row[3]) for row in rows) * 1000:6.1f} ms"
        )
        if os.environ.get("BENCH_STATEMENTS"):
            each = defaultdict(list)
            for row in rows:
                for statement, took in row[3]:
                    each[" ".join(statement.split())[:110]].append(took * 1000)
            for statement, took in sorted(each.items(), key=lambda item: -sum(item[1])):
                print(f"      {len(took):3d}x {statistics.median(took):6.2f} ms  {statement}")


if __name__ == "__main__":
    main()
