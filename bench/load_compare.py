"""`make load` as an A/B comparison: the baseline commit and this working tree, interleaved in one run.

    make load-compare                                  # 3 rounds × 60 s per side, baseline 5f4f25d
    make load-compare LOAD_ROUNDS=2 LOAD_SECONDS=30    # shorter, while iterating

Why: the machine is shared, so a figure from another day (or another hour) says little. Here both sides see the
same machine within minutes of each other. Runs under `python -m tests.pgcluster --` (one throwaway PostgreSQL
cluster, one database per side).

1. The baseline (LOAD_BASELINE, default the commit whose `make load` produced the 94 req/s of 2026-11-26) is
   extracted with `git archive` into .load-baseline/<commit>/src and gets its own virtualenv there (its own
   constraints.txt), once; later runs reuse both.
2. Each side builds its own data set with its own code (bench.generate, then bench.load.prepare: LOAD_LEARNERS
   generated learners, and LOAD_POOL learners per virtual user per round, so every round starts from the same
   stages instead of from learners a previous round already took through their courses).
3. Both servers start (gunicorn with the production config; each side's own worker settings: the baseline's
   3 sync workers; this tree's gunicorn.conf.py, read from its working directory, with bench.load.GUNICORN's
   flags). Then LOAD_ROUNDS rounds; each runs the same Locust load (this tree's bench/locustfile.py: LOAD_USERS
   users, no think time, LOAD_SECONDS) against one side and then the other, the order alternating between rounds.
   The idle server only waits.
4. Per run: req/s and percentiles after the login warm-up (Locust's own figures), the status codes, and the
   server-side CPU (gunicorn workers + this side's PostgreSQL backends, from /proc) per request.
5. After the rounds, each side's database is checked against every action its server acknowledged (the same
   checks as `make load`), and each server log for tracebacks, errors and worker timeouts.

The result replaces the "## Load test: A/B against the baseline" section of bench/RESULTS.md; the exit status
is non-zero if any check fails on this tree's side.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import load
from bench.certificates import _children, _cpu_seconds

ROOT = load.ROOT
BASELINE = os.environ.get("LOAD_BASELINE", "5f4f25d")
ROUNDS = int(os.environ.get("LOAD_ROUNDS", "3"))
SECONDS = int(os.environ.get("LOAD_SECONDS", "60"))
# what `make load` ran with at the baseline (its bench/load.py)
BASELINE_GUNICORN = ["--workers", "3", "--worker-class", "sync", "--timeout", "60", "--log-level", "warning"]
WARMUP_CAP = 240  # the logins must be done within this, else the run ends early (and says so: no warm-up line)
SECTION = "## Load test: A/B against the baseline"

PREPARE = """
import json, os, subprocess, sys
from pathlib import Path
subprocess.run([sys.executable, "-m", "bench.generate"], check=True,
               env={**os.environ, "BENCH_LEARNERS": os.environ["LOAD_LEARNERS"]})
from bench.load import make_app, prepare
folder = Path(sys.argv[1])
fixture = prepare(make_app(os.environ["DATABASE_URL"], folder))
Path(sys.argv[2]).write_text(json.dumps(fixture))
"""


def log(message: str) -> None:
    print(f"load-compare: {message}", flush=True)


def baseline_checkout() -> tuple[Path, str]:
    """The baseline's source and its virtualenv's python, made once."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", BASELINE], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    home = ROOT / ".load-baseline" / commit
    src, venv = home / "src", home / "venv"
    if not (src / "wsgi.py").exists():
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    stamp = venv / ".installed"
    if not stamp.exists():
        log(f"building the baseline's virtualenv in {venv} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "-c", "constraints.txt", "-e", ".[redis]"],
            cwd=src,
            check=True,
        )
        stamp.touch()
    return src, str(venv / "bin" / "python")


def warm(base: str, fixture: dict) -> None:
    """A few uncounted requests of each kind against the server at ``base``, several at once, so every worker has
    imported and compiled what the load needs before the first measured round (bench/load_ab.py uses it too)."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.request import urlopen

    paths = ["/login", "/courses", *(f"/courses/{slug}" for slug in fixture["courses"])]
    paths += [f"/verify/{i}" for i in fixture["certificates"][:4]]
    paths += [f"/api/v1/certificates/{i}" for i in fixture["certificates"][:4]]

    def get(path: str) -> None:
        # a fresh worker's first pages fill its caches: at load average ~20 that outlasted 60 s
        with urlopen(base + path, timeout=300) as response:  # noqa: S310 (our own loopback server)
            response.read()

    with ThreadPoolExecutor(6) as pool:
        list(pool.map(get, paths * 3))


def create_database(admin_url: str, name: str) -> str:
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def backend_cpu(url: str, database: str) -> float:
    """CPU seconds so far of every PostgreSQL backend connected to ``database``."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()",
                (database,),
            )
        ]
    return sum(_cpu_seconds(pid) for pid in pids)


class Side:
    def __init__(self, name: str, label: str, src: Path, python: str, gunicorn: list[str], admin_url: str, top: Path):
        self.name, self.label, self.src, self.python, self.gunicorn = name, label, src, python, gunicorn
        self.database = f"load_{name}"
        self.url = create_database(admin_url, self.database)
        self.folder = top / name
        self.folder.mkdir(parents=True)
        self.answer_key: dict[str, list[str]] = {}
        self.server: subprocess.Popen | None = None
        self.base = ""
        self.runs: list[dict] = []
        self.actions: dict[str, list[dict]] = {"lesson": [], "quiz": [], "enroll": [], "verify": [], "warmup": []}
        self.statuses: Counter = Counter()

    def prepare(self) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": self.url,
            "LOAD_LEARNERS": str(load.LEARNERS),
            "LOAD_USERS": str(load.USERS),
            "LOAD_POOL": str(load.POOL * ROUNDS),
            "PYTHONPATH": str(self.src),
        }
        out = (self.folder / "prepare.log").open("w")
        return subprocess.Popen(
            [self.python, "-c", PREPARE, str(self.folder), str(self.folder / "fixture-all.json")],
            cwd=self.src,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def round_fixture(self, number: int) -> Path:
        """The fixture of one round: each virtual user's pool is its own slice of learners for that round."""
        everything = json.loads((self.folder / "fixture-all.json").read_text())
        everything["answer_key"] = self.answer_key
        pools = [pool[number * load.POOL : (number + 1) * load.POOL] for pool in everything["pools"]]
        path = self.folder / f"fixture-{number}.json"
        path.write_text(json.dumps({**everything, "pools": pools}))
        return path

    def warm(self) -> None:
        """A few uncounted requests of each kind, several at once, so every worker has imported and compiled
        what the load needs before the first measured round."""
        warm(self.base, json.loads((self.folder / "fixture-all.json").read_text()))

    def cpu(self) -> tuple[float, float]:
        workers = sum(_cpu_seconds(pid) for pid in _children(self.server.pid))
        return workers, backend_cpu(self.url, self.database)

    def run(self, number: int) -> dict:
        fixture = self.round_fixture(number)
        actions_path = self.folder / f"actions-{number}.jsonl"
        actions_path.write_text("")
        load_average = os.getloadavg()[0]
        run = measured_locust_run(self.base, self.folder, fixture, actions_path, f"locust-{number}", self.cpu, SECONDS)
        (app_before, db_before, _), (app_after, db_after, _) = run["before"], run["after"]
        client_cpu = run["client_cpu"]
        actions, statuses = load.read_actions(actions_path)
        for kind, items in actions.items():
            self.actions[kind].extend(items)
        self.statuses.update(statuses)
        # keyed by method and name: a quiz attempt's GET and POST share one name
        rows = {
            r["Name"] if r["Name"] == "Aggregated" else f"{r['Type']} {r['Name']}": r
            for r in load.stats_rows(self.folder, f"locust-{number}")
        }
        total = rows["Aggregated"]
        requests = int(total["Request Count"])  # after the warm-up, as the CPU
        result = {
            "round": number + 1,
            "rps": float(total["Requests/s"]),
            "requests": int(total["Request Count"]),
            "p50": float(total["50%"]),
            "p95": float(total["95%"]),
            "p99": float(total["99%"]),
            "errors5xx": sum(n for status, n in statuses.items() if status.startswith("5")),
            "connection_errors": statuses["connection error"],
            "app_ms": 1000 * (app_after - app_before) / max(requests, 1),
            "db_ms": 1000 * (db_after - db_before) / max(requests, 1),
            "load": load_average,
            "rows": rows,
            "client_ms": 1000 * client_cpu / max(sum(statuses.values()), 1),
        }
        self.runs.append(result)
        log(
            f"round {number + 1} {self.name}: {result['rps']:.0f} req/s, p95 {result['p95']:.0f} ms, "
            f"5xx {result['errors5xx']}, app {result['app_ms']:.1f} ms + PostgreSQL {result['db_ms']:.1f} ms "
            f"per request, Locust {result['client_ms']:.1f} ms (load {load_average:.1f})"
        )
        return result


def measured_locust_run(base, folder, fixture, actions_path, csv, cpu, seconds: int) -> dict:
    """One Locust run (bench/locustfile.py) against the server at ``base``, measured for ``seconds`` after its login
    warm-up, with the server's CPU (``cpu()``: app and PostgreSQL seconds) marked when the warm-up is done and at
    the end: the storm of deliberately slow password hashes at the start is not the steady state (Locust's figures
    restart there too). Also Locust's own CPU for the whole run, logins included: it shares the machine's cores with
    the server, so what each side's requests cost the client decides throughput too (e.g. a new connection per
    request). Returns {"before": (app, db, time), "after": (app, db, time), "warm": marked, "client_cpu": s};
    bench/load_ab.py runs its variants through it too."""
    marks: dict[str, tuple] = {}

    def mark_after_warmup() -> None:
        while "after" not in marks:
            if '"kind": "warmup"' in actions_path.read_text():
                marks["warm"] = (*cpu(), time.time())
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=mark_after_warmup, daemon=True)
    watcher.start()
    client_before = _children_cpu()
    load.run_locust(base, folder, fixture, actions_path, seconds=seconds + WARMUP_CAP, csv=csv, measure=seconds)
    client_cpu = _children_cpu() - client_before
    marks["after"] = (*cpu(), time.time())
    watcher.join()
    return {
        "before": marks.get("warm", marks["after"]),
        "after": marks["after"],
        "warm": "warm" in marks,
        "client_cpu": client_cpu,
    }


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended and been waited for (Locust, after its run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def report(base: Side, head: Side, verdicts: dict[str, list[tuple[str, bool, str]]], head_commit: str) -> str:
    ratios = [h["rps"] / b["rps"] for b, h in zip(base.runs, head.runs, strict=True)]
    cpu_ratios = [
        (b["app_ms"] + b["db_ms"]) / max(h["app_ms"] + h["db_ms"], 1e-9)
        for b, h in zip(base.runs, head.runs, strict=True)
    ]
    total_ratios = [
        (b["app_ms"] + b["db_ms"] + b["client_ms"]) / max(h["app_ms"] + h["db_ms"] + h["client_ms"], 1e-9)
        for b, h in zip(base.runs, head.runs, strict=True)
    ]
    lines = [
        SECTION,
        "",
        f"`python -m tests.pgcluster -- python -m bench.load_compare` (`make load-compare LOAD_ROUNDS={ROUNDS} "
        f"LOAD_SECONDS={SECONDS}`), run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on the shared {os.cpu_count()}-core "
        f"machine (load average {spread([r['load'] for r in base.runs + head.runs], '{:.1f}')} at the start of "
        "the runs). Both sides in one run, interleaved: each round runs the same Locust load (bench/locustfile.py: "
        f"{load.USERS} users, no think time, {SECONDS} s, the same mix as `make load`) against one side and then "
        "the other, the order alternating. Each side has its own data set built by its own code "
        f"({load.LEARNERS:,} generated learners × 8 courses, plus {load.USERS * load.POOL} fresh load learners "
        "per round) in its own database on one PostgreSQL 15 cluster.",
        f"Baseline: {base.label}; gunicorn {' '.join(base.gunicorn)}. "
        f"This tree: {head.label} ({head_commit}); gunicorn {load.describe(head.gunicorn)}.",
        "",
        f"**Throughput, this tree ÷ baseline, per round: median {spread(ratios)}** (target ≥ 3). "
        f"Server CPU per request (gunicorn workers + PostgreSQL backends), baseline ÷ this tree: "
        f"median {spread(cpu_ratios)}; with Locust's CPU per request added (the client shares the cores): "
        f"{spread(total_ratios)}.",
        "",
        "| round | side | req/s | p50 ms | p95 ms | p99 ms | 5xx | app CPU ms/req | PostgreSQL CPU ms/req "
        "| Locust CPU ms/req | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b, h in zip(base.runs, head.runs, strict=True):
        for side, r in (("baseline", b), ("this tree", h)):
            lines.append(
                f"| {r['round']} | {side} | {r['rps']:.0f} | {r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} "
                f"| {r['errors5xx']} | {r['app_ms']:.2f} | {r['db_ms']:.2f} | {r['client_ms']:.2f} | {r['load']:.1f} |"
            )
    for side in (base, head):
        lines.append(
            f"| median | {'baseline' if side is base else 'this tree'} | "
            f"{statistics.median(r['rps'] for r in side.runs):.0f} | "
            f"{statistics.median(r['p50'] for r in side.runs):.0f} | "
            f"{statistics.median(r['p95'] for r in side.runs):.0f} | "
            f"{statistics.median(r['p99'] for r in side.runs):.0f} | "
            f"{sum(r['errors5xx'] for r in side.runs)} | "
            f"{statistics.median(r['app_ms'] for r in side.runs):.2f} | "
            f"{statistics.median(r['db_ms'] for r in side.runs):.2f} | "
            f"{statistics.median(r['client_ms'] for r in side.runs):.2f} | |"
        )
    # per endpoint: median p95 and share of requests, to see where the time goes
    names = sorted({n for r in head.runs for n in r["rows"] if n != "Aggregated"})
    lines += [
        "",
        "Per endpoint, median over the rounds (req/s; p95 ms):",
        "",
        "| endpoint | baseline req/s | baseline p95 | this tree req/s | this tree p95 |",
        "|---|---:|---:|---:|---:|",
    ]

    def per(side: Side, name: str, key: str) -> str:
        values = [
            float(r["rows"][name][key])
            for r in side.runs
            if name in r["rows"] and r["rows"][name]["Request Count"] != "0"
        ]
        return f"{statistics.median(values):.1f}" if values else "–"

    for name in names:
        method, path = name.split(" ", 1)
        lines.append(
            f"| {method} `{path}` | {per(base, name, 'Requests/s')} | {per(base, name, '95%')} "
            f"| {per(head, name, 'Requests/s')} | {per(head, name, '95%')} |"
        )
    for side in (base, head):
        lines += [
            "",
            f"Consistency checks, {'baseline' if side is base else 'this tree'} (its database after all rounds; "
            f"{len(side.actions['lesson']):,} lesson completions, {len(side.actions['quiz']):,} quiz submissions, "
            f"{len(side.actions['enroll']):,} enrollments, {len(side.actions['verify']):,} verifications "
            "acknowledged):",
            "",
            "| check | verdict | detail |",
            "|---|---|---|",
        ]
        lines += [f"| {n} | {'pass' if ok else '**FAIL**'} | {d} |" for n, ok, d in verdicts[side.name]]
    return "\n".join(lines) + "\n"


def write_results(section: str) -> None:
    import re

    path = ROOT / "bench" / "RESULTS.md"
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    current = re.sub(r"\n" + re.escape(SECTION) + r"\n.*?(?=\n## |\Z)", "", current, flags=re.S).rstrip("\n")
    path.write_text(current + "\n\n" + section)


def main() -> int:
    admin_url = load.database_url()
    top = Path(tempfile.mkdtemp(prefix="awa-load-compare-"))
    src, python = baseline_checkout()
    head_commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    base = Side("base", f"commit {src.parent.name}", src, python, BASELINE_GUNICORN, admin_url, top)
    head = Side(
        "head",
        "the working tree" + (" with uncommitted changes" if dirty else ""),
        ROOT,
        sys.executable,
        load.GUNICORN,
        admin_url,
        top,
    )
    started = time.perf_counter()
    preparing = [(side, side.prepare()) for side in (base, head)]
    for side, proc in preparing:
        if proc.wait() != 0:
            log(f"{side.name}: preparing the data failed: see {side.folder / 'prepare.log'}")
            return 2
    for side in (base, head):
        side.answer_key = load.answer_key(side.url)
    log(f"data ready in {time.perf_counter() - started:.0f}s (both sides)")
    try:
        for side in (base, head):
            side.server, side.base = load.serve(
                side.url, side.folder, python=side.python, cwd=side.src, gunicorn=side.gunicorn
            )
        for side in (base, head):
            side.warm()
        for number in range(ROUNDS):
            order = (base, head) if number % 2 == 0 else (head, base)
            for side in order:
                side.run(number)
    finally:
        for side in (base, head):
            if side.server is not None:
                side.server.terminate()
                side.server.wait(timeout=30)
    verdicts = {}
    for side in (base, head):
        results, _ = load.check(side.url, side.actions, side.statuses)
        results.append(load.server_log_check((side.folder / "gunicorn.log").read_text()))
        verdicts[side.name] = results
    section = report(base, head, verdicts, head_commit)
    write_results(section)
    print(section)
    failed = [name for name, ok, _ in verdicts["head"] if not ok]
    if failed:
        log(f"FAILED on this tree: {'; '.join(failed)} (files in {top})")
        return 1
    log(f"files in {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
