"""Benchmark verification (100,000 certificates on PostgreSQL) and certificate PDFs.

    make bench      # runs bench.run: learner pages, then this; results in bench/RESULTS.md

Verification: wrk against /verify/<id> and /api/v1/certificates/<id> (random IDs from the data set,
via a wrk Lua script) and against a bare Flask endpoint, same gunicorn settings, same run.
PDF: our render (template + QR + font selection + restricted fetcher + WeasyPrint) against a bare
WeasyPrint render of the same HTML with file:// fonts, interleaved; stored-PDF download throughput;
PDF size; peak RSS of a process rendering 200 certificates.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select, text

from bench.generate import database_url
from bench.pages import REPEAT, RPS_HEADER, USER_AGENT, combine, login, rps, serve, wrk

ROOT = Path(__file__).resolve().parents[1]
CERTIFICATES = int(os.environ.get("BENCH_CERTIFICATES", "100000"))


def make_app():
    from core import create_app

    return create_app({"APP_ENV": "test", "SECRET_KEY": "bench-" + "z" * 40, "SQLALCHEMY_DATABASE_URI": database_url()})


def generate_certificates(app) -> list[str]:
    """Top the data set up to CERTIFICATES certificates (needs bench.generate's learners and courses)."""
    from core.database import utcnow
    from core.extensions import db
    from credentials.ids import new_public_id
    from credentials.models import Certificate

    with app.app_context():
        db.session.execute(text("DELETE FROM certificate_events"))
        db.session.execute(text("DELETE FROM certificates"))
        db.session.commit()
        courses = db.session.execute(text("SELECT id, slug, title FROM courses ORDER BY id")).all()
        holders_needed = -(-CERTIFICATES // len(courses))
        existing = db.session.scalar(text("SELECT count(*) FROM users"))
        if existing < holders_needed:  # more holders than the learner data set has
            db.session.execute(
                text(
                    """INSERT INTO users (email, name, legal_name, role, active, password_hash, session_version,
                                      created_at, updated_at)
                   SELECT 'holder' || g || '@bench.example', 'Holder ' || g, 'Holder ' || g, 'learner', true,
                          'x', 1, now(), now() FROM generate_series(1, :n) AS g"""
                ),
                {"n": holders_needed - existing},
            )
            db.session.commit()
        users = db.session.execute(text("SELECT id, legal_name FROM users ORDER BY id")).all()
        now = utcnow()
        rows, ids = [], []
        for n, ((user_id, name), course) in enumerate((u, c) for u in users for c in courses):
            if n >= CERTIFICATES:
                break
            public_id = new_public_id()
            ids.append(public_id)
            rows.append(
                {
                    "public_id": public_id,
                    "user_id": user_id,
                    "course_id": course.id,
                    "holder_name": name,
                    "course_title": course.title,
                    "course_slug": course.slug,
                    "course_version": 1,
                    "skills": [{"id": "AIL-01", "name": "AI Foundations"}],
                    "goals": [{"id": "G1", "title": "AI skills"}],
                    "score": 80 + n % 21,
                    "issuer_name": "AI Workforce Academy",
                    "awarded_at": now,
                    "issued_at": now,
                    "expires_at": None if n % 3 else now.replace(year=now.year + 2),
                    "revision": 1,
                    "revoked_at": now if n % 50 == 0 else None,
                    "revocation_reason": "issued_in_error" if n % 50 == 0 else None,
                    "verification_count": 0,
                }
            )
        for start in range(0, len(rows), 5000):
            db.session.execute(insert(Certificate.__table__), rows[start : start + 5000])
        db.session.commit()
        # every certificate in one revocation status list (a real one: 1 in 50 bits set), for the status-list bench
        list_id = db.session.scalar(
            text("INSERT INTO status_lists (size, updated_at) VALUES (131072, now()) RETURNING id")
        )
        db.session.execute(
            text(
                """UPDATE certificates c SET status_list_id = :list_id, status_list_index = s.n
                   FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM certificates) s
                   WHERE c.id = s.id AND s.n < 131072"""
            ),
            {"list_id": list_id},
        )
        db.session.commit()
        db.session.execute(text("ANALYZE certificates"))
        db.session.commit()
        if len(ids) < CERTIFICATES:
            raise SystemExit(f"only {len(ids)} learner×course pairs: generate more learners")
        return ids


def lua_script(paths: list[str]) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n")
        script.write("request = function()\n  return wrk.format(nil, paths[math.random(#paths)])\nend\n")
    return Path(script.name)


def wrk_script(url: str, script: Path, *headers: str) -> dict:
    return combine([_wrk_script_once(url, script, *headers) for _ in range(REPEAT)])


def _wrk_script_once(url: str, script: Path, *headers: str, seconds: int | None = None) -> dict:
    import re

    out = subprocess.run(
        [
            "wrk",
            "-t",
            "2",
            "-c",
            "8",
            "-d",
            f"{seconds or os.environ.get('BENCH_SECONDS', '10')}s",
            "--latency",
            "-H",
            f"User-Agent: {USER_AGENT}",
            *[arg for header in headers for arg in ("-H", header)],
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": re.search(r"50%\s+([\d.]+\w+)", out).group(1),
        "p99": re.search(r"99%\s+([\d.]+\w+)", out).group(1),
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def server_cpu(server: subprocess.Popen) -> tuple[float, float]:
    """CPU seconds so far of a gunicorn server's workers, and of every PostgreSQL backend serving a client: what
    one request costs the machine on the server side, whatever else the machine is doing (wrk is left out)."""
    import psycopg

    workers = sum(_cpu_seconds(pid) for pid in _children(server.pid))
    with psycopg.connect(database_url().replace("postgresql+psycopg://", "postgresql://")) as connection:
        pids = [
            row[0]
            for row in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        ]
    return workers, sum(_cpu_seconds(pid) for pid in pids)


def signing_key_file() -> str:
    """A fresh signing key for the bench servers (the status list is signed on its first request)."""
    folder = Path(tempfile.mkdtemp(prefix="awa-keys-"))
    app = make_app()
    app.config["SIGNING_KEY_FILE"] = str(folder / "keys.json")
    with app.app_context():
        from credentials import keys

        keys.generate(rotate=False)
    return str(folder / "keys.json")


def verification_bench(ids: list[str]) -> list[str]:
    """Bare Flask, the one-SELECT floor, the verify page, the JSON facts and the status list, interleaved: each
    round runs every endpoint once (both servers stay up), so load from the rest of the machine hits all alike."""
    from credentials.ids import format_public_id

    env = {
        **os.environ,
        "FLASK_APP_ENV": "production",
        "FLASK_SECRET_KEY": "bench-" + "k" * 40,
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url(),
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_ALLOW_ANY_HOST": "true",  # loopback benchmark
        "FLASK_ALLOW_OUTBOX_MAIL": "true",
        "FLASK_RATELIMIT_VERIFY": "10000000 per minute",
        "FLASK_RATELIMIT_STATUS_LIST": "10000000 per minute",
        "FLASK_SIGNING_KEY_FILE": signing_key_file(),
    }
    sample = [format_public_id(i) for i in random.Random(7).sample(ids, 2000)]
    gzip_header = "Accept-Encoding: gzip"
    endpoints = {
        "bare": (lua_script(["/"]), ()),
        "floor": (lua_script([f"/pk/{i}" for i in sample]), ()),
        "page": (lua_script([f"/verify/{i}" for i in sample]), ()),
        "api": (lua_script([f"/api/v1/certificates/{i}" for i in sample]), ()),
        "status": (lua_script(["/credentials/status/1"]), (gzip_header,)),
    }
    bare, bare_url = serve("bench.bare:app", env)
    app, base = serve("wsgi:app", env)
    try:
        status_check = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", gzip_header, base + "/credentials/status/1"],
            capture_output=True,
            text=True,
        ).stdout
        assert status_check == "200", f"the status list answered {status_check}"
        runs: dict[str, list[dict]] = {name: [] for name in endpoints}
        for round_no in range(REPEAT + 1):  # round 0 warms both servers (caches, pools) and is not counted
            for name, (script, headers) in endpoints.items():
                server, url = (bare, bare_url) if name in ("bare", "floor") else (app, base)
                before = server_cpu(server)
                result = _wrk_script_once(url, script, *headers, seconds=3 if round_no == 0 else None)
                after = server_cpu(server)
                result["app_ms"] = (after[0] - before[0]) * 1000 / result["requests"]
                result["db_ms"] = (after[1] - before[1]) * 1000 / result["requests"]
                if round_no:
                    runs[name].append(result)
    finally:
        for server in (bare, app):
            server.terminate()
            server.wait()
    r = {name: combine(results) for name, results in runs.items()}
    for name, results in runs.items():
        r[name]["app_ms"] = statistics.median(x["app_ms"] for x in results)
        r[name]["db_ms"] = statistics.median(x["db_ms"] for x in results)
    baseline, floor = r["bare"]["rps"], r["floor"]["rps"]
    lines = [
        "",
        f"## Verification with {CERTIFICATES:,} certificates",
        "",
        f"{CERTIFICATES:,} certificates (1 in 50 revoked, 1 in 3 with an expiry) on PostgreSQL 15; each request picks "
        "one of 2,000 random IDs (wrk Lua script); every verification is counted (in memory, written every 50 "
        "verifications or 5 s). The endpoints run interleaved: each of the rounds runs every endpoint once against "
        f"two servers that stay up (a first, uncounted round warms them). The status list (all {CERTIFICATES:,} "
        "certificates in one 131,072-bit revocation list) is fetched with `Accept-Encoding: gzip`.",
        "Rerun: `BENCH_ONLY=verification make bench` (this section only; `BENCH_REPEAT`, `BENCH_SECONDS` set rounds "
        "and seconds).",
        "",
        f"| endpoint | {RPS_HEADER} | ratio to bare Flask | ratio to the floor | p50 | p99 | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    cpu_lines = [
        "",
        "Server-side CPU per request (median over the rounds of the CPU time the gunicorn workers and the PostgreSQL "
        "backends used during a run, divided by its requests; wrk's own CPU left out). On a machine shared with other "
        "work this is the steadier measure: a throughput ratio also depends on how long a process waits for a core.",
        "",
        "| endpoint | app CPU ms | PostgreSQL CPU ms | total ms | floor's total ÷ this total |",
        "|---|---:|---:|---:|---:|",
    ]
    floor_cpu = r["floor"]["app_ms"] + r["floor"]["db_ms"]
    names = {
        "bare": "bare Flask endpoint (baseline)",
        "floor": "bare Flask + one pooled SELECT by public ID (the database floor)",
        "page": "/verify/<id> (HTML page)",
        "api": "/api/v1/certificates/<id> (JSON)",
        "status": "/credentials/status/<list> (status list, gzip)",
    }
    for name, label in names.items():
        x = r[name]
        lines.append(
            f"| {label} | {rps(x)} | {x['rps'] / baseline:.2f} | {x['rps'] / floor:.2f} | {x['p50']} | {x['p99']} | "
            f"{x['errors']} |"
        )
        total = x["app_ms"] + x["db_ms"]
        cpu_lines.append(f"| {label} | {x['app_ms']:.3f} | {x['db_ms']:.3f} | {total:.3f} | {floor_cpu / total:.2f} |")
    return lines + cpu_lines


def pdf_bench(app, ids: list[str]) -> list[str]:
    from weasyprint import HTML
    from weasyprint.text.fonts import FontConfiguration

    from core.extensions import db
    from credentials.models import Certificate
    from credentials.pdf import STATIC_BASE, STATIC_DIR, render_html, render_pdf
    from credentials.presenters import certificate_data

    rounds = int(os.environ.get("BENCH_PDF_ROUNDS", "15"))
    with app.test_request_context():
        certificate = db.session.scalar(select(Certificate).where(Certificate.public_id == ids[1]))
        from core.database import utcnow

        data = certificate_data(certificate, utcnow())
        bare_html = render_html(data).replace(STATIC_BASE, STATIC_DIR.as_uri() + "/")
        bare_fonts = FontConfiguration()
        render_pdf(data)  # warm both paths once (imports, font cmaps)
        HTML(string=bare_html).write_pdf(font_config=bare_fonts)
        ours, bare = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            pdf = render_pdf(data)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            HTML(string=bare_html).write_pdf(font_config=bare_fonts)
            bare.append(time.perf_counter() - started)
    ours_ms, bare_ms = statistics.median(ours) * 1000, statistics.median(bare) * 1000

    peak = subprocess.run(
        [sys.executable, "-m", "bench.render_worker", ids[2]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "BENCH_DATABASE_URL": database_url()},
    ).stdout.strip()
    return [
        "",
        "## Certificate PDF",
        "",
        f"Median of {rounds} interleaved renders of the same certificate (one reused FontConfiguration each).",
        "",
        "| measure | value |",
        "|---|---:|",
        f"| our render (template, QR, font choice, restricted fetcher, WeasyPrint) | {ours_ms:.0f} ms |",
        f"| bare WeasyPrint render of the same HTML (file:// fonts) | {bare_ms:.0f} ms |",
        f"| overhead | {100 * (ours_ms / bare_ms - 1):+.0f}% |",
        f"| PDF size (fonts embedded and subset) | {len(pdf) / 1024:.1f} KiB |",
        f"| peak RSS of one process rendering 200 certificates | {peak} |",
    ]


def download_bench(ids: list[str]) -> list[str]:
    env = {
        **os.environ,
        "FLASK_APP_ENV": "production",
        "FLASK_SECRET_KEY": "bench-" + "k" * 40,
        "FLASK_SQLALCHEMY_DATABASE_URI": database_url(),
        "FLASK_SESSION_COOKIE_SECURE": "false",
        "FLASK_REMEMBER_COOKIE_SECURE": "false",
        "FLASK_CERTIFICATE_DIR": tempfile.mkdtemp(prefix="awa-pdf-"),
    }
    app, base = serve("wsgi:app", env)
    try:
        cookie = login(base)  # learner1@bench.example holds the first certificates
        from credentials.ids import format_public_id

        url = f"{base}/certificates/{format_public_id(ids[0])}.pdf"
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-A", USER_AGENT, "-H", f"Cookie: {cookie}", url], check=True)
        result = wrk(url, cookie)  # the first request above rendered and stored it
    finally:
        app.terminate()
        app.wait()
    return [
        f"| stored PDF download (`/certificates/<id>.pdf`, logged-in holder) | {rps(result)} req/s, p99 "
        f"{result['p99']}, {result['errors']} non-2xx |"
    ]


def main() -> None:
    app = make_app()
    ids = generate_certificates(app)
    lines = verification_bench(ids)
    if os.environ.get("BENCH_ONLY") != "verification":
        lines += pdf_bench(app, ids) + download_bench(ids)
    text_out = "\n".join(lines) + "\n"
    with (ROOT / "bench" / "RESULTS.md").open("a") as results:
        results.write(text_out)
    print(text_out)


if __name__ == "__main__":
    main()
