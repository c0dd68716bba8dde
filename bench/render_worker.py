"""Render one certificate 200 times in this process and print the peak resident memory."""

from __future__ import annotations

import os
import resource
import sys

from sqlalchemy import select


def main() -> None:
    from core import create_app
    from core.database import utcnow
    from core.extensions import db
    from credentials.models import Certificate
    from credentials.pdf import render_pdf
    from credentials.presenters import certificate_data

    app = create_app(
        {
            "APP_ENV": "test",
            "SECRET_KEY": "bench-" + "z" * 40,
            "SQLALCHEMY_DATABASE_URI": os.environ["BENCH_DATABASE_URL"],
        }
    )
    with app.test_request_context():
        certificate = db.session.scalar(select(Certificate).where(Certificate.public_id == sys.argv[1]))
        data = certificate_data(certificate, utcnow())
        after_first = None
        for n in range(200):
            render_pdf(data)
            if n == 0:
                after_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{peak / 1024:.0f} MiB (after the first render: {after_first / 1024:.0f} MiB)")


if __name__ == "__main__":
    main()
