"""CPU seconds Chromium spends in browser tests, A/B by browser binary and switches, and whether axe still agrees.

    .venv/bin/python -m bench.browser_cpu [--rounds 2] [--postgres] \\
        [--variant full=/usr/bin/chromium] [--variant 'shell=/usr/bin/chromium-headless-shell|--a-switch|VAR=1'] \\
        -- tests/browser/test_foo.py ...

Each run is one pytest process over the given test files with CHROMIUM_PATH pointing at bench/chromium_wrap.py,
which starts the variant's binary (plus its extra switches) and records the CPU of the browser's whole process
tree from the kernel's accounting of reaped children (not wall time: the machine is shared). Variants run
interleaved, round by round, so that a change in the machine's load hits every variant alike. Each run writes its
axe-*.json reports to a folder of its own (TEST_ARTIFACTS_DIR); at the end every variant's reports are compared
with the first variant's.

Without --variant it compares Debian's full Chromium with its headless shell, both with the suite's own switches.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = ["full=/usr/bin/chromium", "shell=/usr/bin/chromium-headless-shell"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", help="NAME=BINARY[|EXTRA SWITCHES[|ENV=VALUE ...]]")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", action="store_true", help="run under tests.pgcluster (the PostgreSQL half)")
    parser.add_argument("--keep", type=Path, help="folder for the runs' axe reports and logs (default: a temp dir)")
    parser.add_argument("tests", nargs="+")
    args = parser.parse_args(argv)

    variants = []
    for spec in args.variant or DEFAULT_VARIANTS:
        name, _, rest = spec.partition("=")
        binary, _, rest = rest.partition("|")
        extra, _, env = rest.partition("|")
        variants.append((name, binary, extra.strip(), dict(v.split("=", 1) for v in env.split())))

    out = args.keep or Path(tempfile.mkdtemp(prefix="browser-cpu-"))
    out.mkdir(parents=True, exist_ok=True)
    wrapper = out / "chromium"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {ROOT / "bench" / "chromium_wrap.py"} "$@"\n')
    wrapper.chmod(0o755)
    half = "postgres" if args.postgres else "sqlite"
    print(f"{half} half, {len(args.tests)} test file(s), {args.rounds} round(s); reports and logs in {out}", flush=True)

    results: dict[str, list[dict]] = {name: [] for name, *_ in variants}
    for round_ in range(args.rounds):
        for name, binary, extra, variant_env in variants:
            log = out / f"cpu-{name}-{round_}.jsonl"
            kept = out / "axe" / name / str(round_)
            shutil.rmtree(kept, ignore_errors=True)
            env = {
                **os.environ,
                "TEST_ARTIFACTS_DIR": str(kept),
                "CHROMIUM_PATH": str(wrapper),
                "BENCH_CHROMIUM_TARGET": binary,
                "BENCH_CHROMIUM_EXTRA_ARGS": extra,
                "BENCH_CHROMIUM_LOG": str(log),
                **variant_env,
            }
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.tests]
            if args.postgres:
                command = [sys.executable, "-m", "tests.pgcluster", "--", *command]
            started = time.monotonic()
            run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.monotonic() - started
            records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
            cpu = sum(r["cpu"] for r in records)
            summary = (run.stdout.strip().splitlines() or ["(no output)"])[-1]
            print(
                f"round {round_} {name:>24}: chromium {cpu:7.1f} CPU s in {len(records)} browser(s); "
                f"wall {wall:6.1f} s; pytest: {summary}",
                flush=True,
            )
            if run.returncode:
                (out / f"pytest-{name}-{round_}.log").write_text(run.stdout + run.stderr)
            results[name].append({"cpu": cpu, "ok": run.returncode == 0, "reports": kept})

    print(f"\nChromium CPU seconds per run (median; min-max of {args.rounds}), pytest green in every run:")
    first = variants[0][0]
    base = statistics.median(r["cpu"] for r in results[first])
    for name, *_ in variants:
        cpus = [r["cpu"] for r in results[name]]
        median = statistics.median(cpus)
        green = all(r["ok"] for r in results[name])
        print(
            f"  {name:>24}: {median:7.1f} ({min(cpus):.1f}-{max(cpus):.1f})  {median / base:5.2f}x {first}"
            f"  green={green}  axe reports {'equal' if _same_reports(results[first], results[name]) else 'DIFFER'}"
        )
    return 0


def _same_reports(a: list[dict], b: list[dict]) -> bool:
    """Every round's reports of b equal the first round's of a (same files, same violations, same nodes)."""
    reference = {p.name: json.loads(p.read_text()) for p in a[0]["reports"].glob("*.json")}
    for run in b:
        reports = {p.name: json.loads(p.read_text()) for p in run["reports"].glob("*.json")}
        if reports != reference:
            for name in sorted(set(reports) | set(reference)):
                if reports.get(name) != reference.get(name):
                    print(f"    axe report {name} differs in {run['reports']}", file=sys.stderr)
            return False
    return True


if __name__ == "__main__":
    sys.exit(main())
