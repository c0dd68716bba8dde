"""Benchmark the learner pages under gunicorn against a bare Flask endpoint in the same run.

    make bench     # starts a throwaway PostgreSQL, generates the data set, runs this, writes bench/RESULTS.md

Needs wrk (apt-get install wrk). Ratios, not absolute numbers, are the result: both servers
run with the same gunicorn settings on the same machine, one after the other.
"""

from __future__ import annotations

import http.cookiejar
import os
import platform
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from bench.generate import BENCH_PASSWORD, LEARNERS, database_url

ROOT = Path(__file__).resolve().parents[1]
# --threads 1: gunicorn reads the repository's gunicorn.conf.py from the working directory (threads = 2), and turns a
# "sync" worker with threads into gthread
GUNICORN = ["--workers", "2", "--worker-class", "sync", "--threads", "1", "--log-level", "warning"]
USER_AGENT = "awa-bench/1"
WRK = ["-t", "2", "-c", "8", "-d", os.environ.get("BENCH_SECONDS", "10") + "s", "--latency"]
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))  # every load figure is the median of this many runs


def combine(runs: list[dict]) -> dict:
    """The median run of several (by req/s), with the spread of req/s over all of them."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    median = ordered[len(ordered) // 2]
    return {
        **median,
        "spread": f"{ordered[0]['rps']:.0f}–{ordered[-1]['rps']:.0f}",
        "errors": sum(r["errors"] for r in runs),
    }


def rps(r: dict) -> str:
    """A req/s table cell: the median and, in brackets, the lowest and highest run."""
    return f"{r['rps']:.0f} ({r['spread']})"


RPS_HEADER = f"req/s (median of {REPEAT}; min–max)"


def versions() -> str:
    """Machine and software the figures were measured with."""
    from importlib.metadata import version

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        (
            f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        "?",
    )
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[:2]
    packages = ", ".join(
        f"{name} {version(name)}" for name in ("flask", "sqlalchemy", "psycopg", "gunicorn", "weasyprint", "pyld")
    )
    return (
        f"Machine: {os.cpu_count()} CPU ({cpu}), {memory} RAM, {platform.platform()}. "
        f"Python {platform.python_version()}; {packages}; {' '.join(wrk_version)}."
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app: str, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{port}", app], cwd=ROOT, env=env
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{app} did not start")


def login(base: str, email: str = "learner1@bench.example", password: str = BENCH_PASSWORD) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    # Flask-Login's strong session protection ties the session to the user agent: wrk sends the same one
    opener.addheaders = [("User-Agent", USER_AGENT)]
    html = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    data = urllib.parse.urlencode({"csrf_token": token, "email": email, "password": password}).encode()
    landed = opener.open(base + "/login", data).geturl()
    assert landed.rstrip("/") == base, f"login failed, landed on {landed}"
    cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
    assert "session=" in cookie
    return cookie


def wrk(url: str, cookie: str | None = None) -> dict:
    return combine([_wrk_once(url, cookie) for _ in range(REPEAT)])


def _wrk_once(url: str, cookie: str | None = None) -> dict:
    args = ["wrk", *WRK, "-H", f"User-Agent: {USER_AGENT}", url] + (["-H", f"Cookie: {cookie}"] if cookie else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    if "Non-2xx" not in out:
        # a redirect would look fast; prove the page itself answered
        check = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-A", USER_AGENT, url]
            + (["-H", f"Cookie: {cookie}"] if cookie else []),
            capture_output=True,
            text=True,
        )
        assert check.stdout == "200", f"{url} answered {check.stdout}"
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": int(non2xx.group(1)) if non2xx else 0}


def server_env() -> dict:
    """The environment the benchmarked servers run with (production settings on loopback)."""
    return {
        **os.environ,
        "FLASK_APP_ENV": "production",
        "FLASK_SECRET_KEY": "bench-" + "k" * 40,
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url(),
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_REMEMBER_COOKIE_SECURE": "false",
        "FLASK_ALLOW_ANY_HOST": "true",  # loopback benchmark
        "FLASK_ALLOW_OUTBOX_MAIL": "true",
        "FLASK_RATELIMIT_LOGIN": "1000 per minute",
    }


def main() -> None:
    env = server_env()
    results = []
    bare, bare_url = serve("bench.bare:app", env)
    try:
        baseline = wrk(bare_url + "/")
    finally:
        bare.terminate()
        bare.wait()
    # the same pages with the content cache off (FLASK_CONTENT_CACHE=false: what every request cost before it
    # existed) and on, one server after the other in the same run
    uncached = {}
    for cache in ("false", "true"):
        app, base = serve("wsgi:app", {**env, "FLASK_CONTENT_CACHE": cache})
        try:
            cookie = login(base)
            pages = [
                ("catalog /courses", "/courses", None),
                ("catalog filtered by occupation", "/courses?occupation=47-2111.00", None),
                ("catalog searched (q=safety)", "/courses?q=safety", None),
                ("course page (visitor)", "/courses/ai-literacy-for-every-worker", None),
                ("framework explorer", "/framework", None),
                ("course page (logged in)", "/courses/ai-literacy-for-every-worker", cookie),
                ("lesson page", "/courses/ai-literacy-for-every-worker/what-ai-is/how-generative-ai-works", cookie),
                ("dashboard (8 enrollments)", "/dashboard", cookie),
            ]
            for name, path, page_cookie in pages:
                figure = wrk(base + path, page_cookie)
                if cache == "false":
                    uncached[name] = figure
                else:
                    results.append((name, path, uncached[name], figure))
        finally:
            app.terminate()
            app.wait()

    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench`. {versions()}",
        f"Every load figure is the median of {REPEAT} wrk runs with the lowest and highest in brackets; every ratio "
        "compares medians measured in the same run (client, servers and PostgreSQL share the machine).",
        "",
        "## Learner pages",
        "",
        f"Data: {LEARNERS:,} learners × 8 courses ({LEARNERS * 8:,} enrollments; at the default 10,000: ~1M "
        "lesson_progress rows, ~70,000 quiz attempts) on PostgreSQL 15 (throwaway cluster, fsync off).",
        f"Servers: gunicorn {' '.join(GUNICORN)}; load: wrk {' '.join(WRK)}; client and server share the machine.",
        "",
        "Each page twice: with the content cache off (`FLASK_CONTENT_CACHE=false`, every request loads and "
        "renders everything, as before the cache existed) and on (core/contentcache.py). Targets (issue 17): "
        "visitors' pages ≥ 0.30, logged-in course and lesson pages ≥ 0.15, dashboard ≥ 0.10 of bare Flask.",
        "",
        f"| page | path | cache off: {RPS_HEADER} | ratio | cache on: {RPS_HEADER} | ratio to bare Flask "
        "| p50 | p99 | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| bare Flask endpoint (baseline) | / | | | {rps(baseline)} | 1.00 | {baseline['p50']} | {baseline['p99']} "
        f"| {baseline['errors']} |",
    ]
    for name, path, off, r in results:
        lines.append(
            f"| {name} | `{path}` | {rps(off)} | {off['rps'] / baseline['rps']:.2f} | {rps(r)} | "
            f"{r['rps'] / baseline['rps']:.2f} | {r['p50']} | {r['p99']} | {r['errors'] + off['errors']} |"
        )
    text = "\n".join(lines) + "\n"
    (ROOT / "bench" / "RESULTS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
