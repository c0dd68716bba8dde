"""Generate the data set, then benchmark the pages and the certificates (one PostgreSQL, one run).

BENCH_ONLY=certificates skips the learner pages (bench/RESULTS.md then holds only the certificate part).
BENCH_ONLY=verification runs only the verification section (bare Flask, the one-SELECT floor, the verify page,
the JSON facts, the status list) and replaces that section in bench/RESULTS.md, keeping the rest.
The "## Load test" section written by `make load` is kept at the end of bench/RESULTS.md.
"""

import os
import re
from pathlib import Path

from bench import certificates, cpu, generate, insights, pages, requestpath, vc, workforce, workforce_sqlite

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

if __name__ == "__main__":
    previous = RESULTS.read_text() if RESULTS.exists() else ""
    load = re.search(r"\n## Load test\n.*?(?=\n## |\Z)", previous, flags=re.S)
    generate.main()
    if os.environ.get("BENCH_ONLY") == "verification":
        ids = certificates.generate_certificates(certificates.make_app())
        section = "\n".join(certificates.verification_bench(ids))
        kept = re.sub(r"\n## Verification with .*?(?=\n## |\Z)", "", previous, count=1, flags=re.S)
        # back where it was: after the learner pages' section
        at = kept.find("\n## ", kept.find("## Learner pages") + 1) if "## Learner pages" in kept else len(kept)
        at = len(kept) if at < 0 else at
        RESULTS.write_text(kept[:at].rstrip("\n") + "\n" + section + "\n" + kept[at:])
        print(section)
        raise SystemExit(0)
    if os.environ.get("BENCH_ONLY") != "certificates":
        pages.main()  # writes bench/RESULTS.md
        cpu.main()  # appends the per-request CPU budget of every page
        requestpath.main()  # appends what a request that reaches Flask costs (hooks, forms, errors, POSTs)
    certificates.main()  # appends to it
    vc.main()  # appends to it
    insights.main()  # appends to it
    workforce.main()  # appends to it
    workforce_sqlite.main()  # appends to it (the same data set copied into SQLite)
    if load:
        with RESULTS.open("a") as results:
            results.write(load.group(0).rstrip("\n") + "\n")
