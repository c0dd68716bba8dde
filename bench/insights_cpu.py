"""CPU time of one insights dashboard build (app process + its PostgreSQL backend), from the rollups and direct.

    DATABASE_URL=postgresql+psycopg://... python -m bench.insights_cpu   # a data set from bench.insights_scale

On a shared, loaded machine wall time says little; CPU time does. Parallel query is turned off for the measured
session so that all of PostgreSQL's work is in the one backend process whose CPU is read from /proc.
"""

import os
import statistics
import time
from datetime import timedelta

from sqlalchemy import text

from bench.certificates import make_app
from core.database import utcnow
from core.extensions import db
from insights import reports

TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> None:
    app = make_app()
    with app.app_context():
        measure()


def measure() -> None:
    now = utcnow()
    end = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    for days, direct, runs in ((90, False, 5), (365, False, 5), (365, True, 1)):
        cpu_py, cpu_pg, wall = [], [], []
        for _ in range(runs):
            db.session.execute(text("SET max_parallel_workers_per_gather = 0"))
            pid = db.session.execute(text("SELECT pg_backend_pid()")).scalar()
            p0, b0, w0 = time.process_time(), backend_cpu(pid), time.perf_counter()
            reports.build(end - timedelta(days=days), end, window_days=180, now=now, direct=direct)
            cpu_py.append(time.process_time() - p0)
            cpu_pg.append(backend_cpu(pid) - b0)
            wall.append(time.perf_counter() - w0)
            db.session.rollback()
        print(
            f"{days} days {'direct' if direct else 'rollups'}: CPU app {statistics.median(cpu_py) * 1000:.0f} ms "
            f"+ PostgreSQL {statistics.median(cpu_pg) * 1000:.0f} ms; wall {statistics.median(wall) * 1000:.0f} ms "
            f"(median of {runs}; load {os.getloadavg()[0]:.1f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
