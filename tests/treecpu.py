"""CPU seconds per test file of the whole process tree: `pytest -p tests.treecpu …` (`--tree-tsv=PATH`: one row a test).

tests/cpuprofile.py counts the pytest process alone; the live tests (tests/browser, tests/servers) spend most of their
CPU in processes they start: Chromium and its renderers, Playwright's driver, gunicorn masters and workers, the task
worker, Redis, moto's S3 server. Around each test (setup, call and teardown, so a session fixture's start lands in the
first test that uses it and its stop in the last) this reads the CPU of this process, of its children already reaped
(RUSAGE_CHILDREN) and of every live descendant (/proc: utime + stime + the CPU of the children each one reaped), and
prints the totals per file, and per kind of process for the whole run. PostgreSQL is not a descendant of pytest
(tests/pgcluster.py starts it beside): its CPU is not in these figures.
"""

from __future__ import annotations

import os
import resource
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.cpuprofile import write_file_table, write_tsv

_TICK = os.sysconf("SC_CLK_TCK")
_rows: list[tuple[str, float, float]] = []
_kinds: dict[str, float] = defaultdict(float)
_seen: dict[int, str] = {}  # pid -> kind of the live descendants
_parents: dict[int, int] = {}  # pid -> parent pid, as last read


def _kind(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "ended before it was read"
    # forked by tests/forkserver.py (its comm names the command it became), or a zombie (its command line is gone)
    if "tests.forkserver" in cmd or not cmd:
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return "ended before it was read"
        if comm == "forkserver":
            return "fork server (imports the app once)"
        cmd = comm  # "gunicorn", "flask worker"
    if "chrom" in cmd or "headless" in cmd:
        return "chromium"
    if "playwright" in cmd or "/node " in cmd or cmd.startswith("node"):
        return "playwright driver"
    if "gunicorn" in cmd:
        return "gunicorn"
    if "flask worker" in cmd or " worker " in cmd:
        return "task worker"
    if "redis" in cmd:
        return "redis"
    if "moto" in cmd or "s3server" in cmd:
        return "s3 (moto)"
    return "other: " + cmd[:40]


def _tree() -> dict[int, float]:
    """pid -> CPU s (own + reaped children) of every live descendant of this process."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        pid = int(entry)
        parent[pid] = int(fields[1])
        cpu[pid] = sum(int(f) for f in fields[11:15]) / _TICK
    me = os.getpid()
    found: dict[int, float] = {}
    for pid in cpu:
        p = parent.get(pid)
        while p and p != me and p != 1:
            p = parent.get(p)
        if p == me:
            found[pid] = cpu[pid]
            _parents[pid] = parent[pid]
    return found


def _total() -> tuple[float, dict[int, float]]:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    tree = _tree()
    return time.process_time() + children.ru_utime + children.ru_stime + sum(tree.values()), tree


def pytest_configure(config: pytest.Config) -> None:
    # orphans (a browser's helpers, a daemon's children) are handed to this process, not to whoever started it, so
    # they stay in the tree until it ends (as zombies once they exit: their CPU still readable, never lost)
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tree-tsv", default=None, help="write nodeid, tree CPU s, wall s per test to this file")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    before, tree_before = _total()
    own_before = time.process_time()
    reaped_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    try:
        return (yield)
    finally:
        after, tree_after = _total()
        _rows.append((item.nodeid, after - before, time.perf_counter() - wall))
        _kinds["pytest"] += time.process_time() - own_before
        for pid, value in tree_after.items():
            if pid not in _seen:
                _seen[pid] = _kind(pid)
            _kinds[_seen[pid]] += value - tree_before.get(pid, 0.0)
        # a process that ended during the test: what it spent until the last reading stays with its kind; the rest
        # shows in the CPU of whoever reaped it: a live descendant (its figure includes its reaped children, so their
        # earlier readings are taken off their kind), or this process, whose waits go through _waitpid below and so
        # know each child's final CPU (the CPU of its reaped descendants included)
        known = 0.0
        for pid in [pid for pid in _seen if pid not in tree_after]:
            kind = _seen.pop(pid)
            if pid in _final:
                final = _final.pop(pid)
                _kinds[kind] += final - tree_before.get(pid, 0.0)
                known += final
            else:
                _kinds[kind] -= tree_before.get(pid, 0.0)
        for pid in list(_final):  # children that began and ended between two readings
            known += _final[pid]
            _kinds["short-lived children of pytest"] += _final.pop(pid)
        reaped_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        reaped = (reaped_after.ru_utime + reaped_after.ru_stime) - (reaped_before.ru_utime + reaped_before.ru_stime)
        if reaped - known > 0.05:
            _kinds["reaped by pytest, not read"] += reaped - known


_final: dict[int, float] = {}  # pid -> CPU s of a child this process reaped (its own reaped descendants included)
_os_waitpid = os.waitpid


def _waitpid(pid: int, options: int):
    """os.waitpid as subprocess calls it, through wait4, which also returns the child's resource usage."""
    if pid <= 0:
        return _os_waitpid(pid, options)
    found, status, usage = os.wait4(pid, options)
    if found:
        _final[found] = usage.ru_utime + usage.ru_stime
    return found, status


os.waitpid = _waitpid


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if not _rows:
        return
    write_file_table(terminalreporter, _rows, "CPU seconds per file (the whole process tree, PostgreSQL aside)")
    terminalreporter.write_line("by kind of process:")
    for kind, cpu in sorted(_kinds.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{cpu:8.1f} s CPU  {kind}")
    write_tsv(config.getoption("--tree-tsv"), _rows)
