"""Stands in for the browser binary and measures the CPU of its whole process tree (bench/browser_cpu.py).

Playwright starts this file as its "Chromium" (CHROMIUM_PATH); it starts the real browser named by
BENCH_CHROMIUM_TARGET with the same arguments and file descriptors (Playwright talks over fds 3 and 4), becomes a
child subreaper (so renderers and zygotes that outlive their parents are reaped here too, not by init) and, once
every descendant has exited, appends one JSON line with their summed user and system CPU seconds to
BENCH_CHROMIUM_LOG. Kernel accounting of reaped children: nothing is sampled, so short-lived processes count fully.

BENCH_CHROMIUM_EXTRA_ARGS (space-separated) adds switches for A/B trials; --disable-features/--enable-features
values are merged into the one switch Chromium reads (with two, the last would win and drop Playwright's list).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def merged(args: list[str]) -> list[str]:
    lists: dict[str, list[str]] = {}
    out = []
    for a in args:
        for switch in ("--disable-features=", "--enable-features="):
            if a.startswith(switch):
                if switch not in lists:
                    lists[switch] = []
                    out.append(switch)  # placeholder, filled below
                lists[switch] += [f for f in a.removeprefix(switch).split(",") if f and f not in lists[switch]]
                break
        else:
            out.append(a)
    return [a + ",".join(lists[a]) if a in lists else a for a in out]


def main() -> None:
    target = os.environ["BENCH_CHROMIUM_TARGET"]
    args = merged([*sys.argv[1:], *os.environ.get("BENCH_CHROMIUM_EXTRA_ARGS", "").split()])
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    started = time.monotonic()
    child = os.fork()
    if child == 0:
        os.execv(target, [target, *args])  # noqa: S606 (the browser itself, exactly as Playwright would start it)
    # Playwright stops the browser by closing it over the pipe; pass on a polite signal if it sends one instead
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    user = system = 0.0
    processes = 0
    status = 0
    while True:
        try:
            pid, wstatus, usage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        user += usage.ru_utime
        system += usage.ru_stime
        processes += 1
        if pid == child:
            status = os.waitstatus_to_exitcode(wstatus)
    with open(os.environ["BENCH_CHROMIUM_LOG"], "a", encoding="utf-8") as log:
        record = {
            "target": target,
            "extra": os.environ.get("BENCH_CHROMIUM_EXTRA_ARGS", ""),
            "user": round(user, 2),
            "system": round(system, 2),
            "cpu": round(user + system, 2),
            "processes": processes,
            "wall": round(time.monotonic() - started, 1),
            "args": args,
        }
        log.write(json.dumps(record) + "\n")
    sys.exit(max(status, 0))


if __name__ == "__main__":
    main()
