"""CPU seconds per test file: `.venv/bin/python -m pytest -p tests.cpuprofile` (`--cpu-tsv=PATH`: one row a test).

On this shared 2-core machine wall times swing with everyone else's load; the CPU time the test process itself
spends (setup + call + teardown, from time.process_time) does not, so it is what to compare before and after a
change. It leaves out what runs in other processes: the PostgreSQL server, gunicorn and Chromium.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

_rows: list[tuple[str, float, float]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-tsv", default=None, help="write nodeid, CPU s, wall s per test to this file")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        return (yield)
    finally:
        _rows.append((item.nodeid, time.process_time() - cpu, time.perf_counter() - wall))


def write_file_table(terminalreporter, rows: list[tuple[str, float, float]], title: str) -> None:
    """The per-file CPU and wall seconds of ``rows`` (nodeid, CPU s, wall s), costliest first, then the total
    (tests/treecpu.py writes its table with this too)."""
    files: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for nodeid, cpu, wall in rows:
        totals = files[nodeid.split("::")[0]]
        totals[0] += 1
        totals[1] += cpu
        totals[2] += wall
    terminalreporter.section(title)
    for path, (count, cpu, wall) in sorted(files.items(), key=lambda kv: -kv[1][1]):
        terminalreporter.write_line(f"{cpu:8.1f} s CPU {wall:8.1f} s wall {int(count):4d} tests  {path}")
    total_cpu, total_wall = sum(r[1] for r in rows), sum(r[2] for r in rows)
    terminalreporter.write_line(f"{total_cpu:8.1f} s CPU {total_wall:8.1f} s wall {len(rows):4d} tests  in all")


def write_tsv(path: str | None, rows: list[tuple[str, float, float]]) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as out:
            out.writelines(f"{nodeid}\t{cpu:.3f}\t{wall:.3f}\n" for nodeid, cpu, wall in rows)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if not _rows:
        return
    write_file_table(terminalreporter, _rows, "CPU seconds per file (this process)")
    write_tsv(config.getoption("--cpu-tsv"), _rows)
