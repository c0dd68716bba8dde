"""Do /forgot-password and /register take the same time for known and unknown emails? (issue 12, item 6)

    .venv/bin/python -m bench.account_timing

Interleaved requests through the Flask test client on a temporary SQLite database with the outbox mail
backend (a file per mail); prints the median and the 10th-90th percentile of each, in milliseconds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

ROUNDS = 40


def main() -> None:
    from flask_migrate import upgrade

    from core import create_app
    from tests.factories import make_user

    folder = Path(tempfile.mkdtemp(prefix="awa-account-timing-"))
    app = create_app(
        {
            "APP_ENV": "test",
            "SECRET_KEY": "bench-" + "a" * 40,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'db.sqlite'}",
            "MAIL_OUTBOX_DIR": str(folder / "outbox"),
            "RATELIMIT_ENABLED": False,
            "WTF_CSRF_ENABLED": False,
        }
    )
    with app.app_context():
        upgrade()
        make_user(email="known@example.org", name="Known Person")
    client = app.test_client()
    times: dict[str, list[float]] = {k: [] for k in ("reset known", "reset unknown", "register taken", "register new")}
    for n in range(ROUNDS):
        for label, path, data in (
            ("reset known", "/forgot-password", {"email": "known@example.org"}),
            ("reset unknown", "/forgot-password", {"email": f"nobody{n}@example.org"}),
            (
                "register taken",
                "/register",
                {"name": "Ren", "email": "known@example.org", "password": "violet tractor umbrella 42"},
            ),
            (
                "register new",
                "/register",
                {"name": "Ren", "email": f"new{n}@example.org", "password": "violet tractor umbrella 42"},
            ),
        ):
            if path == "/register":
                data = {**data, "confirm": data["password"]}
            started = time.perf_counter()
            response = client.post(path, data=data)
            times[label].append((time.perf_counter() - started) * 1000)
            assert response.status_code in (302, 303), (label, response.status_code)
    print(f"Wall time per request, {ROUNDS} interleaved rounds (test client, SQLite, outbox mail)\n")
    print("| request | median | p10–p90 |")
    print("|---|---:|---:|")
    for label, values in times.items():
        values.sort()
        p10, p90 = values[len(values) // 10], values[len(values) * 9 // 10]
        print(f"| {label} | {statistics.median(values):.1f} ms | {p10:.1f}–{p90:.1f} ms |")


if __name__ == "__main__":
    main()
