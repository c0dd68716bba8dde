"""Generate the data set, then benchmark the pages and the certificates (one PostgreSQL, one run).

BENCH_ONLY=certificates skips the learner pages (bench/RESULTS.md then holds only the certificate part).
"""

import os

from bench import certificates, generate, insights, pages, vc

if __name__ == "__main__":
    generate.main()
    if os.environ.get("BENCH_ONLY") != "certificates":
        pages.main()  # writes bench/RESULTS.md
    certificates.main()  # appends to it
    vc.main()  # appends to it
    insights.main()  # appends to it
