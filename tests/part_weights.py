"""Refresh tests/part_weights.tsv, the cost per test file that `--part K/N` deals the files out by (tests/conftest.py).

    .venv/bin/pytest -q -p no:cacheprovider -p tests.cpuprofile --cpu-tsv=/tmp/sqlite.tsv -m "not (browser or servers)"
    .venv/bin/python -m tests.pgcluster -- .venv/bin/pytest -q -p no:cacheprovider -p tests.cpuprofile \\
        --cpu-tsv=/tmp/pg.tsv -m "not (browser or servers) and not nodb"
    .venv/bin/python -m tests.part_weights /tmp/sqlite.tsv /tmp/pg.tsv

Run the two profiles side by side, as `make test` runs the parts, so both see the same machine. A file's cost is the
CPU its tests spent in the pytest process plus, for the files that start processes of their own (CHILDREN), what
those cost (measured apart: RUSAGE_CHILDREN around the file's tests). Only the ratios between files matter, and a
file the table does not list still runs (as a file of median cost), so the table can lag behind the tests a while.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "part_weights.tsv"

# CPU seconds a file spends in child processes, which the pytest process's own CPU time leaves out (SQLite,
# 2026-12-07, load 10-16): test_worker starts `flask worker` processes (forked from tests/forkserver.py since
# 2026-12-08: its whole tree 7.0 s, the fork server's imports included), the others node or PDF renders
CHILDREN = {
    "tests/test_worker.py": 6.7,
    "tests/test_wallet_js.py": 2.5,
    "tests/test_faults.py": 1.8,
    "tests/test_displayer.py": 0.8,
}

HEADER = """\
# CPU seconds per test file, SQLite and PostgreSQL (empty: the file has no test for that database), for `--part K/N`
# (tests/conftest.py part_of). Written by `python -m tests.part_weights` (its docstring says how to measure); only
# the ratios matter. From a profile of both databases side by side, 2026-12-08.
"""


def per_file(path: str) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and "::" in fields[0]:
            totals[fields[0].split("::")[0]] += float(fields[1])
    return totals


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.exit("usage: python -m tests.part_weights SQLITE_CPU_TSV POSTGRES_CPU_TSV")
    sqlite, postgres = per_file(argv[0]), per_file(argv[1])
    rows = []
    for name in sorted(set(sqlite) | set(postgres)):
        cells = [
            f"{table[name] + CHILDREN.get(name, 0.0):.1f}" if name in table else "" for table in (sqlite, postgres)
        ]
        rows.append("\t".join([name, *cells]) + "\n")
    TABLE.write_text(HEADER + "".join(rows), encoding="utf-8")
    print(f"wrote {TABLE} ({len(rows)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
