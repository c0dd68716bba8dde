"""`make load`'s users against several gunicorn configurations of this tree, interleaved in one run.

    python -m tests.pgcluster -- python -m bench.load_ab                       # every variant below, 3 rounds
    LOAD_VARIANTS=current,sync-5 LOAD_ROUNDS=3 LOAD_SECONDS=45 python -m tests.pgcluster -- python -m bench.load_ab

Why: the p95 target of issue 17 depends on how the server queues requests, and the machine is shared, so only
figures taken side by side mean anything. One data set (bench.generate, then bench.load.prepare with fresh load
learners for every run), then LOAD_ROUNDS rounds; each round runs the same Locust
load (bench/locustfile.py, LOAD_USERS users, no think time, LOAD_SECONDS after the login warm-up) against every
variant in turn, the order rotating between rounds, each on a freshly started server warmed with a few requests.

Per run: Locust's req/s and percentiles; server CPU per request (the variant's gunicorn workers, and every
PostgreSQL backend of the database); and from bench/gunicorn_probe.py (every worker's record of every request):
requests and client connections per worker, the time in the app (pre_request to post_request) and queued in the
worker's thread pool, the thread CPU per request, and the collector's passes (count and ms per generation; each
full collection's duration). After the rounds the database is checked against every acknowledged action
(bench.load.check) and every server log for tracebacks. The result replaces the "## Load test: server
configurations" section of bench/RESULTS.md unless LOAD_AB_WRITE=0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from bench import load
from bench.certificates import _children, _cpu_seconds
from bench.load_compare import backend_cpu, measured_locust_run, warm

ROOT = load.ROOT
ROUNDS = int(os.environ.get("LOAD_ROUNDS", "3"))
SECONDS = int(os.environ.get("LOAD_SECONDS", "45"))
PROBE = os.environ.get("LOAD_PROBE", "1") == "1"
SECTION = "## Load test: server configurations"

# name: (gunicorn flags on top of gunicorn.conf.py, extra environment of the server); a sync worker needs
# --threads 1 (gunicorn turns "sync" with threads > 1 into gthread). gunicorn.conf.py freezes the collector's objects
# after the app's import (LOAD_GC_FREEZE=0 undoes it) and gives a gthread worker as many connections as threads
# (--worker-connections N with keep-alive sets it back: gunicorn's default is 1000 and --keep-alive 2)
BEFORE = ["--worker-connections", "1000", "--keep-alive", "2"]  # gunicorn's defaults, as before gunicorn.conf.py
VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "current": ([], {}),
    "before": (BEFORE, {"LOAD_GC_FREEZE": "0"}),
    "no-freeze": ([], {"LOAD_GC_FREEZE": "0"}),
    "keepalive": (BEFORE, {}),
    "wc-10": (["--worker-connections", "10", "--keep-alive", "2"], {}),
    "gthread-3x1": (["--threads", "1"], {}),
    "gthread-3x4": (["--threads", "4"], {}),
    "gthread-4x2": (["--workers", "4"], {}),
    "gthread-6x1": (["--workers", "6", "--threads", "1"], {}),
    "sync-4": (["--worker-class", "sync", "--workers", "4", "--threads", "1"], {}),
    "sync-5": (["--worker-class", "sync", "--workers", "5", "--threads", "1"], {}),
    "sync-6": (["--worker-class", "sync", "--workers", "6", "--threads", "1"], {}),
    "gen0": ([], {"LOAD_GC_GEN0": "20000"}),
    "preload": (["--preload"], {}),
}
DEFAULT = "current,before,sync-5"


def log(message: str) -> None:
    print(f"load-ab: {message}", flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Variant:
    def __init__(self, name: str, top: Path, url: str, database: str):
        flags, env = VARIANTS[name]
        self.name, self.url, self.database = name, url, database
        self.flags = [*load.GUNICORN, *(["--config", "python:bench.gunicorn_probe"] if PROBE else []), *flags]
        self.folder = top / name
        self.probe = self.folder / "probe"
        self.probe.mkdir(parents=True)
        self.env = {"LOAD_PROBE_DIR": str(self.probe), **env}
        self.server: subprocess.Popen | None = None
        self.base = ""
        self.runs: list[dict] = []

    def start(self, index: int) -> None:
        self.server, self.base = load.serve(
            self.url, self.folder, gunicorn=self.flags, extra_env=self.env, log_name=f"gunicorn-{index}.log"
        )

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=60)
            self.server = None

    def warm(self, fixture: dict) -> None:
        warm(self.base, fixture)

    def cpu(self) -> tuple[float, float]:
        workers = sum(_cpu_seconds(pid) for pid in _children(self.server.pid))
        return workers, backend_cpu(self.url, self.database)


def probe_figures(folder: Path, start: float, end: float) -> dict:
    """What the workers recorded between ``start`` and ``end`` (epoch seconds)."""
    per_worker: dict[str, dict] = {}
    walls, cpus, queued, gen2 = [], [], [], []
    gc_totals = [0.0] * 6
    for path in folder.glob("probe-*.tsv"):
        pid = path.stem.split("-", 1)[1]
        rows = []
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if parts[0] == "G" and len(parts) >= 3 and start <= float(parts[1]) <= end:
                gen2.append(float(parts[2]))
            elif parts[0] == "R" and len(parts) >= 13 and start <= float(parts[1]) <= end:
                rows.append(parts)
        if not rows:
            continue
        ports = {r[5] for r in rows}
        per_worker[pid] = {"requests": len(rows), "connections": len(ports)}
        walls += [float(r[2]) for r in rows]
        cpus += [float(r[3]) for r in rows]
        queued += [float(r[4]) for r in rows]
        first, last = rows[0], rows[-1]
        for i in range(6):
            gc_totals[i] += float(last[7 + i]) - float(first[7 + i])
    requests = max(len(walls), 1)
    counts = sorted((w["requests"] for w in per_worker.values()), reverse=True)
    conns = [per_worker[p]["connections"] for p in sorted(per_worker, key=lambda p: -per_worker[p]["requests"])]
    return {
        "workers": counts,
        "connections": conns,
        "app_p50": pct(walls, 0.5),
        "app_p95": pct(walls, 0.95),
        "app_p99": pct(walls, 0.99),
        "queue_p50": pct(queued, 0.5),
        "queue_p95": pct(queued, 0.95),
        "thread_cpu": statistics.fmean(cpus) if cpus else 0.0,
        "gc_ms_per_request": (gc_totals[3] + gc_totals[4] + gc_totals[5]) / requests,
        "gc_passes": [int(gc_totals[0]), int(gc_totals[1]), int(gc_totals[2])],
        "gen2": gen2,
    }


def run(variant: Variant, fixture_all: dict, answer_key: dict, index: int, folder: Path) -> dict:
    everything = {**fixture_all, "answer_key": answer_key}
    pools = [pool[index * load.POOL : (index + 1) * load.POOL] for pool in fixture_all["pools"]]
    fixture = folder / f"fixture-{index}.json"
    fixture.write_text(json.dumps({**everything, "pools": pools}))
    actions_path = folder / f"actions-{index}.jsonl"
    actions_path.write_text("")
    load_average = os.getloadavg()[0]
    run = measured_locust_run(variant.base, folder, fixture, actions_path, f"locust-{index}", variant.cpu, SECONDS)
    (app_before, db_before, start), (app_after, db_after, end) = run["before"], run["after"]
    client_cpu = run["client_cpu"]
    actions, statuses = load.read_actions(actions_path)
    rows = {r["Name"]: r for r in load.stats_rows(folder, f"locust-{index}")}
    total = rows["Aggregated"]
    requests = max(int(total["Request Count"]), 1)
    result = {
        "variant": variant.name,
        "rps": float(total["Requests/s"]),
        "requests": requests,
        "avg": float(total["Average Response Time"]),
        "p50": float(total["50%"]),
        "p95": float(total["95%"]),
        "p99": float(total["99%"]),
        "errors5xx": sum(n for s, n in statuses.items() if s.startswith("5")),
        "connection_errors": statuses["connection error"],
        "app_ms": 1000 * (app_after - app_before) / requests,
        "db_ms": 1000 * (db_after - db_before) / requests,
        "client_ms": 1000 * client_cpu / max(sum(statuses.values()), 1),
        "load": load_average,
        "warm": run["warm"],
        "actions": actions,
        "statuses": statuses,
    }
    if PROBE:
        result.update(probe_figures(variant.probe, start, end))
    variant.runs.append(result)
    extra = ""
    if PROBE:
        extra = (
            f"; per worker {result['workers']} requests over {result['connections']} connections; in app p50/p95 "
            f"{result['app_p50']:.0f}/{result['app_p95']:.0f} ms, queued in worker p95 {result['queue_p95']:.0f} ms; "
            f"gc {result['gc_ms_per_request']:.2f} ms/req, passes {result['gc_passes']}, full "
            f"{len(result['gen2'])} × max {max(result['gen2'], default=0):.0f} ms"
        )
    log(
        f"{variant.name}: {result['rps']:.0f} req/s, p95 ÷ mean {result['p95'] / max(result['avg'], 1):.2f}, "
        f"p50/p95/p99 {result['p50']:.0f}/{result['p95']:.0f}/"
        f"{result['p99']:.0f} ms, 5xx {result['errors5xx']}, app {result['app_ms']:.2f} + PostgreSQL "
        f"{result['db_ms']:.2f} ms/req, Locust {result['client_ms']:.2f} (load {load_average:.1f}){extra}"
    )
    return result


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def report(variants: list[Variant], verdicts, started: datetime) -> str:
    reference = variants[0]
    lines = [
        SECTION,
        "",
        f"`python -m tests.pgcluster -- python -m bench.load_ab` (LOAD_VARIANTS={','.join(v.name for v in variants)} "
        f"LOAD_ROUNDS={ROUNDS} LOAD_SECONDS={SECONDS}), {started:%Y-%m-%d %H:%M}–{datetime.now(UTC):%H:%M} UTC on the "
        f"shared {os.cpu_count()}-core machine, load average "
        f"{spread([r['load'] for v in variants for r in v.runs], '{:.1f}')} at the start of the runs. One data set "
        f"({load.LEARNERS:,} generated learners, fresh load learners for every run), a freshly started server per run "
        f"(base: {load.describe([])}), {load.USERS} Locust users without think time; each round runs every "
        "variant in turn, the order rotating. Medians over the rounds, (min–max); the ratio columns divide by the "
        f"same round's `{reference.name}`.",
        "",
        "p95 ÷ mean is the run's p95 over its mean latency (Locust's figures): with 24 users and no think time the "
        "mean is 24 ÷ throughput, whatever the machine's other work, so this ratio is the shape of the tail that a "
        "configuration gives (the issue's target, p95 ≤ 150 ms at ~260 req/s, i.e. a mean of ~92 ms, needs ≤ 1.6).",
        "",
        "| variant | gunicorn flags | req/s | ÷ ref | p50 ms | p95 ms | p99 ms | **p95 ÷ mean** | p95 ÷ ref "
        "| app+PG CPU ms/req | Locust CPU ms/req | 5xx |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in variants:
        rps_ratio = [r["rps"] / b["rps"] for r, b in zip(v.runs, reference.runs, strict=True)]
        p95_ratio = [r["p95"] / b["p95"] for r, b in zip(v.runs, reference.runs, strict=True)]
        flags, env = VARIANTS[v.name]
        described = " ".join(flags + [f"{k}={x}" for k, x in env.items()]) or "(gunicorn.conf.py)"
        lines.append(
            f"| {v.name} | `{described}` | {spread([r['rps'] for r in v.runs])} | {spread(rps_ratio, '{:.2f}')} "
            f"| {spread([r['p50'] for r in v.runs])} | {spread([r['p95'] for r in v.runs])} "
            f"| {spread([r['p99'] for r in v.runs])} | {spread([r['p95'] / r['avg'] for r in v.runs], '{:.2f}')} "
            f"| {spread(p95_ratio, '{:.2f}')} "
            f"| {spread([r['app_ms'] + r['db_ms'] for r in v.runs], '{:.2f}')} "
            f"| {spread([r['client_ms'] for r in v.runs], '{:.2f}')} | {sum(r['errors5xx'] for r in v.runs)} |"
        )
    if PROBE:
        lines += [
            "",
            "Inside the server (bench/gunicorn_probe.py; per run, rounds in order): requests per worker, busiest "
            "first, and the client connections each served (gthread; a sync worker closes each connection); time "
            "in the app (p50/p95 ms) and queued in the worker's thread pool (p95 ms); the collector's ms per "
            "request and full collections (count × max ms).",
            "",
            "| variant | round | requests per worker | connections per worker | in app p50/p95 | queued p95 "
            "| Locust p50/p95 | gc ms/req | full collections |",
            "|---|---:|---|---|---:|---:|---:|---:|---:|",
        ]
        for v in variants:
            for number, r in enumerate(v.runs, 1):
                lines.append(
                    f"| {v.name} | {number} | {r['workers']} | {r['connections']} | {r['app_p50']:.0f}/"
                    f"{r['app_p95']:.0f} | {r['queue_p95']:.0f} | {r['p50']:.0f}/{r['p95']:.0f} "
                    f"| {r['gc_ms_per_request']:.2f} | {len(r['gen2'])} × {max(r['gen2'], default=0):.0f} |"
                )
    lines += ["", "| check (one database, every variant's acknowledged actions) | verdict | detail |", "|---|---|---|"]
    lines += [f"| {n} | {'pass' if ok else '**FAIL**'} | {d} |" for n, ok, d in verdicts]
    return "\n".join(lines) + "\n"


def write_results(section: str) -> None:
    import re

    path = ROOT / "bench" / "RESULTS.md"
    current = path.read_text()
    current = re.sub(r"\n" + re.escape(SECTION) + r"\n.*?(?=\n## |\Z)", "", current, flags=re.S).rstrip("\n")
    path.write_text(current + "\n\n" + section)


def main() -> int:
    names = [n.strip() for n in os.environ.get("LOAD_VARIANTS", DEFAULT).split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    started_at = datetime.now(UTC)
    url = load.database_url()
    database = url.rsplit("/", 1)[1].split("?")[0]
    top = Path(tempfile.mkdtemp(prefix="awa-load-ab-"))
    runs = len(names) * ROUNDS
    subprocess.run(
        [sys.executable, "-m", "bench.generate"],
        cwd=ROOT,
        env={**os.environ, "BENCH_LEARNERS": str(load.LEARNERS)},
        check=True,
    )
    pool = load.POOL
    load.POOL = pool * runs  # every run takes fresh learners
    fixture_all = load.prepare(load.make_app(url, top))
    load.POOL = pool
    answer_key = load.answer_key(url)
    variants = [Variant(name, top, url, database) for name in names]
    actions_all: dict[str, list] = defaultdict(list)
    statuses_all: Counter = Counter()
    log(f"{len(variants)} variants; {ROUNDS} rounds of {SECONDS} s each; files in {top}")
    index = 0
    for number in range(ROUNDS):
        order = variants[number % len(variants) :] + variants[: number % len(variants)]
        for v in order:
            # one server at a time (six servers' pools at once exceed PostgreSQL's 100 connections), each run
            # from a fresh start and the same warm-up
            try:
                v.start(index)
                v.warm(fixture_all)
                result = run(v, fixture_all, answer_key, index, v.folder)
            finally:
                v.stop()
            index += 1
            for kind, items in result.pop("actions").items():
                actions_all[kind].extend(items)
            statuses_all.update(result.pop("statuses"))
            (top / "runs.json").write_text(json.dumps({v.name: v.runs for v in variants}, default=str))
    verdicts, _ = load.check(url, dict(actions_all), statuses_all)
    for v in variants:
        logs = "".join(path.read_text() for path in sorted(v.folder.glob("gunicorn-*.log")))
        name, ok, detail = load.server_log_check(logs)
        verdicts.append((f"{name} ({v.name})", ok, detail))
    section = report(variants, verdicts, started_at)
    if os.environ.get("LOAD_AB_WRITE", "1") == "1":
        write_results(section)
    print(section)
    (top / "runs.json").write_text(json.dumps({v.name: v.runs for v in variants}, default=str))
    failed = [n for n, ok, _ in verdicts if not ok]
    if failed:
        log(f"FAILED: {'; '.join(failed)} (files in {top})")
        return 1
    log(f"files in {top}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
