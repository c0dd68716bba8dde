"""Visitors' pages over HTTP against a bare Flask endpoint (issue 17's "≥ 0.3× a bare Flask endpoint").

    python -m tests.pgcluster -- sh -c 'BENCH_LEARNERS=1000 python -m bench.generate && python -m bench.visitor_pages'

Both servers under the same gunicorn settings as bench/pages.py (2 sync workers), wrk with the same settings,
BENCH_REPEAT interleaved rounds (each round: the bare endpoint, then every visitor's page), so load from the rest
of the machine falls on all alike. The figure to read is the ratio of medians in the same run. Prints one Markdown
table; nothing fails.
"""

from __future__ import annotations

import os

from bench.cpu import PAGES
from bench.pages import REPEAT, _wrk_once, combine, rps, serve, server_env


def main() -> None:
    env = server_env()
    pages = [(name, path) for name, path, logged_in in PAGES if not logged_in]
    bare, bare_url = serve("bench.bare:app", env)
    app, base = serve("wsgi:app", env)
    runs: dict[str, list[dict]] = {name: [] for name, _ in [("bare", "/"), *pages]}
    try:
        for _, path in pages:  # warm: every worker builds and keeps each page
            for _ in range(4):
                _get(base + path)
        for _ in range(REPEAT):
            runs["bare"].append(_wrk_once(bare_url + "/"))
            for name, path in pages:
                runs[name].append(_wrk_once(base + path))
    finally:
        for server in (bare, app):
            server.terminate()
            server.wait()
    figures = {name: combine(results) for name, results in runs.items()}
    baseline = figures["bare"]["rps"]
    label = os.environ.get("BENCH_LABEL", "")
    print(f"| {label} bare Flask endpoint | `/` | {rps(figures['bare'])} | 1.00 | {figures['bare']['p50']} | 0 |")
    for name, path in pages:
        r = figures[name]
        print(f"| {label} {name} | `{path}` | {rps(r)} | {r['rps'] / baseline:.2f} | {r['p50']} | {r['errors']} |")


def _get(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(url) as response:  # noqa: S310 (a loopback URL of our own server)
        response.read()


if __name__ == "__main__":
    main()
