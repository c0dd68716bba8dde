"""Visitors' pages against a bare Flask endpoint, in process (issue 17's "≥ 0.3× a bare Flask endpoint").

    python -m tests.pgcluster -- sh -c 'BENCH_LEARNERS=1000 python -m bench.generate && python -m bench.visitor_cpu'

The pages a visitor sees without logging in (bench/cpu.py's PAGES that are not logged in), each requested
BENCH_CPU_REQUESTS times through Flask's test client (which calls the app's whole WSGI stack, lanes included) with
the content cache on and warm, and the bare endpoint of bench/bare.py the same way, in ROUNDS interleaved rounds in
one process. The figure is CPU time of this process per request (time.process_time; PostgreSQL's share of the one
SELECT of the content version is not in it) and the ratio bare ÷ page: the page's request rate as a fraction of the
bare endpoint's. Prints one Markdown table; nothing fails.
"""

from __future__ import annotations

import os
import statistics

from bench.cpu import PAGES, bare_figure, cpu_per_request, make_app

ROUNDS = int(os.environ.get("BENCH_VISITOR_ROUNDS", "3"))


def main() -> None:
    app = make_app(True)
    visitor = app.test_client()
    pages = [(name, path) for name, path, logged_in in PAGES if not logged_in]
    bare: list[float] = []
    results: dict[str, list[float]] = {name: [] for name, _ in pages}
    for _ in range(ROUNDS):
        bare += bare_figure()
        for name, path in pages:
            results[name] += cpu_per_request(visitor, path)
    bare_ms = statistics.median(bare)
    label = os.environ.get("BENCH_LABEL", "")
    print(f"| {label} bare Flask endpoint | `/` | {bare_ms:.3f} ({min(bare):.3f}–{max(bare):.3f}) | 1.00 |")
    for name, path in pages:
        ms = statistics.median(results[name])
        spread = f"{min(results[name]):.3f}–{max(results[name]):.3f}"
        print(f"| {label} {name} | `{path}` | {ms:.3f} ({spread}) | {bare_ms / ms:.2f} |")


if __name__ == "__main__":
    main()
