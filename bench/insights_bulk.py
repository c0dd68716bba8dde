"""Bulk writes through the insights day-rollup triggers on PostgreSQL, with 0023's triggers and with 0030b's.

One UPDATE statement moves N enrollments onto one day (completed a day later), so every course's two day rows
(not completed, completed after 10 tenths) take N / courses changes each, the shape of a bulk import or a bulk
revocation. Timed with the triggers as migration 0030b made them (one appended change row per source row, then
rollups.FOLD once, as a commit does) and with 0023's function bodies swapped back in (each change updates the day
row itself). Every run is rolled back, so the data set is left as it was. The dirty marks for the people rollup
are the same in both and included; settling the people (Python, at commit) is not.

    DATABASE_URL=postgresql+psycopg://.../db python -m bench.insights_bulk    (a data set of bench/insights_scale.py)
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from bench.generate import database_url
from insights.rollups import FOLD

ROOT = Path(__file__).resolve().parents[1]
SIZES = [int(n) for n in os.environ.get("BENCH_BULK_SIZES", "2500,5000,10000,20000").split(",")]
MOVE = text("""
    UPDATE enrollments SET enrolled_at = timestamptz '2026-01-05 10:00+00',
                           completed_at = timestamptz '2026-01-06 10:00+00'
    WHERE id IN (SELECT id FROM enrollments ORDER BY id LIMIT :n)""")


def _migration(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "migrations" / "versions" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bodies(old: bool) -> list[str]:
    """CREATE OR REPLACE statements for the two trigger functions (0023's bodies or 0030b's)."""
    if old:
        m = _migration("0023_insights_rollup")
        takes = {t: m._sync_sql("postgresql", "OLD", -1)[i] for t, i in (("enrollments", 0), ("certificates", 1))}
        adds = {t: m._sync_sql("postgresql", "NEW", 1)[i] for t, i in (("enrollments", 0), ("certificates", 1))}
    else:
        m = _migration("0030b_insights_day_changes")
        takes = {"enrollments": m._enrollment_change("OLD", -1), "certificates": m._certificate_change("OLD", -1)}
        adds = {"enrollments": m._enrollment_change("NEW", 1), "certificates": m._certificate_change("NEW", 1)}
    return [
        f"""CREATE OR REPLACE FUNCTION insights_{table}_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'INSERT' THEN {takes[table]}; END IF;
                IF TG_OP <> 'DELETE' THEN {adds[table]}; END IF;
                RETURN NULL;
            END $$"""
        for table in ("enrollments", "certificates")
    ]


def seconds(engine, n: int, old: bool) -> float:
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            for statement in _bodies(old):
                conn.exec_driver_sql(statement)
            started = time.perf_counter()
            conn.execute(MOVE, {"n": n})
            if not old:
                conn.execute(FOLD)
            return time.perf_counter() - started
        finally:
            transaction.rollback()


def main() -> None:
    engine = create_engine(database_url())
    rows = []
    for n in SIZES:
        new = seconds(engine, n, old=False)
        old = seconds(engine, n, old=True)
        rows.append((n, old, new))
        print(f"{n:>6} enrollments: 0023 triggers {old:.2f} s, 0030b triggers + fold {new:.2f} s", flush=True)
    print()
    print("| enrollments in one UPDATE | 0023: day rows updated per row | 0030b: changes appended, folded once |")
    print("|---:|---:|---:|")
    for n, old, new in rows:
        print(f"| {n:,} | {old:.2f} s | {new:.2f} s |")


if __name__ == "__main__":
    main()
