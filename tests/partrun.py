"""Run one part of `make test` and print its wall time and the CPU seconds of its whole process tree.

    python -m tests.partrun NAME -- COMMAND...    run COMMAND, then print `part NAME: wall … s, CPU … s (…)`
    python -m tests.partrun --summary             print the table of the parts the last `make test` ran

The CPU is the rusage of every process the command started, however deep: this process is made a child
subreaper (Linux prctl), so a process whose parent exits before it does (the PostgreSQL server that pg_ctl starts
in the background, a browser's helper processes) is handed to this process instead of init, and its CPU is
counted when it is reaped here. Each part appends its line to test-artifacts/parts.tsv (emptied by `make test`
before the parts start), so the summary shows where the time of the last run went: the six parts run side by side
on a shared machine, so their wall times overlap and their CPU seconds are what they took from the cores.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

# PARTRUN_TABLE names another file (tests/test_partrun.py)
TABLE = Path(os.environ.get("PARTRUN_TABLE") or Path(__file__).resolve().parents[1] / "test-artifacts" / "parts.tsv")
PR_SET_CHILD_SUBREAPER = 36
# after the command exits, how long to wait for the orphans it left (a server still shutting down) before giving up
# on their CPU: the part's result does not wait on them
ORPHAN_GRACE = 20.0


def _subreaper() -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux: the command's own children are still counted
        return False


def _reap_orphans(deadline: float) -> int:
    """Reap every remaining descendant handed to us, until none is left or the deadline passes; return how many
    were still running then."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 0
        if pid:
            continue
        if time.monotonic() > deadline:
            return len(_children())
        time.sleep(0.05)


def _children() -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/self/task/{os.getpid()}/children").read_text().split()]
    except OSError:
        return []


def run(name: str, command: list[str]) -> int:
    tree = _subreaper()
    start = time.monotonic()
    process = subprocess.Popen(command)
    # Ctrl+C reaches the whole process group, the command included: wait for it to finish its own cleanup
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    code = process.wait()
    wall = time.monotonic() - start
    left = _reap_orphans(time.monotonic() + ORPHAN_GRACE) if tree else 0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    note = "" if tree else ", direct children only"
    note += f", {left} process(es) still running, not counted" if left else ""
    print(
        f"part {name}: wall {wall:.0f} s, CPU {cpu:.0f} s (user {usage.ru_utime:.0f}, sys {usage.ru_stime:.0f}"
        f"{note}), exit {code}",
        flush=True,
    )
    TABLE.parent.mkdir(exist_ok=True)
    with TABLE.open("a", encoding="utf-8") as out:
        out.write(f"{name}\t{wall:.1f}\t{cpu:.1f}\t{code}\n")
    return code


def summary() -> int:
    rows = [line.split("\t") for line in TABLE.read_text(encoding="utf-8").splitlines()] if TABLE.exists() else []
    if not rows:
        print("no part has finished")
        return 0
    width = max(len(row[0]) for row in rows)
    print(f"{'part':{width}}  {'wall s':>7}  {'CPU s':>7}  exit")
    for name, wall, cpu, code in rows:
        print(f"{name:{width}}  {float(wall):7.0f}  {float(cpu):7.0f}  {code}")
    print(f"{'all parts':{width}}  {'':>7}  {sum(float(row[2]) for row in rows):7.0f}")
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--summary"]:
        return summary()
    if argv == ["--reset"]:
        TABLE.unlink(missing_ok=True)
        return 0
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    return run(argv[0], argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
