"""The workforce report on SQLite with the same 10,000 learners: copies the PostgreSQL bench data set (after
`bench.workforce` prepared it) into a fresh SQLite file built by the migrations, then times the report in process,
the rollup and the straightforward method interleaved (same load).

    python -m tests.pgcluster -- python -m bench.workforce_sqlite   # after bench.workforce on the same cluster
    (make bench runs it after bench.workforce)
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text

from bench.generate import database_url

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"alembic_version"}
# copied in full; lesson_progress and quiz_attempts only when the straightforward method is measured too
RAW = {"lesson_progress", "quiz_attempts", "attempt_answers"}


def copy(source_url: str, target_url: str, *, raw: bool) -> dict[str, int]:
    from core import create_app
    from core.extensions import db

    app = create_app({"APP_ENV": "test", "SECRET_KEY": "bench-" + "s" * 40, "SQLALCHEMY_DATABASE_URI": target_url})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        metadata = db.metadata
    source = create_engine(source_url)
    target = create_engine(target_url)
    counts = {}
    with source.connect() as src, target.begin() as dst:
        dst.execute(text("PRAGMA foreign_keys=OFF"))
        for table in metadata.sorted_tables:
            if table.name in SKIP or (table.name in RAW and not raw) or table.name == "learning_days":
                continue
            dst.execute(table.delete())
            rows = src.execute(select(table)).mappings()
            batch, n = [], 0
            for row in rows:
                batch.append(dict(row))
                if len(batch) == 20000:
                    dst.execute(insert(table), batch)
                    n += len(batch)
                    batch = []
            if batch:
                dst.execute(insert(table), batch)
                n += len(batch)
            counts[table.name] = n
    return counts


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="awa-wf-sqlite-"))
    target_url = f"sqlite:///{folder / 'bench.db'}"
    raw = os.environ.get("BENCH_REFERENCE", "1") == "1"
    started = time.perf_counter()
    counts = copy(database_url(), target_url, raw=raw)
    print(f"copied {sum(counts.values()):,} rows in {time.perf_counter() - started:.0f} s", flush=True)

    from core import create_app
    from core.database import utcnow
    from core.extensions import db
    from courses.models import Program
    from insights import learning_days
    from insights.workforce import workforce_report
    from orgs.models import Organization

    app = create_app({"APP_ENV": "test", "SECRET_KEY": "bench-" + "s" * 40, "SQLALCHEMY_DATABASE_URI": target_url})
    with app.app_context():
        if raw:
            started = time.perf_counter()
            day_rows = learning_days.rebuild()
            db.session.commit()
            rebuild_ms = (time.perf_counter() - started) * 1000
        else:
            rebuild_ms, day_rows = None, None
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        org = db.session.execute(select(Organization).where(Organization.slug == "bench-workforce-board")).scalar_one()
        program = db.session.execute(
            select(Program).where(Program.slug == "data-center-technician-pathway")
        ).scalar_one()
        from insights.report_cache import cached_workforce_report

        def cached(org, **kwargs):
            report = cached_workforce_report(org, **kwargs)
            db.session.commit()
            return report

        methods = [("computed (rollup, no cache)", workforce_report), ("cached (hit)", cached)]
        if raw:
            from tests.workforce_reference import reference_report

            methods.append(("every lesson and attempt (before)", reference_report))
        scopes = [("whole organization, 365 days", {}), ("one program, 365 days", {"program": program})]
        now = utcnow()
        runs = int(os.environ.get("BENCH_REPORT_RUNS", "5"))
        reference_runs = int(os.environ.get("BENCH_REFERENCE_RUNS", "2"))
        samples: dict = {}
        for _ in range(runs):
            for scope, kwargs in scopes:
                for method, function in methods:
                    sample = samples.setdefault((scope, method), {"wall": [], "cpu": []})
                    if method.startswith("every") and len(sample["wall"]) >= reference_runs:
                        continue
                    if method.startswith("cached") and not sample["wall"]:
                        # the first request fills the cache; what is timed here is the requests after it
                        function(org, start=(now - timedelta(days=364)).date(), end=now.date(), now=now, **kwargs)
                    cpu, wall = time.process_time(), time.perf_counter()
                    report = function(org, start=(now - timedelta(days=364)).date(), end=now.date(), now=now, **kwargs)
                    sample["wall"].append((time.perf_counter() - wall) * 1000)
                    sample["cpu"].append((time.process_time() - cpu) * 1000)
                    sample["total"] = report.total
                    db.session.rollback()
        for scope, _ in scopes:
            # the cache judges at the start of the day, the others at `now`: same learners, same activity
            totals = [s["total"].participants_served for key, s in samples.items() if key[0] == scope]
            assert all(t == totals[0] for t in totals), f"the methods disagree on {scope}"
    lines = [
        "",
        "### The same report on SQLite",
        "",
        f"`bench/workforce_sqlite.py`: the PostgreSQL data set above copied into a SQLite file built by the migrations "
        f"({counts.get('enrollments', 0):,} enrollments, {counts.get('lesson_progress', 0):,} lesson rows, "
        f"{counts.get('quiz_attempts', 0):,} quiz attempts), the two methods interleaved in one run. SQLite runs in "
        "this process, so CPU is all of it.",
        "",
        "| report | method | runs | wall: median | wall: min–max | CPU: median | participants served |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (scope, method), s in samples.items():
        lines.append(
            f"| {scope} | {method} | {len(s['wall'])} | {statistics.median(s['wall']):,.0f} ms "
            f"| {min(s['wall']):,.0f}–{max(s['wall']):,.0f} ms | {statistics.median(s['cpu']):,.0f} ms "
            f"| {s['total'].participants_served:,} |"
        )
    if rebuild_ms is not None:
        lines += ["", f"Rebuilding the rollup on SQLite: {day_rows:,} day rows in {rebuild_ms:,.0f} ms."]
    out = "\n".join(lines) + "\n"
    if os.environ.get("BENCH_WRITE", "1") == "1":
        with (ROOT / "bench" / "RESULTS.md").open("a") as results_file:
            results_file.write(out)
    print(out)


if __name__ == "__main__":
    main()
